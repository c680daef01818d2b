// Boot, routing and the frame (header, bottom navigation, banners).
import "./app.css";
import { account, getSession, isSignedIn, onSession } from "./api.js";
import {
  APP_VERSION,
  attentionCount,
  entriesOf,
  flush,
  outboxCount,
  startTriggers,
  state,
  subscribe,
  syncNow,
} from "./core.js";
import { getLang, setLang, t } from "./i18n.js";
import { clear, h, toast } from "./ui.js";
import * as loginScreen from "./screens/login.js";
import * as tasksScreen from "./screens/tasks.js";
import * as mapScreen from "./screens/map.js";
import * as inboxScreen from "./screens/inbox.js";
import * as outboxScreen from "./screens/outbox.js";
import * as settingsScreen from "./screens/settings.js";
import * as streetScreen from "./screens/street.js";
import * as casesScreen from "./screens/cases.js";
import * as applyScreen from "./screens/apply.js";
import * as residentScreen from "./screens/resident.js";

const ROUTES = [
  [/^login$/, "login", loginScreen.login],
  [/^tasks$/, "tasks", tasksScreen.list],
  [/^tasks\/([\w-]+)$/, "task", tasksScreen.detail],
  [/^tasks\/([\w-]+)\/visit$/, "visit", tasksScreen.visit],
  [/^map$/, "map", mapScreen.workerMap],
  [/^inbox$/, "inbox", inboxScreen.inbox],
  [/^outbox$/, "outbox", outboxScreen.outbox],
  [/^settings$/, "settings", settingsScreen.settings],
  [/^street$/, "street", streetScreen.tasks],
  [/^street\/map$/, "street-map", streetScreen.map],
  [/^street\/covers$/, "street-covers", streetScreen.covers],
  [/^street\/unplaced$/, "street-unplaced", streetScreen.unplaced],
  [/^street\/health$/, "street-health", streetScreen.health],
  // officers and applications
  [/^cases(?:\?.*)?$/, "cases", casesScreen.list],
  [/^cases\/([\w-]+)$/, "case", casesScreen.detail],
  [/^tasks\/([\w-]+)\/apply$/, "apply", applyScreen.apply],
  // residents (ask, track and signup are public)
  [/^ask$/, "ask", residentScreen.ask],
  [/^track(?:\?.*)?$/, "track", residentScreen.track],
  [/^signup$/, "signup", residentScreen.signup],
  [/^my$/, "my", residentScreen.mine],
];

const SUPERVISORS = ["supervisor", "admin"];
const PUBLIC_ROUTES = ["login", "ask", "track", "signup"];

function role() {
  const s = getSession();
  return s ? s.role : null;
}

export function home() {
  if (role() === "resident") return "#/my";
  if (role() === "department_officer") return "#/cases";
  return SUPERVISORS.includes(role()) ? "#/street" : "#/tasks";
}

export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

const frame = {};
let current = null; // {name, screen, params, cleanup}
let renderSeq = 0;

function buildFrame() {
  const root = document.getElementById("app") || document.body.appendChild(h("div", { id: "app" }));
  root.setAttribute("data-testid", "app");
  clear(root);
  frame.status = h("span", { testid: "net-status", class: "net", "aria-live": "polite" });
  frame.title = h("h1", null, t("app_name"));
  frame.banner = h("div", { testid: "auth-banner", class: "banner", hidden: true, role: "alert" });
  frame.main = h("main", { id: "main", tabindex: "-1" });
  frame.nav = h("nav", { testid: "nav", class: "nav" });
  root.append(h("header", { class: "top" }, frame.title, frame.status), frame.banner, frame.main, frame.nav);
}

function navItems() {
  const r = role();
  if (!isSignedIn() && !(getSession() && getSession().expired)) return [];
  const items = [];
  if (r === "resident") {
    return [["nav-my", "#/my", "nav_my"], ["nav-ask", "#/ask", "nav_ask"], ["nav-settings", "#/settings", "nav_settings"]];
  }
  if (r === "department_officer") {
    return [["nav-cases", "#/cases", "nav_cases"], ["nav-inbox", "#/inbox", "nav_inbox"], ["nav-settings", "#/settings", "nav_settings"]];
  }
  if (r === "grid_worker") {
    items.push(["nav-tasks", "#/tasks", "nav_tasks"], ["nav-map", "#/map", "nav_map"], ["nav-inbox", "#/inbox", "nav_inbox"]);
  } else if (SUPERVISORS.includes(r)) {
    items.push(
      ["nav-street", "#/street", "nav_street"],
      ["nav-street-map", "#/street/map", "nav_street_map"],
      ["nav-street-covers", "#/street/covers", "nav_covers"],
      ["nav-street-unplaced", "#/street/unplaced", "nav_unplaced"],
      ["nav-street-health", "#/street/health", "nav_health"],
      ["nav-inbox", "#/inbox", "nav_inbox"],
    );
  } else {
    items.push(["nav-inbox", "#/inbox", "nav_inbox"]);
  }
  items.push(["nav-outbox", "#/outbox", "nav_outbox"], ["nav-settings", "#/settings", "nav_settings"]);
  return items;
}

async function paintNav() {
  const hash = location.hash || "";
  clear(frame.nav);
  const items = navItems();
  frame.nav.hidden = items.length === 0;
  frame.nav.className = `nav n${items.length}`;
  for (const [testid, href, label] of items) {
    const a = h("a", { testid, href, class: hash === href || hash.startsWith(`${href}/`) && href !== "#/street" ? "on" : "" }, t(label));
    if (hash === href) a.setAttribute("aria-current", "page");
    if (testid === "nav-outbox") {
      const badge = h("span", { testid: "outbox-badge", class: "badge", hidden: true });
      a.append(badge);
      frame.badge = badge;
    }
    frame.nav.append(a);
  }
  await paintBadge();
}

async function paintBadge() {
  const n = await outboxCount();
  if (frame.badge) {
    frame.badge.textContent = String(n);
    frame.badge.hidden = n === 0;
    const attention = await attentionCount();
    frame.badge.classList.toggle("warn", attention > 0);
  }
}

function paintStatus() {
  frame.status.dataset.online = String(state.online);
  frame.status.textContent = state.online ? (state.syncing ? "⟳" : "") : t("offline");
  frame.status.classList.toggle("off", !state.online);
}

async function paintBanner() {
  const s = getSession();
  const expired = !!(s && s.expired) || state.authNeeded;
  const n = expired ? (await entriesOf()).length : 0;
  clear(frame.banner);
  const onLogin = (location.hash || "").startsWith("#/login");
  frame.banner.hidden = !expired || onLogin;
  if (!frame.banner.hidden) {
    frame.banner.append(
      h("span", null, t("auth_banner", { n })),
      h("a", { testid: "auth-banner-login", href: "#/login", class: "btn small" }, t("auth_banner_login")),
    );
  }
}

function parse() {
  const path = (location.hash || "").replace(/^#\/?/, "");
  for (const [re, name, screen] of ROUTES) {
    const m = path.match(re);
    if (m) return { name, screen, params: m.slice(1) };
  }
  return null;
}

export async function render() {
  const seq = ++renderSeq;
  let route = parse();
  const s = getSession();
  if (!s || !s.me) {
    if (!route || !PUBLIC_ROUTES.includes(route.name)) {
      location.replace("#/login");
      route = parse();
    }
  } else if (!route) {
    location.replace(home());
    route = parse();
  }
  if (current && current.cleanup) {
    try {
      current.cleanup();
    } catch (_) {}
  }
  current = { name: route.name, screen: route.screen, params: route.params, cleanup: null };
  document.body.dataset.route = route.name;
  frame.title.textContent = t("app_name");
  paintStatus();
  paintBanner();
  paintNav();
  const container = h("section", { class: "screen" });
  let cleanup = null;
  try {
    cleanup = await route.screen(container, ...route.params);
  } catch (error) {
    console.error(error);
    container.append(h("p", { class: "error" }, `${t("error")}: ${error.message || error}`));
  }
  if (seq !== renderSeq) {
    if (typeof cleanup === "function") cleanup();
    return;
  }
  current.cleanup = typeof cleanup === "function" ? cleanup : null;
  if (route.name === "login") container.append(residentScreen.residentLinks());
  clear(frame.main).append(container);
}

// Screens that show outbox/task state refresh themselves when that state changes.
const LIVE = { tasks: ["tasks", "outbox"], task: ["tasks"], outbox: ["outbox", "auth"], inbox: ["tasks"] };
let refreshTimer = null;

function onChange(what) {
  if (what === "outbox" || what === "auth") {
    paintBadge();
    paintBanner();
  }
  if (what === "net" || what === "sync") paintStatus();
  if (what === "auth" && state.authNeeded && current && current.name !== "login") {
    render();
    return;
  }
  if (current && LIVE[current.name] && LIVE[current.name].includes(what)) {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(render, 50);
  }
}

let swReadyResolve;
const swReady = new Promise((resolve) => {
  swReadyResolve = resolve;
});

function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) {
    swReadyResolve();
    return;
  }
  const hadController = !!navigator.serviceWorker.controller;
  if (hadController) swReadyResolve();
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    swReadyResolve();
    // A new version took over: this page still runs the old one until it is reloaded.
    if (hadController) toast(t("new_version"));
  });
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((error) => {
    console.warn("service worker", error);
    swReadyResolve();
  });
}

async function boot() {
  setLang(getLang());
  buildFrame();
  subscribe(onChange);
  onSession(() => {
    paintNav();
    paintBanner();
  });
  window.addEventListener("hashchange", render);
  startTriggers();
  registerServiceWorker();
  await render();
  if (account() && isSignedIn()) flush({ force: true }).catch(() => {});
}

const ready = boot();

window.gridaid = {
  ready,
  swReady,
  version: APP_VERSION,
  outboxCount,
  attentionCount,
  flush: () => flush({ force: true }),
  syncNow,
  render,
};
