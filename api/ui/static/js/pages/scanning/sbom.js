// The artifact page's SBOM tab: the state of its SBOM scan (Generate SBOM: a scan of type sbom,
// followed live), and once there is one, the packages it lists (GET …/additions/sbom: CycloneDX,
// or SPDX from an adapter that sends it), a download of the document and the referrer it was
// attached as (Harbor's SBOM accessory). An index's platforms each have their own.
import { get } from "../../api.js";
import { errorBox, field, h, link, mount, shortDigest, sortableTable } from "../../dom.js";
import { t } from "../../i18n.js";
import { fill } from "../project/shared.js";
import { artifactUrl } from "../repository.js";
import { artifactApi, overviewOf, scanState } from "./scan_state.js";
import { statusBadge } from "./summary.js";

const PAGE_SIZE = 50;

export async function drawSbom(panel, { ctx, name, artifact, manifest, may }) {
  const listing = h("div", { class: "sbom-packages" });
  const state = scanState(ctx, { name, artifact, may, scanType: "sbom",
    onStarted: () => { const empty = listing.querySelector("p.empty"); if (empty) mount(empty, t("scanning.sbom_running")); },
    onFinished: (now) => (manifest.manifests ? drawPlatforms(listing, name, manifest) : drawPackages(listing, name, now)) });
  mount(panel, h("h2", { class: "visually-hidden" }, t("artifact.tab_sbom")),
    h("p", { class: "hint muted" }, t("scanning.sbom_intro")), state.element, listing);
  if (manifest.manifests) await drawPlatforms(listing, name, manifest);
  else await drawPackages(listing, name, artifact);
  state.start();
}

async function drawPackages(area, name, artifact) {
  const status = overviewOf(artifact, "sbom")?.scan_status;
  if (status !== "Success") {
    mount(area, h("p", { class: "empty" }, t(["Pending", "Running"].includes(status) ? "scanning.sbom_running" : "scanning.sbom_none")));
    return;
  }
  mount(area, h("p", { class: "loading" }, t("common.loading")));
  const url = `${artifactApi(name, artifact.digest)}/additions/sbom`;
  let sbom;
  try {
    sbom = (await get(url)).data;
  } catch (error) {
    mount(area, errorBox(error));
    return;
  }
  const { format, packages } = packagesOf(sbom);
  const repository = name.split("/").pop();
  const hex = artifact.digest.replace(/^sha256:/, "").slice(0, 12);
  const search = h("input", { type: "search", name: "package" });
  const list = h("div");
  const filter = () => {
    const needle = search.value.trim().toLowerCase();
    const rows = packages.filter((p) => !needle || `${p.name} ${p.purl}`.toLowerCase().includes(needle));
    mount(list, sortableTable({
      caption: t("scanning.packages_caption", { count: rows.length, total: packages.length }),
      empty: packages.length ? t("scanning.packages_none_matching") : t("scanning.packages_none"),
      rows, pageSize: PAGE_SIZE,
      columns: [
        { label: t("scanning.package"), sort: (p) => p.name, render: (p) => h("span", { class: "package-name" }, p.name) },
        { label: t("scanning.version"), class: "mono", sort: (p) => p.version, render: (p) => p.version || "—" },
        { label: t("scanning.package_type"), class: "hide-narrow", sort: (p) => p.type, render: (p) => p.type || "—" },
        { label: t("scanning.purl"), class: "mono purl", sort: (p) => p.purl, render: (p) => p.purl || "—" },
      ],
    }));
  };
  search.addEventListener("input", filter);
  const attached = overviewOf(artifact, "sbom")?.sbom_digest;
  mount(area,
    attached ? h("p", { class: "muted" }, fill("scanning.sbom_attached",
      { digest: link(artifactUrl(name, attached), shortDigest(attached)) })) : null,
    h("div", { class: "toolbar" },
      field(t("scanning.filter_packages"), search),
      h("span", { class: "grow" }),
      h("a", { href: url, download: `${repository}-${hex}.${format === "SPDX" ? "spdx" : "cdx"}.json`, class: "button" },
        t(format === "SPDX" ? "scanning.download_spdx" : "scanning.download_cyclonedx"))),
    list);
  filter();
}

// {format, packages: [{name, version, type, purl}]} of a CycloneDX document (components, nested
// ones too) or an SPDX one (packages).
function packagesOf(document) {
  if (Array.isArray(document?.packages)) {
    return { format: "SPDX", packages: document.packages.map((p) => ({
      name: text(p.name), version: text(p.versionInfo), type: text(p.primaryPackagePurpose).toLowerCase(),
      purl: text((p.externalRefs || []).find((ref) => ref.referenceType === "purl")?.referenceLocator) })) };
  }
  const packages = [];
  const walk = (components) => (Array.isArray(components) ? components : []).forEach((c) => {
    packages.push({ name: [text(c.group), text(c.name)].filter(Boolean).join("/"), version: text(c.version),
      type: text(c.type), purl: text(c.purl) });
    walk(c.components);
  });
  walk(document?.components);
  return { format: "CycloneDX", packages };
}

function text(value) {
  return typeof value === "string" ? value : "";
}

async function drawPlatforms(area, name, manifest) {
  const children = await Promise.all(manifest.manifests.map(async (child) => {
    try {
      return { child, artifact: (await get(artifactApi(name, child.digest), { with_sbom_overview: "true" })).data };
    } catch {
      return { child, artifact: null };
    }
  }));
  mount(area, h("p", { class: "hint muted" }, t("scanning.index_sbom_hint")), sortableTable({
    caption: t("scanning.platforms_caption", { count: children.length }),
    rows: children,
    columns: [
      { label: t("artifact.platform"), sort: ({ child }) => platformOf(child), render: ({ child }) => platformOf(child) },
      { label: t("artifact.digest"), class: "mono", render: ({ child }) => link(artifactUrl(name, child.digest, "sbom"), shortDigest(child.digest)) },
      { label: t("artifact.tab_sbom"), render: ({ artifact }) => {
        const overview = artifact && overviewOf(artifact, "sbom");
        return overview ? statusBadge(overview.scan_status) : h("span", { class: "muted" }, t("scanning.sbom_missing"));
      } },
    ],
  }));
}

function platformOf(child) {
  return child.platform ? [child.platform.os, child.platform.architecture, child.platform.variant].filter(Boolean).join("/") : "—";
}
