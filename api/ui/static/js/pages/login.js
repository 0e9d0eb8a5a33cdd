// The login page: the local form (always: the administrator logs in with it whatever the mode)
// and, when people log in through an OpenID Connect provider, a "Log in via <provider>" link to
// /c/oidc/login above it. The mode comes from the anonymous GET /c/login/options.
import { get } from "../api.js";
import { errorBox, field, h, mount } from "../dom.js";
import { t } from "../i18n.js";
import { login } from "../session.js";

export const catalogs = ["login"];

async function loginOptions() {
  try {
    return (await get("/c/login/options")).data || {};
  } catch {
    return {};  // the local form still works
  }
}

export async function render(view, ctx) {
  const options = await loginOptions();
  const username = h("input", { type: "text", name: "username", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const problem = h("div");
  const form = h("form", {},
    field(t("login.username"), username),
    field(t("login.password"), password),
    problem,
    h("button", { type: "submit", class: options.auth_mode === "oidc_auth" ? null : "primary" }, t("login.submit")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await login(username.value, password.value);
      const next = ctx.params.get("next");
      ctx.navigate(next && next.startsWith("/ui/") ? next : "/ui/projects", { replace: true });
    } catch (error) {
      mount(problem, errorBox(error));
      password.select();
    }
  });
  const sso = options.auth_mode === "oidc_auth" ? h("div", { class: "sso" },
    // A full page load: the provider's login page, then the callback, set the session.
    h("a", { href: "/c/oidc/login", class: "button primary" },
      options.oidc_name ? t("login.via", { name: options.oidc_name }) : t("login.via_sso")),
    h("p", { class: "or", role: "separator" }, h("span", {}, t("login.or_local")))) : null;
  mount(view, h("section", { class: "login" }, h("h1", {}, t("login.title")), sso, form));
  if (!sso) username.focus();
}
