// The project page's tab: tag retention (rules, schedule, runs) and tag immutability rules.
import { ApiError, get, send, v1 } from "../../api.js";
import {
  badge, checkbox, confirmDialog, field, formatTime, formDialog, h, mount, notify, rowActions, select, table,
} from "../../dom.js";
import { known, t } from "../../i18n.js";
import { attempt, button, fill, selectorFields, selectorText } from "./shared.js";

const TEMPLATES = { latestPushedK: "count", latestPulledN: "count", nDaysSinceLastPush: "days",
  nDaysSinceLastPull: "days", always: null };
const RUN_BADGES = { succeeded: "ok", success: "ok", finished: "ok", failed: "bad", error: "bad", running: "run" };

export async function drawPolicies(body, page) {
  const retention = h("section", { "aria-labelledby": "retention-title" });
  const immutability = h("section", { "aria-labelledby": "immutability-title" });
  const parts = [];
  if (page.can("tag-retention", "read")) parts.push(drawRetention(retention, page));
  if (page.can("immutable-tag", "list")) parts.push(drawImmutability(immutability, page));
  await Promise.all(parts);
  if (!page.current()) return;
  mount(body, page.can("tag-retention", "read") ? retention : null, page.can("immutable-tag", "list") ? immutability : null);
}

function retainsText(rule) {
  return t(`project.rule_${rule.template}`, { count: rule.param ?? "" });
}

async function drawRetention(section, page) {
  let policy = null;
  try {
    policy = (await get(v1(`/projects/${encodeURIComponent(page.name)}/retention`))).data;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
  }
  const runs = page.can("tag-retention", "list")
    ? (await get(v1(`/projects/${encodeURIComponent(page.name)}/retention/runs`), { page_size: 10 })).data : [];
  const rules = policy?.rules || [];
  const cron = policy?.cron || null;
  const problem = h("div");
  const canEdit = page.can("tag-retention", "update");
  const canRun = page.can("tag-retention", "operate");
  const save = (nextRules, nextCron) => send("PUT", v1(`/projects/${encodeURIComponent(page.name)}/retention`),
    { rules: nextRules, cron: nextCron });
  const edit = (index) => retentionRuleDialog(page, index === null ? null : rules[index], async (rule) => {
    const next = rules.slice();
    if (index === null) next.push(rule);
    else next[index] = rule;
    await save(next, cron);
    notify(t("common.saved"));
    page.redraw();
  });
  const remove = async (index) => {
    if (!await confirmDialog(t("project.delete_rule_confirm"), t("common.delete"))) return;
    await attempt(problem, async () => {
      await save(rules.filter((_, i) => i !== index), cron);
      notify(t("project.rule_deleted"));
      page.redraw();
    });
  };
  const run = async (dryRun) => {
    if (!dryRun && !await confirmDialog(t("project.run_confirm"), t("project.run_now"))) return;
    await attempt(problem, async () => {
      const result = await send("POST", v1(`/projects/${encodeURIComponent(page.name)}/retention/runs`), { dry_run: dryRun });
      notify(t(dryRun ? "project.dry_run_done" : "project.run_done",
        { count: result.deleted.length, retained: result.retained }));
      page.redraw();
    });
  };
  mount(section,
    h("h2", { id: "retention-title" }, t("project.retention_title")),
    h("p", { class: "hint" }, t("project.retention_intro")),
    problem,
    h("div", { class: "toolbar" },
      h("span", {}, fill("project.schedule_is", { value: cron ? h("code", {}, cron) : t("project.schedule_manual") })),
      h("span", { class: "grow" }),
      canEdit && button(t("project.edit_schedule"), () => scheduleDialog(cron, async (value) => {
        await save(rules, value);
        notify(t("common.saved"));
        page.redraw();
      })),
      canEdit && rules.length < 15 && button(t("project.add_retention_rule"), () => edit(null), { kind: "primary" })),
    table({
      caption: t("project.retention_caption", { total: rules.length }),
      empty: canEdit ? t("project.retention_none_admin") : t("project.retention_none"),
      rows: rules.map((rule, index) => ({ rule, index })),
      columns: [
        { label: t("project.repositories"), render: ({ rule }) => selectorText(rule.repositories, rule.exclude_repositories) },
        { label: t("project.tags"), render: ({ rule }) => [selectorText(rule.tags, rule.exclude_tags),
          rule.untagged ? ` ${t("project.untagged_too")}` : ""].join("") },
        { label: t("project.retains"), render: ({ rule }) => retainsText(rule) },
        { label: t("common.status"), class: "hide-narrow",
          render: ({ rule }) => (rule.disabled ? badge(t("project.disabled"), "bad") : badge(t("project.enabled"), "ok")) },
        ...(canEdit ? [{ label: t("common.actions"), render: ({ index }) => rowActions(
          button(t("project.edit"), () => edit(index), { name: t("project.edit_rule", { n: index + 1 }) }),
          button(t("common.delete"), () => remove(index), { kind: "danger", name: t("project.delete_rule", { n: index + 1 }) })) }] : []),
      ],
    }),
    canRun && rules.length ? h("div", { class: "toolbar" },
      button(t("project.dry_run"), () => run(true)),
      button(t("project.run_now"), () => run(false), { kind: "danger" })) : null,
    page.can("tag-retention", "list") ? [
      h("h3", {}, t("project.runs_title")),
      table({
        caption: t("project.runs_caption"),
        empty: t("project.runs_none"),
        rows: runs,
        columns: [
          { label: t("project.started"), render: (r) => formatTime(r.started_at) },
          { label: t("project.run_kind"), render: (r) => (r.dry_run ? t("project.dry_run") : t("project.real_run")) },
          { label: t("common.status"), render: (r) => badge(known(`project.run_status_${r.status}`, r.status), RUN_BADGES[r.status] || "") },
          { label: t("project.retained"), render: (r) => String(r.retained) },
          { label: t("project.deleted_count"), render: (r) => String(r.deleted.length) },
          { label: t("project.by"), class: "hide-narrow", render: (r) => r.actor || r.trigger },
        ],
      })] : null);
}

function retentionRuleDialog(page, rule, save) {
  const template = select(Object.keys(TEMPLATES).map((key) => [key, t(`project.template_${key}`)]),
    { name: "template", value: rule?.template || "latestPushedK" });
  const param = h("input", { type: "number", name: "param", min: "0", step: "1", value: String(rule?.param ?? 10) });
  const paramField = field(t("project.param_count"), param);
  const repositories = selectorFields(t("project.repositories"), rule?.repositories ?? "**", rule?.exclude_repositories, "repositories");
  const tags = selectorFields(t("project.tags"), rule?.tags ?? "**", rule?.exclude_tags, "tags");
  const untagged = checkbox(t("project.untagged"), { name: "untagged", checked: rule?.untagged });
  const disabled = checkbox(t("project.rule_disabled"), { name: "disabled", checked: rule?.disabled });
  const sync = () => {
    const kind = TEMPLATES[template.value];
    paramField.hidden = !kind;
    param.required = Boolean(kind);
    paramField.querySelector("label").textContent = kind === "days" ? t("project.param_days") : t("project.param_count");
  };
  template.addEventListener("change", sync);
  sync();
  formDialog(rule ? t("project.edit_retention_rule") : t("project.add_retention_rule"), () => h("div", { class: "fields" },
    field(t("project.template"), template), paramField, repositories.element, tags.element, untagged.element,
    disabled.element),
  () => save({
    template: template.value, param: TEMPLATES[template.value] ? Number(param.value) : null,
    repositories: repositories.text.value.trim(), exclude_repositories: repositories.mode.value === "excluding",
    tags: tags.text.value.trim(), exclude_tags: tags.mode.value === "excluding",
    untagged: untagged.input.checked, disabled: disabled.input.checked,
  }));
}

function scheduleDialog(cron, save) {
  const input = h("input", { type: "text", name: "cron", value: cron || "", autocomplete: "off", class: "mono" });
  formDialog(t("project.edit_schedule"), () => h("div", { class: "fields" },
    field(t("project.cron"), input, t("project.cron_hint"))),
  () => save(input.value.trim() || null));
}

async function drawImmutability(section, page) {
  const base = v1(`/projects/${encodeURIComponent(page.name)}/immutable-tag-rules`);
  const { data } = await get(base, { page_size: 100 });
  const problem = h("div");
  const canCreate = page.can("immutable-tag", "create");
  const canUpdate = page.can("immutable-tag", "update");
  const canDelete = page.can("immutable-tag", "delete");
  mount(section,
    h("h2", { id: "immutability-title" }, t("project.immutability_title")),
    h("p", { class: "hint" }, t("project.immutability_intro")),
    problem,
    canCreate ? h("div", { class: "toolbar" }, h("span", { class: "grow" }),
      button(t("project.add_immutable_rule"), () => immutableRuleDialog(async (rule) => {
        await send("POST", base, rule);
        notify(t("project.rule_added"));
        page.redraw();
      }), { kind: "primary" })) : null,
    table({
      caption: t("project.immutability_caption", { total: data.length }),
      empty: canCreate ? t("project.immutability_none_admin") : t("project.immutability_none"),
      rows: data,
      columns: [
        { label: t("project.repositories"), render: (rule) => selectorText(rule.repositories, rule.exclude_repositories) },
        { label: t("project.tags"), render: (rule) => selectorText(rule.tags, rule.exclude_tags) },
        { label: t("common.status"), render: (rule) => (rule.disabled ? badge(t("project.disabled"), "bad") : badge(t("project.enabled"), "ok")) },
        ...(canUpdate || canDelete ? [{ label: t("common.actions"), render: (rule) => rowActions(
          canUpdate && button(rule.disabled ? t("project.enable") : t("project.disable"), () => attempt(problem, async () => {
            await send("PUT", `${base}/${rule.id}`, { disabled: !rule.disabled });
            page.redraw();
          }), { name: t(rule.disabled ? "project.enable_named" : "project.disable_named", { name: rule.tags }) }),
          canDelete && button(t("common.delete"), async () => {
            if (!await confirmDialog(t("project.delete_rule_confirm"), t("common.delete"))) return;
            await attempt(problem, async () => {
              await send("DELETE", `${base}/${rule.id}`);
              notify(t("project.rule_deleted"));
              page.redraw();
            });
          }, { kind: "danger", name: t("project.delete_named", { name: rule.tags }) })) }] : []),
      ],
    }));
}

function immutableRuleDialog(save) {
  const repositories = selectorFields(t("project.repositories"), "**", false, "repositories");
  const tags = selectorFields(t("project.tags"), "", false, "tags");
  formDialog(t("project.add_immutable_rule"), () => h("div", { class: "fields" },
    repositories.element, tags.element),
  () => save({
    repositories: repositories.text.value.trim(), exclude_repositories: repositories.mode.value === "excluding",
    tags: tags.text.value.trim(), exclude_tags: tags.mode.value === "excluding",
  }), t("project.add"));
}
