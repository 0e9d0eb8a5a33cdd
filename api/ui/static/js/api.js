// The UI's only way to the server: the same Harbor (/api/v2.0) and management (/api/v1) APIs
// every other client uses, authenticated by the session cookie. Changes echo the CSRF value.
export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    this.body = body;  // the problem document, when the server sent one (its extra members)
  }
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)__csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export function repoPath(name) {
  const [project, ...rest] = name.split("/");
  return `/projects/${encodeURIComponent(project)}/repositories/${rest.map(encodeURIComponent).join("/")}`;
}

async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  let body = null;
  try {
    body = await response.json();
    message = body.errors?.[0]?.message || body.detail || message;
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(response.status, message, body);
}

async function call(method, url, body, headers = {}) {
  const init = { method, credentials: "same-origin", headers: { "X-Requested-With": "XMLHttpRequest", ...headers } };
  if (method !== "GET" && method !== "HEAD") init.headers["X-Harbor-CSRF-Token"] = csrfToken();
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (!response.ok) throw await errorOf(response);
  return response;
}

// The url with these query parameters added (empty ones left out): API calls and in-app addresses.
export function withParams(url, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  const text = query.toString();
  return text ? `${url}${url.includes("?") ? "&" : "?"}${text}` : url;
}

// GET: {data, total} (total from X-Total-Count when the list is paged).
export async function get(url, params) {
  const response = await call("GET", withParams(url, params), undefined, { Accept: "application/json" });
  const total = response.headers.get("X-Total-Count");
  const link = response.headers.get("Link") || "";
  const text = await response.text();
  return { data: text ? JSON.parse(text) : null, total: total === null ? null : Number(total), link };
}

// GET of a plain-text answer (a log): the text. Failures throw ApiError as get() does.
export async function getText(url, params) {
  return (await call("GET", withParams(url, params))).text();
}

export async function send(method, url, body) {
  const response = await call(method, url, body);
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return text;
  }
}

export const harbor = (path) => `/api/v2.0${path}`;
export const v1 = (path) => `/api/v1${path}`;
