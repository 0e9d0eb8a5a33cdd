// The project page's tab: members and their roles.
import { get, harbor, send } from "../../api.js";
import { confirmDialog, field, formDialog, h, mount, notify, pager, rowActions, select, table } from "../../dom.js";
import { t } from "../../i18n.js";
import { attempt, button } from "./shared.js";

const ROLES = [[1, "role_1"], [4, "role_4"], [2, "role_2"], [3, "role_3"], [5, "role_5"]];  // most privileged first

export async function drawMembers(body, page, number = 1) {
  const { data, total } = await get(harbor(`/projects/${page.id}/members`), { page: number, page_size: 50 });
  if (!page.current()) return;
  const problem = h("div");
  const canUpdate = page.can("member", "update");
  const canDelete = page.can("member", "delete");
  const me = page.user?.username;
  const roleCell = (member) => {
    if (!canUpdate || member.entity_name === me) return t(`project.role_${member.role_id}`);
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
      button(t("project.add_member"), () => addMember(page), { kind: "primary" })) : null,
    problem,
    table({
      caption: t("project.members_caption", { total: total ?? data.length }),
      empty: page.can("member", "create") ? t("project.members_none_admin") : t("project.members_none"),
      rows: data,
      columns: [
        { label: t("project.member_name"), render: (member) => member.entity_name },
        { label: t("project.role"), render: roleCell },
        ...(canDelete ? [{ label: t("common.actions"), render: (member) => rowActions(member.entity_name !== me && button(
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
