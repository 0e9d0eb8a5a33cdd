// What the project page's tabs share: small helpers and constants.
import { field, h, select } from "../../dom.js";
import { t } from "../../i18n.js";

export const PAGE_SIZE = 15;

// A translated text in which some {vars} are nodes (a <time>, a link), not strings.
export function fill(key, nodes) {
  return t(key).split(/\{(\w+)\}/).map((part, i) => (i % 2 ? nodes[part] ?? `{${part}}` : part)).filter((p) => p !== "");
}

export function params() {
  return new URLSearchParams(location.search);
}

// Changes the page's query string (push: a new history entry) without drawing the page anew.
export function setQuery(changes, { push = false } = {}) {
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

export function button(label, onclick, { kind = "", name } = {}) {
  return h("button", { type: "button", class: kind || null, "aria-label": name || null, onclick }, label);
}

export { attempt } from "../../dom.js";

export function selectorText(pattern, excluding) {
  return t(excluding ? "project.excluding" : "project.matching", { pattern });
}

// The matching / excluding choice of a pattern, as Harbor's rule forms offer it.
export function selectorFields(label, pattern, excluding, name) {
  const mode = select([["matching", t("project.mode_matching")], ["excluding", t("project.mode_excluding")]],
    { name: `${name}_mode`, value: excluding ? "excluding" : "matching" });
  const text = h("input", { type: "text", name, value: pattern, required: true, autocomplete: "off" });
  return { mode, text, element: h("div", { class: "selector" },
    field(t("project.selector_mode", { what: label }), mode), field(label, text, t("project.pattern_hint"))) };
}
