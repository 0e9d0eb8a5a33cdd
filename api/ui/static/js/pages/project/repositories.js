// The project page's tab: its repositories, now or as of a past moment from the event log.
import { get, harbor, send } from "../../api.js";
import {
  confirmDialog, errorBox, field, formatTime, h, isoToLocal, link, localToIso, mount, notify, pager, rowActions, table,
} from "../../dom.js";
import { t } from "../../i18n.js";
import { restoreButton } from "../../restore.js";
import { attempt, button, fill, PAGE_SIZE, params, setQuery } from "./shared.js";

export async function drawRepositories(body, page) {
  const query = params();
  const search = query.get("q") || "";
  const asOf = query.get("as_of") || "";
  const number = Math.max(1, Number(query.get("page") || 1));
  const problem = h("div");
  const searchInput = h("input", { type: "search", name: "q", value: search, placeholder: t("project.repo_search_placeholder") });
  const searchForm = h("form", { class: "toolbar", role: "search" },
    field(t("project.repo_search_label"), searchInput),
    h("button", { type: "submit" }, t("common.search")));
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    setQuery({ q: searchInput.value.trim(), page: null }, { push: true });
    page.redraw();
  });
  const moment = h("input", { type: "datetime-local", name: "as_of", step: "1", value: isoToLocal(asOf),
    max: isoToLocal(new Date().toISOString()) });
  const timeForm = h("form", { class: "toolbar as-of-form" },
    field(t("project.as_of_label"), moment),
    h("button", { type: "submit" }, t("project.as_of_show")));
  timeForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!moment.value) {
      setQuery({ as_of: null, page: null }, { push: true });
      page.redraw();
      return;
    }
    const chosen = localToIso(moment.value);
    if (!chosen) {
      mount(problem, errorBox(new Error(t("project.as_of_invalid"))));
      return;
    }
    setQuery({ as_of: chosen, page: null }, { push: true });
    page.redraw();
  });
  const list = h("div");
  const tools = h("div", { class: "repo-tools" }, searchForm, timeForm);
  if (asOf) {
    const when = new Date(asOf);
    const shown = Number.isNaN(when.getTime()) ? asOf : when.toLocaleString(document.documentElement.lang);
    const now = `${location.pathname}?tab=repositories`;
    const restore = await restoreButton(page.name, asOf, () => page.ctx.navigate(now));
    const banner = h("div", { class: "asof", role: "status" },
      h("span", {}, fill("project.as_of_banner", { time: h("time", { datetime: asOf }, shown) })), " ",
      link(now, t("project.back_to_now")), restore ? [" ", restore] : null);
    const { data, total } = await get(harbor(`/projects/${page.id}/repositories`), {
      as_of: asOf, q: search ? `name=~${search}` : undefined, page: number, page_size: PAGE_SIZE, sort: "name" });
    if (!page.current()) return;
    mount(body, tools, banner, problem, list);
    mount(list, table({
      caption: t("project.repos_as_of_caption", { total: total ?? data.length, time: shown }),
      empty: t("project.repos_as_of_none"),
      rows: data,
      columns: [
        { label: t("common.name"), class: "mono",
          render: (repo) => link(`/ui/repository?name=${encodeURIComponent(repo.name)}&as_of=${encodeURIComponent(asOf)}`, repo.name) },
        { label: t("project.artifacts"), render: (repo) => String(repo.artifact_count) },
        { label: t("common.updated"), class: "hide-narrow", render: (repo) => formatTime(repo.update_time) },
      ],
    }), pager({ total: total ?? 0, page: number, size: PAGE_SIZE, onChange: (next) => {
      setQuery({ page: next }, { push: true });
      page.redraw();
    } }));
    return;
  }
  const { data, total } = await get(harbor(`/projects/${page.id}/repositories`), {
    q: search ? `name=~${search}` : undefined, page: number, page_size: PAGE_SIZE, sort: "name" });
  if (!page.current()) return;
  const canDelete = page.can("repository", "delete");
  const empty = search ? t("project.repos_none_matching", { text: search })
    : h("span", {}, t("project.repos_none"), " ", h("code", {}, `docker push ${location.host}/${page.name}/IMAGE:TAG`));
  mount(body, tools, problem, list);
  const listing = table({
    caption: t("project.repos_caption", { total: total ?? data.length }),
    empty: "",
    rows: data,
    columns: [
      { label: t("common.name"), class: "mono", render: (repo) => link(`/ui/repository?name=${encodeURIComponent(repo.name)}`, repo.name) },
      { label: t("project.artifacts"), render: (repo) => String(repo.artifact_count) },
      { label: t("project.pulls"), class: "hide-narrow", render: (repo) => String(repo.pull_count) },
      { label: t("common.updated"), class: "hide-narrow", render: (repo) => formatTime(repo.update_time) },
      ...(canDelete ? [{ label: t("common.actions"), render: (repo) => rowActions(button(t("common.delete"),
        () => deleteRepository(page, repo.name, problem), { kind: "danger", name: t("project.delete_repo", { name: repo.name }) })) }] : []),
    ],
  });
  mount(list, data.length ? listing : h("p", { class: "empty" }, empty),
    pager({ total: total ?? 0, page: number, size: PAGE_SIZE, onChange: (next) => {
      setQuery({ page: next }, { push: true });
      page.redraw();
    } }));
}

async function deleteRepository(page, name, problem) {
  if (!await confirmDialog(t("project.delete_repo_confirm", { name }), t("common.delete"))) return;
  await attempt(problem, async () => {
    const rest = name.split("/").slice(1).join("/");
    await send("DELETE", harbor(`/projects/${page.id}/repositories/${encodeURIComponent(encodeURIComponent(rest))}`));
    notify(t("common.deleted", { name }));
    page.redraw();
  });
}
