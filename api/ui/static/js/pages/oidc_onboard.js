// The first login through the OpenID Connect provider, when accounts are not created on their own
// (oidc_auto_onboard off): the person chooses their Portlog username (the provider's is suggested,
// ?username=) and POST /c/oidc/onboard creates the account and signs them in. The login's details
// travel in a short cookie the callback set; a refused name can be chosen again.
import { errorBox, field, h, mount } from "../dom.js";
import { t } from "../i18n.js";
import { forgetUser } from "../session.js";

export const catalogs = ["login"];

async function onboard(username) {
  const response = await fetch("/c/oidc/onboard", {
    method: "POST", credentials: "same-origin", body: JSON.stringify({ username }),
    headers: { "Content-Type": "application/json", "X-Requested-With": "XMLHttpRequest" },
  });
  let body = {};
  try { body = await response.json(); } catch { /* no JSON: the status says it */ }
  if (!response.ok) throw new Error(body.detail || body.errors?.[0]?.message || response.statusText);
  return body;
}

export async function render(view, ctx) {
  const username = h("input", { type: "text", name: "username", autocomplete: "username", required: true,
    maxlength: "255", pattern: "[a-zA-Z0-9][a-zA-Z0-9._@\\-]*", value: ctx.params.get("username") || "" });
  const problem = h("div");
  const form = h("form", {},
    h("p", { class: "muted" }, t("login.onboard_intro")),
    field(t("login.username"), username, t("login.onboard_hint")),
    problem,
    h("button", { type: "submit", class: "primary" }, t("login.onboard_submit")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    mount(problem);
    try {
      const answer = await onboard(username.value.trim());
      forgetUser();
      const next = answer.redirect;
      ctx.navigate(next && next.startsWith("/ui/") ? next : "/ui/projects", { replace: true });
    } catch (error) {
      mount(problem, errorBox(error));
      username.select();
    }
  });
  mount(view, h("section", { class: "login" }, h("h1", {}, t("login.onboard_title")), form));
  username.focus();
}
