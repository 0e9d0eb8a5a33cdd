// The project settings' scanning part (project administrators): scan on push and the pull
// policies (Harbor's project metadata: auto_scan, prevent_vul with its severity,
// enable_content_trust_cosign, enable_content_trust), the CVE allowlist the policy uses (the
// system's, or the project's own `cve_allowlist`) and the project's scanner
// (/projects/{p}/scanner, chosen among /scanner/candidates). Each part saves on its own; the
// API's messages (an invalid CVE id, an expiry that is no date) show where it was saved.
import { ApiError, get, harbor, send } from "../../api.js";
import { badge, checkbox, errorBox, field, h, mount, notify, select } from "../../dom.js";
import { t } from "../../i18n.js";
import { allowlistEditor } from "../scanning/allowlist.js";
import { severityLabel } from "../scanning/summary.js";
import { attempt } from "./shared.js";

const THRESHOLDS = ["critical", "high", "medium", "low", "none"];

export async function scanningSections(page) {
  const sections = [];
  if (page.can("project", "update")) {
    const system = await get(harbor("/system/CVEAllowlist")).then(({ data }) => data, () => null);
    sections.push(policyForm(page), allowlistSection(page, system));
  }
  if (page.can("scanner", "create")) sections.push(await scannerSection(page));
  return sections;
}

function flag(page, key) {
  return page.project.metadata?.[key] === "true";
}

function policyForm(page) {
  const problem = h("div");
  const autoScan = checkbox(t("scanning.auto_scan"), { name: "auto_scan", checked: flag(page, "auto_scan") });
  const prevent = checkbox(t("scanning.prevent_vul"), { name: "prevent_vul", checked: flag(page, "prevent_vul") });
  const severity = select(THRESHOLDS.map((value) => [value, severityLabel(value[0].toUpperCase() + value.slice(1))]),
    { name: "severity", value: page.project.metadata?.severity || "low", disabled: !flag(page, "prevent_vul") });
  prevent.input.addEventListener("change", () => { severity.disabled = !prevent.input.checked; });
  const cosign = checkbox(t("scanning.require_cosign"), { name: "enable_content_trust_cosign", checked: flag(page, "enable_content_trust_cosign") });
  const notation = checkbox(t("scanning.require_notation"), { name: "enable_content_trust", checked: flag(page, "enable_content_trust") });
  const form = h("form", { class: "card scanning-policy", "aria-labelledby": "scan-policy-title" },
    h("h2", { id: "scan-policy-title" }, t("scanning.policy_title")),
    problem,
    autoScan.element,
    h("p", { class: "hint" }, t("scanning.auto_scan_hint")),
    h("fieldset", {},
      h("legend", {}, t("scanning.deployment_security")),
      prevent.element,
      field(t("scanning.threshold"), severity, t("scanning.threshold_hint")),
      cosign.element,
      notation.element,
      page.project.registry_id ? h("p", { class: "hint" }, t("scanning.notation_proxy_hint")) : null),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("common.save"))));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(problem, async () => {
      const text = (input) => (input.checked ? "true" : "false");
      await send("PUT", harbor(`/projects/${page.id}`), { metadata: {
        auto_scan: text(autoScan.input), prevent_vul: text(prevent.input), severity: severity.value,
        enable_content_trust_cosign: text(cosign.input), enable_content_trust: text(notation.input) } });
      notify(t("scanning.policy_saved"));
      page.ctx.redraw();
    });
  });
  return form;
}

function allowlistSection(page, system) {
  const reuse = page.project.metadata?.reuse_sys_cve_allowlist !== "false";
  const body = h("div");
  const problem = h("div");
  const choice = (value, label) => h("label", { class: "check" },
    h("input", { type: "radio", name: "allowlist_source", value, checked: reuse === (value === "system"), onchange: () => show(value) }), label);
  const saveProject = (list) => send("PUT", harbor(`/projects/${page.id}`), {
    metadata: { reuse_sys_cve_allowlist: "false" },
    cve_allowlist: { project_id: page.id, items: list.items.map((cve_id) => ({ cve_id })), expires_at: list.expires_at } });
  const show = (source) => {
    mount(problem);
    if (source === "project") {
      mount(body, allowlistEditor({ allowlist: page.project.cve_allowlist, editable: true,
        caption: (count) => t("scanning.project_allowlist_caption", { count }),
        save: async (list) => {
          await saveProject(list);
          page.ctx.redraw();
        } }));
      return;
    }
    mount(body,
      system ? allowlistEditor({ allowlist: system, editable: false, caption: (count) => t("scanning.system_allowlist_caption", { count }) })
        : h("p", { class: "muted" }, t("scanning.system_allowlist_hidden")),
      reuse ? null : h("div", { class: "toolbar" }, h("button", { type: "button", class: "primary", onclick: () => attempt(problem, async () => {
        await send("PUT", harbor(`/projects/${page.id}`), { metadata: { reuse_sys_cve_allowlist: "true" } });
        notify(t("scanning.allowlist_saved"));
        page.ctx.redraw();
      }) }, t("scanning.use_system_allowlist"))));
  };
  show(reuse ? "system" : "project");
  return h("section", { class: "card", "aria-labelledby": "allowlist-title" },
    h("h2", { id: "allowlist-title" }, t("scanning.allowlist_title")),
    h("p", { class: "hint" }, t("scanning.allowlist_intro")),
    h("fieldset", { class: "allowlist-source" }, h("legend", {}, t("scanning.allowlist_source")),
      choice("system", t("scanning.source_system")), choice("project", t("scanning.source_project"))),
    problem, body);
}

async function scannerSection(page) {
  const problem = h("div");
  let current = null;
  try {
    current = (await get(harbor(`/projects/${page.id}/scanner`))).data;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;  // 404: no scanner at all
  }
  const { data: candidates } = await get(harbor(`/projects/${page.id}/scanner/candidates`), { page_size: 100, sort: "name" });
  const usable = candidates.filter((c) => !c.disabled);
  const choice = select(usable.map((c) => [c.uuid, c.is_default ? t("scanning.scanner_default", { name: c.name }) : c.name]),
    { name: "scanner", value: current?.uuid ?? "" });
  const save = () => attempt(problem, async () => {
    await send("PUT", harbor(`/projects/${page.id}/scanner`), { uuid: choice.value });
    notify(t("scanning.scanner_saved", { name: usable.find((c) => c.uuid === choice.value)?.name ?? "" }));
    page.ctx.redraw();
  });
  return h("section", { class: "card scanner-choice", "aria-labelledby": "scanner-title" },
    h("h2", { id: "scanner-title" }, t("scanning.scanner_title")),
    problem,
    current ? h("p", {}, t("scanning.scanner_current", { name: current.name }), " ",
      current.health === "healthy" ? badge(t("scanning.scanner_healthy"), "ok") : badge(t("scanning.scanner_unhealthy"), "bad"),
      current.adapter ? h("small", { class: "block" }, [current.adapter, current.version].filter(Boolean).join(" ")) : null)
      : errorBox(new Error(t("scanning.scanner_none"))),
    usable.length ? [
      field(t("scanning.scanner_choice"), choice, t("scanning.scanner_choice_hint")),
      h("div", { class: "actions" }, h("button", { type: "button", class: "primary", onclick: save }, t("scanning.save_scanner")))]
      : null);
}
