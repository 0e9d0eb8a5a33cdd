// The project page's tab: members and their roles — users, and user groups (entity_type "g": an
// LDAP or OIDC group whose people hold its role, added by its id from the groups list).
import { get, harbor, send } from "../../api.js";
import { badge, confirmDialog, field, formDialog, h, mount, notify, pager, rowActions, select, table } from "../../dom.js";
import { known, t } from "../../i18n.js";
import { attempt, button } from "./shared.js";

const ROLES = [[1, "role_1"], [4, "role_4"], [2, "role_2"], [3, "role_3"], [5, "role_5"]];  // most privileged first

export async function drawMembers(body, page, number = 1) {
  const { data, total } = await get(harbor(`/projects/${page.id}/members`), { page: number, page_size: 50 });
  if (!page.current()) return;
  const problem = h("div");
  const canUpdate = page.can("member", "update");
  const canDelete = page.can("member", "delete");
  const isMe = (member) => !isGroup(member) && member.entity_name === page.user?.username;
  const roleCell = (member) => {
    if (!canUpdate || isMe(member)) return t(`project.role_${member.role_id}`);
    const chooser = select(ROLES.map(([id, key]) => [id, t(`project.${key}`)]),
      { value: member.role_id, "aria-label": t("project.role_of", { name: member.entity_name }) });
    chooser.addEventListener("change", () => attempt(problem, async () => {
      try {
        await send("PUT", harbor(`/projects/${page.id}/members/${member.id}`), { role_id: Number(chooser.value) });
      } catch (error) {
        chooser.value = String(member.role_id);
        throw error;
      }
      member.role_id = Number(chooser.value);
      notify(t("project.role_changed", { name: member.entity_name, role: t(`project.role_${member.role_id}`) }));
    }));
    return chooser;
  };
  mount(body,
    page.can("member", "create") ? h("div", { class: "toolbar" }, h("span", { class: "grow" }),
      button(t("project.add_group"), () => addGroup(page)),
      button(t("project.add_member"), () => addMember(page), { kind: "primary" })) : null,
    problem,
    table({
      caption: t("project.members_caption", { total: total ?? data.length }),
      empty: page.can("member", "create") ? t("project.members_none_admin") : t("project.members_none"),
      rows: data,
      columns: [
        { label: t("project.member_name"), render: memberName },
        { label: t("project.role"), render: roleCell },
        ...(canDelete ? [{ label: t("common.actions"), render: (member) => rowActions(!isMe(member) && button(
          t("project.remove"), () => removeMember(page, member, problem),
          { kind: "danger", name: t("project.remove_member", { name: member.entity_name }) })) }] : []),
      ],
    }),
    pager({ total: total ?? 0, page: number, size: 50, onChange: (next) => drawMembers(body, page, next) }));
}

function addMember(page) {
  const options = h("datalist", { id: "member-suggestions" });
  const username = h("input", { type: "text", name: "username", required: true, autocomplete: "off", list: "member-suggestions" });
  let asked = 0;
  username.addEventListener("input", async () => {
    const text = username.value.trim();
    const mine = ++asked;
    if (text.length < 2) return;
    try {
      const { data } = await get(harbor("/users/search"), { username: text, page_size: 10 });
      if (mine === asked) mount(options, data.map((user) => h("option", { value: user.username })));
    } catch { /* suggestions are a convenience: typing the name still works */ }
  });
  const role = select(ROLES.map(([id, key]) => [id, t(`project.${key}`)]), { name: "role_id", value: 3 });
  formDialog(t("project.add_member"), () => h("div", { class: "fields" },
    field(t("project.username"), username, t("project.username_hint")), options,
    field(t("project.role"), role)),
  async () => {
    const name = username.value.trim();
    await send("POST", harbor(`/projects/${page.id}/members`), { member_user: { username: name }, role_id: Number(role.value) });
    notify(t("project.member_added", { name, role: t(`project.role_${role.value}`) }));
    page.redraw();
  }, t("project.add"));
}

async function removeMember(page, member, problem) {
  if (!await confirmDialog(t("project.remove_member_confirm", { name: member.entity_name }), t("project.remove"))) return;
  await attempt(problem, async () => {
    await send("DELETE", harbor(`/projects/${page.id}/members/${member.id}`));
    notify(t("project.member_removed", { name: member.entity_name }));
    page.redraw();
  });
}

const isGroup = (member) => member.entity_type === "g";

function memberName(member) {
  if (!isGroup(member)) return member.entity_name;
  return h("span", { class: "member-group" }, h("span", { class: "member-group-name" }, member.entity_name), " ",
    badge(t("project.group_marker"), "run", t("project.group_marker_title")));
}

const groupType = (type) => known(`project.group_type_${type}`, String(type));

// The groups a member can be made of: the whole list for system administrators, else those the
// search finds (Harbor's /usergroups/search answers any project administrator).
async function groupChoices(text) {
  if (text === undefined) return (await get(harbor("/usergroups"), { page_size: 100 })).data;
  return (await get(harbor("/usergroups/search"), { groupname: text, page_size: 20 })).data;
}

async function addGroup(page) {
  let groups = null;
  try {
    groups = await groupChoices();
  } catch { /* not a system administrator: search by name instead */ }
  const role = select(ROLES.map(([id, key]) => [id, t(`project.${key}`)]), { name: "role_id", value: 3 });
  const picker = groups ? groupSelect(groups) : groupSearch();
  formDialog(t("project.add_group"), () => h("div", { class: "fields" }, picker.element, field(t("project.role"), role)),
    async () => {
      const group = await picker.chosen();
      await send("POST", harbor(`/projects/${page.id}/members`), { member_group: { id: group.id }, role_id: Number(role.value) });
      notify(t("project.member_added", { name: group.group_name, role: t(`project.role_${role.value}`) }));
      page.redraw();
    }, t("project.add")).classList.add("fitted");
}

function groupSelect(groups) {
  if (!groups.length) {
    const none = h("div", { class: "error", role: "alert" }, t("project.no_groups"), " ",
      h("a", { href: "/ui/groups", "data-link": true }, t("project.manage_groups")));
    return { element: none, chosen: async () => { throw new Error(t("project.no_groups")); } };
  }
  const chooser = select(groups.map((g) => [g.id, `${g.group_name} (${groupType(g.group_type)})`]), { name: "group_id" });
  return {
    element: field(t("project.group"), chooser),
    chosen: async () => groups.find((g) => String(g.id) === chooser.value),
  };
}

function groupSearch() {
  const options = h("datalist", { id: "group-suggestions" });
  const name = h("input", { type: "text", name: "group_name", required: true, autocomplete: "off", list: "group-suggestions" });
  let found = [];
  let asked = 0;
  name.addEventListener("input", async () => {
    const text = name.value.trim();
    const mine = ++asked;
    if (!text) return;
    try {
      const data = await groupChoices(text);
      if (mine !== asked) return;
      found = data;
      mount(options, data.map((g) => h("option", { value: g.group_name }, groupType(g.group_type))));
    } catch { /* suggestions are a convenience */ }
  });
  return {
    element: h("div", {}, field(t("project.group"), name, t("project.group_hint")), options),
    chosen: async () => {
      const wanted = name.value.trim();
      const match = found.find((g) => g.group_name === wanted) || (await groupChoices(wanted)).find((g) => g.group_name === wanted);
      if (!match) throw new Error(t("project.group_not_found", { name: wanted }));
      return match;
    },
  };
}
