// Replication (system administrators): registry endpoints, policies, and executions with their
// tasks, through Harbor's API (/api/v2.0/registries, /api/v2.0/replication/…). The section and
// the execution on screen live in the query string (?tab=executions&execution=3), so every view
// is linkable and the back button works. Executions in progress are polled every 2 s.
import { get, harbor, send, withParams } from "../api.js";
import {
  badge, checkbox, confirmDialog, errorBox, field, formatBytes, formatTime, formDialog, h, link, mount, notify,
  pager, refusal, remount, rowActions, select, table, tabs,
} from "../dom.js";
import { known, t } from "../i18n.js";
import { livePoller } from "../poll.js";

export const catalogs = ["replication"];
export const requiresLogin = true;

const TABS = ["endpoints", "policies", "executions"];
const TYPES = ["docker-registry", "harbor", "portlog"];
const TRIGGERS = ["manual", "scheduled", "event_based"];
const EXECUTION_STATUSES = ["InProgress", "Succeed", "Failed", "Stopped"];
const STATUS_KINDS = { InProgress: "run", Pending: "", Retrying: "warn", Succeed: "ok", Failed: "bad", Stopped: "warn" };
const PAGE_SIZE = 15;

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

// The page's address with these query parameters (empty ones left out).
const here = (params) => withParams("/ui/replication", params);

function pageOf(ctx, name = "page") {
  const page = Number(ctx.params.get(name) || 1);
  return Number.isInteger(page) && page > 0 ? page : 1;
}

// A translated label for a value the server sends, or the value itself when none is known.
function label(prefix, value) {
  return known(`replication.${prefix}_${value}`, String(value));
}

function statusBadge(status) {
  return badge(label("status", status), STATUS_KINDS[status] ?? "");
}

function showError(where, error) {
  mount(where, errorBox(error));
}

// Every item of a Harbor list, page by page.
async function getAll(url, params = {}) {
  const items = [];
  for (let page = 1; ; page += 1) {
    const { data, total } = await get(url, { ...params, page, page_size: 100 });
    items.push(...data);
    if (!data.length || total === null || items.length >= total) return items;
  }
}

// A form dialog that fits a phone's width (its selects shrink instead of widening it).
function fitted(dialog) {
  dialog.classList.add("fitted");
  return dialog;
}

function formatDuration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return t("replication.duration_ms", { n: ms });
  if (ms < 60_000) return t("replication.duration_s", { n: (ms / 1000).toFixed(1) });
  return t("replication.duration_min", { m: Math.floor(ms / 60_000), s: Math.round((ms % 60_000) / 1000) });
}

// Registry endpoints

async function endpointsSection(panel, ctx) {
  const page = pageOf(ctx);
  const problem = h("div");
  const list = h("div");
  mount(panel,
    h("div", { class: "toolbar" },
      h("p", { class: "intro" }, t("replication.endpoints_intro")),
      h("span", { class: "grow" }),
      h("button", { type: "button", class: "primary", onclick: () => endpointDialog(ctx, null) },
        t("replication.new_endpoint"))),
    problem, list);
  const { data, total } = await get(harbor("/registries"), { page, page_size: PAGE_SIZE, sort: "name" });
  mount(list,
    table({
      caption: t("replication.endpoints_caption", { total }),
      empty: t("replication.no_endpoints"),
      rows: data,
      columns: [
        { label: t("common.name"), render: (r) => r.name },
        { label: t("replication.type"), render: (r) => label("type", r.type) },
        { label: t("replication.url"), render: (r) => h("span", { class: "mono" }, r.url) },
        { label: t("replication.verify_tls"), class: "hide-narrow",
          render: (r) => (r.insecure ? badge(t("replication.tls_off"), "warn") : t("common.yes")) },
        { label: t("replication.access_key"), class: "hide-narrow", render: (r) => r.credential?.access_key || "—" },
        { label: t("common.created"), class: "hide-narrow", render: (r) => formatTime(r.creation_time) },
        { label: t("common.actions"), render: (r) => rowActions(
          h("button", { type: "button", "aria-label": t("replication.test_endpoint", { name: r.name }),
            onclick: () => pingEndpoint(r, problem) }, t("replication.test_connection")),
          h("button", { type: "button", "aria-label": t("replication.edit_endpoint", { name: r.name }),
            onclick: () => endpointDialog(ctx, r) }, t("replication.edit")),
          h("button", { type: "button", class: "danger", "aria-label": t("replication.delete_endpoint", { name: r.name }),
            onclick: () => deleteEndpoint(ctx, r, problem) }, t("common.delete"))) },
      ],
    }),
    pager({ total, page, size: PAGE_SIZE, onChange: (next) => ctx.navigate(here({ tab: "endpoints", page: next })) }));
}

async function pingEndpoint(registry, problem) {
  mount(problem);
  try {
    await send("POST", harbor("/registries/ping"), { id: registry.id });
    notify(t("replication.ping_ok", { name: registry.name }));
  } catch (error) {
    showError(problem, error);
  }
}

async function deleteEndpoint(ctx, registry, problem) {
  if (!await confirmDialog(t("replication.delete_endpoint_confirm", { name: registry.name }))) return;
  try {
    await send("DELETE", harbor(`/registries/${registry.id}`));
    notify(t("common.deleted", { name: registry.name }));
    ctx.redraw();
  } catch (error) {
    showError(problem, error);
  }
}

function endpointDialog(ctx, existing) {
  const editing = Boolean(existing);
  const name = h("input", { type: "text", name: "name", required: true, maxlength: "255", autocomplete: "off",
    value: existing?.name ?? "", disabled: editing });
  const type = select(TYPES.map((kind) => [kind, label("type", kind)]),
    { name: "type", value: existing?.type ?? TYPES[0], disabled: editing });
  const url = h("input", { type: "url", name: "url", required: true, value: existing?.url ?? "",
    placeholder: "https://registry.example.com", autocomplete: "off" });
  const description = h("input", { type: "text", name: "description", value: existing?.description ?? "" });
  const accessKey = h("input", { type: "text", name: "access_key", autocomplete: "off",
    value: existing?.credential?.access_key ?? "" });
  const hasSecret = Boolean(existing?.credential?.access_secret);
  const accessSecret = h("input", { type: "password", name: "access_secret", autocomplete: "new-password" });
  const insecure = checkbox(t("replication.insecure_label"), { name: "insecure", checked: existing?.insecure });
  const result = h("div", { "aria-live": "polite" });

  const credentials = () => {
    const body = { url: url.value.trim(), insecure: insecure.input.checked, access_key: accessKey.value.trim() };
    if (accessSecret.value) body.access_secret = accessSecret.value;
    return body;
  };
  const testConnection = async () => {
    if (!url.reportValidity()) return;
    mount(result, h("p", { class: "muted" }, t("replication.testing")));
    try {
      const body = editing ? { id: existing.id, ...credentials() } : { type: type.value, ...credentials() };
      await send("POST", harbor("/registries/ping"), body);
      mount(result, h("p", { class: "success" }, t("replication.ping_ok_form")));
    } catch (error) {
      mount(result, errorBox(error));
    }
  };

  fitted(formDialog(editing ? t("replication.edit_endpoint", { name: existing.name }) : t("replication.new_endpoint"),
    () => h("div", { class: "fields" },
      field(t("replication.endpoint_name"), name, editing ? t("replication.no_rename") : null),
      field(t("replication.type"), type, t("replication.type_hint")),
      field(t("replication.url"), url, t("replication.url_hint")),
      field(t("replication.description"), description),
      field(t("replication.access_key"), accessKey, t("replication.access_key_hint")),
      field(t("replication.access_secret"), accessSecret,
        hasSecret ? t("replication.secret_kept") : t("replication.access_secret_hint")),
      insecure.element,
      h("div", { class: "test-connection" },
        h("button", { type: "button", onclick: testConnection }, t("replication.test_connection")), result)),
    async () => {
      if (editing) {
        await send("PUT", harbor(`/registries/${existing.id}`), { ...credentials(), description: description.value });
        notify(t("common.saved"));
      } else {
        const body = credentials();
        await send("POST", harbor("/registries"), {
          name: name.value.trim(), type: type.value, url: body.url, insecure: body.insecure,
          description: description.value,
          credential: { type: "basic", access_key: body.access_key, access_secret: body.access_secret ?? "" },
        });
        notify(t("replication.endpoint_created", { name: name.value.trim() }));
      }
      ctx.redraw();
    }, editing ? t("common.save") : t("common.create")));
}

// Policies

async function policiesSection(panel, ctx) {
  const page = pageOf(ctx);
  const problem = h("div");
  const list = h("div");
  const [{ data, total }, endpoints] = await Promise.all([
    get(harbor("/replication/policies"), { page, page_size: PAGE_SIZE, sort: "name" }),
    getAll(harbor("/registries"), { sort: "name" }),
  ]);
  mount(panel,
    h("div", { class: "toolbar" },
      h("p", { class: "intro" }, endpoints.length ? t("replication.policies_intro")
        : [t("replication.need_endpoint"), " ", link(here({ tab: "endpoints" }), t("replication.add_endpoint_first"))]),
      h("span", { class: "grow" }),
      h("button", { type: "button", class: "primary", disabled: !endpoints.length,
        onclick: () => policyDialog(ctx, null, endpoints) }, t("replication.new_policy"))),
    problem, list);
  mount(list,
    table({
      caption: t("replication.policies_caption", { total }),
      empty: endpoints.length ? t("replication.no_policies") : t("replication.no_policies_no_endpoints"),
      rows: data,
      columns: [
        { label: t("common.name"), render: (p) => h("span", {}, p.name,
          p.enabled ? null : h("span", { class: "show-narrow" }, badge(t("replication.disabled"))),
          p.description ? h("small", { class: "block muted" }, p.description) : null) },
        { label: t("replication.direction"), render: directionText },
        { label: t("replication.filters"), class: "hide-narrow", render: filtersText },
        { label: t("replication.dest_namespace"), class: "hide-narrow",
          render: (p) => (p.dest_namespace ? h("span", { class: "mono" }, p.dest_namespace) : "—") },
        { label: t("replication.trigger"), class: "hide-narrow", render: triggerText },
        { label: t("replication.state"), class: "hide-narrow", render: (p) => (p.enabled ? badge(t("replication.enabled"), "ok")
          : badge(t("replication.disabled"))) },
        { label: t("common.actions"), render: (p) => rowActions(
          h("button", { type: "button", class: "primary", "aria-label": t("replication.replicate_policy", { name: p.name }),
            onclick: () => replicate(ctx, p, problem) }, t("replication.replicate")),
          h("a", { href: here({ tab: "executions", policy: p.id }), "data-link": true,
            "aria-label": t("replication.executions_of", { name: p.name }) }, t("replication.tab_executions")),
          h("button", { type: "button", "aria-label": t("replication.edit_policy", { name: p.name }),
            onclick: () => policyDialog(ctx, p, endpoints) }, t("replication.edit")),
          h("button", { type: "button", class: "danger", "aria-label": t("replication.delete_policy", { name: p.name }),
            onclick: () => deletePolicy(ctx, p, problem) }, t("common.delete"))) },
      ],
    }),
    pager({ total, page, size: PAGE_SIZE, onChange: (next) => ctx.navigate(here({ tab: "policies", page: next })) }));
}

function directionText(policy) {
  return policy.dest_registry
    ? t("replication.push_to", { name: policy.dest_registry.name })
    : t("replication.pull_from", { name: policy.src_registry?.name ?? "?" });
}

function filtersText(policy) {
  if (!policy.filters?.length) return t("replication.all_artifacts");
  return h("ul", { class: "plain" }, policy.filters.map((f) => h("li", {},
    t(f.decoration === "excludes" ? "replication.filter_excludes" : "replication.filter_matches", {
      kind: label("filter", f.type),
      value: Array.isArray(f.value) ? f.value.join(", ") : f.value,
    }))));
}

function triggerText(policy) {
  const kind = policy.trigger?.type ?? "manual";
  if (kind === "scheduled") {
    return h("span", {}, label("trigger", kind), " ", h("code", {}, policy.trigger.trigger_settings?.cron ?? ""));
  }
  return label("trigger", kind);
}

async function replicate(ctx, policy, problem) {
  mount(problem);
  try {
    await send("POST", harbor("/replication/executions"), { policy_id: policy.id });
    notify(t("replication.started", { name: policy.name }));
    ctx.navigate(here({ tab: "executions" }));
  } catch (error) {
    showError(problem, error);
  }
}

async function deletePolicy(ctx, policy, problem) {
  if (!await confirmDialog(t("replication.delete_policy_confirm", { name: policy.name }))) return;
  try {
    await send("DELETE", harbor(`/replication/policies/${policy.id}`));
    notify(t("common.deleted", { name: policy.name }));
    ctx.redraw();
  } catch (error) {
    showError(problem, error);
  }
}

function policyDialog(ctx, existing, endpoints) {
  const editing = Boolean(existing);
  const filterOf = (kind) => existing?.filters?.find((f) => f.type === kind) ?? null;
  const kept = existing?.filters?.filter((f) => !["name", "tag"].includes(f.type)) ?? [];  // label filters
  const remote = existing?.dest_registry ?? existing?.src_registry;

  const name = h("input", { type: "text", name: "name", required: true, autocomplete: "off",
    value: existing?.name ?? "", disabled: editing });
  const description = h("input", { type: "text", name: "description", value: existing?.description ?? "" });
  const direction = select([["push", t("replication.mode_push")], ["pull", t("replication.mode_pull")]],
    { name: "direction", value: existing && !existing.dest_registry ? "pull" : "push" });
  const registry = select(endpoints.map((e) => [e.id, `${e.name} (${e.url})`]),
    { name: "registry", value: remote?.id ?? endpoints[0]?.id, required: true });
  const filterInputs = (kind) => {
    const current = filterOf(kind);
    const pattern = h("input", { type: "text", name: `${kind}_filter`, autocomplete: "off",
      value: current?.value ?? "", placeholder: t(`replication.${kind}_placeholder`) });
    const decoration = select([["matches", t("replication.matching")], ["excludes", t("replication.excluding")]],
      { name: `${kind}_decoration`, value: current?.decoration ?? "matches" });
    return { pattern, decoration };
  };
  const nameFilter = filterInputs("name");
  const tagFilter = filterInputs("tag");
  const namespace = h("input", { type: "text", name: "dest_namespace", autocomplete: "off",
    value: existing?.dest_namespace ?? "" });
  const trigger = select(TRIGGERS.map((kind) => [kind, label("trigger", kind)]),
    { name: "trigger", value: existing?.trigger?.type ?? "manual" });
  const cron = h("input", { type: "text", name: "cron", autocomplete: "off", class: "mono",
    value: existing?.trigger?.trigger_settings?.cron ?? "", placeholder: "0 0 3 * * *" });
  const cronField = field(t("replication.cron"), cron, t("replication.cron_hint"));
  const speed = h("input", { type: "number", name: "speed", min: "1", step: "1",
    value: existing && existing.speed > 0 ? existing.speed : "" });
  const deletion = checkbox(t("replication.deletion_label"), { name: "deletion", checked: existing?.deletion });
  const override = checkbox(t("replication.override_label"), { name: "override", checked: existing?.override ?? true });
  const enabled = checkbox(t("replication.enabled_label"), { name: "enabled", checked: existing?.enabled ?? true });
  const registryField = field(t("replication.remote_registry"), registry);

  const sync = () => {
    const pull = direction.value === "pull";
    const eventOption = trigger.querySelector('option[value="event_based"]');
    eventOption.disabled = pull;  // event-based triggers follow this registry's pushes: push-based only
    if (pull && trigger.value === "event_based") trigger.value = "manual";
    registryField.querySelector("label").textContent = pull ? t("replication.source_registry")
      : t("replication.destination_registry");
    cronField.hidden = trigger.value !== "scheduled";
    cron.required = trigger.value === "scheduled";
  };
  direction.addEventListener("change", sync);
  trigger.addEventListener("change", sync);
  sync();

  const filterRow = (kind, inputs) => h("div", { class: "filter-row" },
    field(t(`replication.${kind}_filter`), inputs.pattern, t(`replication.${kind}_filter_hint`)),
    field(t(`replication.${kind}_decoration`), inputs.decoration));

  fitted(formDialog(editing ? t("replication.edit_policy", { name: existing.name }) : t("replication.new_policy"),
    () => h("div", { class: "fields" },
      field(t("replication.policy_name"), name, editing ? t("replication.no_rename") : null),
      field(t("replication.description"), description),
      field(t("replication.mode"), direction),
      registryField,
      h("fieldset", {}, h("legend", {}, t("replication.source_filters")),
        filterRow("name", nameFilter), filterRow("tag", tagFilter),
        kept.length ? h("p", { class: "muted" }, t("replication.label_filters_kept", {
          labels: kept.map((f) => (Array.isArray(f.value) ? f.value.join(", ") : f.value)).join("; ") })) : null),
      field(t("replication.dest_namespace"), namespace, t("replication.dest_namespace_hint")),
      field(t("replication.trigger"), trigger),
      cronField,
      field(t("replication.speed"), speed, t("replication.speed_hint")),
      deletion.element, override.element, enabled.element),
    async () => {
      const pull = direction.value === "pull";
      const chosen = { id: Number(registry.value) };
      const filters = [];
      for (const [kind, inputs] of [["name", nameFilter], ["tag", tagFilter]]) {
        const value = inputs.pattern.value.trim();
        if (value) filters.push({ type: kind, value, decoration: inputs.decoration.value });
      }
      const body = {
        name: editing ? existing.name : name.value.trim(), description: description.value,
        src_registry: pull ? chosen : null, dest_registry: pull ? null : chosen,
        dest_namespace: namespace.value.trim(),
        dest_namespace_replace_count: existing?.dest_namespace_replace_count ?? -1,
        filters: [...filters, ...kept],
        trigger: { type: trigger.value, trigger_settings: { cron: trigger.value === "scheduled" ? cron.value.trim() : "" } },
        deletion: deletion.input.checked, override: override.input.checked, enabled: enabled.input.checked,
        speed: speed.value ? Number(speed.value) : -1,
      };
      if (editing) await send("PUT", harbor(`/replication/policies/${existing.id}`), body);
      else await send("POST", harbor("/replication/policies"), body);
      notify(editing ? t("common.saved") : t("replication.policy_created", { name: body.name }));
      ctx.redraw();
    }, editing ? t("common.save") : t("common.create")));
}

// Executions

async function executionsSection(panel, ctx) {
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
        caption: t("replication.executions_caption", { total }),
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
    "aria-label": t("replication.progress_of", { id: execution.id, done, total: execution.total }),
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

const SECTIONS = { endpoints: endpointsSection, policies: policiesSection, executions: executionsSection };
