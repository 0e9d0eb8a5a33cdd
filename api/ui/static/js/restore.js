// "Restore to this moment" in the time-travel views (a repository's or a project's page as of a
// moment): a dry run first (POST …/restore with dry_run), shown as the changes it would record and
// what blocks others (immutable tags, deleted robots); confirming records them (docs/time-travel.md).
// Pages that use it load the "restore" catalog.
import { ApiError, get, harbor, send, v1 } from "./api.js";
import { formDialog, h, notify, shortDigest } from "./dom.js";
import { t } from "./i18n.js";
import { permissions } from "./session.js";

const segments = (name) => name.split("/").map(encodeURIComponent).join("/");

// The button for a repository (`name` has a "/") or a project, shown only to those who may
// restore it: push and delete on the repository, or the project's administration.
export async function restoreButton(name, asOf, onRestored) {
  if (!(await mayRestore(name))) return null;
  const url = name.includes("/") ? v1(`/repositories/${segments(name)}/restore`)
    : v1(`/projects/${encodeURIComponent(name)}/restore`);
  return h("button", { type: "button", class: "restore-moment", onclick: () => preview(url, name, asOf, onRestored) },
    t("restore.button"));
}

async function mayRestore(name) {
  const project = name.split("/")[0];
  try {
    const { data } = await get(harbor(`/projects/${encodeURIComponent(project)}`));
    const { can } = await permissions(data.project_id);
    return name.includes("/") ? can("repository", "push") && can("repository", "delete") : can("project", "update");
  } catch {
    return false;  // no button; the API would refuse anyway
  }
}

async function preview(url, name, asOf, onRestored) {
  let plan;
  try {
    plan = await send("POST", url, { as_of: asOf, dry_run: true });
  } catch (error) {
    notify(refusalText(error), "error");
    return;
  }
  formDialog(t("restore.title", { name }), () => describe(plan), async () => {
    const done = await send("POST", url, { as_of: asOf });
    notify(t("restore.done", { name, count: done.changes.length }));
    await onRestored();
  }, t("restore.confirm"));
}

function describe(plan) {
  const changes = plan.changes.map((change) => h("li", { class: "restore-change" }, changeText(change)));
  const blocked = plan.blocked.map((entry) => h("li", { class: "restore-blocked" },
    changeText(entry), " — ", h("em", {}, entry.reason)));
  return h("div", { class: "restore-plan" },
    h("p", {}, t("restore.intro", { position: plan.as_of_position })),
    changes.length ? h("ul", {}, ...changes) : h("p", { class: "muted" }, t("restore.nothing")),
    blocked.length ? [h("h3", {}, t("restore.blocked")), h("ul", {}, ...blocked)] : null,
    h("p", { class: "muted" }, t("restore.note")));
}

// One change in words: "Move team/app:stable back to sha256:1234…".
function changeText(change) {
  const values = {
    ...change,
    where: change.tag ? `${change.repository}:${change.tag}` : change.repository || change.robot || "",
    digest: change.digest ? shortDigest(change.digest) : "",
    previous: change.previous_digest ? shortDigest(change.previous_digest) : "",
    value: typeof change.value === "string" ? change.value : "",
  };
  return t(`restore.kind_${change.kind.replaceAll("-", "_")}`, values);
}

function refusalText(error) {
  const missing = error instanceof ApiError ? error.body?.missing_digests : null;
  return missing ? t("restore.missing", { digests: missing.map(shortDigest).join(", ") }) : error.message;
}
