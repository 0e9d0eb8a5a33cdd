// The system configuration (system administrators): Harbor's /api/v2.0/configurations. How people
// log in (auth_mode, the LDAP and OIDC settings) and two system settings (who may create
// projects, robots' default lifetime). Each field says where its value comes from; the keys the
// operator pinned (config file, PORTLOG_* variable) are shown disabled, saying so. Secrets are
// write-only: the API never answers them (has_value says one is set), the page sends one only when
// typed. Save sends the keys changed, nothing else; "Test LDAP connection" asks /ldap/ping with the
// form's LDAP values (the stored bind password when none is typed).
import { get, harbor, send } from "../api.js";
import { errorBox, field, h, link, mount, notify, refusal, select } from "../dom.js";
import { known, t } from "../i18n.js";

export const catalogs = ["configuration"];
export const requiresLogin = true;

const SCOPES = [0, 1, 2];
const LDAP_KEYS = ["ldap_url", "ldap_search_dn", "ldap_search_password", "ldap_base_dn", "ldap_filter", "ldap_uid",
  "ldap_scope", "ldap_timeout", "ldap_verify_cert", "ldap_start_tls", "ldap_ca_file"];
const LDAP_GROUP_KEYS = ["ldap_group_base_dn", "ldap_group_search_filter", "ldap_group_attribute_name",
  "ldap_group_membership_attribute", "ldap_group_admin_dn", "ldap_group_search_scope"];
const OIDC_KEYS = ["oidc_name", "oidc_endpoint", "oidc_client_id", "oidc_client_secret", "oidc_scope", "oidc_user_claim",
  "oidc_groups_claim", "oidc_admin_group", "oidc_verify_cert", "oidc_auto_onboard"];
const SYSTEM_KEYS = ["project_creation_restriction", "robot_token_duration"];
// How each key is edited (text unless named here).
const KINDS = {
  auth_mode: ["choice", ["db_auth", "ldap_auth", "oidc_auth"]],
  ldap_scope: ["scope"], ldap_group_search_scope: ["scope"],
  ldap_timeout: ["number", 1, 300], robot_token_duration: ["number", 1, 36500],
  ldap_verify_cert: ["bool"], ldap_start_tls: ["bool"], oidc_verify_cert: ["bool"], oidc_auto_onboard: ["bool"],
  ldap_search_password: ["secret"], oidc_client_secret: ["secret"],
  project_creation_restriction: ["choice", ["everyone", "adminonly"]],
  ldap_url: ["text", "ldaps://ldap.example.org"], oidc_endpoint: ["text", "https://sso.example.org/realms/corp"],
};

export async function render(view, ctx) {
  if (!ctx.user?.sysadmin_flag) {
    mount(view, refusal(t("configuration.title"), t("configuration.admins_only"),
      link("/ui/projects", t("configuration.back_to_projects"))));
    return;
  }
  const { data } = await get(harbor("/configurations"));
  const controls = new Map();  // key -> {read(), changed()} of its control
  const control = (key) => {
    const made = makeControl(key, data[key] || { value: "", editable: false, source: "default" });
    controls.set(key, made);
    return made.element;
  };
  const problem = h("div");
  const pingResult = h("div", { class: "ping-result", "aria-live": "polite" });
  const mode = control("auth_mode");
  const ldap = h("fieldset", { class: "config-group" }, h("legend", {}, t("configuration.ldap")),
    h("div", { class: "config-fields" }, LDAP_KEYS.map(control)),
    h("h3", {}, t("configuration.ldap_groups")),
    h("div", { class: "config-fields" }, LDAP_GROUP_KEYS.map(control)),
    h("div", { class: "test-connection" },
      h("button", { type: "button", onclick: () => pingLdap(controls, pingResult) }, t("configuration.test_ldap")),
      pingResult));
  const oidc = h("fieldset", { class: "config-group" }, h("legend", {}, t("configuration.oidc")),
    h("div", { class: "config-fields" }, OIDC_KEYS.map(control)));
  const modeSelect = controls.get("auth_mode").input;
  const sync = () => {
    ldap.hidden = modeSelect.value !== "ldap_auth";
    oidc.hidden = modeSelect.value !== "oidc_auth";
  };
  modeSelect.addEventListener("change", sync);
  sync();
  const form = h("form", { class: "configuration" },
    h("section", { "aria-labelledby": "config-auth" },
      h("h2", { id: "config-auth" }, t("configuration.authentication")),
      h("div", { class: "config-fields" }, mode),
      ldap, oidc),
    h("section", { "aria-labelledby": "config-system" },
      h("h2", { id: "config-system" }, t("configuration.system")),
      h("div", { class: "config-fields" }, SYSTEM_KEYS.map(control))),
    h("div", { class: "config-actions" }, h("button", { type: "submit", class: "primary" }, t("common.save"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    mount(problem);
    const changes = {};
    for (const [key, made] of controls) if (made.changed()) changes[key] = made.read();
    if (!Object.keys(changes).length) {
      notify(t("configuration.nothing_changed"));
      return;
    }
    try {
      await send("PUT", harbor("/configurations"), changes);
      notify(t("configuration.saved", { count: Object.keys(changes).length }));
      ctx.redraw();
    } catch (error) {
      mount(problem, errorBox(error));
      problem.scrollIntoView({ block: "nearest" });
    }
  });
  mount(view, h("h1", {}, t("configuration.title")), h("p", { class: "intro" }, t("configuration.intro")), problem, form);
}

// Where a value comes from, in words: the default, saved here, or pinned by the operator.
function sourceText(entry) {
  if (entry.source === "default") return t("configuration.source_default");
  if (entry.source === "api") return t("configuration.source_api");
  const where = entry.source === "config file" ? t("configuration.config_file") : entry.source;
  return entry.editable ? t("configuration.source_other", { where }) : t("configuration.source_pinned", { where });
}

// A key's control: {element, input, read() -> the value to send, changed() -> whether to send it}.
function makeControl(key, entry) {
  const [kind, ...options] = KINDS[key] || ["text"];
  const label = t(`configuration.key_${key}`);
  const disabled = !entry.editable;
  const source = h("small", { class: `config-source${disabled ? " pinned" : ""}` }, sourceText(entry));
  const hintText = known(`configuration.hint_${key}`, "");
  let input, read, element;
  if (kind === "bool") {
    input = h("input", { type: "checkbox", name: key, checked: entry.value, disabled });
    read = () => input.checked;
    element = h("div", { class: "field config-check" }, h("label", { class: "check" }, input, label),
      hintText ? h("small", {}, hintText) : null, source);
  } else {
    if (kind === "choice") {
      input = select(options[0].map((value) => [value, t(`configuration.${key}_${value}`)]),
        { name: key, value: entry.value, disabled });
      read = () => input.value;
    } else if (kind === "scope") {
      input = select(SCOPES.map((value) => [value, t(`configuration.scope_${value}`)]), { name: key, value: entry.value, disabled });
      read = () => Number(input.value);
    } else if (kind === "number") {
      input = h("input", { type: "number", name: key, value: entry.value, min: options[0], max: options[1], step: "1",
        required: true, disabled });
      read = () => Number(input.value);
    } else if (kind === "secret") {
      // Never filled in: the API does not answer secrets. Typed means "set this one".
      input = h("input", { type: "password", name: key, autocomplete: "new-password", disabled,
        placeholder: entry.has_value ? t("configuration.unchanged") : t("configuration.not_set") });
      read = () => input.value;
    } else {
      input = h("input", { type: "text", name: key, value: entry.value ?? "", autocomplete: "off", disabled,
        placeholder: options[0] || null, class: key.includes("dn") || key.includes("filter") ? "mono" : null });
      read = () => input.value.trim();
    }
    element = field(label, input, hintText || null);
    element.append(source);
  }
  source.id = `${input.id || `f-${key}`}-source`;
  input.setAttribute("aria-describedby", [input.getAttribute("aria-describedby"), source.id].filter(Boolean).join(" "));
  element.classList.add(`config-${kind}`);
  const changed = kind === "secret" ? () => !disabled && input.value !== ""
    : () => !disabled && read() !== entry.value;
  return { element, input, read, changed };
}

async function pingLdap(controls, result) {
  const body = {};
  for (const key of [...LDAP_KEYS, ...LDAP_GROUP_KEYS]) {
    const made = controls.get(key);
    if (KINDS[key]?.[0] === "secret" && !made.input.value) continue;  // the stored one, server side
    body[key] = made.read();
  }
  mount(result, h("p", { class: "muted" }, t("configuration.testing")));
  try {
    const answer = await send("POST", harbor("/ldap/ping"), body);
    if (answer?.success === false) throw new Error(answer.message || t("configuration.ldap_failed"));
    mount(result, h("p", { class: "success" }, t("configuration.ldap_ok")));
  } catch (error) {
    mount(result, errorBox(t("configuration.ldap_failed_because", { reason: error.message })));
  }
}
