// Building blocks every page uses: elements, tables (sortable ones too), pagination, tabs, dialogs, notices,
// formats, time inputs.
import { t } from "./i18n.js";

// h("a", {href: "/ui/x", onclick: fn}, "text", child, [more]) — null and false children are skipped.
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "value") el.value = value;
    else if (key === "checked" || key === "disabled" || key === "selected") el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// An in-app link: the router intercepts it (data-link) instead of reloading the page.
export function link(href, ...children) {
  return h("a", { href, "data-link": true }, ...children);
}

// Where the page sits: [href, text] steps are links, a plain text step (the last) is the page itself.
export function breadcrumbs(label, ...trail) {
  const steps = trail.map((step) => (Array.isArray(step) ? link(step[0], step[1]) : h("span", { "aria-current": "page" }, step)));
  return h("nav", { class: "breadcrumbs", "aria-label": label }, steps.flatMap((step, i) => (i ? [" › ", step] : [step])));
}

let fieldCount = 0;

// A labelled control: the label names the input, the hint describes it (for screen readers too).
export function field(label, input, hint) {
  if (!input.id) input.id = `f${++fieldCount}`;
  const note = hint ? h("small", { id: `${input.id}-hint` }, hint) : null;
  if (note) input.setAttribute("aria-describedby", note.id);
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, note);
}

export function checkbox(label, props = {}) {
  const input = h("input", { type: "checkbox", ...props });
  return { input, element: h("label", { class: "check" }, input, label) };
}

export function select(options, props = {}) {
  return h("select", props, options.map(([value, label]) =>
    h("option", { value, selected: String(props.value) === String(value) }, label)));
}

// columns: [{label, render(row) -> node|string, class}]; `class` adds to the table's box.
export function table({ caption, columns, rows, empty, class: extra }) {
  if (!rows.length) return h("p", { class: "empty" }, empty || t("common.empty"));
  return h("div", { class: extra ? `table-wrap ${extra}` : "table-wrap" }, h("table", {},
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: headerClass(c.class) }, c.label)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.render(row))))))));
}

// A table the reader sorts (and pages through, with pageSize) in the page, for lists the page
// holds whole. Columns with sort(row) -> a number or text get a header button: it sorts by that
// column, and again the other way (descendingFirst: the first click sorts gravest or newest first).
// initial: {column (index), descending}. Rows keep their order among equals.
export function sortableTable({ caption, columns, rows, empty, initial = { column: 0, descending: false }, pageSize = 0 }) {
  if (!rows.length) return h("p", { class: "empty" }, empty || t("common.empty"));
  const holder = h("div", { class: "sortable" });
  let { column, descending } = initial;
  let page = 1;
  const header = (c, i) => {
    if (!c.sort) return h("th", { scope: "col", class: headerClass(c.class) }, c.label);
    const on = i === column;
    return h("th", { scope: "col", class: headerClass(c.class), "aria-sort": on ? (descending ? "descending" : "ascending") : null },
      h("button", {
        type: "button", class: "sort", "data-key": `sort-${i}`,
        onclick: () => {
          descending = on ? !descending : Boolean(c.descendingFirst);
          column = i;
          page = 1;
          draw();
        },
      }, c.label, h("span", { class: "sort-mark", "aria-hidden": "true" }, on ? (descending ? "▼" : "▲") : "↕")));
  };
  const draw = () => {
    const key = columns[column].sort;
    const sorted = key ? rows.map((row, i) => [key(row), i, row])
      .sort((a, b) => compareValues(a[0], b[0]) * (descending ? -1 : 1) || a[1] - b[1]).map(([, , row]) => row) : rows;
    const shown = pageSize ? sorted.slice((page - 1) * pageSize, page * pageSize) : sorted;
    remount(holder, h("div", { class: "table-wrap" }, h("table", {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, columns.map(header))),
      h("tbody", {}, shown.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.render(row)))))))),
    pageSize ? pager({ total: rows.length, page, size: pageSize, onChange: (next) => { page = next; draw(); } }) : null);
  };
  draw();
  return holder;
}

function compareValues(a, b) {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a ?? "").localeCompare(String(b ?? ""), document.documentElement.lang || undefined, { numeric: true });
}

// Long text cut short, with a button that shows it whole (and short again).
export function expandable(text, limit = 120) {
  if (!text || text.length <= limit) return text || "—";
  const shortText = `${text.slice(0, limit).trimEnd()}…`;
  const body = h("span", {}, shortText);
  const toggle = h("button", { type: "button", class: "link", "aria-expanded": "false" }, t("common.more"));
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    mount(body, open ? text : shortText);
    mount(toggle, open ? t("common.less") : t("common.more"));
  });
  return h("span", { class: "expandable" }, body, " ", toggle);
}

// Headers take only the classes about showing the column (hide-narrow), not cell styling (mono).
function headerClass(classes) {
  return (classes || "").split(" ").filter((c) => c.startsWith("hide-")).join(" ") || null;
}

export function pager({ total, page, size, onChange }) {
  const pages = Math.max(1, Math.ceil(total / size));
  if (pages <= 1) return null;
  return h("nav", { class: "pager", "aria-label": t("common.pagination") },
    h("button", { disabled: page <= 1, onclick: () => onChange(page - 1) }, t("common.previous")),
    h("span", {}, t("common.page_of", { page, pages, total })),
    h("button", { disabled: page >= pages, onclick: () => onChange(page + 1) }, t("common.next")));
}

export function emptyState(text) {
  return h("p", { class: "empty" }, text);
}

export function errorBox(error) {
  return h("div", { class: "error", role: "alert" }, error.message || String(error));
}

// Runs an action; a failure shows the server's message in `where` (the panel's alert area).
export async function attempt(where, action) {
  mount(where);
  try {
    await action();
  } catch (error) {
    mount(where, errorBox(error));
  }
}

// A page that cannot be shown to this caller: its heading, why (an alert) and a way on.
export function refusal(title, reason, onward) {
  return [h("h1", {}, title), errorBox(reason), onward];
}

// Replaces a live region's content, keeping the keyboard focus on the control (by data-key) it was on.
export function remount(container, ...children) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : null;
  mount(container, ...children);
  if (key) container.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

// A table row's buttons; "—" when the caller may use none of them.
export function rowActions(...buttons) {
  const shown = buttons.filter(Boolean);
  return shown.length ? h("div", { class: "row-actions" }, shown) : "—";
}

// WAI-ARIA tabs (items: [{id, label}]); arrows (wrapping), Home and End move between them.
// Without `href` they are buttons that switch at once (automatic activation): onSelect(id), the
// page shows the panel. With href(id) each is an in-app link to its section's own address: the
// keys only move the focus, Enter or a click follows the link. The tab of id x is #tab-x; it
// controls controls(id) (#panel-x unless told).
export function tabs({ label, items, selected, onSelect, href, controls = (id) => `panel-${id}`, class: extra }) {
  const elements = items.map((item) => {
    const props = {
      role: "tab", id: `tab-${item.id}`, "aria-controls": controls(item.id),
      "aria-selected": String(item.id === selected), tabindex: item.id === selected ? "0" : "-1",
    };
    return href ? h("a", { href: href(item.id), "data-link": true, ...props }, item.label)
      : h("button", { type: "button", ...props, onclick: () => choose(item.id, false) }, item.label);
  });
  const list = h("div", { role: "tablist", class: extra ? `tabs ${extra}` : "tabs", "aria-label": label }, elements);
  function choose(id, focus) {
    elements.forEach((tab, i) => {
      const on = items[i].id === id;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      if (on && focus) tab.focus();
    });
    onSelect(id);
  }
  list.addEventListener("keydown", (event) => {
    const index = elements.indexOf(document.activeElement);
    const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: elements.length - 1 };
    if (index < 0 || !(event.key in moves)) return;
    event.preventDefault();
    const next = (moves[event.key] + elements.length) % elements.length;
    if (href) elements[next].focus();
    else choose(items[next].id, true);
  });
  return list;
}

// A small label; `title` (on hover) tells what a badge cut short says in full.
export function badge(text, kind = "", title = null) {
  return h("span", { class: `badge ${kind}`, title }, text);
}

export function notify(message, kind = "") {
  const box = h("div", { class: `notice ${kind}` }, message);
  document.getElementById("notices").append(box);
  setTimeout(() => box.remove(), 5000);
}

// Asks before something destructive; resolves true when confirmed.
export function confirmDialog(message, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { "aria-label": t("common.confirm") });
    const done = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
    mount(dialog, h("form", { method: "dialog" },
      h("p", {}, message),
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => done(false) }, t("common.cancel")),
        h("button", { type: "button", class: "danger", onclick: () => done(true) }, confirmLabel || t("common.delete")))));
    dialog.addEventListener("cancel", () => done(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

// A modal form: build() gives its fields; submit(form) runs on submit and closes it on success,
// or shows the server's message inside the dialog.
export function formDialog(title, build, submit, submitLabel) {
  const titleId = `dialog-title-${++fieldCount}`;
  const dialog = h("dialog", { "aria-labelledby": titleId });
  const problem = h("div");
  const close = () => { dialog.close(); dialog.remove(); };
  const form = h("form", {},
    h("h2", { id: titleId }, title), problem,
    build(),
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: close }, t("common.cancel")),
      h("button", { type: "submit", class: "primary" }, submitLabel || t("common.save"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await submit(form);
      close();
    } catch (error) {
      mount(problem, errorBox(error));
      problem.scrollIntoView({ block: "nearest" });
    }
  });
  dialog.addEventListener("close", () => dialog.remove());
  dialog.append(form);
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

export function copyButton(text, label) {
  return h("button", {
    type: "button", "aria-label": label || t("common.copy"), title: label || t("common.copy"),
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(text);
        notify(t("common.copied"));
      } catch {
        notify(text);
      }
    },
  }, t("common.copy"));
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || bytes < 0) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit ? value.toFixed(value < 10 ? 2 : 1) : value} ${units[unit]}`;
}

// A time (ISO 8601 text or Unix seconds) as a <time> element in the reader's locale.
export function formatTime(value) {
  const moment = toDate(value);
  return moment ? h("time", { datetime: moment.toISOString() }, formatTimeText(value)) : "—";
}

export function formatTimeText(value) {
  const moment = toDate(value);
  return moment ? moment.toLocaleString(document.documentElement.lang) : "—";
}

function toDate(value) {
  if (!value || String(value).startsWith("0001-")) return null;
  const moment = new Date(typeof value === "number" ? value * 1000 : value);
  return Number.isNaN(moment.getTime()) ? null : moment;
}

// A datetime-local input's value (the browser's time zone) -> ISO 8601 UTC ("" when none or invalid).
export function localToIso(value) {
  if (!value) return "";
  const moment = new Date(value);
  return Number.isNaN(moment.getTime()) ? "" : moment.toISOString().replace(/\.000Z$/, "Z");
}

// ISO 8601 -> the value a datetime-local input shows (seconds only when there are any).
export function isoToLocal(value) {
  if (!value) return "";
  const moment = new Date(value);
  if (Number.isNaN(moment.getTime())) return "";
  const local = new Date(moment.getTime() - moment.getTimezoneOffset() * 60000).toISOString();
  return local.slice(0, moment.getSeconds() || moment.getMilliseconds() ? 19 : 16);
}

export function shortDigest(digest) {
  return digest ? digest.replace(/^(sha256:[0-9a-f]{12}).*$/, "$1…") : "—";
}

// An in-app link showing the short digest on one line; the full one is its title.
export function digestLink(href, digest) {
  return h("a", { href, "data-link": true, title: digest, class: "mono digest" }, shortDigest(digest));
}

export function meter(used, limit, label) {
  if (!limit || limit < 0) return null;
  const percent = Math.min(100, Math.round((used / limit) * 100));
  const bar = h("span");
  bar.style.width = `${percent}%`;  // set through the CSSOM: the page's CSP forbids inline styles
  return h("div", {
    class: `meter${percent >= 85 ? " high" : ""}`, role: "meter", "aria-valuemin": 0, "aria-valuemax": 100,
    "aria-valuenow": percent, "aria-label": label, title: `${percent}%`,
  }, bar);
}

// An ISO 8601 moment -> the moment of the registry's read-only view of the past, as a name
// component (`as-of/<moment>/<repository>`): 20261207t201500z, with .250 when it has milliseconds.
export function viewMoment(iso) {
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return "";
  const [day, clock] = moment.toISOString().replace("Z", "").split("T");
  const [whole, fraction] = clock.split(".");
  return `${day.replaceAll("-", "")}t${whole.replaceAll(":", "")}${fraction && fraction !== "000" ? `.${fraction}` : ""}z`;
}

// A form choosing a past moment (the browser's time zone, no later than now): `onChoose` gets
// its ISO 8601 UTC value, or "" when cleared; an invalid one is reported in `problem`.
export function momentPicker({ label, submit, value, invalid, problem, onChoose }) {
  const input = h("input", { type: "datetime-local", name: "as_of", step: "1", value: isoToLocal(value),
    max: isoToLocal(new Date().toISOString()) });
  const form = h("form", { class: "toolbar as-of-form" }, field(label, input), h("button", { type: "submit" }, submit));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = input.value ? localToIso(input.value) : "";
    if (input.value && !chosen) mount(problem, errorBox(new Error(invalid)));
    else onChoose(chosen);
  });
  return form;
}
