// The outbox: every action recorded on the phone waits here until the server has all of it.
//
// One entry per action, keyed by a client UUID that is also the Idempotency-Key (for a visit, the
// visit's own UUID). An entry leaves only on 2xx or the server's "already have it" answer. Network
// errors, 408/425/429 and 5xx are retried with back-off; a 4xx that retrying cannot fix moves the entry
// to "needs attention" with the server's problem detail, where the worker sees it (never deleted
// silently); 401 stops the flush and asks for a new sign-in, keeping everything queued.
//
// This module has no browser dependencies: the store and the HTTP function are passed in, so the
// state machine runs under `node --test` as well.

export const CHUNK_BYTES = 512 * 1024; // the server takes ≤ 1 MiB per PUT
export const BACKOFF_BASE_MS = 15_000;
export const BACKOFF_MAX_MS = 10 * 60_000;

export class NetworkError extends Error {
  constructor(message) {
    super(message || "network");
    this.name = "NetworkError";
  }
}

export function newEntry({ id, account, taskId, body, photos, now }) {
  return {
    id,
    account,
    kind: "visit",
    task_id: taskId,
    created_at: new Date(now).toISOString(),
    // The exact bytes sent every time: the server compares them with what it stored under the key.
    body,
    photos: photos.map((p) => ({ sha256: p.sha256, size: p.size, received: 0, done: false })),
    visit_id: null,
    posted: false,
    state: "pending",
    attempts: 0,
    last_error: null,
    problem: null,
    next_at: 0,
    updated_at: new Date(now).toISOString(),
  };
}

// An application on the family's behalf (代办申请): one POST, keyed by the application's own UUID.
// `draft` is the body; a material photo still travelling with a visit in the outbox is named
// {visit_entry, sha256}. The server gives the visit its id only when the visit is posted, so the
// visit's POST records that id here (`visit_ids`), and the body is made final (and then sent
// byte-for-byte the same) on the application's first send. The flush goes oldest first, and an
// application waits while a visit it names is not on the server yet.
// A photo taken on the apply screen travels with the application itself (`photos`, its Blob in the
// photo store under this entry): it is uploaded to the task's material photos first, and the draft's
// {entry_photo: sha256} becomes the server's {photo_id}.
export function newApplicationEntry({ id, account, taskId, householdId, draft, services, photos = [], now }) {
  const after = [];
  for (const material of Object.values(draft.materials || {})) {
    for (const ref of material.photos || []) if (ref.visit_entry && !after.includes(ref.visit_entry)) after.push(ref.visit_entry);
  }
  return {
    id,
    account,
    kind: "application",
    task_id: taskId,
    household_id: householdId,
    services,
    after,
    visit_ids: {},
    draft,
    body: null,
    created_at: new Date(now).toISOString(),
    photos: photos.map((p) => ({ sha256: p.sha256, size: p.size, received: 0, done: false, photo_id: null })),
    application_id: null,
    posted: false,
    state: "pending",
    attempts: 0,
    last_error: null,
    problem: null,
    next_at: 0,
    updated_at: new Date(now).toISOString(),
  };
}

const RETRYABLE = new Set([408, 425, 429]);

export function classify(status) {
  if (status >= 200 && status < 300) return "ok";
  if (status === 401) return "auth";
  if (status >= 500 || RETRYABLE.has(status)) return "retry";
  return "attention"; // 400, 403, 404, 409 (other body), 410, 413, 415, 422…
}

export function backoff(attempts) {
  const exp = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1));
  return Math.round(exp * (0.8 + Math.random() * 0.4));
}

function errorText(res) {
  const j = res.json || {};
  const detail = j.detail_zh && j.detail_en ? `${j.detail_zh} / ${j.detail_en}` : j.detail || j.title || "";
  return `HTTP ${res.status}${j.code ? ` ${j.code}` : ""}${detail ? `: ${detail}` : ""}`.slice(0, 480);
}

/**
 * createOutbox({store, request, now})
 *   store:   {list(account), get(id), put(entry), remove(id), getPhoto(entryId, sha256) → Blob|null}
 *   request: (method, path, {headers, body}) → Promise<{status, json}>; throws NetworkError when offline.
 *   now:     () → ms since epoch
 */
export function createOutbox({ store, request, now = () => Date.now(), onApplication = null }) {
  async function save(entry, patch) {
    Object.assign(entry, patch, { updated_at: new Date(now()).toISOString() });
    await store.put(entry);
  }

  async function retryLater(entry, message, { network = false } = {}) {
    // A lost connection is retried at the next trigger (online, visible, timer); a server error
    // waits longer each time so a struggling server is not hammered.
    await save(entry, { state: "retry", last_error: message, next_at: network ? 0 : now() + backoff(entry.attempts) });
  }

  async function needsAttention(entry, res, message) {
    await save(entry, {
      state: "needs_attention",
      last_error: message || errorText(res),
      problem: res ? { status: res.status, ...(res.json || {}) } : null,
      next_at: 0,
    });
  }

  // Turns a non-2xx answer into the entry's next state; returns what the flush loop should do.
  async function failed(entry, res) {
    const kind = classify(res.status);
    if (kind === "auth") {
      await save(entry, { state: "pending", last_error: errorText(res) });
      return "auth";
    }
    if (kind === "retry") {
      await retryLater(entry, errorText(res));
      return "retry";
    }
    await needsAttention(entry, res);
    return "attention";
  }

  async function postVisit(entry) {
    const res = await request("POST", `/api/v1/tasks/${entry.task_id}/visit`, {
      headers: { "Idempotency-Key": entry.id, "Content-Type": "application/json" },
      body: entry.body,
    });
    if (classify(res.status) !== "ok") return failed(entry, res);
    const answer = res.json || {};
    const missing = Array.isArray(answer.photos_missing) ? new Set(answer.photos_missing) : null;
    const photos = entry.photos.map((p) =>
      missing && !missing.has(p.sha256) ? { ...p, done: true, received: p.size } : p,
    );
    await save(entry, { posted: true, visit_id: answer.visit_id || null, photos, last_error: null });
    if (entry.visit_id) await tellApplications(entry);
    return "ok";
  }

  // The body with every {visit_entry, sha256} turned into the server's {visit_id, sha256}; null while
  // a named visit is not on the server yet; throws when a named visit is gone without an id.
  async function finalBody(entry) {
    if (entry.body) return entry.body;
    // The copy in hand may predate a visit's POST in this same flush: the stored one knows more.
    const stored = await store.get(entry.id);
    const ids = { ...((stored && stored.visit_ids) || {}), ...(entry.visit_ids || {}) };
    for (const ref of entry.after || []) {
      if (ids[ref]) continue;
      const visit = await store.get(ref);
      if (visit && visit.posted && visit.visit_id) ids[ref] = visit.visit_id;
      else if (visit) return null;
      else throw Object.assign(new Error("The visit whose photos this application names was discarded"), { gone: true });
    }
    const taken = Object.fromEntries((entry.photos || []).map((p) => [p.sha256, p.photo_id]));
    const draft = structuredClone(entry.draft);
    for (const material of Object.values(draft.materials || {})) {
      if (!material.photos) continue;
      material.photos = material.photos.map((ref) => {
        if (ref.visit_entry) return { visit_id: ids[ref.visit_entry], sha256: ref.sha256 };
        if (!ref.entry_photo) return ref;
        if (!taken[ref.entry_photo]) throw Object.assign(new Error("The server did not return an id for a photo"), { gone: true });
        return { photo_id: taken[ref.entry_photo] };
      });
    }
    const body = JSON.stringify(draft);
    await save(entry, { body, visit_ids: ids });
    return body;
  }

  async function postApplication(entry) {
    let body;
    try {
      body = await finalBody(entry);
    } catch (error) {
      if (!error.gone) throw error;
      await needsAttention(entry, null, error.message);
      return "attention";
    }
    if (!body) {
      await save(entry, { state: "pending", last_error: null });
      return "waiting";
    }
    const res = await request("POST", `/api/v1/households/${entry.household_id}/applications`, {
      headers: { "Idempotency-Key": entry.id, "Content-Type": "application/json" },
      body,
    });
    if (classify(res.status) !== "ok") return failed(entry, res);
    const answer = res.json || {};
    await save(entry, { posted: true, application_id: answer.id || null, last_error: null });
    if (onApplication) await onApplication(entry, answer);
    return "ok";
  }

  // A visit just got its server id: applications naming it remember it (the visit may leave first).
  async function tellApplications(entry) {
    for (const other of await store.list(entry.account)) {
      if (other.kind !== "application" || !(other.after || []).includes(entry.id) || other.body) continue;
      other.visit_ids = { ...(other.visit_ids || {}), [entry.id]: entry.visit_id };
      await store.put(other);
    }
  }

  // A visit's photo goes to its visit; an application's own photo to its task's material photos.
  function photoPath(entry, photo) {
    if (entry.kind === "application") return `/api/v1/tasks/${entry.task_id}/photos/${photo.sha256}`;
    return `/api/v1/visits/${entry.visit_id}/photos/${photo.sha256}`;
  }

  async function putPhoto(entry, index) {
    const photo = entry.photos[index];
    const blob = await store.getPhoto(entry.id, photo.sha256);
    if (!blob) {
      await needsAttention(entry, null, `Photo ${photo.sha256.slice(0, 12)} is missing on this phone`);
      return "attention";
    }
    const path = photoPath(entry, photo);
    let offset = Math.min(photo.received || 0, blob.size);
    let stalls = 0;
    for (;;) {
      const chunk = blob.slice(offset, offset + CHUNK_BYTES);
      const res = await request("PUT", path, {
        headers: {
          "Upload-Offset": String(offset),
          "Upload-Length": String(blob.size),
          "Content-Type": "application/offset+octet-stream",
        },
        body: chunk,
      });
      const answer = res.json || {};
      if (classify(res.status) === "ok") {
        if (answer.complete) {
          entry.photos[index] = { ...photo, done: true, received: blob.size, photo_id: answer.photo_id || null };
          await save(entry, {});
          return "ok";
        }
        const received = typeof answer.received === "number" ? answer.received : offset + chunk.size;
        stalls = received > offset ? 0 : stalls + 1;
        offset = received;
      } else if (res.status === 409 && typeof answer.received === "number") {
        // The server holds a different amount than we thought: resume from what it has.
        stalls = answer.received === offset ? stalls + 1 : 0;
        offset = answer.received;
      } else {
        return failed(entry, res);
      }
      entry.photos[index] = { ...photo, received: offset };
      await save(entry, {});
      if (stalls > 3 || offset > blob.size) {
        await retryLater(entry, `Photo upload does not progress (offset ${offset})`);
        return "retry";
      }
    }
  }

  // Sends one entry as far as it goes. Returns "done" | "auth" | "network" | "retry" | "attention" |
// "waiting" (an application whose visit is not on the server yet) | "skipped".
  async function send(entry, force) {
    if (entry.state === "needs_attention") return "skipped";
    if (!force && entry.next_at && entry.next_at > now()) return "skipped";
    await save(entry, { state: "sending", attempts: (entry.attempts || 0) + 1 });
    try {
      if (entry.kind === "application") {
        // Its own photos first: the body names them by the ids the server gives them.
        for (let i = 0; !entry.posted && i < (entry.photos || []).length; i++) {
          if (entry.photos[i].done) continue;
          const step = await putPhoto(entry, i);
          if (step !== "ok") return step;
        }
        const step = entry.posted ? "ok" : await postApplication(entry);
        if (step !== "ok") return step;
        await store.remove(entry.id);
        return "done";
      }
      if (!entry.posted) {
        const step = await postVisit(entry);
        if (step !== "ok") return step;
      }
      for (let i = 0; i < entry.photos.length; i++) {
        if (entry.photos[i].done) continue;
        if (!entry.visit_id) {
          await needsAttention(entry, null, "The server did not return a visit id");
          return "attention";
        }
        const step = await putPhoto(entry, i);
        if (step !== "ok") return step;
      }
      await store.remove(entry.id);
      return "done";
    } catch (error) {
      if (error && error.name === "NetworkError") {
        await retryLater(entry, String(error.message || "network error"), { network: true });
        return "network";
      }
      await retryLater(entry, String((error && error.message) || error));
      return "retry";
    }
  }

  /** Flushes the account's entries, oldest first. Stops at a network error or when sign-in is needed. */
  async function flush(account, { force = false } = {}) {
    const result = { sent: 0, failed: 0, attention: 0, auth: false, network: false };
    const entries = await store.list(account);
    for (const listed of entries) {
      if (listed.account !== account) continue; // never send another account's items
      // Read again: sending an earlier entry may have changed this one (a visit tells its applications its id).
      const entry = (await store.get(listed.id)) || null;
      if (!entry) continue;
      if (entry.state === "sending") entry.state = "pending"; // left over from an interrupted run
      const outcome = await send(entry, force);
      if (outcome === "done") result.sent++;
      else if (outcome === "attention") result.attention++;
      else if (outcome === "retry") result.failed++;
      else if (outcome === "auth") {
        result.auth = true;
        break;
      } else if (outcome === "network") {
        result.network = true;
        break;
      }
    }
    return result;
  }

  async function health(account) {
    const entries = (await store.list(account)).filter((e) => e.account === account);
    const waiting = entries.filter((e) => e.state !== "needs_attention");
    const attention = entries.filter((e) => e.state === "needs_attention");
    const withError = entries.filter((e) => e.last_error).sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1));
    return {
      pending: waiting.length,
      needs_attention: attention.length,
      oldest_pending_at: entries.length ? entries[0].created_at : null,
      last_error: withError.length ? String(withError[0].last_error).slice(0, 500) : null,
    };
  }

  async function requeue(id) {
    const entry = await store.get(id);
    if (!entry) return;
    await save(entry, { state: "pending", next_at: 0, problem: null });
  }

  return { flush, send, health, requeue };
}

// Coalesces concurrent calls: one run at a time; a call during a run waits for it plus one more run.
export function singleFlight(run) {
  let current = null;
  let queued = null;
  let queuedForce = false;
  return function trigger(options) {
    const force = !!(options && options.force);
    if (!current) {
      current = Promise.resolve()
        .then(() => run({ force }))
        .finally(() => {
          current = null;
        });
      return current;
    }
    queuedForce = queuedForce || force;
    if (!queued) {
      queued = current
        .catch(() => {})
        .then(() => {
          const again = { force: queuedForce };
          queued = null;
          queuedForce = false;
          return trigger(again);
        });
    }
    return queued;
  };
}
