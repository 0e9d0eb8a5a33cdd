// The project page's tab: storage and artifact quota: usage, and the limit for system administrators.
import { get, harbor, send } from "../../api.js";
import { field, formatBytes, formDialog, h, meter, mount, notify, select } from "../../dom.js";
import { t } from "../../i18n.js";
import { button } from "./shared.js";

const UNITS = [["MiB", 1024 ** 2], ["GiB", 1024 ** 3], ["TiB", 1024 ** 4]];

export async function drawQuota(body, page) {
  const { data } = await get(harbor(`/projects/${page.id}/summary`));
  if (!page.current()) return;
  const { hard, used } = data.quota;
  const storage = hard.storage > 0
    ? t("project.usage_of", { used: formatBytes(used.storage), limit: formatBytes(hard.storage),
      percent: Math.min(100, Math.round((used.storage / hard.storage) * 100)) })
    : t("project.usage_unlimited", { used: formatBytes(used.storage) });
  const count = hard.count > 0 ? t("project.count_of", { used: used.count, limit: hard.count })
    : t("project.count_unlimited", { used: used.count });
  const admin = Boolean(page.user?.sysadmin_flag);
  mount(body,
    h("section", { class: "card quota", "aria-labelledby": "quota-title" },
      h("h2", { id: "quota-title" }, t("project.quota_title")),
      h("dl", { class: "facts" },
        h("dt", {}, t("project.storage")), h("dd", {}, storage,
          meter(used.storage, hard.storage, t("project.storage_meter", { name: page.name }))),
        h("dt", {}, t("project.artifacts")), h("dd", {}, count,
          meter(used.count, hard.count, t("project.count_meter", { name: page.name }))),
        h("dt", {}, t("project.repositories")), h("dd", {}, String(data.repo_count))),
      admin ? h("div", { class: "actions" }, button(t("project.edit_quota"), () => quotaDialog(page, hard.storage), { kind: "primary" }))
        : h("p", { class: "hint" }, t("project.quota_admins_only"))));
}

function quotaDialog(page, current) {
  const [unit, factor] = current > 0 && current < 1024 ** 3 ? UNITS[0] : current >= 1024 ** 4 ? UNITS[2] : UNITS[1];
  const amount = h("input", { type: "number", name: "storage", min: "0", step: "any",
    value: current > 0 ? String(Number((current / factor).toFixed(3))) : "" });
  const units = select(UNITS.map(([name]) => [name, name]), { name: "unit", value: unit });
  formDialog(t("project.edit_quota"), () => h("div", { class: "fields" },
    h("div", { class: "quota-input" }, field(t("project.storage_limit"), amount, t("project.storage_limit_hint")),
      field(t("project.unit"), units))),
  async () => {
    const multiplier = UNITS.find(([name]) => name === units.value)[1];
    const storage = amount.value === "" ? -1 : Math.round(Number(amount.value) * multiplier);
    await send("PUT", harbor(`/quotas/${page.id}`), { hard: { storage } });
    notify(t("project.quota_saved"));
    page.redraw();
  });
}
