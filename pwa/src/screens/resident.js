// Residents: asking for help (signed in or as a guest), following a request, signing up, "my requests".
import L from "leaflet";
import { ApiError, account, api, getSession, isSignedIn, request, setSession, uuid } from "../api.js";
import { NEEDS, fmtTime, getLang, problemText, t } from "../i18n.js";
import { NetworkError } from "../outbox.js";
import { compressPhoto } from "../photos.js";
import { clear, h, put, toast } from "../ui.js";
import { makeMap, whenAttached } from "./map.js";

const PENDING_KEY = "gridaid.ask.pending"; // {key, body}: the same key until the server has the request
// Photos whose request is sent but which are not (yet) on the server, kept until they are or the
// person discards them: [{request_id, tracking_code, sha256, token, account, data (base64 JPEG)}].
const PHOTOS_KEY = "gridaid.ask.photos";

function isResident() {
  const s = getSession();
  return isSignedIn() && !!s && s.role === "resident";
}

function statusOf(item) {
  return getLang() === "en" ? item.status_en : item.status_zh;
}

// GB 11643: the 18th character of a resident ID number is a check digit over the first 17.
const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
export function idNumberOk(value) {
  const v = String(value || "").trim().toUpperCase();
  if (!/^\d{17}[\dX]$/.test(v)) return false;
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(v[i]) * WEIGHTS[i];
  return "10X98765432"[sum % 11] === v[17];
}

// Links under the login form: the public side of the app.
export function residentLinks() {
  return h(
    "div",
    { testid: "resident-links", class: "card resident-links" },
    h("p", { class: "muted" }, t("res_links_intro")),
    h("a", { testid: "resident-ask-link", href: "#/ask", class: "btn primary block big" }, t("res_ask")),
    h("a", { testid: "resident-track-link", href: "#/track", class: "btn block big" }, t("res_track")),
    h("a", { testid: "resident-signup-link", href: "#/signup", class: "btn block big" }, t("res_signup")),
  );
}

function backLink() {
  return isSignedIn() ? null : h("a", { testid: "resident-back", href: "#/login", class: "btn small" }, t("back"));
}

function errorText(err) {
  if (err instanceof ApiError) return problemText(err.problem) || err.message;
  return t("network_error_now");
}

function loadPending() {
  try {
    return JSON.parse(localStorage.getItem(PENDING_KEY) || "null");
  } catch (_) {
    return null;
  }
}

function savePending(value) {
  try {
    if (value) localStorage.setItem(PENDING_KEY, JSON.stringify(value));
    else localStorage.removeItem(PENDING_KEY);
  } catch (_) {}
}

// ---------------------------------------------------------------------------------------------
// A request's photo: compressed on the phone (EXIF gone), sent after the request, kept until it arrives.

function unsentPhotos() {
  try {
    return JSON.parse(localStorage.getItem(PHOTOS_KEY) || "[]");
  } catch (_) {
    return [];
  }
}

function keepUnsent(list) {
  try {
    if (list.length) localStorage.setItem(PHOTOS_KEY, JSON.stringify(list));
    else localStorage.removeItem(PHOTOS_KEY);
    return true;
  } catch (_) {
    return false; // storage full: the photo stays on the screen only
  }
}

function forget(photo) {
  keepUnsent(unsentPhotos().filter((p) => !(p.request_id === photo.request_id && p.sha256 === photo.sha256)));
}

function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function fromBase64(data) {
  const text = atob(data);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

// The account's own route while its session lasts; otherwise the upload token from the submission.
async function sendPhoto(photo) {
  const signed = photo.account && isResident() && account() === photo.account;
  const base = `/api/v1/requests/${photo.request_id}`;
  const headers = { "Content-Type": "image/jpeg" };
  if (!signed) headers["Upload-Token"] = photo.token;
  const res = await request("PUT", signed ? `${base}/photos/${photo.sha256}` : `${base}/guest-photos/${photo.sha256}`, {
    body: fromBase64(photo.data),
    headers,
    auth: !!signed,
    timeout: 30000,
  });
  if (!res.ok) throw new ApiError(res);
  return res.json;
}

// Where the person sees a photo on its way: sending, sent, or failed with why and "try again".
function photoPanel(photo) {
  const status = h("p", { testid: "request-photo-status", class: "small", "aria-live": "polite" });
  const retry = h("button", { testid: "request-photo-retry", type: "button", class: "btn primary", hidden: true }, t("res_photo_retry"));
  const discard = h("button", { testid: "request-photo-discard", type: "button", class: "btn small", hidden: true }, t("res_photo_discard"));
  const panel = h(
    "div",
    { testid: "request-photo", class: "request-photo", dataset: { requestId: photo.request_id, state: "sending" } },
    h("img", { src: `data:image/jpeg;base64,${photo.data}`, alt: "" }),
    h("div", null, h("p", { class: "small muted" }, t("res_photo_for", { code: photo.tracking_code })), status, retry, discard),
  );
  const show = (state, text) => {
    panel.dataset.state = state;
    status.textContent = text;
    retry.hidden = discard.hidden = state !== "failed";
  };
  const attempt = async () => {
    show("sending", t("res_photo_sending"));
    try {
      await sendPhoto(photo);
      forget(photo);
      show("sent", t("res_photo_sent"));
    } catch (err) {
      panel.dataset.code = err instanceof ApiError && err.problem ? err.problem.code || "" : "network";
      const why = err instanceof NetworkError || !(err instanceof ApiError) ? t("res_photo_offline") : errorText(err);
      show("failed", t("res_photo_failed", { why }));
    }
  };
  retry.addEventListener("click", attempt);
  discard.addEventListener("click", () => {
    forget(photo);
    panel.remove();
  });
  attempt();
  return panel;
}

// Photos left over from an earlier visit to the app (closed while offline, say), for this person.
function leftoverPhotos() {
  const mine = isResident() ? account() : null;
  const list = unsentPhotos().filter((p) => (p.account || null) === mine);
  if (!list.length) return null;
  return h("div", { testid: "request-photos-unsent", class: "card" }, h("h3", null, t("res_photo_unsent")), list.map(photoPanel));
}

async function blobToBase64(blob) {
  return toBase64(new Uint8Array(await blob.arrayBuffer()));
}

// ---------------------------------------------------------------------------------------------
// #/ask

export async function ask(container) {
  const error = h("p", { testid: "ask-error", class: "error", role: "alert" });
  const field = (testid, attrs) => h("input", { testid, ...attrs });
  const name = field("ask-name", { name: "name", autocomplete: "name", required: true, maxlength: 50 });
  const idNumber = field("ask-id-number", { name: "id_number", autocapitalize: "characters", maxlength: 18, required: true });
  const idHint = h("span", { testid: "ask-id-hint", class: "id-hint", "aria-live": "polite" });
  const phoneIn = field("ask-phone", { name: "phone", type: "tel", inputmode: "tel", autocomplete: "tel", required: true, maxlength: 20 });
  const address = field("ask-address", { name: "address", autocomplete: "street-address", maxlength: 255 });
  const description = h("textarea", { testid: "ask-description", name: "description", rows: 4, required: true, maxlength: 2000 });
  const placeStatus = h("p", { testid: "ask-place-status", class: "muted small", "aria-live": "polite" }, t("res_place_none"));
  const submit = h("button", { testid: "ask-submit", type: "submit", class: "btn primary block big" }, t("res_submit"));
  let photo = null; // {blob, sha256, size, url}: at most one, optional
  const photoInput = h("input", { testid: "ask-photo-input", type: "file", accept: "image/*", capture: "environment", class: "file", id: "ask-photo-input" });
  const photoBusy = h("p", { testid: "ask-photo-busy", class: "muted small", hidden: true }, t("res_photo_busy"));
  const photoThumb = h("div", { class: "thumbs" });
  const paintPhoto = () => {
    clear(photoThumb);
    if (!photo) return;
    const remove = h("button", { testid: "ask-photo-remove", type: "button", class: "btn small" }, t("visit_photo_remove"));
    remove.addEventListener("click", () => {
      URL.revokeObjectURL(photo.url);
      photo = null;
      paintPhoto();
    });
    photoThumb.append(
      h("figure", { testid: "ask-photo-thumb", class: "thumb", dataset: { sha256: photo.sha256, bytes: String(photo.size) } }, h("img", { src: photo.url, alt: "" }), remove),
    );
  };
  photoInput.addEventListener("change", async () => {
    const file = photoInput.files && photoInput.files[0];
    photoInput.value = "";
    if (!file) return;
    photoBusy.hidden = false;
    submit.disabled = true;
    error.textContent = "";
    try {
      const p = await compressPhoto(file);
      if (photo) URL.revokeObjectURL(photo.url);
      photo = { ...p, url: URL.createObjectURL(p.blob) };
    } catch (err) {
      error.textContent = t("visit_photo_failed");
    } finally {
      photoBusy.hidden = true;
      submit.disabled = false;
      paintPhoto();
    }
  });
  const me = getSession() && getSession().me;
  if (me && isResident()) {
    if (me.display_name) name.value = me.display_name;
  }

  let location = null; // {source, lon, lat, crs, accuracy_m}
  let map = null;
  let marker = null;
  const mapEl = h("div", { testid: "ask-map", class: "map ask-map", hidden: true });

  const showPlace = () => {
    placeStatus.dataset.source = location ? location.source : "";
    placeStatus.textContent = location
      ? t(location.source === "gps" ? "res_place_gps" : "res_place_pin", {
          lat: location.lat.toFixed(5),
          lon: location.lon.toFixed(5),
          acc: location.accuracy_m != null ? Math.round(location.accuracy_m) : "?",
        })
      : t("res_place_none");
  };

  const setMarker = (lat, lon) => {
    if (!map) return;
    if (marker) marker.setLatLng([lat, lon]);
    else marker = L.circleMarker([lat, lon], { radius: 10, weight: 3, color: "#fff", fillColor: "#c62828", fillOpacity: 1, className: "ask-pin" }).addTo(map);
  };

  const gps = h("button", { testid: "ask-gps", type: "button", class: "btn block big" }, t("res_use_location"));
  gps.addEventListener("click", () => {
    if (!navigator.geolocation) {
      placeStatus.textContent = t("res_gps_failed");
      return;
    }
    placeStatus.textContent = t("loading");
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        location = { source: "gps", lon: pos.coords.longitude, lat: pos.coords.latitude, crs: "wgs84", accuracy_m: pos.coords.accuracy };
        showPlace();
        setMarker(location.lat, location.lon);
      },
      () => {
        placeStatus.textContent = t("res_gps_failed");
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
    );
  });

  const pinBtn = h("button", { testid: "ask-pin", type: "button", class: "btn block big" }, t("res_pin_on_map"));
  pinBtn.addEventListener("click", () => {
    mapEl.hidden = false;
    if (map) return;
    whenAttached(mapEl, () => {
      map = makeMap(mapEl);
      mapEl.gridaidMap = map; // browser tests find the map here
      if (location) {
        map.setView([location.lat, location.lon], 16);
        setMarker(location.lat, location.lon);
      }
      map.on("click", (event) => {
        location = { source: "pin", lon: event.latlng.lng, lat: event.latlng.lat, crs: "wgs84", accuracy_m: null };
        setMarker(location.lat, location.lon);
        showPlace();
      });
    });
  });

  const checkId = () => {
    const v = idNumber.value.trim();
    const ok = v.length === 18 && idNumberOk(v);
    idHint.dataset.valid = v ? String(ok) : "";
    idHint.textContent = !v ? "" : ok ? t("res_id_ok") : v.length < 18 ? t("res_id_short") : t("res_id_bad");
  };
  idNumber.addEventListener("input", checkId);

  const needs = h(
    "fieldset",
    { testid: "ask-needs", class: "needs" },
    h("legend", null, t("res_needs")),
    NEEDS.map((code) =>
      h("label", { class: "check" }, h("input", { type: "checkbox", testid: "ask-need", value: code, name: "needs" }), t(`need_${code}`)),
    ),
  );

  const form = h(
    "form",
    { testid: "ask-form", class: "card", novalidate: true },
    h("h2", null, t("res_ask_title")),
    h("p", { class: "muted small" }, t(isResident() ? "res_ask_intro_signed" : "res_ask_intro_guest")),
    h("label", null, t("res_name"), name),
    h("label", null, t("res_id_number"), idNumber, idHint),
    h("label", null, t("res_phone"), phoneIn),
    h("fieldset", { class: "place" }, h("legend", null, t("res_where")), gps, pinBtn, mapEl, placeStatus, h("label", null, t("res_address"), address)),
    h("label", null, t("res_description"), description),
    needs,
    h(
      "div",
      { class: "photos" },
      h("p", null, t("res_photo")),
      h("label", { testid: "ask-photo-add", class: "btn block", for: "ask-photo-input" }, t("res_photo_add")),
      photoInput,
      photoBusy,
      photoThumb,
    ),
    submit,
    error,
  );

  const result = h("div", { testid: "ask-result", class: "card", hidden: true });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = {
      name: name.value.trim(),
      id_number: idNumber.value.trim().toUpperCase(),
      phone: phoneIn.value.trim(),
      description: description.value.trim(),
      location,
      address: address.value.trim(),
      needs: Array.from(form.querySelectorAll('[data-testid="ask-need"]:checked'), (x) => x.value),
    };
    if (!body.name || !body.id_number || !body.phone || body.description.length < 2) {
      error.textContent = t("res_fill_required");
      return;
    }
    if (!body.location && body.address.length < 2) {
      error.textContent = t("res_place_required");
      return;
    }
    // A retry of the same request keeps its key, so the server records it once.
    const text = JSON.stringify(body);
    let pending = loadPending();
    if (!pending || pending.body !== text) {
      pending = { key: uuid(), body: text };
      savePending(pending);
    }
    submit.disabled = true;
    try {
      const resident = isResident();
      const out = await api("POST", resident ? "/api/v1/requests" : "/api/v1/requests/guest", {
        json: body,
        auth: resident,
        headers: { "Idempotency-Key": pending.key },
      });
      savePending(null);
      form.hidden = true;
      let unsent = null;
      if (photo) {
        unsent = {
          request_id: out.id,
          tracking_code: out.tracking_code,
          sha256: photo.sha256,
          token: out.upload_token,
          account: resident ? account() : null,
          data: await blobToBase64(photo.blob),
        };
        // Kept before the first try, so closing the app mid-way loses nothing.
        keepUnsent([...unsentPhotos().filter((p) => p.request_id !== out.id || p.sha256 !== photo.sha256), unsent]);
      }
      showResult(result, out, unsent);
    } catch (err) {
      error.textContent = errorText(err);
      const keys = err instanceof ApiError && err.problem && err.problem.errors ? err.problem.errors.map((e) => e.key) : [];
      error.dataset.code = err instanceof ApiError && err.problem ? err.problem.code || "" : "network";
      if (keys.includes("id_number")) idNumber.focus();
      else if (keys.includes("phone")) phoneIn.focus();
    } finally {
      submit.disabled = false;
    }
  });

  put(container, backLink(), leftoverPhotos(), form, result);
  return () => {
    if (map) map.remove();
    map = null;
  };
}

function showResult(el, out, unsent) {
  clear(el);
  el.hidden = false;
  const code = h("p", { testid: "ask-tracking-code", class: "tracking-code" }, out.tracking_code);
  const copy = h("button", { testid: "ask-copy", type: "button", class: "btn block big" }, t("res_copy"));
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(out.tracking_code);
      toast(t("res_copied"));
    } catch (_) {
      const range = document.createRange();
      range.selectNodeContents(code);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      toast(t("res_copy_manual"));
    }
  });
  put(
    el,
    h("h2", null, t("res_sent_title")),
    h("p", null, t("res_tracking_intro")),
    code,
    copy,
    h("p", { testid: "ask-status", class: "status-text", dataset: { stage: out.stage } }, statusOf(out)),
    unsent ? photoPanel(unsent) : null,
    isResident()
      ? h("a", { testid: "ask-to-mine", href: "#/my", class: "btn primary block big" }, t("res_my_title"))
      : h("a", { testid: "ask-to-track", href: `#/track?code=${encodeURIComponent(out.tracking_code)}`, class: "btn primary block big" }, t("res_track")),
  );
}

// ---------------------------------------------------------------------------------------------
// #/track

export async function track(container) {
  const query = new URLSearchParams((location.hash.split("?")[1] || ""));
  const code = h("input", {
    testid: "track-code",
    name: "code",
    autocapitalize: "characters",
    placeholder: "ABCD-EFGH",
    maxlength: 9,
    value: query.get("code") || "",
  });
  const last4 = h("input", { testid: "track-phone-last4", name: "phone_last4", inputmode: "numeric", pattern: "\\d{4}", maxlength: 4 });
  const submit = h("button", { testid: "track-submit", type: "submit", class: "btn primary block big" }, t("res_track_submit"));
  const error = h("p", { testid: "track-error", class: "error", role: "alert" });
  const result = h("div", { testid: "track-result", class: "card", hidden: true });
  const form = h(
    "form",
    { testid: "track-form", class: "card", novalidate: true },
    h("h2", null, t("res_track")),
    h("label", null, t("res_tracking_code"), code),
    h("label", null, t("res_phone_last4"), last4),
    submit,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    result.hidden = true;
    let c = code.value.trim().toUpperCase().replace(/\s+/g, "");
    if (/^[A-Z0-9]{8}$/.test(c)) c = `${c.slice(0, 4)}-${c.slice(4)}`;
    if (!/^[A-Z0-9]{4}-[A-Z0-9]{4}$/.test(c) || !/^\d{4}$/.test(last4.value.trim())) {
      error.textContent = t("res_track_invalid");
      return;
    }
    code.value = c;
    submit.disabled = true;
    try {
      const params = new URLSearchParams({ code: c, phone_last4: last4.value.trim() });
      const out = await api("GET", `/api/v1/requests/track?${params}`, { auth: false });
      clear(result);
      result.hidden = false;
      put(
        result,
        h("p", { class: "muted small" }, `${out.tracking_code} · ${fmtTime(out.created_at)}`),
        h("p", { testid: "track-status", class: "status-text", dataset: { stage: out.stage } }, statusOf(out)),
      );
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 404 ? t("res_track_not_found") : errorText(err);
    } finally {
      submit.disabled = false;
    }
  });
  put(container, backLink(), form, result);
}

// ---------------------------------------------------------------------------------------------
// #/signup

export async function signup(container) {
  const phoneIn = h("input", { testid: "signup-phone", name: "phone", type: "tel", inputmode: "tel", autocomplete: "tel", maxlength: 20 });
  const send = h("button", { testid: "signup-send-code", type: "button", class: "btn block big" }, t("res_send_code"));
  const code = h("input", { testid: "signup-code", name: "code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 6, pattern: "\\d{6}" });
  const password = h("input", { testid: "signup-password", name: "password", type: "password", autocomplete: "new-password", minlength: 8 });
  const displayName = h("input", { testid: "signup-name", name: "display_name", autocomplete: "name", maxlength: 50 });
  const submit = h("button", { testid: "signup-submit", type: "submit", class: "btn primary block big" }, t("res_signup_submit"));
  const error = h("p", { testid: "signup-error", class: "error", role: "alert" });
  const sent = h("p", { testid: "signup-code-sent", class: "notice", hidden: true }, t("res_code_sent"));
  const second = h(
    "div",
    { testid: "signup-step2", hidden: true },
    h("label", null, t("res_code"), code),
    h("label", null, t("res_password"), password),
    h("label", null, t("res_display_name"), displayName),
    submit,
  );

  send.addEventListener("click", async () => {
    error.textContent = "";
    if (!phoneIn.value.trim()) {
      error.textContent = t("res_fill_required");
      return;
    }
    send.disabled = true;
    try {
      await api("POST", "/api/v1/residents/codes", { json: { phone: phoneIn.value.trim() }, auth: false });
      sent.hidden = false;
      second.hidden = false;
      code.focus();
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      send.disabled = false;
    }
  });

  const form = h(
    "form",
    { testid: "signup-form", class: "card", novalidate: true },
    h("h2", null, t("res_signup")),
    h("label", null, t("res_phone"), phoneIn),
    send,
    sent,
    second,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    if (password.value.length < 8) {
      error.textContent = t("res_password_short");
      return;
    }
    submit.disabled = true;
    const phone = phoneIn.value.trim();
    try {
      await api("POST", "/api/v1/residents/signup", {
        json: { phone, code: code.value.trim(), password: password.value, display_name: displayName.value.trim() },
        auth: false,
      });
      // Signed up: sign in with the phone and the new password.
      const tokens = await api("POST", "/api/v1/auth/login", { json: { login: phone, password: password.value }, auth: false });
      const me = await api("GET", "/api/v1/auth/me", { auth: false, headers: { Authorization: `Bearer ${tokens.access_token}` } });
      setSession(tokens, me);
      location.hash = "#/my";
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      submit.disabled = false;
    }
  });
  put(container, backLink(), form);
}

// ---------------------------------------------------------------------------------------------
// #/my

export async function mine(container) {
  put(
    container,
    h("h2", null, t("res_my_title")),
    h("a", { testid: "my-ask", href: "#/ask", class: "btn primary block big" }, t("res_ask")),
    leftoverPhotos(),
  );
  const requests = h("section", { testid: "my-requests" });
  const applications = h("section", { testid: "my-applications-section" });
  put(container, requests, applications);
  // Both at once: a slow answer for one does not hold up the other.
  await Promise.all([myRequests(requests), myApplications(applications)]);
}

async function load(path) {
  const res = await request("GET", path, { timeout: 5000 });
  if (!res.ok) throw new ApiError(res);
  return res.json || [];
}

async function myRequests(section) {
  let items;
  try {
    items = await load("/api/v1/requests/mine");
  } catch (err) {
    put(section, h("p", { testid: "my-error", class: "error" }, errorText(err)));
    return;
  }
  if (!items.length) {
    put(section, h("p", { testid: "my-empty", class: "notice" }, t("res_my_empty")));
    return;
  }
  const list = h("ul", { testid: "my-list", class: "list" });
  for (const item of items) {
    const photos = (item.photos || []).map((p) => requestPhoto(item.id, p));
    list.append(
      h(
        "li",
        { testid: "my-item", class: "card", dataset: { requestId: item.id, stage: item.stage, photos: String(photos.length) } },
        h("p", { class: "tracking-code small-code" }, item.tracking_code),
        h("p", { testid: "my-item-status", class: "status-text" }, statusOf(item)),
        photos.length ? h("div", { class: "thumbs" }, photos) : null,
        h("p", { class: "muted small" }, fmtTime(item.created_at)),
      ),
    );
  }
  put(section, list);
}

// A photo the resident sent: its thumbnail, fetched with the session (an <img> cannot send it).
function requestPhoto(requestId, photo) {
  const img = h("img", { alt: t("res_photo") });
  const figure = h("figure", { testid: "my-item-photo", class: "thumb", dataset: { photoId: photo.id, loaded: "false" } }, img);
  request("GET", `/api/v1/requests/${requestId}/photos/${photo.id}/thumbnail`, { blob: true, timeout: 8000 })
    .then((res) => {
      if (!res.ok || !res.blob) return;
      img.src = URL.createObjectURL(res.blob);
      figure.dataset.loaded = "true";
    })
    .catch(() => {});
  return figure;
}

function pick(zh, en) {
  return getLang() === "en" ? en : zh;
}

function fmtDay(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleDateString(getLang(), { month: "numeric", day: "numeric" });
}

// One service of an application, in the family's words: where it is, and the amount or the reason.
function serviceLine(service) {
  const parts = [t(`res_app_state_${service.state}`)];
  if (service.state === "approved" && service.amount_yuan != null) {
    parts.push(t("res_app_amount", { amount: service.amount_yuan, period: t(`period_${service.period || "null"}`) }));
  }
  if (service.state === "rejected" && service.reason) parts.push(t("res_app_reason", { reason: service.reason }));
  if (!["approved", "rejected"].includes(service.state) && service.due_at) parts.push(t("res_app_due", { day: fmtDay(service.due_at) }));
  return h(
    "li",
    { testid: "my-application-service", dataset: { service: service.service, state: service.state } },
    h("strong", null, pick(service.name_zh, service.name_en)),
    h("span", null, ` · ${parts.join(" · ")}`),
  );
}

async function myApplications(section) {
  put(section, h("h3", null, t("res_apps_title")));
  let items;
  try {
    items = await load("/api/v1/applications/mine");
  } catch (err) {
    put(section, h("p", { testid: "my-applications-error", class: "error" }, errorText(err)));
    return;
  }
  if (!items.length) {
    put(section, h("p", { testid: "my-applications-empty", class: "muted small" }, t("res_apps_empty")));
    return;
  }
  const list = h("ul", { testid: "my-applications", class: "list" });
  for (const app of items) {
    list.append(
      h(
        "li",
        {
          testid: "my-application",
          class: "card",
          dataset: { applicationId: app.id, decided: String(app.decided), total: String(app.total) },
        },
        h("p", { testid: "my-application-summary", class: "status-text" }, pick(app.summary_zh, app.summary_en)),
        h(
          "p",
          { class: "muted small" },
          t(app.on_behalf ? "res_app_made_for" : "res_app_made", { name: app.household_name_masked, time: fmtTime(app.created_at) }),
        ),
        h(
          "details",
          { testid: "my-application-detail" },
          h("summary", { testid: "my-application-open" }, t("res_app_each")),
          h("ul", null, app.services.map(serviceLine)),
        ),
      ),
    );
  }
  put(section, list);
}
