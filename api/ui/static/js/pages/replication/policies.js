// The replication page's section: replication policies (push- or pull-based, filters, trigger) and starting them.
import { get, harbor, send } from "../../api.js";
import {
  badge, checkbox, confirmDialog, field, formDialog, h, link, mount, notify, pager, rowActions, select, table,
} from "../../dom.js";
import { t } from "../../i18n.js";
import { fitted, getAll, here, label, PAGE_SIZE, pageOf, showError } from "./shared.js";

const TRIGGERS = ["manual", "scheduled", "event_based"];

export async function policiesSection(panel, ctx) {
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
      caption: t("replication.policies_caption", { count: total }),
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
