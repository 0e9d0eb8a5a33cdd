// The signed-in user's profile (GET /api/v2.0/users/current): who they are and where their account
// comes from. An OpenID Connect user also gets their CLI secret (`oidc_user_meta.secret`, for docker
// login and skopeo, which cannot go through the provider): hidden until asked for, copied, or
// replaced (PUT /users/{id}/cli_secret) — the old one stops working at once.
import { get, harbor, send } from "../api.js";
import { badge, copyButton, field, formatTime, formDialog, h, mount, notify } from "../dom.js";
import { t } from "../i18n.js";
import { sourceLabel, sourceOf } from "./users.js";

export const catalogs = ["profile", "users"];
export const requiresLogin = true;

const HIDDEN = "••••••••••••••••";

export async function render(view, ctx) {
  const { data: me } = await get(harbor("/users/current"));
  const secret = me.oidc_user_meta?.secret;
  mount(view,
    h("h1", {}, t("profile.title")),
    h("dl", { class: "facts" },
      h("dt", {}, t("users.username")), h("dd", {}, me.username),
      h("dt", {}, t("users.email")), h("dd", {}, me.email || "—"),
      me.realname ? [h("dt", {}, t("profile.realname")), h("dd", { class: "text" }, me.realname)] : null,
      h("dt", {}, t("users.auth_source")), h("dd", {}, badge(sourceLabel(sourceOf(me)), sourceOf(me) === "db" ? "" : "run")),
      h("dt", {}, t("users.admin")), h("dd", {}, me.sysadmin_flag ? badge(t("users.admin_badge"), "ok") : t("common.no")),
      h("dt", {}, t("common.created")), h("dd", {}, formatTime(me.creation_time))),
    secret ? cliSecret(ctx, me, secret) : null);
}

function cliSecret(ctx, me, secret) {
  const shown = h("code", { class: "cli-secret mono", "aria-live": "polite" }, HIDDEN);
  const toggle = h("button", { type: "button", "aria-pressed": "false" }, t("profile.show"));
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-pressed") !== "true";
    toggle.setAttribute("aria-pressed", String(open));
    mount(shown, open ? secret : HIDDEN);
    mount(toggle, t(open ? "profile.hide" : "profile.show"));
  });
  return h("section", { class: "card", "aria-labelledby": "cli-secret-title" },
    h("h2", { id: "cli-secret-title" }, t("profile.cli_secret")),
    h("p", { class: "muted" }, t("profile.cli_secret_intro", { username: me.username })),
    h("div", { class: "secret-row" }, shown, toggle, copyButton(secret, t("profile.copy_secret")),
      h("button", { type: "button", class: "danger", onclick: () => regenerate(ctx, me) }, t("profile.regenerate"))));
}

// A random secret the password rule accepts: 32 letters and digits with each kind present.
function newSecret() {
  const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  for (;;) {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    const text = Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
    if (/[a-z]/.test(text) && /[A-Z]/.test(text) && /[0-9]/.test(text)) return text;
  }
}

function regenerate(ctx, me) {
  const input = h("input", { type: "text", name: "secret", class: "mono", required: true, minlength: "8", maxlength: "128",
    autocomplete: "off", value: newSecret() });
  const dialog = formDialog(t("profile.regenerate_title"), () => h("div", { class: "fields" },
    h("p", { class: "warning" }, t("profile.regenerate_warning")),
    field(t("profile.new_secret"), input, t("profile.new_secret_hint"))),
  async () => {
    await send("PUT", harbor(`/users/${me.user_id}/cli_secret`), { secret: input.value });
    notify(t("profile.regenerated"));
    ctx.redraw();
  }, t("profile.regenerate"));
  dialog.classList.add("fitted", "secret-dialog");
}
