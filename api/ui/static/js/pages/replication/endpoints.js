// The replication page's section: registry endpoints (create, edit, test the connection, delete).
import { get, harbor, send } from "../../api.js";
import {
  badge, checkbox, confirmDialog, errorBox, field, formatTime, formDialog, h, mount, notify, pager, rowActions,
  select, table,
} from "../../dom.js";
import { t } from "../../i18n.js";
import { fitted, here, label, PAGE_SIZE, pageOf, showError } from "./shared.js";

const TYPES = ["docker-registry", "harbor", "portlog"];

export async function endpointsSection(panel, ctx) {
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
      caption: t("replication.endpoints_caption", { count: total }),
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
