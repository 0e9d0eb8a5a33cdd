// One artifact, in three tabs (each its own address, ?tab=): the overview — its facts, manifest,
// image config, layers (or an index's platforms), annotations and referrers —, its
// vulnerabilities (pages/scanning/vulnerabilities.js) and its SBOM (pages/scanning/sbom.js), the
// last two for images only. Manifests, configs and referrers come from the registry API (/v2/),
// which reads the session cookie for pulls. With `as_of`, the overview of the artifact as it was
// at that moment, read from the registry's as-of view (/v2/as-of/<moment>/…).
import { get, harbor, repoPath } from "../api.js";
import { badge, breadcrumbs, copyButton, formatBytes, formatTime, formatTimeText, h, link, mount, shortDigest, table, tabs, viewMoment } from "../dom.js";
import { t } from "../i18n.js";
import { permissions } from "../session.js";
import { artifactUrl, mediaLabel, pullCommandOf, trailTo } from "./repository.js";
import { drawSbom } from "./scanning/sbom.js";
import { scanSummary } from "./scanning/summary.js";
import { drawVulnerabilities } from "./scanning/vulnerabilities.js";

export const catalogs = ["repository", "artifact", "scanning"];
const MANIFEST_TYPES = [
  "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");
const CONFIG_LIMIT = 1 << 20;  // larger configs are not fetched into the page
const TABS = { overview: drawOverview, vulnerabilities: drawVulnerabilities, sbom: drawSbom };

export async function render(view, ctx) {
  const name = ctx.params.get("name") || "";
  const digest = ctx.params.get("digest") || "";
  // The vulnerabilities and SBOM tabs read their own `as_of` (the report known then).
  const asOf = ctx.params.get("tab") in { vulnerabilities: 1, sbom: 1 } ? "" : ctx.params.get("as_of") || "";
  const registry = asOf ? `/v2/as-of/${viewMoment(asOf)}/${name}` : `/v2/${name}`;
  const [{ data: artifact }, manifest] = await Promise.all([
    get(harbor(`${repoPath(name)}/artifacts/${encodeURIComponent(digest)}`),
      { with_tag: "true", with_accessory: "true", with_scan_overview: "true", with_sbom_overview: "true", as_of: asOf || undefined }),
    registryJson(`${registry}/manifests/${digest}`, MANIFEST_TYPES),
  ]);
  if (asOf) return renderAsOf(view, { ctx, name, digest, artifact, manifest, registry, asOf });
  const scannable = artifact.type === "IMAGE";  // an image, or an index of images
  const wanted = ctx.params.get("tab");
  const tab = scannable && wanted in TABS ? wanted : "overview";
  const panel = h("section", scannable ? { id: "artifact-panel", role: "tabpanel", "aria-labelledby": `tab-${tab}` } : {});
  mount(view,
    breadcrumbs(t("repository.breadcrumbs"), ...trailTo(name), shortDigest(digest)),
    h("h1", {}, `${name}@${shortDigest(digest)}`),
    scannable ? tabs({
      label: t("artifact.sections"), selected: tab, controls: () => "artifact-panel", class: "artifact-tabs",
      href: (id) => artifactUrl(name, digest, id === "overview" ? null : id),
      items: Object.keys(TABS).map((id) => ({ id, label: t(`artifact.tab_${id}`) })),
    }) : null,
    panel);
  const may = tab === "overview" ? null : await permissions(artifact.project_id);
  await TABS[tab](panel, { ctx, name, digest, artifact, manifest, may, scannable, registry });
}

// The overview only: scan results and SBOMs are of the digest, shown by the page of now.
async function renderAsOf(view, { name, digest, artifact, manifest, registry, asOf }) {
  const panel = h("section");
  mount(view,
    breadcrumbs(t("repository.breadcrumbs"), ...trailTo(name), shortDigest(digest)),
    h("h1", {}, `${name}@${shortDigest(digest)}`),
    h("div", { class: "asof", role: "status" }, t("artifact.as_of_banner", { time: formatTimeText(asOf) }), " ",
      link(`/ui/repository?${new URLSearchParams({ name, as_of: asOf })}`, t("artifact.back_to_repository"))),
    panel);
  await drawOverview(panel, { name, digest, artifact, manifest, scannable: false, registry,
    pullName: `as-of/${viewMoment(asOf)}/${name}` });
}

async function drawOverview(panel, { name, digest, artifact, manifest, scannable, registry, pullName = name }) {
  const config = await imageConfig(registry, manifest);
  const referrers = (await registryJson(`${registry}/referrers/${digest}`, "application/vnd.oci.image.index.v1+json")).manifests || [];
  mount(panel,
    facts(name, artifact, scannable, pullName),
    config ? configSection(config) : null,
    manifest.layers ? layersSection(manifest.layers) : null,
    manifest.manifests ? platformsSection(name, manifest.manifests) : null,
    annotationsSection({ ...(manifest.annotations || {}) }),
    referrersSection(name, referrers),
    h("h2", {}, t("artifact.manifest")),
    h("pre", { class: "json", tabindex: "0", "aria-label": t("artifact.manifest") }, JSON.stringify(manifest, null, 2)));
}

async function registryJson(path, accept) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: accept } });
  if (!response.ok) throw new Error(t("artifact.registry_refused", { status: response.status, path }));
  return response.json();
}

async function imageConfig(registry, manifest) {
  const descriptor = manifest.config;
  if (!descriptor || descriptor.size > CONFIG_LIMIT || !descriptor.mediaType?.endsWith("json")) return null;
  try {
    return await registryJson(`${registry}/blobs/${descriptor.digest}`, descriptor.mediaType);
  } catch {
    return null;
  }
}

function facts(name, artifact, scannable, pullName) {
  const tags = (artifact.tags || []).map((tag) => tag.name);
  const rows = [
    [t("artifact.digest"), h("span", { class: "mono" }, artifact.digest, " ", copyButton(artifact.digest, t("artifact.copy_digest")))],
    [t("repository.tags"), tags.length ? tags.join(", ") : t("repository.untagged")],
    [t("repository.type"), mediaLabel(artifact)],
    [t("artifact.media_type"), h("span", { class: "mono" }, artifact.manifest_media_type || artifact.media_type)],
    artifact.artifact_type ? [t("artifact.artifact_type"), h("span", { class: "mono" }, artifact.artifact_type)] : null,
    [t("repository.size"), formatBytes(artifact.size)],
    [t("repository.pushed"), formatTime(artifact.push_time)],
    [t("repository.pulled"), artifact.pull_time ? formatTime(artifact.pull_time) : t("repository.never")],
    scannable ? [t("scanning.vulnerabilities"), link(artifactUrl(name, artifact.digest, "vulnerabilities"), scanSummary(artifact))] : null,
    [t("artifact.pull_by_digest"), h("span", { class: "mono" }, `${location.host}/${pullName}@${artifact.digest}`, " ",
      copyButton(pullCommandOf(pullName, artifact, { digest: artifact.digest }), t("repository.copy_pull")))],
  ].filter(Boolean);
  return h("dl", { class: "facts" }, rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

function configSection(config) {
  const settings = config.config || {};
  const rows = [
    [t("artifact.platform"), [config.os, config.architecture, config.variant].filter(Boolean).join("/")],
    [t("artifact.created"), config.created ? formatTime(config.created) : "—"],
    [t("artifact.entrypoint"), (settings.Entrypoint || []).join(" ") || "—"],
    [t("artifact.command"), (settings.Cmd || []).join(" ") || "—"],
    [t("artifact.environment"), (settings.Env || []).join("\n") || "—"],
    [t("artifact.workdir"), settings.WorkingDir || "—"],
  ];
  return [h("h2", {}, t("artifact.config")),
    h("dl", { class: "facts" }, rows.map(([term, value]) => [h("dt", {}, term), h("dd", { class: "pre" }, value)])),
    (config.history || []).length ? table({
      caption: t("artifact.build_history"), rows: config.history,
      columns: [
        { label: t("artifact.created"), class: "hide-narrow", render: (step) => formatTime(step.created) },
        { label: t("artifact.step"), class: "mono", render: (step) => step.created_by || step.comment || "—" },
        { label: t("artifact.empty_layer"), render: (step) => (step.empty_layer ? t("common.yes") : t("common.no")) },
      ],
    }) : null];
}

function layersSection(layers) {
  const total = layers.reduce((sum, layer) => sum + (layer.size || 0), 0);
  return [h("h2", {}, t("artifact.layers")), table({
    caption: t("artifact.layers_caption", { count: layers.length, size: formatBytes(total) }), rows: layers,
    columns: [
      { label: t("artifact.digest"), class: "mono", render: (layer) => layer.digest },
      { label: t("artifact.media_type"), class: "mono hide-narrow", render: (layer) => layer.mediaType },
      { label: t("repository.size"), render: (layer) => formatBytes(layer.size) },
    ],
  })];
}

function platformsSection(name, children) {
  return [h("h2", {}, t("artifact.platforms")), table({
    caption: t("artifact.platforms_caption", { count: children.length }), rows: children,
    columns: [
      { label: t("artifact.platform"), render: (c) => (c.platform ? [c.platform.os, c.platform.architecture, c.platform.variant].filter(Boolean).join("/") : "—") },
      { label: t("artifact.digest"), class: "mono", render: (c) => link(artifactUrl(name, c.digest), shortDigest(c.digest)) },
      { label: t("repository.size"), render: (c) => formatBytes(c.size) },
    ],
  })];
}

function annotationsSection(annotations) {
  const rows = Object.entries(annotations);
  return [h("h2", {}, t("artifact.annotations")), table({
    caption: t("artifact.annotations"), rows, empty: t("artifact.no_annotations"),
    columns: [
      { label: t("artifact.key"), class: "mono", render: ([key]) => key },
      { label: t("artifact.value"), render: ([, value]) => value },
    ],
  })];
}

function referrersSection(name, referrers) {
  return [h("h2", {}, t("repository.referrers")), table({
    caption: t("artifact.referrers_caption", { count: referrers.length }), rows: referrers,
    empty: t("artifact.no_referrers"),
    columns: [
      { label: t("artifact.artifact_type"), render: (r) => badge(r.artifactType || r.mediaType) },
      { label: t("artifact.digest"), class: "mono", render: (r) => link(artifactUrl(name, r.digest), shortDigest(r.digest)) },
      { label: t("repository.size"), render: (r) => formatBytes(r.size) },
    ],
  })];
}
