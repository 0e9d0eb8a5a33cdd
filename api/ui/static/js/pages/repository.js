// A repository: its artifacts with their tags, sizes, push and pull times, referrers
// (signatures, SBOMs), what their last vulnerability scan found (followed live while scans run)
// and a pull command to copy; or (`as_of`, chosen with the moment picker) the repository as it
// was at a past moment, with the command that pulls it from the registry's as-of view.
import { get, harbor, repoPath, send } from "../api.js";
import {
  badge, breadcrumbs, confirmDialog, copyButton, digestLink, field, formatBytes, formatTime, formatTimeText, h, link, momentPicker, mount, notify, pager, rowActions, shortDigest, table, viewMoment,
} from "../dom.js";
import { t } from "../i18n.js";
import { livePoller } from "../poll.js";
import { restoreButton } from "../restore.js";
import { permissions } from "../session.js";
import { isScanning, scanSummary, vulnerabilityOverview } from "./scanning/summary.js";

export const catalogs = ["repository", "history", "scanning", "restore"];
const PAGE_SIZE = 15;

export async function render(view, ctx) {
  if (ctx.params.get("as_of")) return renderAsOf(view, ctx);
  const name = ctx.params.get("name") || "";
  const project = name.split("/")[0];
  const page = Number(ctx.params.get("page") || 1);
  const tagFilter = ctx.params.get("tag") || "";
  const { data: projectJson } = await get(harbor(`/projects/${encodeURIComponent(project)}`));
  const may = await permissions(projectJson.project_id);
  const query = { page, page_size: PAGE_SIZE, with_tag: "true", with_accessory: "true", with_scan_overview: "true" };
  if (tagFilter) query.q = `tags=~${tagFilter}`;
  const { data: artifacts, total } = await get(harbor(`${repoPath(name)}/artifacts`), query);
  const here = (params) => `/ui/repository?${new URLSearchParams({ name, ...params })}`;

  const search = h("input", { type: "search", name: "tag", value: tagFilter });
  const form = h("form", { class: "toolbar", role: "search" },
    field(t("repository.filter_tags"), search), h("button", { type: "submit" }, t("common.search")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.navigate(here(search.value.trim() ? { tag: search.value.trim() } : {}));
  });

  const tagged = artifacts.find((a) => (a.tags || []).length);
  const redraw = () => ctx.redraw();
  const problem = h("div");
  const picker = asOfPicker(ctx, name, "", problem);
  // The scan cells are drawn again, alone, while a scan of the page's artifacts is queued or runs.
  const scans = livePoller(ctx, {
    load: () => get(harbor(`${repoPath(name)}/artifacts`), query),
    draw: ({ data }) => {
      for (const a of data) {
        const cell = view.querySelector(`[data-scan="${CSS.escape(a.digest)}"]`);
        if (cell) mount(cell, scanSummary(a));
        const button = view.querySelector(`[data-scan-button="${CSS.escape(a.digest)}"]`);
        if (button) button.disabled = isScanning(vulnerabilityOverview(a));
      }
      return data.some((a) => isScanning(vulnerabilityOverview(a)));
    },
    problem,
  });
  const actions = { may, redraw, scan: (artifact) => scanArtifact(name, artifact, problem, scans) };

  mount(view,
    breadcrumbs(t("repository.breadcrumbs"), ...trailTo(name, { linked: false })),
    h("h1", {}, name),
    pullCommand(name, tagged || artifacts[0]),
    h("div", { class: "repo-tools" }, form, picker),
    problem,
    table({
      caption: t("repository.caption", { total }),
      empty: tagFilter ? t("repository.none_matching", { tag: tagFilter }) : t("repository.none", { name }),
      rows: artifacts,
      class: "artifact-list",
      columns: [
        { label: t("repository.artifact"), render: (a) => h("div", { class: "digest-cell" },
          digestLink(artifactUrl(name, a.digest), a.digest), copyButton(a.digest, t("repository.copy_digest", { digest: a.digest }))) },
        { label: t("repository.tags"), class: "artifact-tags", render: (a) => tagCells(name, a, may, redraw) },
        { label: t("repository.size"), class: "nowrap", render: (a) => formatBytes(a.size) },
        { label: t("repository.type"), class: "hide-narrow artifact-type", render: (a) => mediaLabel(a) },
        { label: t("repository.referrers"), render: (a) => referrers(name, a) },
        { label: t("scanning.vulnerabilities"), class: "scan-column", render: (a) => link(artifactUrl(name, a.digest, "vulnerabilities"),
          h("span", { "data-scan": a.digest }, scanSummary(a))) },
        { label: t("repository.pushed"), class: "hide-narrow", render: (a) => formatTime(a.push_time) },
        { label: t("repository.pulled"), class: "hide-narrow", render: (a) => (a.pull_time ? formatTime(a.pull_time) : t("repository.never")) },
        { label: t("common.actions"), class: "nowrap", render: (a) => rowActions(scanAction(a, actions), artifactActions(name, a, may, redraw)) },
      ],
    }),
    pager({ total, page, size: PAGE_SIZE, onChange: (next) => ctx.navigate(here({ page: next, ...(tagFilter ? { tag: tagFilter } : {}) })) }));
  scans.schedule(artifacts.some((a) => isScanning(vulnerabilityOverview(a))));
}

// Images (and indexes of them) are what scanners read; charts, SBOMs and signatures are not.
function scanAction(artifact, { may, scan }) {
  if (!may.can("scan", "create") || artifact.type !== "IMAGE") return null;
  return h("button", {
    type: "button", "aria-label": t("scanning.scan_artifact", { digest: shortDigest(artifact.digest) }), "data-scan-button": artifact.digest,
    disabled: isScanning(vulnerabilityOverview(artifact)), onclick: () => scan(artifact),
  }, t("scanning.scan"));
}

async function scanArtifact(name, artifact, problem, scans) {
  mount(problem);
  try {
    await send("POST", harbor(`${repoPath(name)}/artifacts/${artifact.digest}/scan`), { scan_type: "vulnerability" });
    notify(t("scanning.scan_requested", { name: `${name}@${shortDigest(artifact.digest)}` }));
    await scans.now();
  } catch (error) {
    notify(error.message, "error");
  }
}

// The steps above a repository's pages: Projects › project › repository (a link on deeper pages).
export function trailTo(name, { linked = true } = {}) {
  const project = name.split("/")[0];
  const repository = name.slice(project.length + 1);
  return [["/ui/projects", t("common.nav_projects")], [`/ui/projects/${encodeURIComponent(project)}`, project],
    linked ? [`/ui/repository?${new URLSearchParams({ name })}`, repository] : repository];
}

// The moment picker: the repository as of the moment chosen (cleared: now).
function asOfPicker(ctx, name, value, problem) {
  return momentPicker({
    label: t("repository.as_of_label"), submit: t("repository.as_of_show"), invalid: t("repository.as_of_invalid"),
    value, problem,
    onChoose: (chosen) => ctx.navigate(`/ui/repository?${new URLSearchParams({ name, ...(chosen ? { as_of: chosen } : {}) })}`),
  });
}

// The repository as it was at `as_of`: its artifacts then, with their tags, labels and referrers
// then, and the command that pulls them from the registry's read-only as-of view.
async function renderAsOf(view, ctx) {
  const name = ctx.params.get("name") || "";
  const asOf = ctx.params.get("as_of");
  const page = Number(ctx.params.get("page") || 1);
  const { data: artifacts, total } = await get(harbor(`${repoPath(name)}/artifacts`),
    { as_of: asOf, page, page_size: PAGE_SIZE, with_tag: "true", with_accessory: "true", with_label: "true" });
  const here = (params) => `/ui/repository?${new URLSearchParams({ name, as_of: asOf, ...params })}`;
  const problem = h("div");
  const past = `as-of/${viewMoment(asOf)}/${name}`;
  const tagged = artifacts.find((a) => (a.tags || []).length);
  const now = `/ui/repository?${new URLSearchParams({ name })}`;
  const restore = await restoreButton(name, asOf, () => ctx.navigate(now));
  mount(view, breadcrumbs(t("repository.breadcrumbs"), ...trailTo(name)), h("h1", {}, name),
    h("div", { class: "asof", role: "status" },
      t("repository.as_of_banner", { name, time: formatTimeText(asOf) }), " ",
      link(now, t("history.back_to_now")), restore ? [" ", restore] : null),
    tagged || artifacts[0] ? pullCommand(past, tagged || artifacts[0]) : null,
    h("div", { class: "repo-tools" }, asOfPicker(ctx, name, asOf, problem)),
    problem,
    table({
      caption: t("repository.as_of_caption", { total, time: formatTimeText(asOf) }),
      empty: t("repository.as_of_none", { name }),
      rows: artifacts,
      class: "artifact-list",
      columns: [
        { label: t("repository.artifact"), render: (a) => h("div", { class: "digest-cell" },
          digestLink(`${artifactUrl(name, a.digest)}&${new URLSearchParams({ as_of: asOf })}`, a.digest),
          copyButton(a.digest, t("repository.copy_digest", { digest: a.digest }))) },
        { label: t("repository.tags"), class: "artifact-tags", render: (a) => pastTags(name, past, a) },
        { label: t("repository.size"), class: "nowrap", render: (a) => formatBytes(a.size) },
        { label: t("repository.type"), class: "hide-narrow artifact-type", render: (a) => mediaLabel(a) },
        { label: t("repository.labels"), render: (a) => labels(a) },
        { label: t("repository.referrers"), render: (a) => referrers(name, a) },
        { label: t("repository.pushed"), class: "hide-narrow", render: (a) => formatTime(a.push_time) },
      ],
    }),
    pager({ total, page, size: PAGE_SIZE, onChange: (next) => ctx.navigate(here({ page: next })) }));
}

function pastTags(name, past, artifact) {
  const tags = artifact.tags || [];
  if (!tags.length) return h("span", { class: "muted" }, t("repository.untagged"));
  return h("ul", { class: "tags" }, tags.map((tag) => h("li", {},
    h("span", { class: "tag-name" }, tag.name), " ",
    link(`/ui/history?${new URLSearchParams({ name, tag: tag.name })}`, t("repository.history")), " ",
    copyButton(pullCommandOf(past, artifact, { tag: tag.name }), t("repository.copy_pull_tag", { tag: tag.name })))));
}

function labels(artifact) {
  const found = artifact.labels || [];
  if (!found.length) return "—";
  return h("ul", { class: "tags" }, found.map((label) => h("li", {},
    badge(label.name, label.deleted ? "" : "ok", label.deleted ? t("repository.label_deleted") : label.description))));
}

// An artifact's page, at one of its tabs (overview when none is given).
export function artifactUrl(name, digest, tab) {
  return `/ui/artifact?${new URLSearchParams({ name, digest, ...(tab ? { tab } : {}) })}`;
}

// The command that pulls the artifact with the client of its kind (the API's `type`): docker for
// images, helm for charts, oras for anything else; by `tag`, else by `digest`. Served over plain
// HTTP, helm and oras need --plain-http (docker trusts loopback registries, others by its config).
export function pullCommandOf(name, artifact, { tag, digest } = {}) {
  const target = `${location.host}/${name}`;
  const plainHttp = location.protocol === "http:" ? " --plain-http" : "";
  const reference = tag ? `:${tag}` : digest ? `@${digest}` : "";
  if (artifact?.type === "CHART") {  // helm takes a tag as --version
    const [where, version] = tag ? ["", ` --version ${tag}`] : [reference, ""];
    return `helm pull oci://${target}${where}${version}${plainHttp}`;
  }
  if (!artifact || artifact.type === "IMAGE") return `docker pull ${target}${reference}`;
  return `oras pull${plainHttp} ${target}${reference}`;
}

function pullCommand(name, artifact) {
  const tag = artifact?.tags?.[0]?.name;
  const command = pullCommandOf(name, artifact, tag ? { tag } : { digest: artifact?.digest });
  return h("div", { class: "pull" }, h("span", {}, t("repository.pull_command")), h("code", {}, command),
    copyButton(command, t("repository.copy_pull")));
}

function tagCells(name, artifact, may, redraw) {
  const tags = artifact.tags || [];
  if (!tags.length) return h("span", { class: "muted" }, t("repository.untagged"));
  return h("ul", { class: "tags" }, tags.map((tag) => h("li", {},
    h("span", { class: "tag-name" }, tag.name),
    tag.immutable ? [" ", badge(t("repository.immutable"), "warn")] : null, " ",
    link(`/ui/history?${new URLSearchParams({ name, tag: tag.name })}`, t("repository.history")),
    " ",
    copyButton(pullCommandOf(name, artifact, { tag: tag.name }), t("repository.copy_pull_tag", { tag: tag.name })),
    may.can("tag", "delete") && !tag.immutable
      ? [" ", h("button", {
        type: "button", class: "danger", "aria-label": t("repository.delete_tag", { tag: tag.name }),
        onclick: () => deleteTag(name, artifact, tag.name, redraw),
      }, t("common.delete"))]
      : null)));
}

async function deleteTag(name, artifact, tag, redraw) {
  if (!(await confirmDialog(t("repository.confirm_delete_tag", { tag, name }), t("repository.delete_tag", { tag })))) return;
  try {
    await send("DELETE", harbor(`${repoPath(name)}/artifacts/${artifact.digest}/tags/${encodeURIComponent(tag)}`));
    notify(t("common.deleted", { name: `${name}:${tag}` }));
    redraw();
  } catch (error) {
    notify(error.message, "error");
  }
}

function artifactActions(name, artifact, may, redraw) {
  if (!may.can("artifact", "delete")) return null;
  return h("button", {
    type: "button", class: "danger", "aria-label": t("repository.delete_artifact", { digest: shortDigest(artifact.digest) }),
    onclick: async () => {
      if (!(await confirmDialog(t("repository.confirm_delete_artifact", { digest: artifact.digest })))) return;
      try {
        await send("DELETE", harbor(`${repoPath(name)}/artifacts/${artifact.digest}`));
        notify(t("common.deleted", { name: shortDigest(artifact.digest) }));
        redraw();
      } catch (error) {
        notify(error.message, "error");
      }
    },
  }, t("common.delete"));  // the row names the artifact (and the label, for screen readers)
}

function referrers(name, artifact) {
  const found = artifact.accessories || [];
  if (!found.length) return "—";
  return h("ul", { class: "tags" }, found.map((r) => h("li", {},
    link(artifactUrl(name, r.digest), badge(accessoryLabel(r), r.type.startsWith("signature") ? "ok" : "", r.artifact_type)))));
}

function accessoryLabel(referrer) {
  const known = { "signature.cosign": "signature_cosign", "signature.notation": "signature_notation",
    "sbom.spdx": "sbom", "sbom.cyclonedx": "sbom", "harbor.sbom": "sbom" };
  return known[referrer.type] ? t(`repository.${known[referrer.type]}`) : (referrer.artifact_type || t("repository.referrer"));
}

export function mediaLabel(artifact) {
  const type = artifact.manifest_media_type || artifact.media_type || "";
  if (type.includes("index") || type.includes("manifest.list")) return t("repository.multi_arch");
  if (artifact.type === "IMAGE") return t("repository.image");
  return artifact.artifact_type || type;
}
