// Replication (system administrators): registry endpoints, policies, and executions with their
// tasks, through Harbor's API (/api/v2.0/registries, /api/v2.0/replication/…). The section and
// the execution on screen live in the query string (?tab=executions&execution=3), so every view
// is linkable and the back button works. Executions in progress are polled every 2 s.
import { h, link, mount, refusal, tabs } from "../dom.js";
import { t } from "../i18n.js";
import { here } from "./replication/shared.js";
import { endpointsSection } from "./replication/endpoints.js";
import { policiesSection } from "./replication/policies.js";
import { executionsSection } from "./replication/executions.js";

export const catalogs = ["replication"];
export const requiresLogin = true;

const TABS = ["endpoints", "policies", "executions"];
const SECTIONS = { endpoints: endpointsSection, policies: policiesSection, executions: executionsSection };

export async function render(view, ctx) {
  if (!ctx.user?.sysadmin_flag) {
    mount(view, refusal(t("replication.title"), t("replication.admins_only"),
      link("/ui/projects", t("replication.back_to_projects"))));
    return;
  }
  const tab = TABS.includes(ctx.params.get("tab")) ? ctx.params.get("tab") : TABS[0];
  const panel = h("section", { id: "replication-panel", role: "tabpanel", "aria-labelledby": `tab-${tab}` });
  // Tabs that are links: each section has its own address.
  const list = tabs({ label: t("replication.sections"), selected: tab, href: (name) => here({ tab: name }),
    controls: () => "replication-panel", items: TABS.map((name) => ({ id: name, label: t(`replication.tab_${name}`) })) });
  mount(view, h("h1", {}, t("replication.title")), list, panel);
  await SECTIONS[tab](panel, ctx);
}
