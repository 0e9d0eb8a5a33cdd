// One project (/ui/projects/<name>): its repositories (now, or as of a past moment from the
// event log), members, robot accounts, retention and immutability policies, webhooks, quota
// and settings, one ARIA tab each, shown only when the caller holds the permission to see it.
import { ApiError, get, harbor, send, v1 } from "../api.js";
import {
  badge, checkbox, confirmDialog, copyButton, errorBox, field, formatBytes, formatTime, formDialog, h, isoToLocal,
  link, localToIso, meter, mount, notify, pager, rowActions, select, table, tabs,
} from "../dom.js";
import { known, t } from "../i18n.js";
import { permissions } from "../session.js";

export const catalogs = ["project"];

const PAGE_SIZE = 15;
const ROLES = [[1, "role_1"], [4, "role_4"], [2, "role_2"], [3, "role_3"], [5, "role_5"]];  // most privileged first
const TEMPLATES = { latestPushedK: "count", latestPulledN: "count", nDaysSinceLastPush: "days",
  nDaysSinceLastPull: "days", always: null };
const EXECUTION_BADGES = { Success: "ok", Error: "bad", Pending: "warn", Running: "run" };
const RUN_BADGES = { succeeded: "ok", success: "ok", finished: "ok", failed: "bad", error: "bad", running: "run" };
const UNITS = [["MiB", 1024 ** 2], ["GiB", 1024 ** 3], ["TiB", 1024 ** 4]];

// ---- small helpers -------------------------------------------------------------------------

// A translated text in which some {vars} are nodes (a <time>, a link), not strings.
function fill(key, nodes) {
  return t(key).split(/\{(\w+)\}/).map((part, i) => (i % 2 ? nodes[part] ?? `{${part}}` : part)).filter((p) => p !== "");
}

function params() {
  return new URLSearchParams(location.search);
}

// Changes the page's query string (push: a new history entry) without drawing the page anew.
function setQuery(changes, { push = false } = {}) {
  const query = params();
  for (const [key, value] of Object.entries(changes)) {
    if (value === null || value === undefined || value === "") query.delete(key);
    else query.set(key, value);
  }
  const text = query.toString();
  const url = `${location.pathname}${text ? `?${text}` : ""}`;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

function button(label, onclick, { kind = "", name } = {}) {
  return h("button", { type: "button", class: kind || null, "aria-label": name || null, onclick }, label);
}

// Runs an action; a failure shows the server's message in `where` (the panel's alert area).
async function attempt(where, action) {
  mount(where);
  try {
    await action();
  } catch (error) {
    mount(where, errorBox(error));
  }
}

function selectorText(pattern, excluding) {
  return t(excluding ? "project.excluding" : "project.matching", { pattern });
}

// The matching / excluding choice of a pattern, as Harbor's rule forms offer it.
function selectorFields(label, pattern, excluding, name) {
  const mode = select([["matching", t("project.mode_matching")], ["excluding", t("project.mode_excluding")]],
    { name: `${name}_mode`, value: excluding ? "excluding" : "matching" });
  const text = h("input", { type: "text", name, value: pattern, required: true, autocomplete: "off" });
  return { mode, text, element: h("div", { class: "selector" },
    field(t("project.selector_mode", { what: label }), mode), field(label, text, t("project.pattern_hint"))) };
}

// ---- the page ------------------------------------------------------------------------------

async function loadProject(name) {
  if (!/^\d+$/.test(name)) return (await get(harbor(`/projects/${encodeURIComponent(name)}`))).data;
  // An all-digit name would be taken for a project id in the path: look it up by name instead.
  const { data } = await get(harbor("/projects"), { q: `name=${name}` });
  const found = data.find((project) => project.name === name);
  if (!found) throw new ApiError(404, t("project.not_found", { name }));
  return found;
}

export async function render(view, ctx) {
  const name = ctx.match[0];
  const project = await loadProject(name);
  const perms = await permissions(project.project_id);
  const can = perms.can;
  const page = { ctx, project, can, name: project.name, id: project.project_id, user: ctx.user };

  const items = [
    { id: "repositories", label: t("project.tab_repositories"), shown: can("repository", "list"), draw: drawRepositories },
    { id: "members", label: t("project.tab_members"), shown: can("member", "list"), draw: drawMembers },
    { id: "robots", label: t("project.tab_robots"), shown: can("robot", "list"), draw: drawRobots },
    { id: "policies", label: t("project.tab_policies"),
      shown: can("tag-retention", "read") || can("immutable-tag", "list"), draw: drawPolicies },
    { id: "webhooks", label: t("project.tab_webhooks"), shown: can("notification-policy", "list"), draw: drawWebhooks },
    { id: "quota", label: t("project.tab_quota"), shown: can("project", "read"), draw: drawQuota },
    { id: "settings", label: t("project.tab_settings"),
      shown: can("project", "update") || can("project", "delete"), draw: drawSettings },
  ].filter((item) => item.shown);

  const wanted = ctx.params.get("tab");
  const selected = items.some((item) => item.id === wanted) ? wanted : items[0]?.id;
  const panels = Object.fromEntries(items.map((item) => [item.id, h("div", {
    role: "tabpanel", id: `panel-${item.id}`, "aria-labelledby": `tab-${item.id}`, tabindex: "0",
    class: "tab-panel", hidden: item.id !== selected,
  })]));
  let turn = 0;
  const show = (id) => {
    const item = items.find((candidate) => candidate.id === id);
    Object.entries(panels).forEach(([key, panel]) => { panel.hidden = key !== id; });
    const mine = ++turn;
    const body = h("div", {}, h("p", { class: "loading" }, t("common.loading")));
    mount(panels[id], body);
    // Each draw fills its own container: a slow answer for a tab left meanwhile lands nowhere.
    const redraw = () => show(id);
    item.draw(body, { ...page, redraw, current: () => mine === turn }).catch((error) => {
      if (error instanceof ApiError && error.status === 401 && !ctx.user) ctx.navigate(`/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
      else mount(body, errorBox(error));
    });
  };

  const heading = h("div", { class: "project-head" },
    h("h1", {}, project.name),
    h("span", { class: "project-badges" },
      badge(project.metadata?.public === "true" ? t("common.public") : t("common.private"),
        project.metadata?.public === "true" ? "ok" : ""),
      project.registry_id ? badge(t("project.proxy_cache"), "run") : null));
  mount(view,
    h("nav", { class: "breadcrumbs", "aria-label": t("project.breadcrumbs") },
      link("/ui/projects", t("common.nav_projects")), " › ", h("span", { "aria-current": "page" }, project.name)),
    heading,
    items.length
      ? [tabs({ label: t("project.sections", { name: project.name }), items, selected, class: "project-tabs", onSelect: (id) => {
        setQuery({ tab: id, as_of: null, q: null, page: null });
        show(id);
      } }), Object.values(panels)]
      : h("p", { class: "empty" }, t("project.nothing_visible")));
  if (selected) show(selected);
}

// ---- Repositories --------------------------------------------------------------------------

async function drawRepositories(body, page) {
  const query = params();
  const search = query.get("q") || "";
  const asOf = query.get("as_of") || "";
  const number = Math.max(1, Number(query.get("page") || 1));
  const problem = h("div");
  const searchInput = h("input", { type: "search", name: "q", value: search, placeholder: t("project.repo_search_placeholder") });
  const searchForm = h("form", { class: "toolbar", role: "search" },
    field(t("project.repo_search_label"), searchInput),
    h("button", { type: "submit" }, t("common.search")));
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    setQuery({ q: searchInput.value.trim(), page: null }, { push: true });
    page.redraw();
  });
  const moment = h("input", { type: "datetime-local", name: "as_of", step: "1", value: isoToLocal(asOf),
    max: isoToLocal(new Date().toISOString()) });
  const timeForm = h("form", { class: "toolbar as-of-form" },
    field(t("project.as_of_label"), moment),
    h("button", { type: "submit" }, t("project.as_of_show")));
  timeForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!moment.value) {
      setQuery({ as_of: null, page: null }, { push: true });
      page.redraw();
      return;
    }
    const chosen = localToIso(moment.value);
    if (!chosen) {
      mount(problem, errorBox(new Error(t("project.as_of_invalid"))));
      return;
    }
    setQuery({ as_of: chosen, page: null }, { push: true });
    page.redraw();
  });
  const list = h("div");
  const tools = h("div", { class: "repo-tools" }, searchForm, timeForm);
  if (asOf) {
    const when = new Date(asOf);
    const shown = Number.isNaN(when.getTime()) ? asOf : when.toLocaleString(document.documentElement.lang);
    const banner = h("div", { class: "asof", role: "status" },
      h("span", {}, fill("project.as_of_banner", { time: h("time", { datetime: asOf }, shown) })), " ",
      link(`${location.pathname}?tab=repositories`, t("project.back_to_now")));
    const { data } = await get(v1("/repositories"), { project: page.name, as_of: asOf });
    if (!page.current()) return;
    const rows = data.filter((repo) => !search || repo.name.includes(search));
    mount(body, tools, banner, problem, list);
    mount(list, table({
      caption: t("project.repos_as_of_caption", { total: rows.length, time: shown }),
      empty: t("project.repos_as_of_none"),
      rows,
      columns: [{ label: t("common.name"), class: "mono",
        render: (repo) => link(`/ui/repository?name=${encodeURIComponent(repo.name)}&as_of=${encodeURIComponent(asOf)}`, repo.name) }],
    }));
    return;
  }
  const { data, total } = await get(harbor(`/projects/${page.id}/repositories`), {
    q: search ? `name=~${search}` : undefined, page: number, page_size: PAGE_SIZE, sort: "name" });
  if (!page.current()) return;
  const canDelete = page.can("repository", "delete");
  const empty = search ? t("project.repos_none_matching", { text: search })
    : h("span", {}, t("project.repos_none"), " ", h("code", {}, `docker push ${location.host}/${page.name}/IMAGE:TAG`));
  mount(body, tools, problem, list);
  const listing = table({
    caption: t("project.repos_caption", { total: total ?? data.length }),
    empty: "",
    rows: data,
    columns: [
      { label: t("common.name"), class: "mono", render: (repo) => link(`/ui/repository?name=${encodeURIComponent(repo.name)}`, repo.name) },
      { label: t("project.artifacts"), render: (repo) => String(repo.artifact_count) },
      { label: t("project.pulls"), class: "hide-narrow", render: (repo) => String(repo.pull_count) },
      { label: t("common.updated"), class: "hide-narrow", render: (repo) => formatTime(repo.update_time) },
      ...(canDelete ? [{ label: t("common.actions"), render: (repo) => rowActions(button(t("common.delete"),
        () => deleteRepository(page, repo.name, problem), { kind: "danger", name: t("project.delete_repo", { name: repo.name }) })) }] : []),
    ],
  });
  mount(list, data.length ? listing : h("p", { class: "empty" }, empty),
    pager({ total: total ?? 0, page: number, size: PAGE_SIZE, onChange: (next) => {
      setQuery({ page: next }, { push: true });
      page.redraw();
    } }));
}

async function deleteRepository(page, name, problem) {
  if (!await confirmDialog(t("project.delete_repo_confirm", { name }), t("common.delete"))) return;
  await attempt(problem, async () => {
    const rest = name.split("/").slice(1).join("/");
    await send("DELETE", harbor(`/projects/${page.id}/repositories/${encodeURIComponent(encodeURIComponent(rest))}`));
    notify(t("common.deleted", { name }));
    page.redraw();
  });
}

// ---- Members -------------------------------------------------------------------------------

async function drawMembers(body, page, number = 1) {
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

// ---- Robot accounts ------------------------------------------------------------------------

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

async function drawRobots(body, page, number = 1) {
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

// ---- Policies: tag retention and tag immutability -----------------------------------------

async function drawPolicies(body, page) {
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
  return t(`project.rule_${rule.template}`, { n: rule.param ?? "" });
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
        { deleted: result.deleted.length, retained: result.retained }));
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

// ---- Webhooks ------------------------------------------------------------------------------

function eventLabel(type) {
  return known(`project.event_${type}`, type);
}

async function drawWebhooks(body, page) {
  const base = harbor(`/projects/${page.id}/webhook/policies`);
  const { data } = await get(base, { page_size: 100 });
  if (!page.current()) return;
  const problem = h("div");
  const deliveries = h("section", { "aria-live": "polite" });
  const canCreate = page.can("notification-policy", "create");
  const canUpdate = page.can("notification-policy", "update");
  const canDelete = page.can("notification-policy", "delete");
  mount(body,
    canCreate ? h("div", { class: "toolbar" }, h("span", { class: "grow" }),
      button(t("project.new_webhook"), () => webhookDialog(page, null), { kind: "primary" })) : null,
    problem,
    table({
      caption: t("project.webhooks_caption", { total: data.length }),
      empty: canCreate ? t("project.webhooks_none_admin") : t("project.webhooks_none"),
      rows: data,
      columns: [
        { label: t("common.name"), render: (policy) => policy.name },
        { label: t("project.address"), class: "mono", render: (policy) => policy.targets.map((target) => target.address).join(" ") },
        { label: t("project.events"), class: "hide-narrow", render: (policy) => policy.event_types.map(eventLabel).join(", ") },
        { label: t("common.status"), render: (policy) => (policy.enabled ? badge(t("project.enabled"), "ok") : badge(t("project.disabled"), "bad")) },
        { label: t("common.actions"), render: (policy) => rowActions(
          button(t("project.deliveries"), () => attempt(problem, () => showDeliveries(deliveries, page, policy)),
            { name: t("project.deliveries_of", { name: policy.name }) }),
          canUpdate && button(t("project.edit"), () => webhookDialog(page, policy), { name: t("project.edit_named", { name: policy.name }) }),
          canUpdate && button(policy.enabled ? t("project.disable") : t("project.enable"), () => attempt(problem, async () => {
            await send("PUT", `${base}/${policy.id}`, { enabled: !policy.enabled });
            notify(t(policy.enabled ? "project.webhook_disabled" : "project.webhook_enabled", { name: policy.name }));
            page.redraw();
          }), { name: t(policy.enabled ? "project.disable_named" : "project.enable_named", { name: policy.name }) }),
          canDelete && button(t("common.delete"), async () => {
            if (!await confirmDialog(t("project.delete_webhook_confirm", { name: policy.name }), t("common.delete"))) return;
            await attempt(problem, async () => {
              await send("DELETE", `${base}/${policy.id}`);
              notify(t("common.deleted", { name: policy.name }));
              page.redraw();
            });
          }, { kind: "danger", name: t("project.delete_named", { name: policy.name }) })) },
      ],
    }),
    deliveries);
}

async function showDeliveries(section, page, policy) {
  const { data } = await get(harbor(`/projects/${page.id}/webhook/policies/${policy.id}/executions`), { page_size: 10 });
  mount(section,
    h("h2", { id: "deliveries-title" }, t("project.deliveries_title", { name: policy.name })),
    table({
      caption: t("project.deliveries_caption"),
      empty: t("project.deliveries_none"),
      rows: data,
      columns: [
        { label: t("project.event"), render: (run) => eventLabel(run.extra_attrs?.event_type) },
        { label: t("common.status"), render: (run) => badge(known(`project.execution_${run.status}`, run.status), EXECUTION_BADGES[run.status] || "") },
        { label: t("project.message"), class: "hide-narrow", render: (run) => run.status_message || "—" },
        { label: t("project.started"), render: (run) => formatTime(run.start_time) },
        { label: t("project.finished"), class: "hide-narrow", render: (run) => formatTime(run.end_time) },
      ],
    }));
  section.querySelector("h2").scrollIntoView({ block: "nearest" });
}

async function webhookDialog(page, policy) {
  let supported;
  try {
    supported = (await get(harbor(`/projects/${page.id}/webhook/events`))).data;
  } catch (error) {
    notify(error.message, "error");
    return;
  }
  const target = policy?.targets?.[0] || {};
  const name = h("input", { type: "text", name: "name", required: true, autocomplete: "off", value: policy?.name || "" });
  const description = h("input", { type: "text", name: "description", autocomplete: "off", value: policy?.description || "" });
  const address = h("input", { type: "url", name: "address", required: true, autocomplete: "off",
    placeholder: "https://example.com/hooks/portlog", value: target.address || "" });
  const auth = h("input", { type: "text", name: "auth_header", autocomplete: "off", value: target.auth_header || "" });
  const formats = supported.payload_formats?.[0]?.formats || ["Default"];
  const format = select(formats.map((f) => [f, f]), { name: "payload_format", value: target.payload_format || formats[0] });
  const skip = checkbox(t("project.skip_cert_verify"), { name: "skip_cert_verify", checked: target.skip_cert_verify });
  const enabled = checkbox(t("project.webhook_enabled_label"), { name: "enabled", checked: policy ? policy.enabled : true });
  const chosen = new Set(policy?.event_types || ["PUSH_ARTIFACT", "DELETE_ARTIFACT"]);
  const events = supported.event_type.map((type) => ({ type,
    box: checkbox(eventLabel(type), { name: "event_types", value: type, checked: chosen.has(type) }) }));
  formDialog(policy ? t("project.edit_webhook") : t("project.new_webhook"), () => h("div", { class: "fields" },
    field(t("common.name"), name),
    field(t("project.description"), description),
    field(t("project.endpoint"), address, t("project.endpoint_hint")),
    field(t("project.auth_header"), auth, t("project.auth_header_hint")),
    field(t("project.payload_format"), format),
    skip.element,
    h("fieldset", { class: "event-types" }, h("legend", {}, t("project.events")), events.map((e) => e.box.element)),
    enabled.element),
  async () => {
    const eventTypes = events.filter((e) => e.box.input.checked).map((e) => e.type);
    if (!eventTypes.length) throw new Error(t("project.webhook_needs_event"));
    const body = { name: name.value.trim(), description: description.value.trim(), enabled: enabled.input.checked,
      event_types: eventTypes,
      targets: [{ type: "http", address: address.value.trim(), auth_header: auth.value, payload_format: format.value,
        skip_cert_verify: skip.input.checked }] };
    const base = harbor(`/projects/${page.id}/webhook/policies`);
    if (policy) await send("PUT", `${base}/${policy.id}`, body);
    else await send("POST", base, body);
    notify(policy ? t("common.saved") : t("project.webhook_created", { name: body.name }));
    page.redraw();
  }, policy ? t("common.save") : t("common.create"));
}

// ---- Quota ---------------------------------------------------------------------------------

async function drawQuota(body, page) {
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

// ---- Settings: access level, deletion ------------------------------------------------------

async function drawSettings(body, page) {
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
