// Users (system administrators): Harbor's /api/v2.0/users, searched by name (?q=) and paged
// (?page=), with where each account comes from (auth_source: local, LDAP or OIDC). Local users are
// created here only while the authentication mode is the database's (db_auth): otherwise the
// directory or the provider onboards people at their first login. Set or unset administrator,
// reset a local password, delete (after asking).
import { get, harbor, send, withParams } from "../api.js";
import {
  attempt, badge, checkbox, confirmDialog, field, formatTime, formDialog, h, link, mount, notify, pager, refusal,
  rowActions, table,
} from "../dom.js";
import { known, t } from "../i18n.js";

export const catalogs = ["users"];
export const requiresLogin = true;

const PAGE_SIZE = 15;
const LOCAL = "db";

// A user's auth source as the page names it ("db" when the server says nothing: a local account).
export function sourceOf(user) {
  return user.auth_source || LOCAL;
}

export function sourceLabel(source) {
  return known(`users.source_${source}`, source);
}

const sourceBadge = (user) => badge(sourceLabel(sourceOf(user)), sourceOf(user) === LOCAL ? "" : "run");
const adminBadge = () => badge(t("users.admin_badge"), "ok");

const address = (params) => withParams("/ui/users", params);

export async function render(view, ctx) {
  if (!ctx.user?.sysadmin_flag) {
    mount(view, refusal(t("users.title"), t("users.admins_only"), link("/ui/projects", t("users.back_to_projects"))));
    return;
  }
  const name = ctx.params.get("name") || "";
  const page = Math.max(1, Number.parseInt(ctx.params.get("page") || "1", 10) || 1);
  const search = h("input", { type: "search", name: "name", value: name, placeholder: t("users.search_placeholder") });
  const problem = h("div");
  const note = h("div");
  const list = h("div");
  const create = h("button", { type: "button", class: "primary", onclick: () => createUser(ctx) }, t("users.new"));
  const form = h("form", { class: "toolbar", role: "search" },
    field(t("users.search_label"), search),
    h("button", { type: "submit" }, t("common.search")),
    h("span", { class: "grow" }),
    create);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.navigate(address({ name: search.value.trim() }));
  });
  mount(view, h("h1", {}, t("users.title")), h("p", { class: "intro" }, t("users.intro")), form, note, problem, list);
  const [{ data, total }, mode] = await Promise.all([
    get(harbor("/users"), { q: name ? `username=~${name}` : null, page, page_size: PAGE_SIZE, sort: "username" }),
    authMode(),
  ]);
  if (mode !== "db_auth") {
    create.remove();
    mount(note, h("p", { class: "muted users-mode" }, t("users.created_elsewhere", { mode: known(`users.mode_${mode}`, mode) })));
  }
  mount(list,
    table({
      caption: t("users.caption", { count: total ?? data.length }),
      empty: name ? t("users.none_matching", { name }) : t("users.none"),
      rows: data,
      columns: [
        { label: t("users.username"), render: (u) => h("span", { class: "user-name" }, h("strong", {}, u.username),
          u.username === ctx.user.username ? [" ", badge(t("users.you"))] : null,
          // On a phone the source and administrator columns are left out: their badges come here.
          h("span", { class: "show-narrow user-badges" }, sourceBadge(u), " ", u.sysadmin_flag ? adminBadge() : null)) },
        { label: t("users.email"), class: "hide-narrow wrap", render: (u) => u.email || "—" },
        { label: t("users.auth_source"), class: "hide-narrow", render: sourceBadge },
        { label: t("users.admin"), class: "hide-narrow", render: (u) => (u.sysadmin_flag ? adminBadge() : t("common.no")) },
        { label: t("common.created"), class: "hide-narrow", render: (u) => formatTime(u.creation_time) },
        { label: t("common.actions"), render: (u) => rowActions(...actions(ctx, u, problem)) },
      ],
    }),
    pager({ total: total ?? 0, page, size: PAGE_SIZE, onChange: (next) => ctx.navigate(address({ name, page: next })) }));
}

// The authentication mode: the page offers "New user" for the database's mode only.
async function authMode() {
  try {
    return (await get(harbor("/configurations"))).data.auth_mode.value;
  } catch {
    return "db_auth";  // the API still refuses what the mode forbids
  }
}

function actions(ctx, user, problem) {
  const self = user.username === ctx.user.username;
  const named = (key) => t(key, { name: user.username });
  const run = (action, done) => attempt(problem, async () => {
    await action();
    notify(done);
    ctx.redraw();
  });
  return [
    !self && h("button", {
      type: "button", "aria-label": named(user.sysadmin_flag ? "users.unset_admin_named" : "users.set_admin_named"),
      onclick: () => run(() => send("PUT", harbor(`/users/${user.user_id}/sysadmin`), { sysadmin_flag: !user.sysadmin_flag }),
        named(user.sysadmin_flag ? "users.admin_unset" : "users.admin_set")),
    }, t(user.sysadmin_flag ? "users.unset_admin" : "users.set_admin")),
    sourceOf(user) === LOCAL && h("button", {
      type: "button", "aria-label": named("users.reset_password_named"), onclick: () => resetPassword(user),
    }, t("users.reset_password")),
    !self && h("button", {
      type: "button", class: "danger", "aria-label": named("users.delete_named"),
      onclick: async () => {
        if (!await confirmDialog(named("users.delete_confirm"))) return;
        await run(() => send("DELETE", harbor(`/users/${user.user_id}`)), t("common.deleted", { name: user.username }));
      },
    }, t("common.delete")),
  ];
}

function passwordPair() {
  const password = h("input", { type: "password", name: "password", required: true, autocomplete: "new-password",
    minlength: "8", maxlength: "128" });
  const again = h("input", { type: "password", name: "password_again", required: true, autocomplete: "new-password" });
  const matches = () => {
    again.setCustomValidity(again.value === password.value ? "" : t("users.passwords_differ"));
  };
  password.addEventListener("input", matches);
  again.addEventListener("input", matches);
  return {
    password, again,
    fields: [field(t("users.password"), password, t("users.password_hint")), field(t("users.password_again"), again)],
  };
}

function createUser(ctx) {
  const username = h("input", { type: "text", name: "username", required: true, maxlength: "255", autocomplete: "off",
    pattern: "[a-zA-Z0-9][a-zA-Z0-9._@\\-]*" });
  const email = h("input", { type: "email", name: "email", autocomplete: "off" });
  const pair = passwordPair();
  const admin = checkbox(t("users.make_admin"), { name: "sysadmin_flag" });
  const dialog = formDialog(t("users.new"), () => h("div", { class: "fields" },
    field(t("users.username"), username, t("users.username_hint")),
    field(t("users.email"), email),
    pair.fields,
    admin.element),
  async () => {
    const body = { username: username.value.trim(), email: email.value.trim(), password: pair.password.value,
      sysadmin_flag: admin.input.checked };
    await send("POST", harbor("/users"), body);
    notify(t("users.created", { name: body.username }));
    ctx.redraw();
  }, t("common.create"));
  dialog.classList.add("fitted");
}

function resetPassword(user) {
  const pair = passwordPair();
  const dialog = formDialog(t("users.reset_password_named", { name: user.username }), () => h("div", { class: "fields" },
    h("p", { class: "muted" }, t("users.reset_password_intro")), pair.fields),
  async () => {
    await send("PUT", harbor(`/users/${user.user_id}/password`), { new_password: pair.password.value });
    notify(t("users.password_reset", { name: user.username }));
  }, t("users.reset_password"));
  dialog.classList.add("fitted");
}
