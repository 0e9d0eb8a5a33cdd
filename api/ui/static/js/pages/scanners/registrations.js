// The scanning page's section: scanner registrations (Harbor Scanner Adapter API servers). Add,
// edit, test the connection, enable or disable, make default, delete; each one's health is asked
// of its adapter (GET /scanners/{uuid} answers `health` and the adapter's name and version) after
// the list is drawn. The credential is sent, never shown: the API does not answer it. The built-in
// Portlog scanner can be neither changed nor deleted (the API refuses).
import { get, harbor, send } from "../../api.js";
import {
  attempt, badge, checkbox, confirmDialog, errorBox, field, formatTime, formDialog, h, mount, notify, rowActions, select,
  sortableTable,
} from "../../dom.js";
import { known, t } from "../../i18n.js";
import { fitted, PAGE_SIZE } from "./shared.js";

const BUILT_IN = "Portlog";
const AUTHS = ["", "Basic", "Bearer", "X-ScannerAdapter-API-Key"];

export async function registrationsSection(panel, ctx) {
  const problem = h("div");
  const list = h("div");
  mount(panel,
    h("div", { class: "toolbar" },
      h("p", { class: "intro" }, t("scanners.registrations_intro")),
      h("span", { class: "grow" }),
      h("button", { type: "button", class: "primary", onclick: () => registrationDialog(ctx, null) }, t("scanners.new_scanner"))),
    problem, list);
  const { data } = await get(harbor("/scanners"), { page_size: 100, sort: "name" });
  const healthCells = new Map();
  const healthCell = (r) => {
    const cell = h("span", { class: "muted" }, t("scanners.checking"));
    healthCells.set(r.uuid, cell);
    return cell;
  };
  mount(list, sortableTable({
    caption: t("scanners.registrations_caption", { count: data.length }),
    empty: t("scanners.no_registrations"),
    rows: data,
    pageSize: PAGE_SIZE,
    columns: [
      { label: t("common.name"), sort: (r) => r.name, render: (r) => h("div", { class: "scanner-name" },
        h("strong", {}, r.name), " ",
        r.name === BUILT_IN ? badge(t("scanners.built_in"), "run") : null, " ",
        r.is_default ? badge(t("scanners.default"), "ok") : null,
        r.name === BUILT_IN ? h("small", { class: "block" }, t("scanners.built_in_description"))
          : r.description ? h("small", { class: "block" }, r.description) : null) },
      { label: t("scanners.url"), class: "mono hide-narrow", sort: (r) => r.url, render: (r) => r.url },
      { label: t("scanners.health"), class: "nowrap", render: healthCell },
      { label: t("scanners.auth"), class: "hide-narrow", sort: (r) => r.auth, render: (r) => authLabel(r.auth) },
      { label: t("common.status"), sort: (r) => (r.disabled ? 1 : 0),
        render: (r) => (r.disabled ? badge(t("scanners.disabled"), "bad") : badge(t("scanners.enabled"), "ok")) },
      { label: t("common.created"), class: "hide-narrow", sort: (r) => r.create_time || "", render: (r) => formatTime(r.create_time) },
      { label: t("common.actions"), render: (r) => rowActions(...actions(ctx, r, problem, healthCells)) },
    ],
  }));
  await Promise.all(data.map((r) => checkHealth(r, healthCells)));
}

function authLabel(auth) {
  return known(`scanners.auth_${(auth || "none").toLowerCase().replaceAll("-", "_")}`, auth);
}

async function checkHealth(registration, cells, announce = false) {
  const cell = cells.get(registration.uuid);
  try {
    const { data } = await get(harbor(`/scanners/${registration.uuid}`));
    const healthy = data.health === "healthy";
    if (cell) {
      mount(cell, healthy ? badge(t("scanners.healthy"), "ok") : badge(t("scanners.unhealthy"), "bad"),
        healthy ? h("small", { class: "block muted" }, [data.adapter, data.version].filter(Boolean).join(" ")) : null);
      cell.className = "";
    }
    if (announce) {
      notify(healthy ? t("scanners.ping_ok", { name: registration.name, adapter: `${data.adapter} ${data.version}` })
        : t("scanners.ping_failed", { name: registration.name }), healthy ? "" : "error");
    }
  } catch (error) {
    if (cell) mount(cell, badge(t("scanners.unknown_health"), "warn"));
    if (announce) notify(error.message, "error");
  }
}

function actions(ctx, registration, problem, cells) {
  const builtIn = registration.name === BUILT_IN;
  const named = (key) => t(key, { name: registration.name });
  const run = (action, done) => attempt(problem, async () => {
    await action();
    notify(done);
    ctx.redraw();
  });
  return [
    !registration.is_default && !registration.disabled && h("button", {
      type: "button", "aria-label": named("scanners.make_default_named"),
      onclick: () => run(() => send("PATCH", harbor(`/scanners/${registration.uuid}`), { is_default: true }),
        named("scanners.default_set")),
    }, t("scanners.make_default")),
    h("button", { type: "button", "aria-label": named("scanners.test_named"),
      onclick: () => checkHealth(registration, cells, true) }, t("scanners.test")),
    !builtIn && h("button", { type: "button", "aria-label": named("scanners.edit_named"),
      onclick: () => registrationDialog(ctx, registration) }, t("scanners.edit")),
    !builtIn && !registration.is_default && h("button", {
      type: "button", "aria-label": named(registration.disabled ? "scanners.enable_named" : "scanners.disable_named"),
      onclick: () => run(() => send("PUT", harbor(`/scanners/${registration.uuid}`), { disabled: !registration.disabled }),
        named(registration.disabled ? "scanners.enabled_done" : "scanners.disabled_done")),
    }, t(registration.disabled ? "scanners.enable" : "scanners.disable")),
    !builtIn && h("button", {
      type: "button", class: "danger", "aria-label": named("scanners.delete_named"),
      onclick: async () => {
        if (!await confirmDialog(named("scanners.delete_confirm"))) return;
        await run(() => send("DELETE", harbor(`/scanners/${registration.uuid}`)), t("common.deleted", { name: registration.name }));
      },
    }, t("common.delete")),
  ];
}

function registrationDialog(ctx, existing) {
  const editing = Boolean(existing);
  const name = h("input", { type: "text", name: "name", required: true, maxlength: "255", autocomplete: "off", value: existing?.name ?? "" });
  const description = h("input", { type: "text", name: "description", value: existing?.description ?? "" });
  const url = h("input", { type: "url", name: "url", required: true, autocomplete: "off", value: existing?.url ?? "",
    placeholder: "http://trivy-adapter:8080" });
  const auth = select(AUTHS.map((kind) => [kind, authLabel(kind)]), { name: "auth", value: existing?.auth ?? "" });
  const credential = h("input", { type: "password", name: "access_credential", autocomplete: "new-password" });
  const credentialField = field(t("scanners.credential"), credential);
  const skipVerify = checkbox(t("scanners.skip_verify"), { name: "skip_certVerify", checked: existing?.skip_certVerify });
  const internal = checkbox(t("scanners.use_internal_addr"), { name: "use_internal_addr", checked: existing?.use_internal_addr });
  const result = h("div", { "aria-live": "polite" });
  const sync = () => {
    credentialField.hidden = !auth.value;
    credential.required = Boolean(auth.value) && !(editing && existing.auth === auth.value);
    const hint = credentialField.querySelector("small") || h("small");
    hint.id = `${credential.id}-hint`;
    credential.setAttribute("aria-describedby", hint.id);
    mount(hint, editing && existing.auth === auth.value ? t("scanners.credential_kept")
      : t(`scanners.credential_hint_${(auth.value || "none").toLowerCase().replaceAll("-", "_")}`));
    credentialField.append(hint);
  };
  auth.addEventListener("change", sync);
  sync();
  const settings = () => {
    const body = { name: name.value.trim(), description: description.value.trim(), url: url.value.trim(), auth: auth.value,
      skip_certVerify: skipVerify.input.checked, use_internal_addr: internal.input.checked };
    if (auth.value && credential.value) body.access_credential = credential.value;
    return body;
  };
  const testConnection = async () => {
    if (!url.reportValidity()) return;
    const body = settings();
    mount(result, h("p", { class: "muted" }, t("scanners.testing")));
    try {
      if (editing && body.auth && !body.access_credential) {
        // The stored credential is never sent back: test the saved registration instead.
        if (body.url !== existing.url || body.auth !== existing.auth) throw new Error(t("scanners.credential_to_test"));
        const { data } = await get(harbor(`/scanners/${existing.uuid}`));
        if (data.health !== "healthy") throw new Error(t("scanners.ping_failed", { name: existing.name }));
      } else {
        await send("POST", harbor("/scanners/ping"), { ...body, name: body.name || "test" });
      }
      mount(result, h("p", { class: "success" }, t("scanners.ping_ok_form")));
    } catch (error) {
      mount(result, errorBox(error));
    }
  };
  fitted(formDialog(editing ? t("scanners.edit_named", { name: existing.name }) : t("scanners.new_scanner"),
    () => h("div", { class: "fields" },
      field(t("common.name"), name),
      field(t("scanners.description"), description),
      field(t("scanners.url"), url, t("scanners.url_hint")),
      field(t("scanners.auth"), auth),
      credentialField,
      skipVerify.element,
      internal.element,
      h("div", { class: "test-connection" },
        h("button", { type: "button", onclick: testConnection }, t("scanners.test_connection")), result)),
    async () => {
      if (editing) {
        await send("PUT", harbor(`/scanners/${existing.uuid}`), settings());
        notify(t("common.saved"));
      } else {
        await send("POST", harbor("/scanners"), settings());
        notify(t("scanners.registered", { name: name.value.trim() }));
      }
      ctx.redraw();
    }, editing ? t("common.save") : t("scanners.add")));
}
