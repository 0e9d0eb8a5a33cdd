// The audit log (GET /api/v1/audit-logs): who did what to which resource, when and from
// where. The filter lives in the URL (linkable, the back button works); pages follow the API's
// cursor (`before`, newest first, from its Link rel="next"); the same filter exports as CSV or JSON Lines.
import { ApiError, get, harbor, v1, withParams } from "../api.js";
import {
  badge, emptyState, errorBox, field, formatTime, h, isoToLocal, link, localToIso, mount, select, table,
} from "../dom.js";
import { t } from "../i18n.js";

export const catalogs = ["audit"];
export const requiresLogin = true;

const FILTERS = ["actor", "project", "repository", "operation", "resource_type", "since", "until"];
const PAGE_SIZES = [25, 50, 100, 200];
const DEFAULT_LIMIT = 50;
// The resource kinds of the audit trail (domain/event_catalog.py KINDS).
const KINDS = ["project", "repository", "user", "robot", "label", "registry", "replication_policy",
  "replication_execution", "replication_task", "retention", "gc", "gc_schedule"];
// Its operation names, "<kind>.<event>", offered as suggestions (any other name may be typed).
const OPERATIONS = [
  "project.created", "project.deleted", "project.recreated", "project.undeleted", "project.restored",
  "project.visibility_changed",
  "project.member_added", "project.member_removed", "project.member_role_changed", "project.quota_set",
  "project.quota_warning", "project.quota_exceeded", "project.retention_policy_set",
  "project.retention_policy_removed", "project.immutable_rule_added", "project.immutable_rule_changed",
  "project.immutable_rule_removed", "project.scanning_settings_changed", "project.cve_allowlist_set",
  "project.scanner_chosen",
  "repository.created", "repository.deleted", "repository.recreated", "repository.undeleted", "repository.restored",
  "repository.manifest_pushed", "repository.manifest_deleted", "repository.tag_pointed", "repository.tag_deleted",
  "repository.blob_linked", "repository.blob_unlinked", "repository.pulls_recorded",
  "repository.artifact_label_added", "repository.artifact_label_removed",
  "user.created", "user.deleted", "user.recreated", "user.password_changed", "user.admin_granted",
  "user.admin_revoked", "user.logins_failed", "user.groups_observed", "user.cli_secret_set",
  "user_group.created", "user_group.recreated", "user_group.renamed", "user_group.deleted",
  "configuration.created", "configuration.changed",
  "robot.created", "robot.deleted", "robot.recreated", "robot.enabled", "robot.disabled",
  "robot.permissions_changed", "robot.secret_refreshed",
  "label.created", "label.updated", "label.deleted", "label.recreated",
  "registry.created", "registry.updated", "registry.deleted", "registry.recreated",
  "replication_policy.created", "replication_policy.updated", "replication_policy.deleted",
  "replication_policy.recreated", "replication_execution.created", "replication_execution.started",
  "replication_execution.stop_requested", "replication_task.created", "replication_task.claimed",
  "replication_task.lease_extended", "replication_task.succeeded", "replication_task.failed",
  "replication_task.stopped", "replication_task.retry_requested",
  "retention.created", "retention.started", "retention.completed", "retention.failed",
  "gc.created", "gc.started", "gc.swept", "gc.completed", "gc.failed", "gc_schedule.created", "gc_schedule.set",
  "backup.created", "backup.started", "backup.completed", "backup.failed", "backup_schedule.created",
  "backup_schedule.set",
  "scanner.created", "scanner.updated", "scanner.deleted", "scanner.default_set",
  "scan.created", "scan.requested", "scan.started", "scan.completed", "scan.failed", "scan.stopped",
  "scan.sbom_attached", "scan.sbom_not_attached",
  "cve_allowlist.created", "cve_allowlist.set", "vulnerability_data.created", "vulnerability_data.imported",
];

function nextCursor(linkHeader) {
  const found = /<([^>]+)>\s*;\s*rel="?next"?/.exec(linkHeader || "");
  return found ? new URL(found[1], location.origin).searchParams.get("before") : null;
}

export async function render(view, ctx) {
  const filter = Object.fromEntries(FILTERS.map((key) => [key, (ctx.params.get(key) || "").trim()]));
  const before = /^\d+$/.test(ctx.params.get("before") || "") ? ctx.params.get("before") : "";
  const limit = /^[1-9]\d*$/.test(ctx.params.get("limit") || "") ? Number(ctx.params.get("limit")) : DEFAULT_LIMIT;
  const filtered = FILTERS.some((key) => filter[key]);
  const here = (extra = {}) => withParams("/ui/audit", { ...filter, limit: limit === DEFAULT_LIMIT ? "" : limit, ...extra });

  const form = filterForm(filter, limit, ctx);
  const results = h("section", { "aria-labelledby": "audit-results" },
    h("h2", { id: "audit-results" }, t("audit.results")));
  mount(view, h("h1", {}, t("audit.title")), form, results);
  fillProjects(form);

  let response;
  try {
    response = await get(v1("/audit-logs"), { ...filter, order: "desc", before, limit });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status === 401) throw error;
    if (error.status === 403 && !filter.project) {
      results.append(h("div", { class: "error", role: "alert" },
        h("p", {}, t("audit.project_required")), h("p", { class: "muted" }, error.message)));
      form.querySelector("[name=project]").focus();
      return;
    }
    results.append(errorBox(error));
    return;
  }
  const entries = response.data || [];
  const next = nextCursor(response.link);
  const exportQuery = (format) => withParams(v1("/audit-logs"), { ...filter, format });
  const parts = [
    h("div", { class: "toolbar audit-export" },
      h("span", {}, t("audit.export")),
      h("a", { href: exportQuery("csv"), download: "audit-log.csv" }, t("audit.export_csv")),
      h("a", { href: exportQuery("jsonl"), download: "audit-log.jsonl" }, t("audit.export_jsonl"))),
    entries.length ? table({
      caption: before ? t("audit.caption_before", { count: entries.length, position: before })
        : t("audit.caption", { count: entries.length }),
      rows: entries,
      columns: [
        { label: t("audit.time"), render: (e) => formatTime(e.occurred_at) },
        { label: t("audit.actor"), render: (e) => e.actor },
        { label: t("audit.operation"), class: "audit-op", render: (e) => [h("code", {}, breakable(e.operation)),
          e.result === "failure" ? [" ", badge(t("audit.failed"), "bad")] : null] },
        { label: t("audit.resource"), render: (e) => h("span", { class: "mono" }, resourceCell(e)) },
        { label: t("audit.where"), class: "hide-narrow", render: (e) => whereCell(e) },
        { label: t("audit.source"), class: "hide-narrow", render: (e) => e.source || "—" },
        { label: t("audit.position"), class: "hide-narrow num", render: (e) => String(e.position) },
      ],
    }) : emptyState(before ? t("audit.no_more") : filtered ? t("audit.none_matching") : t("audit.none")),
    (before || next) ? h("nav", { class: "pager", "aria-label": t("audit.pages") },
      before ? link(here(), t("audit.first_page")) : null,
      next ? link(here({ before: next }), t("audit.next_page")) : null) : null,
  ];
  results.append(...parts.filter(Boolean));  // Element.append would write null as text
}

function filterForm(filter, limit, ctx) {
  const text = (name, extra = {}) => h("input", {
    type: "text", name, value: filter[name], autocomplete: "off", ...extra });
  const since = h("input", { type: "datetime-local", step: "1", name: "since", value: isoToLocal(filter.since) });
  const until = h("input", { type: "datetime-local", step: "1", name: "until", value: isoToLocal(filter.until) });
  const kinds = select([["", t("audit.any_type")], ...KINDS.map((kind) => [kind, t(`audit.kind_${kind}`)])],
    { name: "resource_type", value: filter.resource_type });
  const sizes = [...new Set([...PAGE_SIZES, limit])].sort((a, b) => a - b);
  const perPage = select(sizes.map((size) => [size, String(size)]), { name: "limit", value: limit });
  const form = h("form", { class: "audit-filter", role: "search", "aria-label": t("audit.filter") },
    h("div", { class: "audit-fields" },
      field(t("audit.actor"), text("actor", { placeholder: t("audit.actor_placeholder") })),
      field(t("audit.project"), text("project", { list: "audit-projects" })),
      field(t("audit.repository"), text("repository", { placeholder: t("audit.repository_placeholder") })),
      field(t("audit.operation"), text("operation", {
        list: "audit-operations", placeholder: "repository.tag_pointed" })),
      field(t("audit.resource_type"), kinds),
      wide(field(t("audit.since"), since)),
      wide(field(t("audit.until"), until)),
      field(t("audit.per_page"), perPage)),
    h("datalist", { id: "audit-operations" }, OPERATIONS.map((op) => h("option", { value: op }))),
    h("datalist", { id: "audit-projects" }),
    h("div", { class: "actions audit-actions" },
      link("/ui/audit", t("audit.clear")),
      h("button", { type: "submit", class: "primary" }, t("audit.apply"))));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const values = Object.fromEntries(FILTERS.map((key) => [key, String(data.get(key) || "").trim()]));
    values.since = localToIso(values.since);
    values.until = localToIso(values.until);
    const size = Number(data.get("limit"));
    ctx.navigate(withParams("/ui/audit", { ...values, limit: size === DEFAULT_LIMIT ? "" : size }));
  });
  return form;
}

function wide(element) {
  element.classList.add("audit-wide");  // a whole row on narrow screens
  return element;
}

// Suggestions for the project field: the projects the caller can see (best effort).
async function fillProjects(form) {
  try {
    const { data } = await get(harbor("/projects"), { page_size: 100, sort: "name" });
    mount(form.querySelector("#audit-projects"), (data || []).map((p) => h("option", { value: p.name })));
  } catch { /* only suggestions */ }
}

// "repository.tag_pointed" may wrap after its dot, not in the middle of a word.
function breakable(text) {
  return text.split(".").flatMap((part, index) => (index ? [".", h("wbr"), part] : [part]));
}

function resourceCell(entry) {
  const tagged = entry.resource_type === "repository" && entry.repository
    && entry.resource.startsWith(`${entry.repository}:`);
  if (tagged) {
    const tag = entry.resource.slice(entry.repository.length + 1);
    return link(`/ui/history?${new URLSearchParams({ name: entry.repository, tag })}`, entry.resource);
  }
  return entry.resource;
}

function whereCell(entry) {
  if (!entry.project) return "—";
  const project = link(`/ui/projects/${encodeURIComponent(entry.project)}`, entry.project);
  if (!entry.repository || !entry.repository.startsWith(`${entry.project}/`)) return project;
  return [project, " / ", link(`/ui/repository?${new URLSearchParams({ name: entry.repository })}`,
    entry.repository.slice(entry.project.length + 1))];
}
