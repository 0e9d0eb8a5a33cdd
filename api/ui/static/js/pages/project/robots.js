// The project page's tab: project robot accounts (a new secret is shown once).
import { get, harbor, send } from "../../api.js";
import {
  badge, checkbox, confirmDialog, copyButton, field, formatTime, formDialog, h, mount, notify, pager, rowActions, table,
} from "../../dom.js";
import { t } from "../../i18n.js";
import { attempt, button, PAGE_SIZE } from "./shared.js";

function robotAccess(robot) {
  const access = robot.permissions.flatMap((p) => p.access || []);
  return access.map((a) => (a.resource === "repository" && (a.action === "pull" || a.action === "push")
    ? t(`project.robot_${a.action}`) : `${a.resource}:${a.action}`)).join(", ") || "—";
}

function robotExpiry(robot) {
  if (robot.expires_at === -1 || robot.expires_at === null || robot.expires_at === undefined) return t("project.never");
  const expired = robot.expires_at * 1000 < Date.now();
  return h("span", {}, formatTime(robot.expires_at), expired ? [" ", badge(t("project.expired"), "bad")] : null);
}

export async function drawRobots(body, page, number = 1) {
  const { data, total } = await get(harbor("/robots"), { q: `Level=project,ProjectID=${page.id}`, page: number, page_size: PAGE_SIZE });
  if (!page.current()) return;
  const problem = h("div");
  const canUpdate = page.can("robot", "update");
  const canDelete = page.can("robot", "delete");
  const canCreate = page.can("robot", "create");
  mount(body,
    canCreate ? h("div", { class: "toolbar" }, h("span", { class: "grow" }),
      button(t("project.new_robot"), () => createRobot(page), { kind: "primary" })) : null,
    problem,
    table({
      caption: t("project.robots_caption", { total: total ?? data.length }),
      empty: canCreate ? t("project.robots_none_admin") : t("project.robots_none"),
      rows: data,
      columns: [
        { label: t("common.name"), class: "mono", render: (robot) => robot.name },
        { label: t("project.robot_permissions"), render: robotAccess },
        { label: t("common.status"), render: (robot) => (robot.disable ? badge(t("project.disabled"), "bad") : badge(t("project.enabled"), "ok")) },
        { label: t("project.expires"), class: "hide-narrow", render: robotExpiry },
        { label: t("common.created"), class: "hide-narrow", render: (robot) => formatTime(robot.creation_time) },
        ...(canUpdate || canDelete ? [{ label: t("common.actions"), render: (robot) => rowActions(
          canUpdate && button(robot.disable ? t("project.enable") : t("project.disable"),
            () => attempt(problem, async () => {
              await send("PUT", harbor(`/robots/${robot.id}`), { ...robot, disable: !robot.disable });
              notify(t(robot.disable ? "project.robot_enabled" : "project.robot_disabled", { name: robot.name }));
              page.redraw();
            }), { name: t(robot.disable ? "project.enable_named" : "project.disable_named", { name: robot.name }) }),
          canDelete && button(t("common.delete"), () => deleteRobot(page, robot, problem),
            { kind: "danger", name: t("project.delete_named", { name: robot.name }) })) }] : []),
      ],
    }),
    pager({ total: total ?? 0, page: number, size: PAGE_SIZE, onChange: (next) => drawRobots(body, page, next) }));
}

function createRobot(page) {
  const name = h("input", { type: "text", name: "robot_name", required: true, autocomplete: "off",
    pattern: "[a-z0-9]+(?:[._\\-][a-z0-9]+)*", maxlength: "100" });
  const description = h("input", { type: "text", name: "description", autocomplete: "off" });
  const days = h("input", { type: "number", name: "duration", min: "-1", step: "1", value: "30", required: true });
  const pull = checkbox(t("project.robot_pull"), { name: "pull", checked: true });
  const push = checkbox(t("project.robot_push"), { name: "push" });
  let created = null;
  formDialog(t("project.new_robot"), () => h("div", { class: "fields" },
    field(t("project.robot_name"), name, t("project.robot_name_hint", { project: page.name })),
    field(t("project.description"), description),
    field(t("project.robot_days"), days, t("project.robot_days_hint")),
    h("fieldset", {}, h("legend", {}, t("project.robot_permissions")), pull.element, push.element)),
  async () => {
    const access = [pull.input.checked && "pull", push.input.checked && "push"].filter(Boolean)
      .map((action) => ({ resource: "repository", action }));
    if (!access.length) throw new Error(t("project.robot_needs_permission"));
    const duration = Number(days.value);
    if (!Number.isInteger(duration) || duration === 0 || duration < -1) throw new Error(t("project.robot_days_invalid"));
    created = await send("POST", harbor("/robots"), {
      name: name.value.trim(), description: description.value.trim(), level: "project", duration, disable: false,
      permissions: [{ kind: "project", namespace: page.name, access }] });
    page.redraw();
    // After this form's dialog has closed, so that the secret's dialog keeps the focus.
    setTimeout(() => showSecret(created), 0);
  }, t("common.create"));
}

function showSecret(robot) {
  const dialog = h("dialog", { "aria-labelledby": "secret-title", class: "secret-dialog" });
  const nameBox = h("input", { type: "text", readonly: true, value: robot.name, class: "mono" });
  const secretBox = h("input", { type: "text", readonly: true, value: robot.secret, class: "mono", name: "secret" });
  const done = h("button", { type: "submit", class: "primary" }, t("project.secret_done"));
  mount(dialog, h("form", { method: "dialog" },
    h("h2", { id: "secret-title" }, t("project.robot_created", { name: robot.name })),
    h("p", { class: "warning" }, t("project.secret_once")),
    field(t("project.robot_full_name"), nameBox),
    field(t("project.robot_secret"), secretBox),
    h("div", { class: "actions" }, copyButton(robot.secret, t("project.copy_secret")), done)));
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  secretBox.select();
}

async function deleteRobot(page, robot, problem) {
  if (!await confirmDialog(t("project.delete_robot_confirm", { name: robot.name }), t("common.delete"))) return;
  await attempt(problem, async () => {
    await send("DELETE", harbor(`/robots/${robot.id}`));
    notify(t("common.deleted", { name: robot.name }));
    page.redraw();
  });
}
