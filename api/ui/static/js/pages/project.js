// One project (/ui/projects/<name>): its repositories (now, or as of a past moment from the
// event log), members, robot accounts, retention and immutability policies, webhooks, quota
// and settings, one ARIA tab each, shown only when the caller holds the permission to see it.
import { ApiError, get, harbor } from "../api.js";
import { badge, breadcrumbs, errorBox, h, mount, tabs } from "../dom.js";
import { t } from "../i18n.js";
import { permissions } from "../session.js";
import { setQuery } from "./project/shared.js";
import { drawRepositories } from "./project/repositories.js";
import { drawMembers } from "./project/members.js";
import { drawRobots } from "./project/robots.js";
import { drawPolicies } from "./project/policies.js";
import { drawWebhooks } from "./project/webhooks.js";
import { drawQuota } from "./project/quota.js";
import { drawSettings } from "./project/settings.js";

export const catalogs = ["project", "scanning", "restore"];

async function loadProject(name) {
  if (!/^\d+$/.test(name)) return (await get(harbor(`/projects/${encodeURIComponent(name)}`))).data;
  // An all-digit name would be taken for a project id in the path: look it up by name instead.
  const { data } = await get(harbor("/projects"), { q: `name=${name}` });
  const found = data.find((project) => project.name === name);
  if (!found) throw new ApiError(404, t("project.not_found", { name }));
  return found;
}

export async function render(view, ctx) {
  const name = ctx.match[0];
  const project = await loadProject(name);
  const perms = await permissions(project.project_id);
  const can = perms.can;
  const page = { ctx, project, can, name: project.name, id: project.project_id, user: ctx.user };

  const items = [
    { id: "repositories", label: t("project.tab_repositories"), shown: can("repository", "list"), draw: drawRepositories },
    { id: "members", label: t("project.tab_members"), shown: can("member", "list"), draw: drawMembers },
    { id: "robots", label: t("project.tab_robots"), shown: can("robot", "list"), draw: drawRobots },
    { id: "policies", label: t("project.tab_policies"),
      shown: can("tag-retention", "read") || can("immutable-tag", "list"), draw: drawPolicies },
    { id: "webhooks", label: t("project.tab_webhooks"), shown: can("notification-policy", "list"), draw: drawWebhooks },
    { id: "quota", label: t("project.tab_quota"), shown: can("project", "read"), draw: drawQuota },
    { id: "settings", label: t("project.tab_settings"),
      shown: can("project", "update") || can("project", "delete") || can("scanner", "create"), draw: drawSettings },
  ].filter((item) => item.shown);

  const wanted = ctx.params.get("tab");
  const selected = items.some((item) => item.id === wanted) ? wanted : items[0]?.id;
  const panels = Object.fromEntries(items.map((item) => [item.id, h("div", {
    role: "tabpanel", id: `panel-${item.id}`, "aria-labelledby": `tab-${item.id}`, tabindex: "0",
    class: "tab-panel", hidden: item.id !== selected,
  })]));
  let turn = 0;
  const show = (id) => {
    const item = items.find((candidate) => candidate.id === id);
    Object.entries(panels).forEach(([key, panel]) => { panel.hidden = key !== id; });
    const mine = ++turn;
    const body = h("div", {}, h("p", { class: "loading" }, t("common.loading")));
    mount(panels[id], body);
    // Each draw fills its own container: a slow answer for a tab left meanwhile lands nowhere.
    const redraw = () => show(id);
    item.draw(body, { ...page, redraw, current: () => mine === turn }).catch((error) => {
      if (error instanceof ApiError && error.status === 401 && !ctx.user) ctx.navigate(`/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
      else mount(body, errorBox(error));
    });
  };

  const heading = h("div", { class: "project-head" },
    h("h1", {}, project.name),
    h("span", { class: "project-badges" },
      badge(project.metadata?.public === "true" ? t("common.public") : t("common.private"),
        project.metadata?.public === "true" ? "ok" : ""),
      project.registry_id ? badge(t("project.proxy_cache"), "run") : null));
  mount(view,
    breadcrumbs(t("project.breadcrumbs"), ["/ui/projects", t("common.nav_projects")], project.name),
    heading,
    items.length
      ? [tabs({ label: t("project.sections", { name: project.name }), items, selected, class: "project-tabs", onSelect: (id) => {
        setQuery({ tab: id, as_of: null, q: null, page: null });
        show(id);
      } }), Object.values(panels)]
      : h("p", { class: "empty" }, t("project.nothing_visible")));
  if (selected) show(selected);
}
