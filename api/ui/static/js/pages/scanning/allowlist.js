// A CVE allowlist (Harbor's CVEAllowlist: items [{cve_id}], expires_at in Unix seconds or null),
// shown, and edited when the caller may: ids added (several at once) and removed, an expiry date
// or none, then saved whole. The API checks the ids; its message shows beside the Save button.
// The system's list (scanning administration) and a project's own (project settings) use it.
import { checkbox, errorBox, field, h, mount, notify, sortableTable } from "../../dom.js";
import { t } from "../../i18n.js";

const PAGE_SIZE = 15;

// save({items: [ids], expires_at}) sends the list (a failure shows its message); caption(count) names the table.
export function allowlistEditor({ allowlist, editable, save, caption }) {
  let items = (allowlist?.items || []).map((item) => item.cve_id);
  const expiresAt = allowlist?.expires_at ?? null;
  const problem = h("div");
  const list = h("div");
  const unsaved = h("span", { class: "muted unsaved", role: "status" });
  const changed = () => mount(unsaved, t("scanning.unsaved"));
  const draw = () => mount(list, sortableTable({
    caption: caption(items.length),
    empty: editable ? t("scanning.allowlist_empty_admin") : t("scanning.allowlist_empty"),
    rows: items,
    pageSize: PAGE_SIZE,
    columns: [
      { label: t("scanning.vulnerability_id"), class: "mono", sort: (id) => id, render: (id) => id },
      ...(editable ? [{ label: t("common.actions"), render: (id) => h("button", {
        type: "button", class: "danger", "aria-label": t("scanning.remove_id", { id }),
        onclick: () => {
          items = items.filter((item) => item !== id);
          changed();
          draw();
        },
      }, t("scanning.remove")) }] : []),
    ],
  }));
  draw();
  if (!editable) return h("div", { class: "allowlist" }, h("p", {}, expiryText(expiresAt)), list);

  const ids = h("input", { type: "text", name: "cve_ids", autocomplete: "off", class: "mono", placeholder: "CVE-2023-12345" });
  const add = () => {
    const given = ids.value.split(/[\s,;]+/).map((id) => id.trim()).filter(Boolean);
    const fresh = given.filter((id, i) => !items.includes(id) && given.indexOf(id) === i);
    if (!fresh.length) return;
    items = [...items, ...fresh];
    ids.value = "";
    changed();
    draw();
  };
  ids.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      add();
    }
  });
  const never = checkbox(t("scanning.never_expires"), { name: "never_expires", checked: expiresAt === null });
  const date = h("input", { type: "date", name: "expires_on", value: expiresAt === null ? "" : dateValue(expiresAt),
    disabled: expiresAt === null });
  never.input.addEventListener("change", () => {
    date.disabled = never.input.checked;
    if (!never.input.checked && !date.value) date.value = dateValue(Date.now() / 1000 + 90 * 86400);
    changed();
  });
  date.addEventListener("change", changed);
  const submit = async () => {
    mount(problem);
    if (!never.input.checked && !date.value) {
      mount(problem, errorBox(new Error(t("scanning.expiry_missing"))));
      return;
    }
    try {
      // The chosen day's first moment in the reader's time zone: from then on the list exempts nothing.
      await save({ items, expires_at: never.input.checked ? null : Math.floor(new Date(`${date.value}T00:00:00`).getTime() / 1000) });
      mount(unsaved);
      notify(t("scanning.allowlist_saved"));
    } catch (error) {
      mount(problem, errorBox(error));
    }
  };
  return h("div", { class: "allowlist" },
    h("p", {}, expiryText(expiresAt)),
    h("div", { class: "toolbar" },
      field(t("scanning.add_ids"), ids, t("scanning.add_ids_hint")),
      h("button", { type: "button", onclick: add }, t("scanning.add"))),
    list,
    h("div", { class: "toolbar allowlist-expiry" }, never.element, field(t("scanning.expires_on"), date)),
    problem,
    h("div", { class: "toolbar" }, h("button", { type: "button", class: "primary", onclick: submit }, t("scanning.save_allowlist")), unsaved));
}

function expiryText(expiresAt) {
  if (expiresAt === null || expiresAt === undefined) return t("scanning.expiry_never");
  const when = new Date(expiresAt * 1000).toLocaleDateString(document.documentElement.lang);
  return expiresAt * 1000 <= Date.now() ? h("span", { class: "warn-text" }, t("scanning.expired_on", { time: when }))
    : t("scanning.expires_at", { time: when });
}

// Unix seconds -> the value of a date input (the reader's local date).
function dateValue(seconds) {
  const moment = new Date(seconds * 1000);
  const local = new Date(moment.getTime() - moment.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 10);
}
