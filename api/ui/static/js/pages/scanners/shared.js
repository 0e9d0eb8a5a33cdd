// What the scanning administration page's sections share.
import { withParams } from "../../api.js";

export const PAGE_SIZE = 15;

// The page's address with these query parameters (empty ones left out).
export const here = (params) => withParams("/ui/scanners", params);

// A form dialog that fits a phone's width (its selects shrink instead of widening it).
export function fitted(dialog) {
  dialog.classList.add("fitted");
  return dialog;
}
