// The artifact page's Vulnerabilities tab: the state of its scan (Scan / Rescan / Stop, followed
// live), the findings of its last report (GET …/additions/vulnerabilities) in a table sorted
// gravest first and filtered by severity, by whom and when the report was made; and the report
// that was known at a chosen moment (Portlog's `as_of`: "was it known to be vulnerable then?").
// An index has no report of its own: its platforms' are listed instead.
import { get } from "../../api.js";
import {
  checkbox, errorBox, expandable, field, formatTime, formatTimeText, h, isoToLocal, link, localToIso, mount, select,
  shortDigest, sortableTable,
} from "../../dom.js";
import { t } from "../../i18n.js";
import { artifactUrl } from "../repository.js";
import { artifactApi, scanState } from "./scan_state.js";
import {
  isScanning, scanSummary, SEVERITIES, severityBadge, severityChips, severityLabel, severityRank, vulnerabilityOverview,
} from "./summary.js";

const PAGE_SIZE = 50;

export async function drawVulnerabilities(panel, { ctx, name, artifact, manifest, may }) {
  const asOf = ctx.params.get("as_of") || "";
  const report = h("div", { class: "vulnerability-report" });
  const state = scanState(ctx, { name, artifact, may, scanType: "vulnerability",
    onStarted: () => { if (!asOf) waiting(report); },
    onFinished: (now) => (manifest.manifests ? drawPlatforms(report, name, manifest) : drawReport(report, name, now, "")) });
  mount(panel, h("h2", { class: "visually-hidden" }, t("artifact.tab_vulnerabilities")), state.element,
    manifest.manifests ? null : asOfForm(ctx, name, artifact.digest, asOf), report);
  if (manifest.manifests) await drawPlatforms(report, name, manifest);
  else await drawReport(report, name, artifact, asOf);
  state.start();
}

// The moment chooser; with a moment chosen, a banner that says so and leads back to now.
function asOfForm(ctx, name, digest, asOf) {
  const input = h("input", { type: "datetime-local", step: "1", name: "as_of", value: isoToLocal(asOf),
    max: isoToLocal(new Date().toISOString()) });
  const form = h("form", { class: "toolbar as-of-form", "aria-label": t("scanning.as_of_form") },
    field(t("scanning.as_of_label"), input, t("scanning.as_of_hint")),
    h("button", { type: "submit" }, t("scanning.as_of_show")));
  const here = (moment) => `${artifactUrl(name, digest, "vulnerabilities")}${moment ? `&${new URLSearchParams({ as_of: moment })}` : ""}`;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.navigate(here(localToIso(input.value)));
  });
  return [form, asOf ? h("div", { class: "asof", role: "status" },
    t("scanning.as_of_banner", { time: formatTimeText(asOf) }), " ", link(here(""), t("scanning.back_to_now"))) : null];
}

async function drawReport(area, name, artifact, asOf) {
  mount(area, h("p", { class: "loading" }, t("common.loading")));
  let found;
  try {
    const { data } = await get(`${artifactApi(name, artifact.digest)}/additions/vulnerabilities`, asOf ? { as_of: asOf } : {});
    found = Object.values(data || {})[0];
  } catch (error) {
    mount(area, errorBox(error));
    return;
  }
  if (!found) {
    mount(area, h("p", { class: "empty" }, asOf ? t("scanning.none_as_of", { time: formatTimeText(asOf) }) : t("scanning.no_report")));
    if (!asOf && isScanning(vulnerabilityOverview(artifact))) waiting(area);
    return;
  }
  const findings = (found.vulnerabilities || []).map((v) => ({ ...v, severity: v.severity || "Unknown" }));
  const counts = { total: findings.length, fixable: findings.filter((v) => v.fix_version).length,
    summary: Object.fromEntries(SEVERITIES.map((s) => [s, findings.filter((v) => v.severity === s).length])) };
  const scanner = found.scanner || {};
  const list = h("div");
  const severity = select([["", t("scanning.all_severities")],
    ...SEVERITIES.filter((s) => counts.summary[s]).map((s) => [s, severityLabel(s)])], { name: "severity" });
  const fixable = checkbox(t("scanning.fixable_only"), { name: "fixable" });
  const filter = () => {
    const rows = findings.filter((v) => (!severity.value || v.severity === severity.value) && (!fixable.input.checked || v.fix_version));
    mount(list, findingsTable(rows, findings.length));
  };
  severity.addEventListener("change", filter);
  fixable.input.addEventListener("change", filter);
  mount(area,
    h("p", { class: "report-by muted" }, t("scanning.report_by", {
      scanner: [scanner.name, scanner.version].filter(Boolean).join(" ") || "—", vendor: scanner.vendor || "—",
      time: formatTimeText(found.generated_at) })),
    findings.length ? [
      h("div", { class: "report-summary" }, severityChips(counts), " ",
        h("span", { class: "muted" }, t("scanning.total_fixable", { count: counts.total, fixable: counts.fixable }))),
      h("div", { class: "toolbar" }, field(t("scanning.severity"), severity), fixable.element),
    ] : null,
    list);
  filter();
}

// No report yet, and the first scan under way: say that its findings come here.
function waiting(area) {
  const empty = area.querySelector("p.empty");
  if (empty) mount(empty, t("scanning.first_scan_running"));
}

function findingsTable(rows, total) {
  return sortableTable({
    caption: t("scanning.findings_caption", { count: rows.length, total }),
    empty: total ? t("scanning.none_matching") : t("scanning.clean"),
    rows,
    pageSize: PAGE_SIZE,
    initial: { column: 4, descending: true },
    columns: [
      { label: t("scanning.cve"), class: "nowrap", sort: (v) => v.id, render: (v) => [cveLink(v),
        h("div", { class: "show-narrow" }, severityBadge(v.severity))] },
      { label: t("scanning.package"), sort: (v) => v.package, render: (v) => [
        h("span", { class: "package-name" }, v.package || "—"),
        // On a phone the versions and the description go under the package (their columns drop out).
        h("small", { class: "show-narrow versions" }, `${v.version || "—"} → ${v.fix_version || t("scanning.no_fix")}`),
        h("small", { class: "show-narrow" }, expandable(v.description, 90))] },
      { label: t("scanning.installed"), class: "version hide-narrow", sort: (v) => v.version, render: (v) => v.version || "—" },
      { label: t("scanning.fixed"), class: "version hide-narrow", sort: (v) => v.fix_version || "",
        render: (v) => v.fix_version || h("span", { class: "muted" }, t("scanning.no_fix")) },
      { label: t("scanning.severity"), class: "nowrap hide-narrow", descendingFirst: true,
        sort: (v) => severityRank(v.severity) * 100 + (v.preferred_cvss?.score_v3 ?? 0),
        render: (v) => [severityBadge(v.severity), v.preferred_cvss?.score_v3 != null
          ? h("small", { class: "block muted" }, t("scanning.cvss", { score: v.preferred_cvss.score_v3 })) : null] },
      { label: t("scanning.description"), class: "description hide-narrow", render: (v) => expandable(v.description, 110) },
    ],
  });
}

// The id, linked to the advisory's first link (an http(s) one only).
function cveLink(v) {
  const href = (v.links || []).find((url) => /^https?:\/\//i.test(url));
  return href ? h("a", { href, target: "_blank", rel: "noopener noreferrer", class: "cve" }, v.id) : h("span", { class: "cve" }, v.id);
}

// An index: each platform's image is scanned on its own; their summaries, linking to their reports.
async function drawPlatforms(area, name, manifest) {
  const children = await Promise.all(manifest.manifests.map(async (child) => {
    try {
      return { child, artifact: (await get(artifactApi(name, child.digest), { with_scan_overview: "true" })).data };
    } catch {
      return { child, artifact: null };
    }
  }));
  mount(area, h("p", { class: "hint muted" }, t("scanning.index_hint")), sortableTable({
    caption: t("scanning.platforms_caption", { count: children.length }),
    rows: children,
    columns: [
      { label: t("artifact.platform"), sort: ({ child }) => platformOf(child), render: ({ child }) => platformOf(child) },
      { label: t("artifact.digest"), class: "mono", render: ({ child }) => link(artifactUrl(name, child.digest, "vulnerabilities"), shortDigest(child.digest)) },
      { label: t("scanning.vulnerabilities"), render: ({ artifact }) => (artifact ? scanSummary(artifact) : "—") },
      { label: t("scanning.scanned"), class: "hide-narrow", render: ({ artifact }) => formatTime(Object.values(artifact?.scan_overview || {})[0]?.end_time) },
    ],
  }));
}

function platformOf(child) {
  return child.platform ? [child.platform.os, child.platform.architecture, child.platform.variant].filter(Boolean).join("/") : "—";
}
