// Who is signed in, and what they may do: the UI hides what the API would refuse (and the API
// refuses anyway, whatever the page shows).
import { ApiError, get, harbor } from "./api.js";

let current;  // undefined: not asked yet; null: anonymous

// The session probe answers null for anonymous visitors: no 401 in the console on every page.
export async function currentUser() {
  if (current === undefined) current = (await get("/c/session")).data;
  return current;
}

export function forgetUser() {
  current = undefined;
}

export async function login(username, password) {
  const body = new URLSearchParams({ principal: username, password });
  const response = await fetch("/c/login", { method: "POST", body, credentials: "same-origin",
    headers: { "X-Requested-With": "XMLHttpRequest" } });
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).detail || message; } catch { /* keep the status */ }
    throw new ApiError(response.status, message);
  }
  forgetUser();
}

export async function logout() {
  await fetch("/c/log_out", { credentials: "same-origin" });
  forgetUser();
}

// The caller's permissions in a project (by id or name) or, without one, the system's.
export async function permissions(project) {
  const scope = project === undefined ? "/" : `/project/${project}`;
  const { data } = await get(harbor("/users/current/permissions"), { scope, relative: "true" });
  const held = new Set(data.map((p) => `${p.resource}:${p.action}`));
  return { can: (resource, action) => held.has(`${resource}:${action}`) };
}
