// Vulnerability scanning (system administrators): the scanner registrations (Harbor's
// /api/v2.0/scanners: add, edit, test, make default, delete; the built-in Portlog scanner shown
// as such), scanning everything (/system/scanAll…, /scans/all/metrics) and the system's CVE
// allowlist (/system/CVEAllowlist). Each section has its own address (?tab=).
import { h, link, mount, refusal, tabs } from "../dom.js";
import { t } from "../i18n.js";
import { here } from "./scanners/shared.js";
import { registrationsSection } from "./scanners/registrations.js";
import { scanAllSection } from "./scanners/scan_all.js";
import { systemAllowlistSection } from "./scanners/allowlist.js";

export const catalogs = ["scanners", "scanning"];
export const requiresLogin = true;

const SECTIONS = { scanners: registrationsSection, "scan-all": scanAllSection, allowlist: systemAllowlistSection };

export async function render(view, ctx) {
  if (!ctx.user?.sysadmin_flag) {
    mount(view, refusal(t("scanners.title"), t("scanners.admins_only"), link("/ui/projects", t("scanners.back_to_projects"))));
    return;
  }
  const wanted = ctx.params.get("tab");
  const tab = wanted in SECTIONS ? wanted : "scanners";
  const panel = h("section", { id: "scanning-panel", role: "tabpanel", "aria-labelledby": `tab-${tab}` });
  mount(view,
    h("h1", {}, t("scanners.title")),
    tabs({ label: t("scanners.sections"), selected: tab, href: (id) => here({ tab: id === "scanners" ? null : id }),
      controls: () => "scanning-panel", items: Object.keys(SECTIONS).map((id) => ({ id, label: t(`scanners.tab_${id.replace("-", "_")}`) })) }),
    panel);
  await SECTIONS[tab](panel, ctx);
}
