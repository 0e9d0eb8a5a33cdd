// The state of an artifact's scan of one type (vulnerability or sbom) on its page, and what the
// caller may do about it: the status line (never scanned, queued, running, failed, stopped, done
// by which scanner when), Scan / Rescan and Stop, followed live while the scan is queued or runs.
import { get, harbor, repoPath, send } from "../../api.js";
import { formatTimeText, h, mount, notify, shortDigest } from "../../dom.js";
import { t } from "../../i18n.js";
import { livePoller } from "../../poll.js";
import { isScanning, statusBadge, vulnerabilityOverview } from "./summary.js";

const FLAGS = { vulnerability: "with_scan_overview", sbom: "with_sbom_overview" };
const RESOURCES = { vulnerability: "scan", sbom: "sbom" };

export function artifactApi(name, digest) {
  return harbor(`${repoPath(name)}/artifacts/${encodeURIComponent(digest)}`);
}

export function overviewOf(artifact, scanType) {
  return scanType === "sbom" ? artifact.sbom_overview || null : vulnerabilityOverview(artifact);
}

// {element, start()}: start() arms the polling once the page has drawn. onStarted() runs when a
// scan is requested here; onFinished(artifact) when a scan followed here ends (the report to show
// has changed).
export function scanState(ctx, { name, artifact, may, scanType, onStarted = () => {}, onFinished }) {
  const element = h("div", { class: "scan-state-card" });
  const problem = h("div");
  const resource = RESOURCES[scanType];
  const url = artifactApi(name, artifact.digest);
  let last = overviewOf(artifact, scanType);

  const draw = (overview) => {
    const running = isScanning(overview);
    mount(element, h("div", { class: "scan-status", role: "status" }, describe(overview, scanType, name, artifact.digest)),
      h("div", { class: "row-actions" },
        may.can(resource, "create") ? h("button", { type: "button", class: overview ? null : "primary", disabled: running,
          onclick: () => start() }, t(overview ? `scanning.again_${scanType}` : `scanning.start_${scanType}`)) : null,
        running && may.can(resource, "stop") ? h("button", { type: "button", class: "danger", onclick: () => stop() },
          t("scanning.stop")) : null),
      problem);
    return running;
  };
  const poller = livePoller(ctx, {
    load: () => get(url, { [FLAGS[scanType]]: "true" }),
    draw: ({ data }) => {
      const overview = overviewOf(data, scanType);
      const ended = isScanning(last) && !isScanning(overview);
      last = overview;
      if (ended) onFinished(data);
      return draw(overview);
    },
    problem,
  });
  const act = async (path, message, then = () => {}) => {
    mount(problem);
    try {
      await send("POST", `${url}${path}`, { scan_type: scanType });
      notify(t(message, { name: `${name}@${shortDigest(artifact.digest)}` }));
      then();
      await poller.now();
    } catch (error) {
      notify(error.message, "error");
    }
  };
  const start = () => act("/scan", scanType === "sbom" ? "scanning.sbom_requested" : "scanning.scan_requested", onStarted);
  const stop = () => act("/scan/stop", "scanning.scan_stopping");
  draw(last);
  return { element, start: () => poller.schedule(isScanning(last)) };
}

function describe(overview, scanType, name, digest) {
  if (!overview) return h("span", { class: "muted" }, t(`scanning.never_${scanType}`));
  const status = overview.scan_status;
  const scanner = [overview.scanner?.name, overview.scanner?.version].filter(Boolean).join(" ");
  const text = {
    Pending: () => t("scanning.queued_since", { time: formatTimeText(overview.start_time) }),
    Running: () => t("scanning.running_since", { time: formatTimeText(overview.start_time) }),
    Success: () => t(`scanning.done_${scanType}`, { scanner, time: formatTimeText(overview.end_time) }),
    Error: () => t("scanning.failed_at", { time: formatTimeText(overview.end_time) }),
    Stopped: () => t("scanning.stopped_at", { time: formatTimeText(overview.end_time) }),
  }[status];
  const log = ["Error", "Stopped"].includes(status) && overview.report_id && !overview.report_id.includes(",")
    ? h("a", { href: `${artifactApi(name, digest)}/scan/${encodeURIComponent(overview.report_id)}/log`, target: "_blank", rel: "noopener" },
      t("scanning.scan_log"))
    : null;
  return [statusBadge(status), " ", text ? text() : status, log ? [" ", log] : null];
}
