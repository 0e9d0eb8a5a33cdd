// What the scanning views share: Harbor's severities (gravest first), their badges, and an
// artifact's scan summary as the API's overview gives it (`with_scan_overview=true`:
// scan_overview {report media type: NativeReportSummary}; `with_sbom_overview`: sbom_overview).
// Catalog: "scanning".
import { badge, h } from "../../dom.js";
import { known, t } from "../../i18n.js";

export const SEVERITIES = ["Critical", "High", "Medium", "Low", "None", "Unknown"];
export const RUNNING = ["Pending", "Running"];
const STATUS_KINDS = { Pending: "run", Running: "run", Error: "bad", Stopped: "warn", Success: "ok" };

// A severity's rank for sorting: Critical 5 … Unknown 0 (Harbor ranks Unknown lowest).
export function severityRank(severity) {
  const index = SEVERITIES.indexOf(severity);
  return index < 0 ? 0 : SEVERITIES.length - 1 - index;
}

export function severityLabel(severity) {
  return known(`scanning.severity_${String(severity).toLowerCase()}`, severity || t("scanning.severity_unknown"));
}

export function severityBadge(severity, text) {
  const name = SEVERITIES.includes(severity) ? severity.toLowerCase() : "unknown";
  return h("span", { class: `badge sev sev-${name}` }, text ?? severityLabel(severity));
}

export function statusLabel(status) {
  return known(`scanning.status_${String(status).toLowerCase()}`, status);
}

export function statusBadge(status) {
  return badge(statusLabel(status), STATUS_KINDS[status] || "");
}

// The NativeReportSummary of an artifact's scan_overview (there is one report type), or null.
export function vulnerabilityOverview(artifact) {
  return Object.values(artifact?.scan_overview || {})[0] || null;
}

export function isScanning(overview) {
  return Boolean(overview && RUNNING.includes(overview.scan_status));
}

// Counts per severity, gravest first, leaving out those with none.
export function severityCounts(summary) {
  const counts = summary?.summary || {};
  return SEVERITIES.map((severity) => [severity, counts[severity] || 0]).filter(([, count]) => count > 0);
}

// A bar with one coloured part per severity, as wide as its share (decoration: the counts beside
// it say the same in words).
export function severityBar(summary) {
  const total = severityCounts(summary).reduce((sum, [, count]) => sum + count, 0);
  if (!total) return null;
  return h("span", { class: "sev-bar", "aria-hidden": "true" }, severityCounts(summary).map(([severity, count]) => {
    const part = h("span", { class: `sev-${severity.toLowerCase()}`, title: `${severityLabel(severity)}: ${count}` });
    part.style.width = `${(count / total) * 100}%`;  // through the CSSOM: the page's CSP forbids inline styles
    return part;
  }));
}

// The badges of the counts: "Critical 1", "High 2"…
export function severityChips(summary) {
  return h("span", { class: "sev-chips" }, severityCounts(summary).map(([severity, count]) =>
    severityBadge(severity, t("scanning.severity_count", { severity: severityLabel(severity), count }))));
}

// The summary cell of an artifact listing: not scanned, queued, scanning, failed, stopped, clean,
// or the bar and counts of what was found (with how many have a fix).
export function scanSummary(artifact) {
  const overview = vulnerabilityOverview(artifact);
  if (!overview) return h("span", { class: "muted" }, t("scanning.not_scanned"));
  const status = overview.scan_status;
  if (status !== "Success") {
    return h("span", { class: "scan-state" }, statusBadge(status),
      status === "Running" && overview.complete_percent ? ` ${overview.complete_percent}%` : null);
  }
  const summary = overview.summary || { total: 0, fixable: 0, summary: {} };
  if (!summary.total) return badge(t("scanning.no_vulnerabilities"), "ok");
  return h("span", { class: "scan-summary" },
    severityBar(summary),
    severityChips(summary),
    h("small", { class: "muted" }, t("scanning.total_fixable", { count: summary.total, fixable: summary.fixable })));
}
