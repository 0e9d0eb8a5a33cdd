// The project page's tab: storage and artifact quota: usage, and the limit for system
// administrators; or (`as_of`, chosen with the moment picker) the limit and usage at a past moment.
import { get, harbor, send } from "../../api.js";
import { field, formatBytes, formatTimeText, formDialog, h, link, meter, momentPicker, mount, notify, select } from "../../dom.js";
import { t } from "../../i18n.js";
import { button, params, setQuery } from "./shared.js";

const UNITS = [["MiB", 1024 ** 2], ["GiB", 1024 ** 3], ["TiB", 1024 ** 4]];

export async function drawQuota(body, page) {
  const asOf = params().get("as_of") || "";
  const problem = h("div");
  const picker = momentPicker({
    label: t("project.as_of_label"), submit: t("project.as_of_show"), invalid: t("project.as_of_invalid"),
    value: asOf, problem,
    onChoose: (chosen) => {
      setQuery({ tab: "quota", as_of: chosen || null }, { push: true });
      page.redraw();
    },
  });
  if (asOf) return drawQuotaAsOf(body, page, asOf, picker, problem);
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
        : h("p", { class: "hint" }, t("project.quota_admins_only"))),
    picker, problem);
}

async function drawQuotaAsOf(body, page, asOf, picker, problem) {
  const { data } = await get(harbor(`/quotas/${page.id}`), { as_of: asOf });
  if (!page.current()) return;
  const { hard, used } = data;
  const storage = hard.storage > 0 ? t("project.usage_of", { used: formatBytes(used.storage), limit: formatBytes(hard.storage),
    percent: Math.min(100, Math.round((used.storage / hard.storage) * 100)) })
    : t("project.usage_unlimited", { used: formatBytes(used.storage) });
  const count = hard.count > 0 ? t("project.count_of", { used: used.count, limit: hard.count })
    : t("project.count_unlimited", { used: used.count });
  mount(body,
    h("div", { class: "asof", role: "status" }, t("project.quota_as_of_banner", { time: formatTimeText(asOf) }), " ",
      link(`${location.pathname}?tab=quota`, t("project.back_to_now"))),
    h("section", { class: "card quota", "aria-labelledby": "quota-title" },
      h("h2", { id: "quota-title" }, t("project.quota_title")),
      h("dl", { class: "facts" },
        h("dt", {}, t("project.storage")), h("dd", {}, storage),
        h("dt", {}, t("project.artifacts")), h("dd", {}, count))),
    picker, problem);
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
