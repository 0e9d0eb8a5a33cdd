// The replication page's section: executions with live progress, and one execution's tasks (stop, retry).
import { get, harbor, send } from "../../api.js";
import {
  confirmDialog, field, formatBytes, formatTime, h, link, mount, notify, pager, remount, rowActions, select, table,
} from "../../dom.js";
import { t } from "../../i18n.js";
import { livePoller } from "../../poll.js";
import { formatDuration, getAll, here, label, PAGE_SIZE, pageOf, showError, statusBadge } from "./shared.js";

const EXECUTION_STATUSES = ["InProgress", "Succeed", "Failed", "Stopped"];

export async function executionsSection(panel, ctx) {
  const opened = ctx.params.get("execution");
  if (opened) {
    await executionDetail(panel, ctx, opened);
    return;
  }
  const page = pageOf(ctx);
  const policyId = ctx.params.get("policy") || "";
  const status = ctx.params.get("status") || "";
  const policies = await getAll(harbor("/replication/policies"), { sort: "name" });
  const names = new Map(policies.map((p) => [p.id, p.name]));

  const policyChoice = select([["", t("replication.all_policies")], ...policies.map((p) => [p.id, p.name])],
    { name: "policy", value: policyId });
  const statusChoice = select([["", t("replication.all_statuses")],
    ...EXECUTION_STATUSES.map((s) => [s, label("status", s)])], { name: "status", value: status });
  const filter = h("form", { class: "toolbar", role: "search", "aria-label": t("replication.filter_executions") },
    field(t("replication.policy"), policyChoice),
    field(t("common.status"), statusChoice),
    h("button", { type: "submit" }, t("replication.apply_filter")),
    h("span", { class: "grow" }),
    h("button", { type: "button", onclick: () => poller.now() }, t("common.refresh")));
  filter.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.navigate(here({ tab: "executions", policy: policyChoice.value, status: statusChoice.value }));
  });
  const problem = h("div");
  const area = h("div");
  const live = h("p", { class: "live-note muted", "aria-live": "off" });
  mount(panel, filter, problem, live, area);

  const seen = new Map();  // execution id -> status last drawn, to announce the ones that end
  const load = () => get(harbor("/replication/executions"),
    { page, page_size: PAGE_SIZE, policy_id: policyId, status });
  const draw = ({ data, total }) => {
    for (const execution of data) {
      if (seen.get(execution.id) === "InProgress" && execution.status !== "InProgress") {
        notify(t("replication.execution_ended", { id: execution.id, status: label("status", execution.status) }));
      }
      seen.set(execution.id, execution.status);
    }
    const running = data.some((e) => e.status === "InProgress");
    mount(live, running ? t("replication.live") : null);
    remount(area,
      table({
        caption: t("replication.executions_caption", { count: total }),
        empty: policyId || status ? t("replication.no_executions_matching") : t("replication.no_executions"),
        rows: data,
        columns: executionColumns(ctx, names, problem, () => poller.now()),
      }),
      pager({ total, page, size: PAGE_SIZE,
        onChange: (next) => ctx.navigate(here({ tab: "executions", policy: policyId, status, page: next })) }));
    return running;
  };
  const poller = livePoller(ctx, { load, draw, problem, stopOn: [401, 403] });
  poller.schedule(draw(await load()));
}

function executionColumns(ctx, names, problem, refresh) {
  return [
    { label: t("replication.execution"), render: (e) => h("a", { href: here({ tab: "executions", execution: e.id }),
      "data-link": true, "data-key": `open-${e.id}`, "aria-label": t("replication.open_execution", { id: e.id }) },
    `#${e.id}`) },
    { label: t("replication.policy"), render: (e) => names.get(e.policy_id) ?? (e.policy_id ? `#${e.policy_id}` : "—") },
    { label: t("replication.trigger"), class: "hide-narrow", render: (e) => label("trigger", e.trigger) },
    { label: t("common.status"), render: (e) => h("div", { class: "status-cell" }, statusBadge(e.status), progressOf(e),
      h("small", { class: "show-narrow muted" }, t("replication.counts", { total: e.total, succeed: e.succeed,
        failed: e.failed, in_progress: e.in_progress, stopped: e.stopped }))) },
    { label: t("replication.total"), class: "num hide-narrow", render: (e) => String(e.total) },
    { label: t("replication.succeeded"), class: "num hide-narrow", render: (e) => String(e.succeed) },
    { label: t("replication.failed"), class: "num hide-narrow", render: (e) => String(e.failed) },
    { label: t("replication.in_progress"), class: "num hide-narrow", render: (e) => String(e.in_progress) },
    { label: t("replication.stopped"), class: "num hide-narrow", render: (e) => String(e.stopped) },
    { label: t("replication.start_time"), class: "hide-narrow", render: (e) => formatTime(e.start_time) },
    { label: t("replication.end_time"), class: "hide-narrow", render: (e) => formatTime(e.end_time) },
    { label: t("common.actions"), render: (e) => (e.status === "InProgress"
      ? h("button", { type: "button", class: "danger", "data-key": `stop-${e.id}`,
        "aria-label": t("replication.stop_execution", { id: e.id }),
        onclick: () => stopExecution(e.id, problem, refresh) }, t("replication.stop"))
      : null) },
  ];
}

// A bar of how many of the execution's tasks are done.
function progressOf(execution) {
  const done = execution.total - execution.in_progress;
  return h("progress", { max: String(Math.max(execution.total, 1)), value: String(execution.total ? done : 1),
    "aria-label": t("replication.progress_of", { id: execution.id, done, count: execution.total }),
    title: t("replication.done_of", { done, total: execution.total }) });
}

async function stopExecution(id, problem, refresh) {
  if (!await confirmDialog(t("replication.stop_confirm", { id }), t("replication.stop"))) return;
  try {
    await send("PUT", harbor(`/replication/executions/${id}`), {});
    notify(t("replication.stopping", { id }));
    refresh();
  } catch (error) {
    showError(problem, error);
  }
}

async function executionDetail(panel, ctx, id) {
  const taskPage = pageOf(ctx, "task_page");
  const problem = h("div");
  const summary = h("div");
  const area = h("div");
  const back = link(here({ tab: "executions" }), t("replication.all_executions"));
  const heading = h("h2", {}, t("replication.execution_title", { id }));
  mount(panel, h("p", { class: "breadcrumbs" }, back), heading, problem, summary, area);

  let endedNoted = null;
  const load = () => Promise.all([
    get(harbor(`/replication/executions/${encodeURIComponent(id)}`)),
    get(harbor(`/replication/executions/${encodeURIComponent(id)}/tasks`), { page: taskPage, page_size: 50 }),
  ]);
  const draw = async ([{ data: execution }, { data: tasks, total }]) => {
    const running = execution.status === "InProgress";
    if (endedNoted === "InProgress" && !running) {
      notify(t("replication.execution_ended", { id: execution.id, status: label("status", execution.status) }));
    }
    endedNoted = execution.status;
    remount(summary,
      h("dl", { class: "facts" },
        h("dt", {}, t("replication.policy")), h("dd", {}, policyName.get(execution.policy_id) ?? `#${execution.policy_id}`),
        h("dt", {}, t("common.status")), h("dd", {}, statusBadge(execution.status),
          running ? h("span", { class: "muted" }, " ", t("replication.live")) : null),
        h("dt", {}, t("replication.trigger")), h("dd", {}, label("trigger", execution.trigger)),
        h("dt", {}, t("replication.tasks")), h("dd", { class: "text" }, t("replication.counts", {
          total: execution.total, succeed: execution.succeed, failed: execution.failed,
          in_progress: execution.in_progress, stopped: execution.stopped })),
        h("dt", {}, t("replication.start_time")), h("dd", {}, formatTime(execution.start_time)),
        h("dt", {}, t("replication.end_time")), h("dd", {}, formatTime(execution.end_time))),
      running ? h("div", { class: "toolbar" }, h("button", { type: "button", class: "danger", "data-key": "stop",
        onclick: () => stopExecution(execution.id, problem, () => poller.now()) }, t("replication.stop"))) : null);
    remount(area,
      table({
        caption: t("replication.tasks_caption", { id: execution.id, total }),
        empty: t("replication.no_tasks"),
        rows: tasks,
        columns: taskColumns(execution, problem, () => poller.now()),
      }),
      pager({ total, page: taskPage, size: 50,
        onChange: (next) => ctx.navigate(here({ tab: "executions", execution: id, task_page: next })) }));
    return running;
  };
  const policyName = new Map();
  const first = await load();
  try {
    const { data: policy } = await get(harbor(`/replication/policies/${first[0].data.policy_id}`));
    policyName.set(policy.id, policy.name);
  } catch { /* the policy was deleted since: its id stands for it */ }
  const poller = livePoller(ctx, { load, draw, problem, stopOn: [401, 403, 404] });
  poller.schedule(await draw(first));
}

function taskColumns(execution, problem, refresh) {
  const base = `/replication/executions/${execution.id}/tasks`;
  return [
    { label: t("replication.task"), class: "hide-narrow", render: (task) => `#${task.id}` },
    { label: t("replication.resource"), render: (task) => h("span", { class: "mono" },
      task.src_resource, h("span", { class: "muted" }, " → "), task.dst_resource) },
    { label: t("replication.operation"), class: "hide-narrow", render: (task) => label("operation", task.operation) },
    { label: t("common.status"), render: (task) => h("div", { class: "status-cell" }, statusBadge(task.status),
      h("small", { class: "show-narrow muted" }, t("replication.task_summary", {
        attempts: task.attempts ?? "—", bytes: bytesOf(task) })),
      task.error ? h("small", { class: "show-narrow wrap" }, task.error) : null) },
    { label: t("replication.bytes"), class: "num hide-narrow", render: bytesOf },
    { label: t("replication.duration"), class: "num hide-narrow", render: (task) => formatDuration(task.duration_ms) },
    { label: t("replication.attempts"), class: "num hide-narrow", render: (task) => String(task.attempts ?? "—") },
    { label: t("replication.last_error"), class: "wrap hide-narrow", render: (task) => task.error || "—" },
    { label: t("common.actions"), render: (task) => rowActions(
      h("a", { href: harbor(`${base}/${task.id}/log`), target: "_blank", rel: "noopener",
        "aria-label": t("replication.task_log", { id: task.id }) }, t("replication.log")),
      ["Failed", "Stopped"].includes(task.status)
        ? h("button", { type: "button", "data-key": `retry-${task.id}`,
          "aria-label": t("replication.retry_task", { id: task.id }),
          onclick: () => retryTask(base, task, problem, refresh) }, t("replication.retry"))
        : null) },
  ];
}

function bytesOf(task) {
  return task.bytes === undefined || task.bytes === null ? "—" : formatBytes(task.bytes);
}

async function retryTask(base, task, problem, refresh) {
  try {
    await send("POST", harbor(`${base}/${task.id}/retry`), {});
    notify(t("replication.retrying", { id: task.id }));
    refresh();
  } catch (error) {
    showError(problem, error);
  }
}
