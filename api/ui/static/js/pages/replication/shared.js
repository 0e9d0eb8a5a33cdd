// What the replication page's sections share: constants, labels, formats, lists.
import { get, withParams } from "../../api.js";
import { badge, errorBox, mount } from "../../dom.js";
import { known, t } from "../../i18n.js";

export const STATUS_KINDS = { InProgress: "run", Pending: "", Retrying: "warn", Succeed: "ok", Failed: "bad", Stopped: "warn" };
export const PAGE_SIZE = 15;

// The page's address with these query parameters (empty ones left out).
export const here = (params) => withParams("/ui/replication", params);

export function pageOf(ctx, name = "page") {
  const page = Number(ctx.params.get(name) || 1);
  return Number.isInteger(page) && page > 0 ? page : 1;
}

// A translated label for a value the server sends, or the value itself when none is known.
export function label(prefix, value) {
  return known(`replication.${prefix}_${value}`, String(value));
}

export function statusBadge(status) {
  return badge(label("status", status), STATUS_KINDS[status] ?? "");
}

export function showError(where, error) {
  mount(where, errorBox(error));
}

// Every item of a Harbor list, page by page.
export async function getAll(url, params = {}) {
  const items = [];
  for (let page = 1; ; page += 1) {
    const { data, total } = await get(url, { ...params, page, page_size: 100 });
    items.push(...data);
    if (!data.length || total === null || items.length >= total) return items;
  }
}

// A form dialog that fits a phone's width (its selects shrink instead of widening it).
export function fitted(dialog) {
  dialog.classList.add("fitted");
  return dialog;
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return t("replication.duration_ms", { n: ms });
  if (ms < 60_000) return t("replication.duration_s", { n: (ms / 1000).toFixed(1) });
  return t("replication.duration_min", { m: Math.floor(ms / 60_000), s: Math.round((ms % 60_000) / 1000) });
}
