import { get, harbor, send } from "../api.js";
import { badge, checkbox, field, formatBytes, formDialog, formatTime, h, link, meter, mount, notify, pager, table } from "../dom.js";
import { t } from "../i18n.js";

export const catalogs = ["projects"];
const PAGE_SIZE = 15;

export async function render(view, ctx) {
  const name = ctx.params.get("name") || "";
  const page = Number(ctx.params.get("page") || 1);
  const search = h("input", { type: "search", name: "name", value: name, placeholder: t("projects.search_placeholder") });
  const list = h("div");
  const form = h("form", { class: "toolbar", role: "search" },
    field(t("projects.search_label"), search),
    h("button", { type: "submit" }, t("common.search")),
    h("span", { class: "grow" }),
    ctx.user ? h("button", { type: "button", class: "primary", onclick: () => createProject(ctx) }, t("projects.new")) : null);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.navigate(`/ui/projects?name=${encodeURIComponent(search.value.trim())}`);
  });
  mount(view, h("h1", {}, t("projects.title")), form, list);
  const { data, total } = await get(harbor("/projects"), { name, page, page_size: PAGE_SIZE, sort: "name" });
  const usage = new Map(data.map((project) => [project.name, h("span", {}, "…")]));
  mount(list,
    table({
      caption: t("projects.caption", { total }),
      empty: name ? t("projects.none_matching", { name }) : t("projects.none"),
      rows: data,
      columns: [
        { label: t("common.name"), render: (p) => link(`/ui/projects/${encodeURIComponent(p.name)}`, p.name) },
        { label: t("projects.access"), render: (p) => badge(p.metadata.public === "true" ? t("common.public") : t("common.private")) },
        { label: t("projects.kind"), class: "hide-narrow", render: (p) => (p.registry_id ? t("projects.proxy_cache") : t("projects.regular")) },
        { label: t("projects.repositories"), render: (p) => String(p.repo_count) },
        { label: t("projects.quota"), render: (p) => usage.get(p.name) },
        { label: t("common.created"), class: "hide-narrow", render: (p) => formatTime(p.creation_time) },
      ],
    }),
    pager({ total, page, size: PAGE_SIZE, onChange: (next) => ctx.navigate(`/ui/projects?name=${encodeURIComponent(name)}&page=${next}`) }));
  await Promise.all(data.map((project) => fillUsage(project, usage.get(project.name))));
}

async function fillUsage(project, cell) {
  try {
    const { data } = await get(harbor(`/projects/${project.project_id}/summary`));
    const used = data.quota.used.storage, limit = data.quota.hard.storage;
    const text = limit > 0 ? t("projects.usage_of", { used: formatBytes(used), limit: formatBytes(limit) })
      : t("projects.usage_unlimited", { used: formatBytes(used) });
    mount(cell, h("span", {}, text), meter(used, limit, t("projects.quota_used", { project: project.name })));
  } catch (error) {
    mount(cell, "—");
  }
}

function createProject(ctx) {
  const name = h("input", { type: "text", name: "project_name", required: true, pattern: "[a-z0-9]+(?:[._-][a-z0-9]+)*", autocomplete: "off" });
  const isPublic = checkbox(t("projects.make_public"), { name: "public" });
  const quota = h("input", { type: "number", name: "quota_gib", min: "0", step: "any" });
  formDialog(t("projects.new"), () => h("div", { class: "fields" },
    field(t("projects.name_label"), name, t("projects.name_hint")),
    isPublic.element,
    field(t("projects.quota_label"), quota, t("projects.quota_hint"))),
  async () => {
    const body = { project_name: name.value.trim(), metadata: { public: isPublic.input.checked ? "true" : "false" } };
    if (quota.value) body.storage_limit = Math.round(Number(quota.value) * 1024 ** 3);
    await send("POST", harbor("/projects"), body);
    notify(t("projects.created", { name: body.project_name }));
    ctx.navigate(`/ui/projects/${encodeURIComponent(body.project_name)}`);
  }, t("common.create"));
}
