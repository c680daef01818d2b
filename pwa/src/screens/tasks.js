// Worker screens: the task list, a task's detail, the visit form.
import { account, api, getSession, request, uuid } from "../api.js";
import { entriesOf, lastSyncAt, pendingTaskIds, queueVisit, state, syncNow } from "../core.js";
import { getMeta, getTask, keepApplications, keepTaskRequests, keptTaskRequests, listTasks, setMeta } from "../db.js";
import { fmtTime, getLang, has, NEEDS, problemText, t } from "../i18n.js";
import { compressPhoto } from "../photos.js";
import { clear, distanceM, fmtDistance, h, put, toast } from "../ui.js";

// --- position ------------------------------------------------------------------------------------
let position = (() => {
  try {
    return JSON.parse(sessionStorage.getItem("gridaid.pos") || "null");
  } catch (_) {
    return null;
  }
})();
let asking = null;

export function currentPosition({ fresh = false, timeout = 10_000 } = {}) {
  if (!("geolocation" in navigator)) return Promise.reject(new Error("geolocation unavailable"));
  if (asking && !fresh) return asking;
  const p = new Promise((resolve, reject) => {
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        position = { lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy: pos.coords.accuracy, at: Date.now() };
        try {
          sessionStorage.setItem("gridaid.pos", JSON.stringify(position));
        } catch (_) {}
        resolve(position);
      },
      (error) => reject(error),
      { enableHighAccuracy: true, timeout, maximumAge: fresh ? 0 : 5 * 60_000 },
    );
  });
  if (!fresh) asking = p.finally(() => setTimeout(() => (asking = null), 60_000));
  return p;
}

function day(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function sortTasks(tasks, pos) {
  const dist = (task) =>
    pos && task.household && task.household.lat != null
      ? distanceM(pos.lat, pos.lon, task.household.lat, task.household.lon)
      : Infinity;
  return tasks
    .map((task) => ({ task, d: dist(task), day: day(task.due_at), due: new Date(task.due_at).getTime() }))
    .sort((a, b) => (a.day === b.day ? a.d - b.d || a.due - b.due : a.due - b.due))
    .map((x) => ({ ...x.task, _distance: x.d }));
}

let typeNames = {};
export async function loadTypeNames() {
  typeNames = (await getMeta("warning-types")) || {};
}

export function typeName(code) {
  const names = typeNames[code];
  return names ? names[getLang() === "en" ? 1 : 0] : code;
}

function stateBadge(s) {
  return h("span", { testid: "task-state", class: `badge st-${s}` }, t(`state_${s}`));
}

// --- list ----------------------------------------------------------------------------------------
export async function list(container) {
  const acc = account();
  await loadTypeNames();
  const tasks = await listTasks(acc);
  const pending = await pendingTaskIds(acc);
  const last = await lastSyncAt(acc);
  const sorted = sortTasks(tasks, position);
  const syncBtn = h(
    "button",
    {
      testid: "task-sync",
      class: "btn small",
      type: "button",
      onclick: async () => {
        syncBtn.disabled = true;
        await syncNow().catch(() => {});
        syncBtn.disabled = false;
        if (!state.online || state.lastError) toast(t("network_error"));
      },
    },
    t("tasks_sync"),
  );
  put(container, 
    h(
      "div",
      { class: "row between" },
      h("h2", null, t("tasks_title"), " ", h("small", { class: "muted" }, String(tasks.length))),
      syncBtn,
    ),
    h("p", { testid: "task-last-sync", class: "muted small" }, last ? t("tasks_last_sync", { t: fmtTime(last) }) : t("tasks_never_synced")),
  );
  if (!sorted.length) {
    put(container, h("p", { testid: "task-empty", class: "empty" }, t("tasks_empty")));
    return;
  }
  const ul = h("ul", { testid: "task-list", class: "list" });
  for (const task of sorted) {
    const hh = task.household || {};
    put(ul, 
      h(
        "li",
        null,
        h(
          "a",
          { testid: "task-item", class: `item${task.overdue ? " late" : ""}`, href: `#/tasks/${task.id}`, dataset: { taskId: task.id, state: task.state } },
          h(
            "div",
            { class: "row between" },
            h("strong", null, `${hh.head_name_masked || ""} · ${hh.code || ""}`),
            stateBadge(task.state),
          ),
          h("div", { class: "small" }, hh.address || ""),
          h(
            "div",
            { class: "row small muted" },
            h("span", null, `${t("due")} ${fmtTime(task.due_at)}`),
            task.overdue ? h("span", { testid: "task-overdue", class: "badge late" }, t("overdue")) : null,
            isFinite(task._distance) ? h("span", null, fmtDistance(task._distance)) : null,
            h("span", null, (task.type_codes || []).map(typeName).join("、")),
            task.warnings > 1 ? h("span", null, t("warnings_n", { n: task.warnings })) : null,
            pending.has(task.id) ? h("span", { testid: "task-item-pending", class: "badge pend" }, t("pending_visit")) : null,
          ),
        ),
      ),
    );
  }
  put(container, ul);
  // Re-sort by distance once a position arrives (only if we had none).
  if (!position) {
    currentPosition()
      .then(() => {
        if (document.body.dataset.route === "tasks") window.gridaid && window.gridaid.render();
      })
      .catch(() => {});
  }
}

// --- detail --------------------------------------------------------------------------------------
function field(label, value) {
  return h("div", { class: "kv" }, h("span", { class: "muted" }, label), h("span", null, value == null || value === "" ? "—" : String(value)));
}

export async function detail(container, taskId) {
  const acc = account();
  await loadTypeNames();
  let task = await getTask(acc, taskId);
  const cachedDetail = await getMeta(`detail:${acc}:${taskId}`);
  let detailData = cachedDetail || null;
  try {
    const res = await request("GET", `/api/v1/tasks/${taskId}`, { timeout: 2500 });
    if (res.ok) {
      detailData = res.json;
      await setMeta(`detail:${acc}:${taskId}`, detailData);
      if (!task) task = detailData;
    }
  } catch (_) {
    /* offline: cached copy */
  }
  const entries = (await entriesOf(acc)).filter((e) => e.task_id === taskId && (e.kind || "visit") === "visit");
  const supervising = ["supervisor", "admin"].includes(getSession() && getSession().role);
  put(container, h("a", { href: supervising ? "#/street" : "#/tasks", class: "back", testid: "task-back" }, `‹ ${t("back")}`));
  if (!task) {
    put(container, h("p", { testid: "task-missing", class: "notice" }, t("task_missing")));
    if (entries.length) put(container, h("p", { testid: "task-pending-visit", class: "notice" }, t("task_pending_visit", { n: entries.length })));
    return;
  }
  const hh = task.household || {};
  const root = h("div", { testid: "task-detail", dataset: { taskId } });
  put(root, 
    h("h2", null, `${hh.head_name_masked || ""} · ${hh.code || ""}`),
    h("div", { class: "row" }, stateBadge(task.state), task.overdue ? h("span", { class: "badge late" }, t("overdue")) : null),
    h("p", { testid: "task-due" }, `${t("due")}: ${fmtTime(task.due_at)}`),
    entries.length ? h("p", { testid: "task-pending-visit", class: "notice" }, t("task_pending_visit", { n: entries.length })) : null,
    h(
      "section",
      { testid: "task-household", class: "card" },
      h("h3", null, t("task_household")),
      field(t("task_code"), hh.code),
      field(t("task_head"), hh.head_name_masked),
      field(t("task_address"), hh.address),
      field(t("task_category"), has(`cat_${hh.category}`) ? t(`cat_${hh.category}`) : hh.category),
      field(t("task_phone"), hh.phone_masked),
      field(t("task_grid"), task.grid_code),
      field(t("task_types"), (task.type_codes || []).map(typeName).join("、")),
      task.return_reason ? field(t("task_return_reason"), task.return_reason) : null,
    ),
  );
  // Filled once known (from the server, or as kept on the phone); hidden when the task has no request.
  const asked = h("section", { testid: "task-request", class: "card", hidden: true });
  put(root, asked);
  const role = getSession() && getSession().role;
  if (role === "grid_worker" && hh.id) keepHouseholdApplications(acc, hh.id);
  if (role === "grid_worker") {
    const actions = h("div", { class: "actions" });
    put(actions, h("a", { testid: "task-record-visit", class: "btn primary block", href: `#/tasks/${taskId}/visit` }, t("task_record_visit")));
    put(actions, h("a", { testid: "task-apply", class: "btn block", href: `#/tasks/${taskId}/apply` }, t("task_apply")));
    if (task.state === "new") {
      const accept = h(
        "button",
        {
          testid: "task-accept",
          type: "button",
          class: "btn block",
          onclick: async () => {
            accept.disabled = true;
            try {
              await api("POST", `/api/v1/tasks/${taskId}/accept`, { headers: { "Idempotency-Key": uuid() } });
              await syncNow();
            } catch (error) {
              toast(error.problem ? problemText(error.problem) : t("needs_online"));
            }
            accept.disabled = false;
          },
        },
        t("task_accept"),
      );
      put(actions, accept);
    }
    put(root, actions);
  }
  const history = h("section", { testid: "task-history", class: "card" }, h("h3", null, t("task_history")));
  if (detailData && detailData.history) {
    const ol = h("ol", { class: "history" });
    for (const ev of detailData.history) {
      const extra = ev.detail && (ev.detail.reason || (ev.detail.needs && ev.detail.needs.map((n) => (has(`need_${n}`) ? t(`need_${n}`) : n)).join("、")) || "");
      put(ol, h("li", { testid: "task-history-item" }, h("span", { class: "muted small" }, fmtTime(ev.at)), " ", has(`ev_${ev.kind}`) ? t(`ev_${ev.kind}`) : ev.kind, extra ? ` — ${extra}` : ""));
    }
    put(history, ol);
  } else {
    put(history, h("p", { class: "muted small" }, t("task_history_offline")));
  }
  put(root, history);
  const visits = h("section", { testid: "task-visits", class: "card" }, h("h3", null, t("task_visits")));
  put(root, visits);
  put(container, root);
  loadVisits(visits, taskId).catch(() => {});
  loadRequests(asked, acc, taskId, (task.type_codes || []).includes("resident_request")).catch(() => {});
  return () => {
    for (const url of objectUrls.splice(0)) URL.revokeObjectURL(url);
    closePhoto();
  };
}

// Blob URLs of the photos on the open task screen, let go when it closes.
const objectUrls = [];

function blobUrl(blob) {
  const url = URL.createObjectURL(blob);
  objectUrls.push(url);
  return url;
}

// The household's applications, kept on the phone while there is a connection, so the apply screen
// can list them at the kitchen table without one.
function keepHouseholdApplications(acc, householdId) {
  request("GET", `/api/v1/households/${householdId}/applications`, { timeout: 4000 })
    .then((res) => (res.ok && Array.isArray(res.json) ? keepApplications(acc, householdId, res.json) : null))
    .catch(() => {});
}

async function loadVisits(section, taskId) {
  const res = await request("GET", `/api/v1/visits?task_id=${taskId}`, { timeout: 4000 });
  if (!res.ok || !Array.isArray(res.json)) {
    put(section, h("p", { class: "muted small" }, t("task_history_offline")));
    return;
  }
  if (!res.json.length) put(section, h("p", { class: "muted small" }, t("task_visits_none")));
  for (const v of res.json) {
    const needs = (v.needs || []).map((n) => (has(`need_${n}`) ? t(`need_${n}`) : n)).join("、");
    const thumbs = h("div", { class: "thumbs" });
    put(
      section,
      h(
        "div",
        { testid: "task-visit", class: "item", dataset: { visitId: v.id } },
        h("div", { class: "small muted" }, fmtTime(v.visited_at), v.photos.length ? ` · ${t("task_visit_photos", { n: v.photos.length })}` : ""),
        h("div", null, v.found),
        needs ? h("div", { class: "small" }, needs) : null,
        v.notes ? h("div", { class: "small muted" }, v.notes) : null,
        thumbs,
      ),
    );
    for (const p of v.photos) {
      if (!p.complete || !p.photo_id) continue;
      const img = await request("GET", `/api/v1/photos/${p.photo_id}/thumbnail`, { blob: true, timeout: 8000 }).catch(() => null);
      if (!img || !img.ok || !img.blob) continue;
      put(thumbs, h("figure", { testid: "task-visit-photo", class: "thumb" }, h("img", { src: blobUrl(img.blob), alt: "" })));
    }
  }
}

// --- the resident's request behind the task -----------------------------------------------------
// What the resident told us (masked phone only), so the worker knows why they are going. Online, the
// server's list (kept on the phone with its thumbnails); offline, the list as last seen.
async function loadRequests(section, acc, taskId, expected) {
  const res = await request("GET", `/api/v1/requests?task_id=${taskId}`, { timeout: 4000 }).catch(() => null);
  const kept = await keptTaskRequests(acc, taskId).catch(() => null);
  const online = !!(res && res.ok && Array.isArray(res.json));
  const items = online ? res.json.map(keepable) : kept && kept.items;
  section.dataset.source = online ? "server" : items ? "phone" : "none";
  if (online && !items.length && kept) await keepTaskRequests(acc, taskId, [], {});
  // Nothing to show: no request behind this task (or none known, for a task no resident raised).
  if (items ? !items.length : !expected) return;
  clear(section).append(h("h3", null, t("task_request")));
  section.hidden = false;
  if (!items) return put(section, h("p", { testid: "task-request-offline", class: "muted small" }, t("task_request_offline")));
  if (!online) put(section, h("p", { testid: "task-request-kept", class: "muted small" }, t("task_request_kept", { t: fmtTime(kept.at) })));
  const thumbs = online ? {} : kept.thumbs || {};
  const loads = [];
  for (const item of items) {
    const figures = h("div", { class: "thumbs" });
    put(section, requestCard(item, figures));
    for (const photo of item.photos) {
      const figure = h("figure", { testid: "task-request-photo", class: "thumb", dataset: { photoId: photo.id, loaded: "false" } });
      put(figures, figure);
      const shown = online ? fetchThumb(item.id, photo.id, kept) : Promise.resolve(thumbs[photo.id] || null);
      loads.push(
        shown.then((blob) => {
          if (!blob) return;
          thumbs[photo.id] = blob;
          showThumb(figure, item.id, photo.id, blob);
        }),
      );
    }
  }
  await Promise.all(loads);
  if (online) await keepTaskRequests(acc, taskId, items, thumbs);
}

// Only what the card shows is kept on the phone.
function keepable(item) {
  const photos = (item.photos || []).map((p) => ({ id: p.id }));
  return { id: item.id, created_at: item.created_at, description: item.description, needs: item.needs || [], phone_masked: item.phone_masked, photos };
}

function requestCard(item, figures) {
  const needs = item.needs.map((n) => (has(`need_${n}`) ? t(`need_${n}`) : n)).join("、");
  return h(
    "div",
    { testid: "task-request-item", class: "item", dataset: { requestId: item.id } },
    field(t("task_request_asked"), fmtTime(item.created_at)),
    h("p", { testid: "task-request-description" }, item.description),
    needs ? field(t("task_request_needs"), needs) : null,
    field(t("task_request_contact"), item.phone_masked),
    figures,
  );
}

// The thumbnail from the server; the one kept earlier when the server cannot send it now.
async function fetchThumb(requestId, photoId, kept) {
  const res = await request("GET", `/api/v1/requests/${requestId}/photos/${photoId}/thumbnail`, { blob: true, timeout: 8000 }).catch(() => null);
  if (res && res.ok && res.blob) return res.blob;
  return (kept && kept.thumbs && kept.thumbs[photoId]) || null;
}

function showThumb(figure, requestId, photoId, blob) {
  const open = h("button", { type: "button", class: "photo-open", "aria-label": t("task_request_photo") }, h("img", { src: blobUrl(blob), alt: t("task_request_photo") }));
  open.addEventListener("click", () => openPhoto(requestId, photoId, open));
  figure.append(open);
  figure.dataset.loaded = "true";
}

// The full photo over the screen (every read is audited by the server); it needs a connection.
let viewer = null;

async function openPhoto(requestId, photoId, button) {
  button.disabled = true;
  const res = await request("GET", `/api/v1/requests/${requestId}/photos/${photoId}`, { blob: true, timeout: 15000 }).catch(() => null);
  button.disabled = false;
  if (!res || !res.ok || !res.blob) return toast(t("needs_online"));
  closePhoto();
  const close = h("button", { testid: "task-request-photo-close", type: "button", class: "btn small", onclick: closePhoto }, t("task_request_close"));
  viewer = h(
    "div",
    { testid: "task-request-photo-full", class: "photo-view", role: "dialog", "aria-modal": "true", dataset: { photoId } },
    h("img", { src: blobUrl(res.blob), alt: t("task_request_photo"), onclick: closePhoto }),
    close,
  );
  document.body.append(viewer);
  close.focus();
}

function closePhoto() {
  if (viewer) viewer.remove();
  viewer = null;
}

// --- visit form ----------------------------------------------------------------------------------
function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export async function visit(container, taskId) {
  const acc = account();
  const task = await getTask(acc, taskId);
  const photos = []; // {blob, sha256, size, url}
  let pos = null;
  const error = h("p", { testid: "visit-error", class: "error", role: "alert" });
  const found = h("textarea", { testid: "visit-found", name: "found", rows: "4", maxlength: "2000", required: true });
  const notes = h("textarea", { testid: "visit-notes", name: "notes", rows: "3", maxlength: "2000" });
  const needs = h(
    "fieldset",
    { class: "needs" },
    h("legend", null, t("visit_needs")),
    NEEDS.map((code) =>
      h("label", { class: "check" }, h("input", { type: "checkbox", testid: "visit-need", value: code, dataset: { need: code } }), t(`need_${code}`)),
    ),
  );
  const thumbs = h("div", { class: "thumbs" });
  const busy = h("p", { testid: "visit-photo-busy", class: "muted", hidden: true }, t("visit_photo_busy"));
  const input = h("input", {
    testid: "visit-photo-input",
    type: "file",
    accept: "image/*",
    capture: "environment",
    multiple: true,
    class: "file",
    id: "visit-photo-input",
  });
  const gpsStatus = h("p", { testid: "visit-gps-status", class: "small" }, t("visit_gps_none"));
  const time = h("input", { testid: "visit-time", type: "datetime-local", value: localInputValue(new Date()) });
  const submit = h("button", { testid: "visit-submit", type: "submit", class: "btn primary block" }, t("visit_submit"));

  function paintThumbs() {
    put(clear(thumbs), 
      ...photos.map((p, i) =>
        h(
          "figure",
          { testid: "visit-photo-thumb", class: "thumb", dataset: { sha256: p.sha256, bytes: String(p.size) } },
          h("img", { src: p.url, alt: "" }),
          h(
            "button",
            {
              testid: "visit-photo-remove",
              type: "button",
              class: "btn small",
              onclick: () => {
                URL.revokeObjectURL(p.url);
                photos.splice(i, 1);
                paintThumbs();
              },
            },
            t("visit_photo_remove"),
          ),
        ),
      ),
    );
  }

  input.addEventListener("change", async () => {
    const files = Array.from(input.files || []);
    input.value = "";
    if (!files.length) return;
    busy.hidden = false;
    submit.disabled = true;
    error.textContent = "";
    try {
      for (const file of files) {
        if (photos.length >= 6) {
          error.textContent = t("visit_photo_too_many");
          break;
        }
        try {
          const p = await compressPhoto(file);
          if (photos.some((x) => x.sha256 === p.sha256)) continue;
          photos.push({ ...p, url: URL.createObjectURL(p.blob) });
        } catch (err) {
          console.warn(err);
          error.textContent = t("visit_photo_failed");
        }
      }
    } finally {
      busy.hidden = true;
      submit.disabled = false;
      paintThumbs();
    }
  });

  function showPos() {
    if (!pos) return;
    gpsStatus.textContent = t("visit_gps_ok", { lat: pos.lat.toFixed(5), lon: pos.lon.toFixed(5), acc: Math.round(pos.accuracy) });
    gpsStatus.dataset.lat = String(pos.lat);
    gpsStatus.dataset.lon = String(pos.lon);
    gpsStatus.dataset.accuracy = String(pos.accuracy);
  }
  async function locate() {
    gpsStatus.textContent = t("visit_gps_waiting");
    try {
      pos = await currentPosition({ fresh: true, timeout: 20_000 });
      showPos();
    } catch (err) {
      gpsStatus.textContent = t("visit_gps_denied", { e: err.message || err.code || "" });
    }
  }
  const gpsBtn = h("button", { testid: "visit-gps", type: "button", class: "btn", onclick: locate }, t("visit_gps"));

  const form = h(
    "form",
    { testid: "visit-form", class: "card", novalidate: true },
    h("a", { href: `#/tasks/${taskId}`, class: "back" }, `‹ ${t("back")}`),
    h("h2", null, t("visit_title"), task && task.household ? h("small", { class: "muted" }, ` ${task.household.head_name_masked} · ${task.household.code}`) : ""),
    h("label", null, t("visit_found"), found),
    needs,
    h("label", null, t("visit_notes"), notes),
    h("div", { class: "photos" }, h("p", null, t("visit_photos")), h("label", { class: "btn block", for: "visit-photo-input" }, t("visit_photo_add")), input, busy, thumbs),
    h("div", { class: "gps" }, gpsBtn, gpsStatus),
    h("label", null, t("visit_time"), time),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    if (!found.value.trim()) {
      error.textContent = t("visit_found_required");
      found.focus();
      return;
    }
    submit.disabled = true;
    try {
      const when = time.value ? new Date(time.value) : new Date();
      await queueVisit({
        taskId,
        fields: {
          found: found.value.trim(),
          needs: Array.from(form.querySelectorAll('input[data-testid="visit-need"]:checked')).map((x) => x.value),
          notes: notes.value.trim(),
          visited_at: isNaN(when) ? new Date().toISOString() : when.toISOString(),
          lon: pos ? pos.lon : null,
          lat: pos ? pos.lat : null,
          accuracy_m: pos ? Math.min(100000, pos.accuracy) : null,
        },
        photos: photos.map(({ blob, sha256, size }) => ({ blob, sha256, size })),
      });
      for (const p of photos) URL.revokeObjectURL(p.url);
      toast(t("visit_saved"));
      location.hash = `#/tasks/${taskId}`;
    } catch (err) {
      error.textContent = `${t("error")}: ${err.message || err}`;
      submit.disabled = false;
    }
  });
  put(container, form);
  // Ask for the position straight away; the worker can retry with the button.
  if (position && Date.now() - position.at < 2 * 60_000) {
    pos = position;
    showPos();
  }
  locate();
}
