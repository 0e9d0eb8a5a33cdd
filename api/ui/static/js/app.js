// The page shell and router: every /ui/ path is drawn here by the page module it names.
import { ApiError, get } from "./api.js";
import { errorBox, h, link, mount } from "./dom.js";
import { LANGUAGES, language, setLanguage, t, useCatalogs } from "./i18n.js";
import { currentUser, logout } from "./session.js";

// path pattern -> page module (static/js/pages/<name>.js); groups become ctx.match.
const ROUTES = [
  [/^\/ui\/login$/, "login"],
  [/^\/ui\/projects$/, "projects"],
  [/^\/ui\/projects\/([^/]+)$/, "project"],
  [/^\/ui\/repository$/, "repository"],
  [/^\/ui\/artifact$/, "artifact"],
  [/^\/ui\/history$/, "history"],
  [/^\/ui\/audit$/, "audit"],
  [/^\/ui\/replication$/, "replication"],
  [/^\/ui\/gc$/, "gc"],
  [/^\/ui\/scanners$/, "scanners"],
  [/^\/ui\/users$/, "users"],
  [/^\/ui\/groups$/, "groups"],
  [/^\/ui\/configuration$/, "configuration"],
  [/^\/ui\/profile$/, "profile"],
  [/^\/ui\/oidc-onboard$/, "oidc_onboard"],
];

const NAV = [
  ["/ui/projects", "common.nav_projects", () => true],
  ["/ui/audit", "common.nav_audit", (user) => user],
  ["/ui/replication", "common.nav_replication", (user) => user?.sysadmin_flag],
  ["/ui/gc", "common.nav_gc", (user) => user?.sysadmin_flag],
  ["/ui/scanners", "common.nav_scanning", (user) => user?.sysadmin_flag],
  ["/ui/users", "common.nav_users", (user) => user?.sysadmin_flag],
  ["/ui/groups", "common.nav_groups", (user) => user?.sysadmin_flag],
  ["/ui/configuration", "common.nav_configuration", (user) => user?.sysadmin_flag],
];

let leaving = [];  // cleanups of the page on screen (timers), run before the next one draws
let drawing = 0;

export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  draw();
}

function matchRoute(path) {
  for (const [pattern, page] of ROUTES) {
    const match = path.match(pattern);
    if (match) return { page, match: match.slice(1).map(decodeURIComponent) };
  }
  return null;
}

async function draw() {
  const turn = ++drawing;
  leaving.forEach((cleanup) => cleanup());
  leaving = [];
  const view = document.getElementById("view");
  const route = matchRoute(location.pathname);
  try {
    await useCatalogs("common");
    const user = await currentUser();
    drawChrome(user);
    drawFollower(user);
    if (!route) {
      mount(view, h("h1", {}, t("common.not_found")), link("/ui/projects", t("common.nav_projects")));
      return;
    }
    const module = await import(`./pages/${route.page}.js`);
    if (module.requiresLogin && !user) throw new ApiError(401, "authentication required");
    await useCatalogs(...(module.catalogs || []));
    if (turn !== drawing) return;
    const ctx = {
      user, match: route.match, params: new URLSearchParams(location.search), navigate,
      onLeave: (cleanup) => leaving.push(cleanup), redraw: draw,
    };
    view.replaceChildren();
    await module.render(view, ctx);
    if (turn === drawing) document.title = `${view.querySelector("h1")?.textContent || ""} · Portlog`;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && route?.page !== "login") {
      navigate(`/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
      return;
    }
    mount(view, h("h1", {}, t("common.error_title")), errorBox(error));
  }
}

function drawChrome(user) {
  document.documentElement.lang = language();
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(`common.${el.dataset.i18n}`); });
  const here = location.pathname;
  mount(document.getElementById("nav"), NAV.filter(([, , shown]) => shown(user)).map(([href, key]) =>
    h("a", { href, "data-link": true, "aria-current": here.startsWith(href) ? "page" : null }, t(key))));
  const chooser = document.getElementById("language");
  mount(chooser, Object.entries(LANGUAGES).map(([code, name]) =>
    h("option", { value: code, selected: code === language() }, name)));
  mount(document.getElementById("user-menu"), user
    ? [h("a", { href: "/ui/profile", "data-link": true, class: "user", title: t("common.profile"),
      "aria-current": here === "/ui/profile" ? "page" : null }, user.username), " ",
       h("button", { type: "button", class: "link", onclick: signOut }, t("common.logout"))]
    : link(`/ui/login?next=${encodeURIComponent(here + location.search)}`, t("common.login")));
}

// A follower (docs/time-travel.md) says so on every page: whose it is, how far it has come, and why
// it stopped if it did. The session names the leader of a follower; a promoted one shows nothing.
async function drawFollower(user) {
  const banner = document.getElementById("follower");
  let status = null;
  try {
    status = user?.follows ? (await get("/api/v1/follow")).data : null;
  } catch { /* no state yet: the log shipper has not started */ }
  banner.hidden = !status || status.state === "promoted";
  if (banner.hidden) return mount(banner);
  const lag = status.lag_events
    ? t("common.follower_lag", { count: status.lag_events, seconds: status.lag_seconds })
    : t("common.follower_caught_up");
  mount(banner,
    h("strong", {}, t("common.follower_banner", { leader: status.leader })), " ",
    h("span", { class: "follower-position" }, `${t("common.follower_position", { position: status.position,
      head: status.leader_head })} (${lag})`),
    status.state === "stopped" ? h("span", { class: "follower-stopped" }, " ",
      t("common.follower_stopped", { error: status.last_error || "" })) : "",
    status.state === "following" && status.last_error ? h("span", {}, " ",
      t("common.follower_error", { error: status.last_error })) : "");
}

async function signOut() {
  await logout();
  navigate("/ui/login");
}

document.addEventListener("click", (event) => {
  const anchor = event.target.closest("a[data-link]");
  if (!anchor || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(anchor.getAttribute("href"));
  document.getElementById("view").focus();
});

document.getElementById("language").addEventListener("change", (event) => {
  setLanguage(event.target.value);
  draw();
});

window.addEventListener("popstate", draw);
draw();
