// The app's engine: the outbox, delta sync, health reports and the triggers that run them.
import { account, expireSession, getSession, request, uuid } from "./api.js";
import {
  applyTasks,
  getMeta,
  listTasks,
  outboxStore,
  putNotes,
  setMeta,
} from "./db.js";
import { createOutbox, newApplicationEntry, newEntry, singleFlight } from "./outbox.js";

/* global __APP_VERSION__ */
export const APP_VERSION = typeof __APP_VERSION__ === "string" ? __APP_VERSION__ : "dev";

// Every state change of an entry is shown at once (badge, outbox screen).
const liveStore = {
  ...outboxStore,
  async put(entry) {
    await outboxStore.put(entry);
    emit("outbox");
  },
  async remove(id) {
    await outboxStore.remove(id);
    emit("outbox");
  },
};
// A sent application is remembered for its task, so the task's screens can show its status.
async function applicationSent(entry, answer) {
  const key = `applications:${entry.account}:${entry.task_id}`;
  const known = (await getMeta(key)) || [];
  const id = answer.id || entry.id;
  if (!known.includes(id)) await setMeta(key, [...known, id]);
  emit("application");
}

const outbox = createOutbox({ store: liveStore, request, onApplication: applicationSent });
const listeners = new Set();

export const state = {
  online: typeof navigator === "undefined" ? true : navigator.onLine !== false,
  syncing: false,
  authNeeded: false,
  lastError: null,
  lastSyncAt: null,
};

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function emit(what) {
  for (const fn of listeners) {
    try {
      fn(what);
    } catch (error) {
      console.error(error);
    }
  }
}

export async function entriesOf(acc = account()) {
  if (!acc) return [];
  return (await outboxStore.list(acc)).filter((e) => e.account === acc);
}

export async function otherAccountsEntries(acc = account()) {
  return (await outboxStore.list()).filter((e) => e.account !== acc);
}

export async function outboxCount() {
  return (await entriesOf()).length;
}

export async function attentionCount() {
  return (await entriesOf()).filter((e) => e.state === "needs_attention").length;
}

export async function pendingTaskIds(acc = account()) {
  return new Set((await entriesOf(acc)).map((e) => e.task_id));
}

/** Queues a visit: the body is serialised once and sent byte-for-byte the same on every retry. */
export async function queueVisit({ taskId, fields, photos }) {
  const acc = account();
  if (!acc) throw new Error("not signed in");
  const id = uuid();
  const body = JSON.stringify({
    found: fields.found,
    needs: fields.needs,
    notes: fields.notes || "",
    visited_at: fields.visited_at,
    lon: fields.lon,
    lat: fields.lat,
    accuracy_m: fields.accuracy_m,
    photos: photos.map((p) => p.sha256),
  });
  const entry = newEntry({ id, account: acc, taskId, body, photos, now: Date.now() });
  const session = getSession();
  entry.username = session && session.me ? session.me.username : "";
  await outboxStore.add(entry, photos);
  emit("outbox");
  registerBackgroundSync();
  flush().catch(() => {});
  return id;
}

/**
 * Queues an application on the family's behalf. `draft` is the request body; a photo still in the
 * outbox is named {visit_entry, sha256}. The entry id is the application's Idempotency-Key.
 */
// An application into the outbox, with the photos taken for it on the apply screen (their Blobs in
// the same transaction; uploaded before the application that names them), then a flush.
export async function queueApplication({ taskId, householdId, draft, services, photos = [] }) {
  const acc = account();
  if (!acc) throw new Error("not signed in");
  const entry = newApplicationEntry({ id: uuid(), account: acc, taskId, householdId, draft, services, photos, now: Date.now() });
  const session = getSession();
  entry.username = session && session.me ? session.me.username : "";
  await outboxStore.add(entry, photos.map(({ blob, sha256, size }) => ({ blob, sha256, size })));
  emit("outbox");
  registerBackgroundSync();
  flush().catch(() => {});
  return entry.id;
}

export async function requeue(id) {
  await outbox.requeue(id);
  emit("outbox");
}

export async function discard(id) {
  const entry = await outboxStore.get(id);
  if (!entry || entry.account !== account()) return;
  await outboxStore.remove(id);
  emit("outbox");
}

function authLost() {
  if (!state.authNeeded) {
    state.authNeeded = true;
    emit("auth");
  }
}

// Pull /api/v1/sync until the server says there is no more. Returns false when it could not.
async function pull(acc) {
  const cursorKey = `cursor:${acc}`;
  let cursor = (await getMeta(cursorKey)) || 0;
  for (let page = 0; page < 20; page++) {
    const res = await request("GET", `/api/v1/sync?cursor=${cursor}`);
    if (res.status === 401) {
      authLost();
      return false;
    }
    if (!res.ok || !res.json) {
      state.lastError = `sync: HTTP ${res.status}`;
      return false;
    }
    if (account() !== acc) return false; // someone else signed in meanwhile
    const data = res.json;
    const keep = await pendingTaskIds(acc);
    await applyTasks(acc, { full: data.full, tasks: data.tasks || [], removed: data.removed_tasks || [], keep });
    await putNotes(acc, data.notifications || []);
    if (data.grids) await setMeta(`grids:${acc}`, data.grids);
    cursor = data.cursor;
    await setMeta(cursorKey, cursor);
    if (!data.more) break;
  }
  state.lastSyncAt = new Date().toISOString();
  await setMeta(`lastsync:${acc}`, state.lastSyncAt);
  emit("tasks");
  return true;
}

let typesLoaded = false;
async function loadWarningTypes() {
  if (typesLoaded) return;
  const res = await request("GET", "/api/v1/warnings/types");
  if (res.ok && Array.isArray(res.json)) {
    const names = {};
    for (const type of res.json) names[type.code] = [type.name_zh, type.name_en];
    await setMeta("warning-types", names);
    typesLoaded = true;
  }
}

// --- matching offline: the rules as data, and each open task's household facts ------------------
const FACTS_MAX_AGE_MS = 24 * 3600 * 1000;
const OPEN_STATES = new Set(["new", "accepted", "in_progress", "visited", "returned"]);

/** The cached rules {etag, rules} (shared by every account: the same for all). */
export function cachedRules() {
  return getMeta("rules");
}

/** The cached service names: {code: {name_zh, name_en, department}}. */
export function cachedCatalogue() {
  return getMeta("catalogue");
}

/** The cached facts of a household: {at, facts} or undefined. */
export function cachedFacts(householdId, acc = account()) {
  return getMeta(`facts:${acc}:${householdId}`);
}

export async function rememberFacts(householdId, facts, acc = account()) {
  if (acc && householdId) await setMeta(`facts:${acc}:${householdId}`, { at: Date.now(), facts });
}

async function cacheMatching(acc) {
  const known = await getMeta("rules");
  const res = await request("GET", "/api/v1/matching/rules", { headers: known && known.etag ? { "If-None-Match": known.etag } : {} });
  if (res.ok && res.status === 200 && res.json) {
    await setMeta("rules", { etag: (res.headers && res.headers.get("ETag")) || "", rules: res.json });
  }
  // The services' names and departments, to show offline matches by name (fetched with new rules).
  if ((res.ok && res.status === 200) || !(await getMeta("catalogue"))) {
    const cat = await request("GET", "/api/v1/departments");
    if (cat.ok && Array.isArray(cat.json)) {
      const services = {};
      for (const dep of cat.json) {
        for (const svc of dep.services || []) services[svc.code] = { name_zh: svc.name_zh, name_en: svc.name_en, department: dep.code };
      }
      await setMeta("catalogue", services);
    }
  }
  // Facts: a household not cached yet, or cached more than a day ago; a few per sync.
  const tasks = await listTasks(acc);
  const seen = new Set();
  let fetched = 0;
  for (const task of tasks) {
    const id = task.household && task.household.id;
    if (!id || seen.has(id) || (task.state && !OPEN_STATES.has(task.state))) continue;
    seen.add(id);
    const cached = await getMeta(`facts:${acc}:${id}`);
    if (cached && Date.now() - cached.at < FACTS_MAX_AGE_MS) continue;
    if (fetched >= 30) break;
    fetched++;
    const got = await request("GET", `/api/v1/households/${id}/facts`);
    if (got.ok && got.json && got.json.facts) await rememberFacts(id, got.json.facts, acc);
    else if (got.status === 401) break;
  }
}

async function reportHealth(acc) {
  const report = await outbox.health(acc);
  await request("POST", "/api/v1/sync/health", {
    json: { ...report, app_version: APP_VERSION },
  }).catch(() => null);
}

async function run({ force }) {
  const acc = account();
  const session = getSession();
  if (!acc || !session || session.expired) {
    if (acc && (await entriesOf(acc)).length) authLost();
    return;
  }
  state.syncing = true;
  emit("sync");
  try {
    const result = await outbox.flush(acc, { force });
    emit("outbox");
    if (result.auth) {
      expireSession();
      authLost();
      return;
    }
    if (result.network) {
      state.lastError = "network";
      return;
    }
    try {
      const pulled = await pull(acc);
      if (pulled) {
        state.lastError = null;
        await reportHealth(acc);
        await loadWarningTypes().catch(() => {});
        await cacheMatching(acc).catch(() => {});
      }
    } catch (error) {
      state.lastError = String(error.message || error);
    }
  } finally {
    state.syncing = false;
    emit("sync");
  }
}

function locked(options) {
  if (typeof navigator !== "undefined" && navigator.locks && navigator.locks.request) {
    // One flush at a time across tabs too.
    return navigator.locks.request("gridaid-outbox", () => run(options));
  }
  return run(options);
}

const trigger = singleFlight(locked);

/** Flush the outbox, then pull sync and report health. `force` ignores retry back-off. */
export function flush(options = { force: false }) {
  return trigger(options);
}

export function syncNow() {
  return trigger({ force: true });
}

export function resetAuthNeeded() {
  state.authNeeded = false;
  emit("auth");
}

export async function lastSyncAt(acc = account()) {
  return acc ? getMeta(`lastsync:${acc}`) : null;
}

function registerBackgroundSync() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.ready
    .then((reg) => (reg.sync ? reg.sync.register("gridaid-outbox") : null))
    .catch(() => {});
}

let started = false;
export function startTriggers() {
  if (started) return;
  started = true;
  window.addEventListener("online", () => {
    state.online = true;
    emit("net");
    flush({ force: true }).catch(() => {});
  });
  window.addEventListener("offline", () => {
    state.online = false;
    emit("net");
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") flush().catch(() => {});
  });
  setInterval(() => {
    if (document.visibilityState !== "hidden") flush().catch(() => {});
  }, 60_000);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data && event.data.type === "flush") flush().catch(() => {});
    });
  }
}
