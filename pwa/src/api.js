// HTTP to our API: bearer token, refresh on 401 (once, shared), problem details parsed.
import { NetworkError } from "./outbox.js";

const SESSION_KEY = "gridaid.session";
const listeners = new Set();

// {access_token, refresh_token, access_expires_at, refresh_expires_at, role, me, expired}
let session = load();

function load() {
  try {
    return JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
  } catch (_) {
    return null;
  }
}

function persist() {
  try {
    if (session) localStorage.setItem(SESSION_KEY, JSON.stringify(session));
    else localStorage.removeItem(SESSION_KEY);
  } catch (_) {}
  for (const fn of listeners) fn(session);
}

export function onSession(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function getSession() {
  return session;
}

export function account() {
  return session && session.me ? session.me.id : null;
}

export function isSignedIn() {
  return !!(session && session.me && !session.expired && session.refresh_token);
}

export function setSession(tokens, me) {
  session = {
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    access_expires_at: tokens.access_expires_at,
    refresh_expires_at: tokens.refresh_expires_at,
    role: me ? me.role : tokens.role,
    me: me || (session && session.me) || null,
    expired: false,
  };
  persist();
}

export function setMe(me) {
  if (!session) return;
  session.me = me;
  session.role = me.role;
  persist();
}

// The session ended (refresh refused): forget the tokens, remember who it was so the queue stays theirs.
export function expireSession() {
  if (!session) return;
  session = { me: session.me, role: session.role, expired: true };
  persist();
}

export function clearSession() {
  session = null;
  persist();
}

async function rawFetch(method, path, { headers = {}, body, token, timeout, blob = false } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  let response;
  const controller = timeout && typeof AbortController === "function" ? new AbortController() : null;
  const timer = controller ? setTimeout(() => controller.abort(), timeout) : null;
  try {
    response = await fetch(path, {
      method,
      headers: h,
      body,
      credentials: "same-origin",
      cache: "no-store",
      signal: controller ? controller.signal : undefined,
    });
  } catch (error) {
    throw new NetworkError(error && error.message ? error.message : "network error");
  } finally {
    if (timer) clearTimeout(timer);
  }
  let json = null;
  const type = response.headers.get("content-type") || "";
  if (blob && response.ok) {
    try {
      return { status: response.status, ok: true, json: null, blob: await response.blob(), headers: response.headers };
    } catch (_) {
      throw new NetworkError("truncated response");
    }
  }
  if (response.status !== 204 && /json/.test(type)) {
    try {
      json = await response.json();
    } catch (error) {
      // A body cut off mid-way is a network failure, not an answer.
      if (response.ok) throw new NetworkError("truncated response");
    }
  } else if (response.status !== 204 && response.status !== 304) {
    try {
      await response.arrayBuffer();
    } catch (_) {
      if (response.ok) throw new NetworkError("truncated response");
    }
  }
  return { status: response.status, ok: response.ok, json, headers: response.headers };
}

let refreshing = null;

// Returns true when new tokens are in place; false when the server refused (sign in again).
// Throws NetworkError when the server could not be reached.
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      if (!session || !session.refresh_token) return false;
      const res = await rawFetch("POST", "/api/v1/auth/refresh", {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: session.refresh_token }),
      });
      if (res.ok && res.json && res.json.access_token) {
        setSession(res.json, session.me);
        return true;
      }
      if (res.status >= 500 || res.status === 429) throw new NetworkError(`refresh failed: HTTP ${res.status}`);
      expireSession();
      return false;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

function expiresSoon() {
  if (!session || !session.access_expires_at) return false;
  return new Date(session.access_expires_at).getTime() - Date.now() < 30_000;
}

/** request(method, path, {headers, body, json, auth}) → {status, ok, json}; throws NetworkError. */
export async function request(method, path, options = {}) {
  const { auth = true, timeout, blob } = options;
  let { headers = {}, body } = options;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers = { "Content-Type": "application/json", ...headers };
  }
  if (!auth) return rawFetch(method, path, { headers, body, timeout, blob });
  if (!session || session.expired || !session.refresh_token) {
    return { status: 401, ok: false, json: { code: "auth.required", detail: "Sign in again" } };
  }
  if (expiresSoon()) await refresh();
  if (!session || session.expired) return { status: 401, ok: false, json: { code: "auth.required" } };
  let res = await rawFetch(method, path, { headers, body, timeout, blob, token: session.access_token });
  if (res.status === 401) {
    const ok = await refresh();
    if (!ok) return res;
    res = await rawFetch(method, path, { headers, body, timeout, blob, token: session.access_token });
    if (res.status === 401) expireSession();
  }
  return res;
}

export class ApiError extends Error {
  constructor(res) {
    super((res.json && (res.json.detail || res.json.title)) || `HTTP ${res.status}`);
    this.status = res.status;
    this.problem = res.json;
  }
}

// For screens: JSON or throw (ApiError / NetworkError).
export async function api(method, path, options) {
  const res = await request(method, path, options);
  if (!res.ok) throw new ApiError(res);
  return res.json;
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
