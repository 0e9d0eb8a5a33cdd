// The scanning page's section: scan every image of every project with its project's scanner —
// now ("Scan now", Harbor's POST /system/scanAll/schedule with a Manual schedule), on a schedule
// (GET, POST or PUT of the same path), stop (POST /system/scanAll/stop) — and how the latest run
// stands (GET /scans/all/metrics), followed every 2 s while it runs.
import { get, harbor, send } from "../../api.js";
import { badge, confirmDialog, errorBox, field, formatTime, formDialog, h, mount, notify, select } from "../../dom.js";
import { known, t } from "../../i18n.js";
import { livePoller } from "../../poll.js";
import { statusBadge } from "../scanning/summary.js";
import { fitted } from "./shared.js";

const SCHEDULE_TYPES = ["None", "Hourly", "Daily", "Weekly", "Custom"];
const STATUSES = ["Success", "Error", "Stopped", "Running", "Pending"];

export async function scanAllSection(panel, ctx) {
  const problem = h("div");
  const progress = h("div");
  const schedule = h("div");
  mount(panel,
    h("p", { class: "intro" }, t("scanners.scan_all_intro")),
    problem,
    h("section", { "aria-labelledby": "scan-all-latest" }, h("h2", { id: "scan-all-latest" }, t("scanners.latest_run")), progress),
    h("section", { "aria-labelledby": "scan-all-schedule" }, h("h2", { id: "scan-all-schedule" }, t("scanners.schedule")), schedule));
  let poller = null;
  const actions = {
    scanNow: () => act(problem, () => send("POST", harbor("/system/scanAll/schedule"), { schedule: { type: "Manual" } }),
      t("scanners.scan_all_started"), () => poller.now()),
    stop: async () => {
      if (!await confirmDialog(t("scanners.stop_confirm"), t("scanners.stop"))) return;
      await act(problem, () => send("POST", harbor("/system/scanAll/stop")), t("scanners.scan_all_stopping"), () => poller.now());
    },
  };
  const load = () => get(harbor("/scans/all/metrics"));
  const draw = ({ data }) => drawProgress(progress, data, actions);
  poller = livePoller(ctx, { load, draw, problem });
  const [first] = await Promise.all([load().catch((error) => error), drawSchedule(schedule, ctx)]);
  if (first instanceof Error) {
    mount(problem, errorBox(first));  // 412 without a default scanner: says so
    return;
  }
  poller.schedule(draw(first));
}

async function act(problem, action, done, after) {
  mount(problem);
  try {
    await action();
    notify(done);
    await after();
  } catch (error) {
    mount(problem, errorBox(error));
  }
}

function drawProgress(area, stats, { scanNow, stop }) {
  const running = Boolean(stats.ongoing);
  const counts = stats.metrics || {};
  mount(area,
    stats.total ? h("dl", { class: "facts" },
      h("dt", {}, t("common.status")), h("dd", { class: "text" },
        running ? badge(t("scanners.run_running"), "run") : badge(t("scanners.run_finished"), "ok"), " ",
        stats.trigger ? t("scanners.trigger", { trigger: known(`scanners.trigger_${stats.trigger.toLowerCase()}`, stats.trigger) }) : null),
      h("dt", {}, t("scanners.progress")), h("dd", { class: "text" },
        h("progress", { max: String(stats.total), value: String(stats.completed), "aria-label": t("scanners.progress") }), " ",
        t("scanners.completed_of", { completed: stats.completed, count: stats.total })),
      h("dt", {}, t("scanners.results")), h("dd", { class: "text scan-all-counts" },
        STATUSES.filter((status) => counts[status]).map((status) => [statusBadge(status), ` ${counts[status]} `])))
      : h("p", { class: "empty" }, t("scanners.no_run")),
    h("div", { class: "toolbar" },
      h("button", { type: "button", class: "primary", disabled: running, onclick: scanNow }, t("scanners.scan_now")),
      running ? h("button", { type: "button", class: "danger", onclick: stop }, t("scanners.stop")) : null),
    running ? h("p", { class: "live-note muted" }, t("scanners.live")) : null);
  return running;
}

async function drawSchedule(area, ctx) {
  const { data } = await get(harbor("/system/scanAll/schedule"));
  const current = data?.schedule ?? { type: "None" };
  const kind = SCHEDULE_TYPES.includes(current.type) ? current.type : "None";
  mount(area,
    h("dl", { class: "facts" },
      h("dt", {}, t("scanners.schedule_type")), h("dd", { class: "text" }, t(`scanners.type_${kind}`),
        current.cron ? [" ", h("code", {}, current.cron)] : null),
      kind === "None" ? null : [h("dt", {}, t("scanners.next_run")), h("dd", {}, formatTime(current.next_scheduled_time))]),
    kind === "None" ? h("p", { class: "muted" }, t("scanners.no_schedule")) : null,
    h("div", {}, h("button", { type: "button", onclick: () => scheduleDialog(ctx, kind, current) }, t("scanners.edit_schedule"))));
}

function scheduleDialog(ctx, kind, current) {
  const type = select(SCHEDULE_TYPES.map((name) => [name, t(`scanners.type_${name}`)]), { name: "type", value: kind });
  const cron = h("input", { type: "text", name: "cron", class: "mono", autocomplete: "off", value: current.cron ?? "",
    placeholder: "0 0 3 * * *" });
  const cronField = field(t("scanners.cron"), cron, t("scanners.cron_hint"));
  const sync = () => {
    cronField.hidden = type.value !== "Custom";
    cron.required = type.value === "Custom";
  };
  type.addEventListener("change", sync);
  sync();
  fitted(formDialog(t("scanners.edit_schedule"), () => h("div", { class: "fields" },
    field(t("scanners.schedule_type"), type, t("scanners.schedule_hint")), cronField),
  async () => {
    const schedule = { type: type.value };
    if (type.value === "Custom") schedule.cron = cron.value.trim();
    // Harbor creates a schedule with POST and changes one with PUT (a POST over one is refused).
    await send(kind === "None" ? "POST" : "PUT", harbor("/system/scanAll/schedule"), { schedule });
    notify(t("scanners.schedule_saved"));
    ctx.redraw();
  }));
}
