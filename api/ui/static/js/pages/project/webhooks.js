// The project page's tab: webhook policies and their recent deliveries.
import { get, harbor, send } from "../../api.js";
import {
  badge, checkbox, confirmDialog, field, formatTime, formDialog, h, mount, notify, rowActions, select, table,
} from "../../dom.js";
import { known, t } from "../../i18n.js";
import { attempt, button } from "./shared.js";

const EXECUTION_BADGES = { Success: "ok", Error: "bad", Pending: "warn", Running: "run" };

function eventLabel(type) {
  return known(`project.event_${type}`, type);
}

export async function drawWebhooks(body, page) {
  const base = harbor(`/projects/${page.id}/webhook/policies`);
  const { data } = await get(base, { page_size: 100 });
  if (!page.current()) return;
  const problem = h("div");
  const deliveries = h("section", { "aria-live": "polite" });
  const canCreate = page.can("notification-policy", "create");
  const canUpdate = page.can("notification-policy", "update");
  const canDelete = page.can("notification-policy", "delete");
  mount(body,
    canCreate ? h("div", { class: "toolbar" }, h("span", { class: "grow" }),
      button(t("project.new_webhook"), () => webhookDialog(page, null), { kind: "primary" })) : null,
    problem,
    table({
      caption: t("project.webhooks_caption", { total: data.length }),
      empty: canCreate ? t("project.webhooks_none_admin") : t("project.webhooks_none"),
      rows: data,
      columns: [
        { label: t("common.name"), render: (policy) => policy.name },
        { label: t("project.address"), class: "mono", render: (policy) => policy.targets.map((target) => target.address).join(" ") },
        { label: t("project.events"), class: "hide-narrow", render: (policy) => policy.event_types.map(eventLabel).join(", ") },
        { label: t("common.status"), render: (policy) => (policy.enabled ? badge(t("project.enabled"), "ok") : badge(t("project.disabled"), "bad")) },
        { label: t("common.actions"), render: (policy) => rowActions(
          button(t("project.deliveries"), () => attempt(problem, () => showDeliveries(deliveries, page, policy)),
            { name: t("project.deliveries_of", { name: policy.name }) }),
          canUpdate && button(t("project.edit"), () => webhookDialog(page, policy), { name: t("project.edit_named", { name: policy.name }) }),
          canUpdate && button(policy.enabled ? t("project.disable") : t("project.enable"), () => attempt(problem, async () => {
            await send("PUT", `${base}/${policy.id}`, { enabled: !policy.enabled });
            notify(t(policy.enabled ? "project.webhook_disabled" : "project.webhook_enabled", { name: policy.name }));
            page.redraw();
          }), { name: t(policy.enabled ? "project.disable_named" : "project.enable_named", { name: policy.name }) }),
          canDelete && button(t("common.delete"), async () => {
            if (!await confirmDialog(t("project.delete_webhook_confirm", { name: policy.name }), t("common.delete"))) return;
            await attempt(problem, async () => {
              await send("DELETE", `${base}/${policy.id}`);
              notify(t("common.deleted", { name: policy.name }));
              page.redraw();
            });
          }, { kind: "danger", name: t("project.delete_named", { name: policy.name }) })) },
      ],
    }),
    deliveries);
}

async function showDeliveries(section, page, policy) {
  const { data } = await get(harbor(`/projects/${page.id}/webhook/policies/${policy.id}/executions`), { page_size: 10 });
  mount(section,
    h("h2", { id: "deliveries-title" }, t("project.deliveries_title", { name: policy.name })),
    table({
      caption: t("project.deliveries_caption"),
      empty: t("project.deliveries_none"),
      rows: data,
      columns: [
        { label: t("project.event"), render: (run) => eventLabel(run.extra_attrs?.event_type) },
        { label: t("common.status"), render: (run) => badge(known(`project.execution_${run.status}`, run.status), EXECUTION_BADGES[run.status] || "") },
        { label: t("project.message"), class: "hide-narrow", render: (run) => run.status_message || "—" },
        { label: t("project.started"), render: (run) => formatTime(run.start_time) },
        { label: t("project.finished"), class: "hide-narrow", render: (run) => formatTime(run.end_time) },
      ],
    }));
  section.querySelector("h2").scrollIntoView({ block: "nearest" });
}

async function webhookDialog(page, policy) {
  let supported;
  try {
    supported = (await get(harbor(`/projects/${page.id}/webhook/events`))).data;
  } catch (error) {
    notify(error.message, "error");
    return;
  }
  const target = policy?.targets?.[0] || {};
  const name = h("input", { type: "text", name: "name", required: true, autocomplete: "off", value: policy?.name || "" });
  const description = h("input", { type: "text", name: "description", autocomplete: "off", value: policy?.description || "" });
  const address = h("input", { type: "url", name: "address", required: true, autocomplete: "off",
    placeholder: "https://example.com/hooks/portlog", value: target.address || "" });
  const auth = h("input", { type: "text", name: "auth_header", autocomplete: "off", value: target.auth_header || "" });
  const formats = supported.payload_formats?.[0]?.formats || ["Default"];
  const format = select(formats.map((f) => [f, f]), { name: "payload_format", value: target.payload_format || formats[0] });
  const skip = checkbox(t("project.skip_cert_verify"), { name: "skip_cert_verify", checked: target.skip_cert_verify });
  const enabled = checkbox(t("project.webhook_enabled_label"), { name: "enabled", checked: policy ? policy.enabled : true });
  const chosen = new Set(policy?.event_types || ["PUSH_ARTIFACT", "DELETE_ARTIFACT"]);
  const events = supported.event_type.map((type) => ({ type,
    box: checkbox(eventLabel(type), { name: "event_types", value: type, checked: chosen.has(type) }) }));
  formDialog(policy ? t("project.edit_webhook") : t("project.new_webhook"), () => h("div", { class: "fields" },
    field(t("common.name"), name),
    field(t("project.description"), description),
    field(t("project.endpoint"), address, t("project.endpoint_hint")),
    field(t("project.auth_header"), auth, t("project.auth_header_hint")),
    field(t("project.payload_format"), format),
    skip.element,
    h("fieldset", { class: "event-types" }, h("legend", {}, t("project.events")), events.map((e) => e.box.element)),
    enabled.element),
  async () => {
    const eventTypes = events.filter((e) => e.box.input.checked).map((e) => e.type);
    if (!eventTypes.length) throw new Error(t("project.webhook_needs_event"));
    const body = { name: name.value.trim(), description: description.value.trim(), enabled: enabled.input.checked,
      event_types: eventTypes,
      targets: [{ type: "http", address: address.value.trim(), auth_header: auth.value, payload_format: format.value,
        skip_cert_verify: skip.input.checked }] };
    const base = harbor(`/projects/${page.id}/webhook/policies`);
    if (policy) await send("PUT", `${base}/${policy.id}`, body);
    else await send("POST", base, body);
    notify(policy ? t("common.saved") : t("project.webhook_created", { name: body.name }));
    page.redraw();
  }, policy ? t("common.save") : t("common.create"));
}
