// Garbage collection (system administrators): start a run (Harbor's POST
// /api/v2.0/system/gc/schedule with a Manual schedule), the schedule (GET/PUT of the same path),
// the history of runs with what each freed (the management API's /api/v1/gc/runs, whose JSON
// carries the counts that Harbor's /system/gc history leaves out) and a run's log
// (/api/v2.0/system/gc/{id}/log). The run whose log is open (by id) and the page of the history
// live in the query string (?run=34&page=2); people read a run's number (1, 2, 3… in the order
// they started), not its id (a log position). Runs in progress are polled every 2 s.
import { get, getText, harbor, send, v1, withParams } from "../api.js";
import {
  badge, checkbox, confirmDialog, errorBox, field, formatBytes, formatTime, formDialog, h, link, mount, notify,
  pager, refusal, remount, select, table,
} from "../dom.js";
import { known, t } from "../i18n.js";
import { livePoller } from "../poll.js";

export const catalogs = ["gc"];
export const requiresLogin = true;

const PAGE_SIZE = 15;
const STATUS_KINDS = { running: "run", succeeded: "ok", failed: "bad" };
const SCHEDULE_TYPES = ["None", "Hourly", "Daily", "Weekly", "Custom"];

export async function render(view, ctx) {
  if (!ctx.user?.sysadmin_flag) {
    mount(view, refusal(t("gc.title"), t("gc.admins_only"), link("/ui/projects", t("gc.back_to_projects"))));
    return;
  }
  const page = Math.max(1, Number.parseInt(ctx.params.get("page") || "1", 10) || 1);
  const opened = ctx.params.get("run");
  const problem = h("div");
  const schedule = h("div");
  const logArea = h("div");
  const history = h("div");
  const live = h("p", { class: "live-note muted" });

  mount(view,
    h("h1", {}, t("gc.title")),
    h("p", { class: "intro" }, t("gc.intro")),
    problem,
    h("section", { "aria-labelledby": "gc-now" },
      h("h2", { id: "gc-now" }, t("gc.run_now")), runNowForm(ctx, problem)),
    h("section", { "aria-labelledby": "gc-schedule" },
      h("h2", { id: "gc-schedule" }, t("gc.schedule")), schedule),
    h("section", { "aria-labelledby": "gc-history" },
      h("h2", { id: "gc-history" }, t("gc.history")), logArea, live, history));

  const seen = new Map();  // run id -> status last drawn, to announce the runs that end
  const load = () => Promise.all([
    get(v1("/gc/runs"), { page, page_size: PAGE_SIZE }),
    opened ? getText(harbor(`/system/gc/${encodeURIComponent(opened)}/log`)) : null,
    opened ? get(v1(`/gc/runs/${encodeURIComponent(opened)}`)) : null,
  ]);
  const draw = ([{ data, total }, log, shown]) => {
    for (const run of data) {
      if (seen.get(run.id) === "running" && run.status !== "running") {
        notify(t("gc.run_ended", { number: run.number, status: statusLabel(run.status) }));
      }
      seen.set(run.id, run.status);
    }
    const running = data.some((run) => run.status === "running");
    mount(live, running ? t("gc.live") : null);
    if (log !== null) drawLog(logArea, shown.data.number, log, page);
    remount(history,
      table({
        caption: t("gc.runs_caption", { count: total }),
        empty: t("gc.no_runs"),
        rows: data,
        columns: runColumns(page, opened),
      }),
      pager({ total, page, size: PAGE_SIZE, onChange: (next) => ctx.navigate(address({ page: next, run: opened })) }));
    return running;
  };

  const [first] = await Promise.all([load(), drawSchedule(schedule, ctx)]);
  livePoller(ctx, { load, draw, problem, stopOn: [401, 403, 404] }).schedule(draw(first));
}

// The page's address: the history's page (the first one left out) and the run whose log is open.
function address({ page, run }) {
  return withParams("/ui/gc", { page: page > 1 ? page : null, run: run || null });
}

function statusLabel(status) {
  return known(`gc.status_${status}`, status);
}

function triggerLabel(trigger) {
  return known(`gc.trigger_${trigger}`, trigger);
}

function runColumns(page, opened) {
  return [
    { label: t("gc.run"), render: (run) => String(run.number) },
    { label: t("common.status"), render: (run) => h("div", { class: "status-cell" },
      badge(statusLabel(run.status), STATUS_KINDS[run.status] ?? ""),
      run.dry_run ? h("span", { class: "show-narrow" }, badge(t("gc.dry_run_badge"), "warn")) : null,
      run.error ? h("small", { class: "wrap gc-error" }, run.error) : null) },
    { label: t("gc.trigger"), class: "hide-narrow", render: (run) => h("span", {}, triggerLabel(run.trigger),
      run.actor ? h("small", { class: "block muted" }, t("gc.by", { actor: run.actor })) : null) },
    { label: t("gc.dry_run"), class: "hide-narrow",
      render: (run) => (run.dry_run ? badge(t("gc.dry_run_badge"), "warn") : t("common.no")) },
    { label: t("gc.delete_untagged"), class: "hide-narrow",
      render: (run) => (run.delete_untagged ? t("gc.untagged_count", { count: run.untagged ?? 0 }) : t("common.no")) },
    { label: t("gc.freed"), render: (run) => h("span", {}, t(run.dry_run ? "gc.would_free" : "gc.freed_value", {
      count: run.blobs ?? 0, bytes: formatBytes(run.bytes ?? 0) })) },
    { label: t("gc.started"), class: "hide-narrow", render: (run) => formatTime(run.started_at) },
    { label: t("gc.finished"), class: "hide-narrow", render: (run) => formatTime(run.finished_at) },
    { label: t("gc.log"), render: (run) => (String(run.id) === opened
      ? h("span", { "aria-current": "true" }, t("gc.log_shown"))
      : h("a", { href: address({ page, run: run.id }), "data-link": true, "data-key": `log-${run.id}`,
        "aria-label": t("gc.log_of", { number: run.number }) }, t("gc.log"))) },
  ];
}

function drawLog(area, number, text, page) {
  mount(area, h("section", { class: "card gc-log", "aria-labelledby": "gc-log-title" },
    h("div", { class: "toolbar" },
      h("h3", { id: "gc-log-title" }, t("gc.log_title", { number })),
      h("span", { class: "grow" }),
      link(address({ page }), t("gc.close_log"))),
    h("pre", { class: "log", tabindex: "0", "aria-label": t("gc.log_title", { number }) },
      typeof text === "string" && text ? text : t("gc.log_empty"))));
}

function runNowForm(ctx, problem) {
  const dryRun = checkbox(t("gc.dry_run_label"), { name: "dry_run" });
  const untagged = checkbox(t("gc.delete_untagged_label"), { name: "delete_untagged" });
  const form = h("form", { class: "gc-run" },
    dryRun.element, untagged.element,
    h("p", { class: "muted hint" }, t("gc.grace_hint")),
    h("div", {}, h("button", { type: "submit", class: "primary" }, t("gc.start"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const parameters = { dry_run: dryRun.input.checked, delete_untagged: untagged.input.checked };
    if (!parameters.dry_run && !await confirmDialog(t("gc.start_confirm"), t("gc.start"))) return;
    mount(problem);
    try {
      await send("POST", harbor("/system/gc/schedule"), { schedule: { type: "Manual" }, parameters });
      notify(parameters.dry_run ? t("gc.started_dry") : t("gc.started_real"));
      const target = address({});
      if (location.pathname + location.search === target) ctx.redraw();
      else ctx.navigate(target);
    } catch (error) {
      mount(problem, errorBox(error));
    }
  });
  return form;
}

async function drawSchedule(area, ctx) {
  const { data } = await get(harbor("/system/gc/schedule"));
  const current = data?.schedule ?? { type: "None" };
  const parameters = data?.parameters ?? {};
  const kind = SCHEDULE_TYPES.includes(current.type) ? current.type : "None";
  const options = [parameters.dry_run ? t("gc.dry_run_badge") : null,
    parameters.delete_untagged ? t("gc.delete_untagged") : null].filter(Boolean);
  mount(area,
    h("dl", { class: "facts" },
      h("dt", {}, t("gc.schedule_type")), h("dd", { class: "text" }, t(`gc.type_${kind}`),
        current.cron ? [" ", h("code", {}, current.cron)] : null),
      kind === "None" ? null : [
        h("dt", {}, t("gc.next_run")), h("dd", {}, formatTime(current.next_scheduled_time)),
        h("dt", {}, t("gc.parameters")), h("dd", { class: "text" }, options.length ? options.join(", ") : t("gc.no_options")),
      ]),
    kind === "None" ? h("p", { class: "muted" }, t("gc.no_schedule")) : null,
    h("div", {}, h("button", { type: "button", onclick: () => scheduleDialog(ctx, kind, current, parameters) },
      t("gc.edit_schedule"))));
}

function scheduleDialog(ctx, kind, current, parameters) {
  const type = select(SCHEDULE_TYPES.map((name) => [name, t(`gc.type_${name}`)]), { name: "type", value: kind });
  const cron = h("input", { type: "text", name: "cron", class: "mono", autocomplete: "off",
    value: current.cron ?? "", placeholder: "0 0 3 * * *" });
  const cronField = field(t("gc.cron"), cron, t("gc.cron_hint"));
  const dryRun = checkbox(t("gc.dry_run_label"), { name: "dry_run", checked: parameters.dry_run });
  const untagged = checkbox(t("gc.delete_untagged_label"), { name: "delete_untagged", checked: parameters.delete_untagged });
  const sync = () => {
    cronField.hidden = type.value !== "Custom";
    cron.required = type.value === "Custom";
  };
  type.addEventListener("change", sync);
  sync();
  const dialog = formDialog(t("gc.edit_schedule"), () => h("div", { class: "fields" },
    field(t("gc.schedule_type"), type, t("gc.schedule_hint")), cronField, dryRun.element, untagged.element),
  async () => {
    const schedule = { type: type.value };
    if (type.value === "Custom") schedule.cron = cron.value.trim();
    await send("PUT", harbor("/system/gc/schedule"), {
      schedule, parameters: { dry_run: dryRun.input.checked, delete_untagged: untagged.input.checked } });
    notify(t("gc.schedule_saved"));
    ctx.redraw();
  }, t("common.save"));
  dialog.classList.add("fitted");  // fits a phone's width
}
