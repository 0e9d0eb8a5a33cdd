// A tag's timeline (GET /api/v1/repositories/{name}/tags/{tag}/history): every digest it
// pointed to, from when until when, newest first, each saying how it began (pointed there,
// undeleted) and ended (moved, deleted, deleted with the repository) and by whom; "Restore to
// here" points it back (POST …/restore, as a new event) — never offered for the digest it has now. Below, the repository's tags as they were at a chosen
// moment (`as_of=` in the URL).
import { ApiError, get, harbor, send, v1, withParams } from "../api.js";
import {
  badge, breadcrumbs, confirmDialog, errorBox, field, formatTime, h, isoToLocal, link, localToIso, mount, notify, refusal,
  shortDigest, table,
} from "../dom.js";
import { language, t } from "../i18n.js";
import { permissions } from "../session.js";
import { trailTo } from "./repository.js";

export const catalogs = ["history"];

const segments = (name) => name.split("/").map(encodeURIComponent).join("/");
const pageUrl = (params) => withParams("/ui/history", params);

export async function render(view, ctx) {
  const name = (ctx.params.get("name") || "").trim();
  const tag = (ctx.params.get("tag") || "").trim();
  const asOf = (ctx.params.get("as_of") || "").trim();
  if (!name.includes("/") || !tag) {
    mount(view, refusal(t("history.heading"), t("history.missing_params"), link("/ui/projects", t("history.to_projects"))));
    return;
  }
  const project = name.split("/")[0];
  const tagsUrl = v1(`/repositories/${segments(name)}/tags`);
  const historySection = h("section", { "aria-labelledby": "history-timeline" });
  const asOfSection = h("section", { "aria-labelledby": "history-as-of" });
  mount(view,
    breadcrumbs(t("history.breadcrumbs"), ...trailTo(name), t("history.crumb", { tag })),
    h("h1", {}, t("history.title", { name, tag })),
    historySection, asOfSection);

  const [canRestore] = await Promise.all([
    mayPush(project),
    drawAsOf(asOfSection, { name, tag, asOf, tagsUrl, ctx }),
  ]);
  await drawTimeline(historySection, { name, tag, asOf, tagsUrl, canRestore, ctx });
}

async function mayPush(project) {
  try {
    const { data } = await get(harbor(`/projects/${encodeURIComponent(project)}`));
    return (await permissions(data.project_id)).can("repository", "push");
  } catch {
    return false;  // no button; the API would refuse anyway
  }
}

async function drawTimeline(section, { name, tag, asOf, tagsUrl, canRestore, ctx }) {
  mount(section, h("h2", { id: "history-timeline" }, t("history.timeline")));
  let intervals;
  try {
    intervals = (await get(`${tagsUrl}/${encodeURIComponent(tag)}/history`)).data || [];
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) throw error;  // the router asks to sign in
    section.append(errorBox(error));
    return;
  }
  const rows = [...intervals].reverse();  // newest first
  const moment = asOf ? new Date(asOf).getTime() : null;
  const heldAt = (i) => moment !== null && new Date(i.from_time).getTime() <= moment
    && (i.to_time === null || moment < new Date(i.to_time).getTime());
  const current = rows.find((i) => i.to_position === null);
  const restorable = canRestore ? rows.filter((i) => i.digest !== current?.digest) : [];
  const now = current ? t("history.points_now", { tag, digest: shortDigest(current.digest) })
    : t("history.deleted_now", { tag });
  section.append(
    rows.length ? h("p", { class: "muted" }, now) : "",
    table({
      caption: t("history.caption", { tag, count: rows.length }),
      empty: t("history.none", { name, tag }),
      rows,
      columns: [
        { label: t("history.digest"), render: (i) => digestCell(name, i.digest) },
        { label: t("history.from"), render: (i) => when(i.from_time, i.from_position, began(i)) },
        { label: t("history.until"), render: (i) => [
          i.to_position === null ? badge(t("history.current"), "ok") : when(i.to_time, i.to_position, ended(i)),
          heldAt(i) ? [" ", badge(t("history.at_moment"), "warn")] : null] },
        { label: t("history.began"), class: "hide-narrow", render: began },
        { label: t("history.ended"), class: "hide-narrow", render: (i) => ended(i) || "—" },
        restorable.length > 0 && { label: t("common.actions"), render: (i) => (!restorable.includes(i) ? null
          : h("button", {
            type: "button", class: "history-restore", title: t("history.restore_title", { tag, digest: i.digest }),
            onclick: () => restore(name, tag, i, ctx),
          }, t("history.restore"))) },
      ].filter(Boolean),  // no actions column for those who may not push, nor when all is as now
    }));
  const body = section.querySelectorAll("tbody tr");
  rows.forEach((i, index) => { if (i.to_position === null) body[index]?.classList.add("current"); });
}

// How an interval began and ended, and by whom: "Undeleted by admin", "Repository deleted by admin".
function began(interval) {
  return t(`history.began_${interval.started_how}`, { actor: interval.started_by });
}

function ended(interval) {
  return interval.ended_how ? t(`history.ended_${interval.ended_how}`, { actor: interval.ended_by }) : null;
}

// When, at which log position, and (on narrow screens, where the "how" columns drop out) how.
function when(time, position, how) {
  return h("span", { class: "when" }, formatTime(time), " ",
    how ? h("small", { class: "history-by" }, how) : null,
    h("small", { class: "muted" }, t("history.position", { position })));
}

// The short digest (the full one in its title); "sha256:" drops out on narrow screens.
function digestCell(name, digest) {
  const [algorithm, hex] = shortDigest(digest).split(/(?<=:)/);
  return h("a", { href: `/ui/artifact?${new URLSearchParams({ name, digest })}`, "data-link": true, title: digest,
    class: "mono digest" }, hex ? [h("span", { class: "digest-algorithm" }, algorithm), hex] : algorithm);
}

async function restore(name, tag, interval, ctx) {
  const confirmed = await confirmDialog(
    t("history.restore_confirm", { name, tag, digest: shortDigest(interval.digest) }), t("history.restore_button"));
  if (!confirmed) return;
  try {
    await send("POST", v1(`/repositories/${segments(name)}/tags/${encodeURIComponent(tag)}/restore`),
      { as_of: interval.from_position });
    notify(t("history.restored", { tag, digest: shortDigest(interval.digest) }));
    await ctx.redraw();
  } catch (error) {
    notify(error.message, "error");
  }
}

async function drawAsOf(section, { name, tag, asOf, tagsUrl, ctx }) {
  const input = h("input", { type: "datetime-local", step: "1", name: "as_of", value: isoToLocal(asOf) });
  const form = h("form", { class: "toolbar history-as-of", "aria-label": t("history.as_of_form") },
    field(t("history.as_of_label"), input, t("history.as_of_hint")),
    h("button", { type: "submit" }, t("history.show")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.navigate(pageUrl({ name, tag, as_of: localToIso(input.value) }));
  });
  const shownAt = asOf ? new Date(asOf) : null;
  const when = shownAt && !Number.isNaN(shownAt.getTime()) ? shownAt.toLocaleString(language()) : asOf;
  mount(section,
    h("h2", { id: "history-as-of" }, t("history.as_of_heading")),
    form,
    asOf ? h("div", { class: "asof", role: "status" },
      t("history.as_of_banner", { name, time: when }), " ",
      link(pageUrl({ name, tag }), t("history.back_to_now"))) : null);
  try {
    const { data } = await get(tagsUrl, asOf ? { as_of: asOf } : {});
    section.append(table({
      caption: asOf ? t("history.tags_then", { name, time: when }) : t("history.tags_now", { name }),
      empty: asOf ? t("history.no_tags_then") : t("history.no_tags"),
      rows: data || [],
      columns: [
        { label: t("history.tag"), render: (row) => (row.tag === tag
          ? h("strong", { "aria-current": "true" }, row.tag)
          : link(pageUrl({ name, tag: row.tag, as_of: asOf }), row.tag)) },
        { label: t("history.digest"), render: (row) => digestCell(name, row.digest) },
      ],
    }));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) throw error;
    section.append(errorBox(error));
  }
}
