// IndexedDB through idb: the outbox (entries + photo Blobs), the synced tasks, notifications and small
// key/value facts (sync cursor, grids GeoJSON, cached task details). Everything is per account.
import { openDB } from "idb";

const DB_NAME = "gridaid";
const DB_VERSION = 1;
let dbPromise = null;

export function db() {
  if (!dbPromise) {
    dbPromise = openDB(DB_NAME, DB_VERSION, {
      upgrade(database) {
        const outbox = database.createObjectStore("outbox", { keyPath: "id" });
        outbox.createIndex("account", "account");
        const photos = database.createObjectStore("photos", { keyPath: "key" });
        photos.createIndex("entry", "entry_id");
        const tasks = database.createObjectStore("tasks", { keyPath: "key" });
        tasks.createIndex("account", "account");
        const notes = database.createObjectStore("notes", { keyPath: "key" });
        notes.createIndex("account", "account");
        database.createObjectStore("meta");
      },
      blocked() {},
      blocking() {
        // A newer version of the app wants to upgrade: let it.
        if (dbPromise) dbPromise.then((d) => d.close());
        dbPromise = null;
      },
    });
  }
  return dbPromise;
}

// --- the outbox store, in the shape outbox.js expects -------------------------------------------
export const outboxStore = {
  async list(account) {
    const d = await db();
    const rows = account === undefined ? await d.getAll("outbox") : await d.getAllFromIndex("outbox", "account", account);
    return rows.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0));
  },
  async get(id) {
    return (await db()).get("outbox", id);
  },
  async put(entry) {
    await (await db()).put("outbox", entry);
  },
  // The entry and its photos in one transaction: nothing half-saved.
  async add(entry, photos) {
    const d = await db();
    const tx = d.transaction(["outbox", "photos"], "readwrite");
    for (const p of photos) {
      tx.objectStore("photos").put({ key: `${entry.id}:${p.sha256}`, entry_id: entry.id, sha256: p.sha256, blob: p.blob });
    }
    tx.objectStore("outbox").put(entry);
    await tx.done;
  },
  async getPhoto(entryId, sha256) {
    const row = await (await db()).get("photos", `${entryId}:${sha256}`);
    return row ? row.blob : null;
  },
  async remove(id) {
    const d = await db();
    const tx = d.transaction(["outbox", "photos"], "readwrite");
    const keys = await tx.objectStore("photos").index("entry").getAllKeys(id);
    for (const key of keys) tx.objectStore("photos").delete(key);
    tx.objectStore("outbox").delete(id);
    await tx.done;
  },
};

// --- tasks / notifications / meta ----------------------------------------------------------------
export async function getMeta(key) {
  return (await db()).get("meta", key);
}

export async function setMeta(key, value) {
  await (await db()).put("meta", value, key);
}

export async function delMeta(key) {
  await (await db()).delete("meta", key);
}

export async function listTasks(account) {
  const rows = await (await db()).getAllFromIndex("tasks", "account", account);
  return rows.map((row) => row.task);
}

export async function getTask(account, id) {
  const row = await (await db()).get("tasks", `${account}:${id}`);
  return row ? row.task : null;
}

// Apply one sync page: upserts, removals (except tasks still named in `keep`), or a full replacement.
// Removals held back because a visit is still queued are remembered (meta "deferred:<account>") and
// carried out on a later sync, once the visit has been sent.
export async function applyTasks(account, { full, tasks, removed, keep }) {
  const d = await db();
  const tx = d.transaction(["tasks", "meta"], "readwrite");
  const store = tx.objectStore("tasks");
  const meta = tx.objectStore("meta");
  const deferredKey = `deferred:${account}`;
  const deferred = new Set((await meta.get(deferredKey)) || []);
  const incoming = new Set(tasks.map((task) => task.id));
  const gone = new Set(removed);
  if (full) {
    const keys = await store.index("account").getAllKeys(account);
    for (const key of keys) {
      const id = key.slice(account.length + 1);
      if (!incoming.has(id)) gone.add(id);
    }
  }
  for (const id of deferred) gone.add(id);
  for (const id of incoming) deferred.delete(id);
  for (const id of gone) {
    if (incoming.has(id)) continue;
    if (keep.has(id)) {
      deferred.add(id);
      continue;
    }
    deferred.delete(id);
    store.delete(`${account}:${id}`);
  }
  meta.put([...deferred], deferredKey);
  for (const task of tasks) store.put({ key: `${account}:${task.id}`, account, task });
  // A task kept because a visit for it was still queued goes once that visit has been sent.
  const rows = await store.index("account").getAll(account);
  for (const row of rows) {
    const mine = !row.task.assignee_id || row.task.assignee_id === account;
    if (!mine && !keep.has(row.task.id) && !incoming.has(row.task.id)) store.delete(row.key);
  }
  await tx.done;
}

// A household's applications as last seen online (one status sentence each), to show them offline.
export async function keepApplications(account, householdId, items) {
  await setMeta(`apps:${account}:${householdId}`, { at: new Date().toISOString(), items });
}

export async function keptApplications(account, householdId) {
  return (await getMeta(`apps:${account}:${householdId}`)) || null;
}

// The residents' requests behind a task as last seen online: only what the task screen shows (masked
// phone, no name or ID number) and the thumbnails as Blobs (photo id → Blob), to show them offline.
export async function keepTaskRequests(account, taskId, items, thumbs) {
  await setMeta(`requests:${account}:${taskId}`, { at: new Date().toISOString(), items, thumbs });
}

export async function keptTaskRequests(account, taskId) {
  return (await getMeta(`requests:${account}:${taskId}`)) || null;
}

// Facts the worker typed on the apply screen and has not yet sent with an application.
export async function keepTypedFacts(account, householdId, facts) {
  await setMeta(`typed:${account}:${householdId}`, facts);
}

export async function typedFacts(account, householdId) {
  return (await getMeta(`typed:${account}:${householdId}`)) || {};
}

export async function listNotes(account) {
  const rows = await (await db()).getAllFromIndex("notes", "account", account);
  return rows.map((row) => row.note).sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
}

export async function putNotes(account, notes) {
  if (!notes.length) return;
  const d = await db();
  const tx = d.transaction("notes", "readwrite");
  for (const note of notes) tx.objectStore("notes").put({ key: `${account}:${note.id}`, account, note });
  await tx.done;
}

// Sign-out: forget this account's cached copies (never its outbox: sign-out is refused while it has any).
export async function forgetAccount(account) {
  const d = await db();
  const tx = d.transaction(["tasks", "notes", "meta"], "readwrite");
  for (const name of ["tasks", "notes"]) {
    const keys = await tx.objectStore(name).index("account").getAllKeys(account);
    for (const key of keys) tx.objectStore(name).delete(key);
  }
  const metaKeys = await tx.objectStore("meta").getAllKeys();
  for (const key of metaKeys) if (typeof key === "string" && key.includes(`:${account}`)) tx.objectStore("meta").delete(key);
  await tx.done;
}
