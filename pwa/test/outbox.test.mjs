// The outbox state machine against an in-memory store and a fake server that keeps the real rules
// (idempotency by key and body, chunked photo upload resumable from `received`).
//   node --test test/
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { CHUNK_BYTES, NetworkError, createOutbox, newApplicationEntry, newEntry, singleFlight } from "../src/outbox.js";

function memoryStore() {
  const entries = new Map();
  const photos = new Map();
  return {
    entries,
    async list(account) {
      return [...entries.values()]
        .filter((e) => account === undefined || e.account === account)
        .map((e) => structuredClone(e))
        .sort((a, b) => (a.created_at < b.created_at ? -1 : 1));
    },
    async get(id) {
      return entries.has(id) ? structuredClone(entries.get(id)) : undefined;
    },
    async put(entry) {
      entries.set(entry.id, structuredClone(entry));
    },
    async add(entry, list) {
      for (const p of list) photos.set(`${entry.id}:${p.sha256}`, p.blob);
      entries.set(entry.id, structuredClone(entry));
    },
    async getPhoto(id, sha) {
      return photos.get(`${id}:${sha}`) || null;
    },
    async remove(id) {
      entries.delete(id);
      for (const key of [...photos.keys()]) if (key.startsWith(`${id}:`)) photos.delete(key);
    },
  };
}

// A server with the contract's behaviour, and hooks to inject failures.
function fakeServer() {
  const server = {
    visits: new Map(), // key → {body, visit_id}
    applications: new Map(), // key → {body, answer}
    photos: new Map(), // visit_id:sha → {bytes: Buffer[], total}
    calls: [],
    failNext: [], // "network" | status code, consumed per request
    account: "w1",
    async request(method, path, { headers = {}, body } = {}) {
      server.calls.push(`${method} ${path}`);
      const fail = server.failNext.shift();
      if (fail === "network") throw new NetworkError("offline");
      if (fail === "drop-after") {
        // The server does the work, then the connection drops.
        await server.handle(method, path, headers, body);
        throw new NetworkError("connection reset");
      }
      if (typeof fail === "number") return { status: fail, json: { code: "x", detail: `forced ${fail}` } };
      return server.handle(method, path, headers, body);
    },
    async handle(method, path, headers, body) {
      let m = path.match(/^\/api\/v1\/tasks\/([\w-]+)\/visit$/);
      if (method === "POST" && m) {
        const key = headers["Idempotency-Key"];
        const data = JSON.parse(body);
        const known = server.visits.get(key);
        if (known) {
          if (known.body !== body) return { status: 409, json: { code: "idempotency.key_reused", detail: "different body" } };
          return { status: 200, json: known.answer };
        }
        const visit_id = `v-${server.visits.size + 1}`;
        const answer = { visit_id, task_id: m[1], state: "visited", photos_missing: data.photos.filter((s) => !server.completed(visit_id, s)) };
        server.visits.set(key, { body, answer });
        return { status: 200, json: answer };
      }
      // A visit's photo, or a material photo taken on the apply screen for a task: the same protocol.
      m = path.match(/^\/api\/v1\/(?:visits|tasks)\/([\w-]+)\/photos\/(\w+)$/);
      if (method === "PUT" && m) {
        const id = `${m[1]}:${m[2]}`;
        const slot = server.photos.get(id) || { data: Buffer.alloc(0), total: Number(headers["Upload-Length"]), complete: false };
        server.photos.set(id, slot);
        if (slot.complete) return { status: 200, json: { received: slot.total, complete: true, photo_id: `p-${id}` } };
        const offset = Number(headers["Upload-Offset"]);
        if (offset !== slot.data.length) return { status: 409, json: { code: "photo.offset_mismatch", received: slot.data.length } };
        slot.data = Buffer.concat([slot.data, Buffer.from(await body.arrayBuffer())]);
        if (slot.data.length < slot.total) return { status: 200, json: { received: slot.data.length, complete: false } };
        const sha = createHash("sha256").update(slot.data).digest("hex");
        if (sha !== m[2]) return { status: 422, json: { code: "photo.hash_mismatch", detail: "hash mismatch" } };
        slot.complete = true;
        return { status: 201, json: { received: slot.total, complete: true, photo_id: `p-${id}` } };
      }
      m = path.match(/^\/api\/v1\/households\/([\w-]+)\/applications$/);
      if (method === "POST" && m) {
        // Like the server: a photo named by {visit_id, sha256} must belong to a visit it has.
        const key = headers["Idempotency-Key"];
        const known = server.applications.get(key);
        if (known) {
          if (known.body !== body) return { status: 409, json: { code: "idempotency.key_reused", detail: "different body" } };
          return { status: 200, json: known.answer };
        }
        const data = JSON.parse(body);
        const visitIds = new Set([...server.visits.values()].map((v) => v.answer.visit_id));
        for (const material of Object.values(data.materials || {})) {
          for (const ref of material.photos || []) {
            if (ref.visit_id !== undefined && !visitIds.has(ref.visit_id)) {
              return { status: 422, json: { code: "application.photo_unknown", detail: "unknown photo" } };
            }
            const stored = [...server.photos.entries()].some(([id, slot]) => slot.complete && `p-${id}` === ref.photo_id);
            if (ref.photo_id !== undefined && !stored) {
              return { status: 422, json: { code: "application.photo_unknown", detail: "unknown photo" } };
            }
          }
        }
        const answer = { id: key, household_id: m[1] };
        server.applications.set(key, { body, answer });
        return { status: 201, json: answer };
      }
      return { status: 404, json: { code: "not_found" } };
    },
    completed(visitId, sha) {
      const slot = server.photos.get(`${visitId}:${sha}`);
      return !!(slot && slot.complete);
    },
  };
  return server;
}

function photo(bytes, seed = 1) {
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 31 + seed) & 0xff;
  return { blob: new Blob([data]), sha256: createHash("sha256").update(data).digest("hex"), size: bytes };
}

let clock = 1_700_000_000_000;
const now = () => clock;

async function queue(store, { id = crypto.randomUUID(), account = "w1", photos = [] } = {}) {
  const body = JSON.stringify({ found: "ok", needs: [], photos: photos.map((p) => p.sha256) });
  const entry = newEntry({ id, account, taskId: "t1", body, photos, now: clock++ });
  await store.add(entry, photos);
  return entry;
}

test("a visit with two photos leaves the outbox only when the server has everything", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  await queue(store, { photos: [photo(CHUNK_BYTES + 1000, 1), photo(2000, 2)] });
  const result = await box.flush("w1");
  assert.equal(result.sent, 1);
  assert.equal(store.entries.size, 0);
  assert.equal(server.visits.size, 1);
  assert.equal([...server.photos.values()].filter((s) => s.complete).length, 2);
});

test("offline: the entry stays, with its error, and goes on the next flush exactly once", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  const entry = await queue(store, { photos: [photo(1000)] });
  server.failNext.push("network");
  const first = await box.flush("w1");
  assert.equal(first.network, true);
  const kept = await store.get(entry.id);
  assert.equal(kept.state, "retry");
  assert.match(kept.last_error, /offline/);
  assert.equal(kept.next_at, 0); // a lost connection is retried at the next trigger, no back-off
  await box.flush("w1");
  assert.equal(store.entries.size, 0);
  assert.equal(server.visits.size, 1);
});

test("a dropped connection after the server stored the visit, then a 500: still one visit", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  await queue(store, { photos: [photo(3000)] });
  server.failNext.push("drop-after");
  await box.flush("w1", { force: true });
  server.failNext.push(500);
  await box.flush("w1", { force: true });
  assert.equal(store.entries.size, 1);
  await box.flush("w1", { force: true });
  assert.equal(store.entries.size, 0);
  assert.equal(server.visits.size, 1);
});

test("a photo upload resumes from what the server received (409 offset mismatch)", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  const big = photo(CHUNK_BYTES * 2 + 10, 7);
  const entry = await queue(store, { photos: [big] });
  // Visit goes, first chunk arrives, then the answer to the second chunk is lost.
  server.failNext.push(undefined, undefined, "drop-after");
  await box.flush("w1", { force: true });
  const kept = await store.get(entry.id);
  assert.equal(kept.posted, true);
  assert.equal(kept.photos[0].received, CHUNK_BYTES); // the phone only knows the first chunk
  await box.flush("w1", { force: true });
  assert.equal(store.entries.size, 0);
  const slot = [...server.photos.values()][0];
  assert.equal(slot.complete, true);
  assert.equal(slot.data.length, big.size);
  assert.ok(server.calls.filter((c) => c.startsWith("PUT")).length >= 4); // includes the 409 resume
});

test("4xx that retrying cannot fix moves the entry to needs attention, never deletes it", async () => {
  for (const status of [400, 404, 409, 422]) {
    const store = memoryStore();
    const server = fakeServer();
    const box = createOutbox({ store, request: server.request, now });
    const entry = await queue(store);
    server.failNext.push(status);
    const result = await box.flush("w1", { force: true });
    assert.equal(result.attention, 1);
    const kept = await store.get(entry.id);
    assert.equal(kept.state, "needs_attention");
    assert.match(kept.problem.detail, new RegExp(`forced ${status}`));
    await box.flush("w1", { force: true }); // skipped until the worker re-queues it
    assert.equal((await store.get(entry.id)).state, "needs_attention");
    await box.requeue(entry.id);
    await box.flush("w1", { force: true });
    assert.equal(store.entries.size, 0);
  }
});

test("same key with a different body (409) needs attention", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  const entry = await queue(store, { id: "k1" });
  server.visits.set("k1", { body: "{}", answer: {} });
  await box.flush("w1", { force: true });
  const kept = await store.get(entry.id);
  assert.equal(kept.state, "needs_attention");
  assert.equal(kept.problem.code, "idempotency.key_reused");
});

test("401 stops the flush and keeps the queue", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  await queue(store);
  await queue(store);
  server.failNext.push(401);
  const result = await box.flush("w1", { force: true });
  assert.equal(result.auth, true);
  assert.equal(store.entries.size, 2);
  assert.equal(server.calls.length, 1);
  assert.ok([...store.entries.values()].every((e) => e.state === "pending"));
});

test("another account's entries are never sent", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  await queue(store, { account: "w2" });
  const result = await box.flush("w1", { force: true });
  assert.equal(result.sent, 0);
  assert.equal(server.calls.length, 0);
  assert.equal(store.entries.size, 1);
});

test("health reports what is waiting", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  const a = await queue(store);
  await queue(store);
  server.failNext.push(422, "network");
  await box.flush("w1", { force: true });
  const report = await box.health("w1");
  assert.equal(report.pending, 1);
  assert.equal(report.needs_attention, 1);
  assert.equal(report.oldest_pending_at, a.created_at);
  assert.ok(report.last_error);
});

test("singleFlight: concurrent triggers never run two flushes at once", async () => {
  let running = 0;
  let max = 0;
  let runs = 0;
  const trigger = singleFlight(async () => {
    running++;
    runs++;
    max = Math.max(max, running);
    await new Promise((r) => setTimeout(r, 5));
    running--;
  });
  await Promise.all([trigger(), trigger(), trigger(), trigger()]);
  assert.equal(max, 1);
  assert.equal(runs, 2); // the first run, plus one for everything that came during it
});

test("a 5xx waits with growing back-off unless forced", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  const entry = await queue(store);
  server.failNext.push(503);
  await box.flush("w1");
  const first = await store.get(entry.id);
  assert.equal(first.state, "retry");
  assert.ok(first.next_at > clock);
  await box.flush("w1"); // not due yet: nothing sent
  assert.equal(server.calls.length, 1);
  clock = first.next_at + 1;
  await box.flush("w1");
  assert.equal(store.entries.size, 0);
});

// --- applications on the family's behalf --------------------------------------------------------

async function queueApplication(store, { id = crypto.randomUUID(), account = "w1", visit = null, sha256 = null, taken = [] } = {}) {
  const idCard = visit ? { photos: [{ visit_entry: visit, sha256 }] } : { to_follow: true };
  const draft = {
    applicant_id_number: "110101195001011234",
    services: [{ service: "dibao", answers: {} }],
    materials: {
      // A photo taken on the apply screen is named by its hash until the server gives it an id.
      id_card: taken.length ? { photos: taken.map((p) => ({ entry_photo: p.sha256 })) } : idCard,
      authorisation: { to_follow: true },
    },
    consent: { method: "verbal", at: "2026-11-22T10:00:00Z", member_id: "m1" },
  };
  const entry = newApplicationEntry({ id, account, taskId: "t1", householdId: "h1", draft, services: ["dibao"], photos: taken, now: clock++ });
  await store.add(entry, taken);
  return entry;
}

test("an application naming a queued visit's photo goes after that visit, with the server's visit id", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  const card = photo(1500, 3);
  const visit = await queue(store, { photos: [card] });
  const app = await queueApplication(store, { visit: visit.id, sha256: card.sha256 });
  const result = await box.flush("w1");
  assert.equal(result.sent, 2);
  assert.equal(store.entries.size, 0);
  const order = server.calls.map((c) => c.split(" ")[0] + " " + c.split("/")[3]);
  assert.deepEqual(order, ["POST tasks", "PUT visits", "POST households"]);
  const sent = JSON.parse(server.applications.get(app.id).body);
  assert.equal(sent.materials.id_card.photos[0].visit_id, "v-1");
  assert.equal(sent.materials.id_card.photos[0].sha256, card.sha256);
  assert.equal(sent.materials.id_card.photos[0].visit_entry, undefined);
});

test("an application waits while its visit cannot be sent, then goes once", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  const card = photo(800, 4);
  const visit = await queue(store, { photos: [card] });
  const app = await queueApplication(store, { visit: visit.id, sha256: card.sha256 });
  server.failNext.push(503); // the visit's POST
  const first = await box.flush("w1", { force: true });
  assert.equal(first.sent, 0);
  assert.equal(server.applications.size, 0);
  assert.equal((await store.get(app.id)).state, "pending");
  assert.ok(!server.calls.some((c) => c.includes("/applications")));
  await box.flush("w1", { force: true });
  assert.equal(store.entries.size, 0);
  assert.equal(server.applications.size, 1);
});

test("an application's 422 needs attention with the server's message; re-queued it goes", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  const app = await queueApplication(store);
  server.failNext.push(422);
  const result = await box.flush("w1", { force: true });
  assert.equal(result.attention, 1);
  const kept = await store.get(app.id);
  assert.equal(kept.state, "needs_attention");
  assert.match(kept.problem.detail, /forced 422/);
  assert.match(kept.last_error, /HTTP 422/);
  await box.flush("w1", { force: true });
  assert.equal(server.applications.size, 0);
  await box.requeue(app.id);
  await box.flush("w1", { force: true });
  assert.equal(store.entries.size, 0);
  assert.equal(server.applications.size, 1);
});

test("an application replayed after a dropped answer or a 500 is still one application", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const seen = [];
  const box = createOutbox({ store, request: server.request, now, onApplication: (entry, answer) => seen.push(answer.id) });
  const card = photo(900, 5);
  const visit = await queue(store, { photos: [card] });
  const app = await queueApplication(store, { visit: visit.id, sha256: card.sha256 });
  server.failNext.push(undefined, undefined, "drop-after"); // visit, photo, then the application's answer is lost
  const first = await box.flush("w1", { force: true });
  assert.equal(first.network, true);
  assert.equal(server.applications.size, 1);
  assert.equal(store.entries.size, 1); // the visit left; the application waits for its answer
  server.failNext.push(500);
  await box.flush("w1", { force: true });
  assert.equal((await store.get(app.id)).state, "retry");
  await box.flush("w1", { force: true });
  assert.equal(store.entries.size, 0);
  assert.equal(server.applications.size, 1); // same key, same bytes: the server's "already have it"
  assert.deepEqual(seen, [app.id]);
});

test("an application whose visit was discarded needs attention instead of failing silently", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  const app = await queueApplication(store, { visit: "gone-visit", sha256: "a".repeat(64) });
  const result = await box.flush("w1", { force: true });
  assert.equal(result.attention, 1);
  assert.equal((await store.get(app.id)).state, "needs_attention");
  assert.equal(server.calls.length, 0);
});

test("401 on an application keeps it queued", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  const app = await queueApplication(store);
  server.failNext.push(401);
  const result = await box.flush("w1", { force: true });
  assert.equal(result.auth, true);
  assert.equal((await store.get(app.id)).state, "pending");
});

// --- a photo taken on the apply screen travels with the application ------------------------------

test("an application's own photo is uploaded to its task first, then named by the server's photo id", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  const card = photo(CHUNK_BYTES + 700, 11);
  const app = await queueApplication(store, { taken: [card] });
  const result = await box.flush("w1");
  assert.equal(result.sent, 1);
  assert.equal(store.entries.size, 0);
  assert.deepEqual(server.calls, [`PUT /api/v1/tasks/t1/photos/${card.sha256}`, `PUT /api/v1/tasks/t1/photos/${card.sha256}`, "POST /api/v1/households/h1/applications"]);
  const sent = JSON.parse(server.applications.get(app.id).body);
  assert.deepEqual(sent.materials.id_card, { photos: [{ photo_id: `p-t1:${card.sha256}` }] });
  assert.equal(sent.consent.member_id, "m1");
});

test("offline halfway through its photo: the application resumes the upload and arrives once", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  const card = photo(CHUNK_BYTES * 2 + 5, 12);
  const app = await queueApplication(store, { taken: [card] });
  server.failNext.push(undefined, "drop-after"); // first chunk arrives; the second one's answer is lost
  const first = await box.flush("w1", { force: true });
  assert.equal(first.network, true);
  const kept = await store.get(app.id);
  assert.equal(kept.posted, false);
  assert.equal(kept.photos[0].done, false);
  assert.ok(await store.getPhoto(app.id, card.sha256), "the photo's bytes stay on the phone");
  assert.equal(server.applications.size, 0);
  await box.flush("w1", { force: true });
  assert.equal(store.entries.size, 0);
  assert.equal(server.applications.size, 1);
  const slots = [...server.photos.values()];
  assert.equal(slots.length, 1);
  assert.equal(slots[0].data.length, card.size);
  assert.equal(await store.getPhoto(app.id, card.sha256), null, "sent: the phone lets the bytes go");
});

test("a photo the server refuses keeps the application back, needing attention, never posted", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  const card = photo(900, 13);
  const app = await queueApplication(store, { taken: [card] });
  server.failNext.push(422);
  const result = await box.flush("w1", { force: true });
  assert.equal(result.attention, 1);
  assert.equal((await store.get(app.id)).state, "needs_attention");
  assert.ok(!server.calls.some((c) => c.includes("/applications")));
  await box.requeue(app.id);
  await box.flush("w1", { force: true });
  assert.equal(server.applications.size, 1);
});

test("an application's photo missing from the phone needs attention instead of going without it", async () => {
  const store = memoryStore();
  const server = fakeServer();
  const box = createOutbox({ store, request: server.request, now });
  const card = photo(500, 14);
  const entry = newApplicationEntry({
    id: crypto.randomUUID(),
    account: "w1",
    taskId: "t1",
    householdId: "h1",
    draft: { materials: { id_card: { photos: [{ entry_photo: card.sha256 }] } } },
    services: ["dibao"],
    photos: [card],
    now: clock++,
  });
  await store.add(entry, []); // the Blob never made it into the store
  const result = await box.flush("w1", { force: true });
  assert.equal(result.attention, 1);
  assert.match((await store.get(entry.id)).last_error, /missing on this phone/);
  assert.equal(server.calls.length, 0);
});
