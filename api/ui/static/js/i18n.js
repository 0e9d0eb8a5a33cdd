// Message catalogs: static/i18n/<language>/<catalog>.json, one catalog per page plus "common".
// t("repository.delete_tag", {tag}) looks a key up in the current language, then in English.
// A message that shows a count is an object of the language's plural forms (Intl.PluralRules
// categories: {"one": "{count} GC run", "other": "{count} GC runs"}; Chinese needs only
// "other"): t("gc.runs_caption", {count}) picks the form for `count`.
export const LANGUAGES = { en: "English", "zh-CN": "简体中文" };
const FALLBACK = "en";
const loaded = new Map();  // "<language>/<catalog>" -> messages

export function language() {
  const chosen = localStorage.getItem("portlog.language");
  if (chosen && LANGUAGES[chosen]) return chosen;
  return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : FALLBACK;
}

export function setLanguage(lang) {
  localStorage.setItem("portlog.language", lang);
  document.documentElement.lang = lang;
}

async function fetchCatalog(lang, name) {
  const key = `${lang}/${name}`;
  if (!loaded.has(key)) {
    const response = await fetch(`/ui/static/i18n/${key}.json`);
    loaded.set(key, response.ok ? await response.json() : {});
  }
  return loaded.get(key);
}

// Loads the catalogs a page needs (in its language and the fallback) before it draws.
export async function useCatalogs(...names) {
  const langs = [...new Set([language(), FALLBACK])];
  await Promise.all(langs.flatMap((lang) => names.map((name) => fetchCatalog(lang, name))));
}

const pluralRules = new Map();  // language -> Intl.PluralRules

function pluralForm(lang, forms, count) {
  if (!pluralRules.has(lang)) pluralRules.set(lang, new Intl.PluralRules(lang));
  return forms[pluralRules.get(lang).select(Number(count) || 0)] ?? forms.other;
}

function lookup(lang, key, vars) {
  const [name, ...rest] = key.split(".");
  const message = loaded.get(`${lang}/${name}`)?.[rest.join(".")];
  return message !== null && typeof message === "object" ? pluralForm(lang, message, vars.count) : message;
}

export function t(key, vars = {}) {
  const text = lookup(language(), key, vars) ?? lookup(FALLBACK, key, vars) ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

// The translation of a key made from a value the server sends (a status, a trigger), or
// `fallback` (the value itself) when the catalog has none.
export function known(key, fallback) {
  const text = t(key);
  return text === key ? fallback : text;
}
