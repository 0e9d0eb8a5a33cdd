// User groups (system administrators): Harbor's /api/v2.0/usergroups — an LDAP group named by its
// DN, or an OIDC group named as the provider's groups claim names it — searched by name (?name=)
// and paged (?page=). Add, rename (LDAP groups), delete (after asking: its project memberships go
// with it). A group is made a project member in the project's Members tab.
import { get, harbor, send, withParams } from "../api.js";
import {
  badge, confirmDialog, errorBox, field, formDialog, h, link, mount, notify, pager, refusal, rowActions, select, table,
} from "../dom.js";
import { known, t } from "../i18n.js";

export const catalogs = ["groups"];
export const requiresLogin = true;

const PAGE_SIZE = 15;
export const LDAP_GROUP = 1;
export const OIDC_GROUP = 3;

export function groupTypeLabel(type) {
  return known(`groups.type_${type}`, String(type));
}

const address = (params) => withParams("/ui/groups", params);

export async function render(view, ctx) {
  if (!ctx.user?.sysadmin_flag) {
    mount(view, refusal(t("groups.title"), t("groups.admins_only"), link("/ui/projects", t("groups.back_to_projects"))));
    return;
  }
  const name = ctx.params.get("name") || "";
  const page = Math.max(1, Number.parseInt(ctx.params.get("page") || "1", 10) || 1);
  const search = h("input", { type: "search", name: "name", value: name, placeholder: t("groups.search_placeholder") });
  const problem = h("div");
  const list = h("div");
  const form = h("form", { class: "toolbar", role: "search" },
    field(t("groups.search_label"), search),
    h("button", { type: "submit" }, t("common.search")),
    h("span", { class: "grow" }),
    h("button", { type: "button", class: "primary", onclick: () => addGroup(ctx) }, t("groups.new")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.navigate(address({ name: search.value.trim() }));
  });
  mount(view, h("h1", {}, t("groups.title")), h("p", { class: "intro" }, t("groups.intro")), form, problem, list);
  const { data, total } = await get(harbor("/usergroups"), { group_name: name, page, page_size: PAGE_SIZE });
  mount(list,
    table({
      caption: t("groups.caption", { count: total ?? data.length }),
      empty: name ? t("groups.none_matching", { name }) : t("groups.none"),
      rows: data,
      columns: [
        { label: t("groups.name"), render: (g) => h("div", {}, h("strong", { class: "group-name" }, g.group_name),
          g.ldap_group_dn && g.ldap_group_dn !== g.group_name ? h("small", { class: "show-narrow mono" }, g.ldap_group_dn) : null) },
        { label: t("groups.type"), render: (g) => badge(groupTypeLabel(g.group_type), "run") },
        { label: t("groups.ldap_dn"), class: "mono hide-narrow", render: (g) => g.ldap_group_dn || "—" },
        { label: t("common.actions"), render: (g) => rowActions(...actions(ctx, g, problem)) },
      ],
    }),
    pager({ total: total ?? 0, page, size: PAGE_SIZE, onChange: (next) => ctx.navigate(address({ name, page: next })) }));
}

function actions(ctx, group, problem) {
  const named = (key) => t(key, { name: group.group_name });
  return [
    // An OIDC group's name is what the provider's claim says: only an LDAP group (named by its DN) is renamed.
    group.group_type === LDAP_GROUP && h("button", { type: "button", "aria-label": named("groups.rename_named"),
      onclick: () => renameGroup(ctx, group) }, t("groups.rename")),
    h("button", {
      type: "button", class: "danger", "aria-label": named("groups.delete_named"),
      onclick: async () => {
        if (!await confirmDialog(named("groups.delete_confirm"))) return;
        mount(problem);
        try {
          await send("DELETE", harbor(`/usergroups/${group.id}`));
          notify(t("common.deleted", { name: group.group_name }));
          ctx.redraw();
        } catch (error) {
          mount(problem, errorBox(error));
        }
      },
    }, t("common.delete")),
  ];
}

function addGroup(ctx) {
  const type = select([[LDAP_GROUP, groupTypeLabel(LDAP_GROUP)], [OIDC_GROUP, groupTypeLabel(OIDC_GROUP)]],
    { name: "group_type", value: LDAP_GROUP });
  const dn = h("input", { type: "text", name: "ldap_group_dn", class: "mono", autocomplete: "off", maxlength: "1024",
    placeholder: "cn=devs,ou=groups,dc=example,dc=org" });
  const dnField = field(t("groups.ldap_dn"), dn, t("groups.ldap_dn_hint"));
  const name = h("input", { type: "text", name: "group_name", autocomplete: "off", maxlength: "255" });
  const nameField = field(t("groups.name"), name);
  const hint = h("small", { id: `${name.id}-hint` });
  name.setAttribute("aria-describedby", hint.id);
  nameField.append(hint);
  const sync = () => {
    const ldap = Number(type.value) === LDAP_GROUP;
    dnField.hidden = !ldap;
    dn.required = ldap;
    name.required = !ldap;
    mount(hint, t(ldap ? "groups.name_hint_ldap" : "groups.name_hint_oidc"));
  };
  type.addEventListener("change", sync);
  sync();
  const dialog = formDialog(t("groups.new"), () => h("div", { class: "fields" },
    field(t("groups.type"), type), dnField, nameField),
  async () => {
    const ldap = Number(type.value) === LDAP_GROUP;
    const body = { group_type: Number(type.value), group_name: name.value.trim() };
    if (ldap) body.ldap_group_dn = dn.value.trim();
    await send("POST", harbor("/usergroups"), body);
    notify(t("groups.added", { name: body.group_name || body.ldap_group_dn }));
    ctx.redraw();
  }, t("groups.add"));
  dialog.classList.add("fitted");
}

function renameGroup(ctx, group) {
  const name = h("input", { type: "text", name: "group_name", required: true, autocomplete: "off", maxlength: "255",
    value: group.group_name });
  const dialog = formDialog(t("groups.rename_named", { name: group.group_name }), () => h("div", { class: "fields" },
    field(t("groups.new_name"), name, t("groups.rename_hint"))),
  async () => {
    await send("PUT", harbor(`/usergroups/${group.id}`), { group_name: name.value.trim() });
    notify(t("groups.renamed", { name: name.value.trim() }));
    ctx.redraw();
  }, t("groups.rename"));
  dialog.classList.add("fitted");
}
