import { errorBox, field, h, mount } from "../dom.js";
import { t } from "../i18n.js";
import { login } from "../session.js";

export const catalogs = ["login"];

export async function render(view, ctx) {
  const username = h("input", { type: "text", name: "username", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const problem = h("div");
  const form = h("form", {},
    field(t("login.username"), username),
    field(t("login.password"), password),
    problem,
    h("button", { type: "submit", class: "primary" }, t("login.submit")));
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
  mount(view, h("section", { class: "login" }, h("h1", {}, t("login.title")), form));
  username.focus();
}
