// The project page's tab: access level, scanning and pull policies (project/scanning.js), deletion.
import { harbor, send } from "../../api.js";
import { checkbox, confirmDialog, h, mount, notify } from "../../dom.js";
import { t } from "../../i18n.js";
import { scanningSections } from "./scanning.js";
import { attempt, button } from "./shared.js";

export async function drawSettings(body, page) {
  const problem = h("div");
  const isPublic = page.project.metadata?.public === "true";
  const sections = [problem];
  if (page.can("project", "update")) {
    const box = checkbox(t("project.make_public"), { name: "public", checked: isPublic });
    const form = h("form", { class: "card", "aria-labelledby": "access-title" },
      h("h2", { id: "access-title" }, t("project.access_title")),
      h("p", { class: "hint" }, t(isPublic ? "project.now_public" : "project.now_private")),
      box.element,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("common.save"))));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      attempt(problem, async () => {
        await send("PUT", harbor(`/projects/${page.id}`), { metadata: { public: box.input.checked ? "true" : "false" } });
        notify(t("common.saved"));
        page.ctx.redraw();
      });
    });
    sections.push(form);
  }
  sections.push(...await scanningSections(page));
  if (!page.current()) return;
  if (page.can("project", "delete")) {
    sections.push(h("section", { class: "card danger-zone", "aria-labelledby": "delete-title" },
      h("h2", { id: "delete-title" }, t("project.delete_title")),
      h("p", { class: "hint" }, t("project.delete_hint")),
      h("div", { class: "actions" }, button(t("project.delete_project"), async () => {
        if (!await confirmDialog(t("project.delete_project_confirm", { name: page.name }), t("project.delete_project"))) return;
        await attempt(problem, async () => {
          await send("DELETE", harbor(`/projects/${page.id}`));
          notify(t("common.deleted", { name: page.name }));
          page.ctx.navigate("/ui/projects");
        });
      }, { kind: "danger" }))));
  }
  mount(body, sections);
}
