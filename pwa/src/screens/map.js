// Maps: grid polygons drawn as a vector layer from our GeoJSON; the basemap is configuration (none by default).
import L from "leaflet";
import { account, request } from "../api.js";
import { getMeta, listTasks, setMeta } from "../db.js";
import { t } from "../i18n.js";
import { h, put } from "../ui.js";

/* global __BASEMAP_URL__ */
const BUILD_BASEMAP = typeof __BASEMAP_URL__ === "string" ? __BASEMAP_URL__ : "";

export function basemapUrl() {
  try {
    const saved = localStorage.getItem("gridaid.basemap");
    if (saved !== null) return saved;
  } catch (_) {}
  return BUILD_BASEMAP;
}

export function makeMap(el) {
  const map = L.map(el, { zoomControl: true, attributionControl: false, preferCanvas: false, zoomSnap: 0.25 });
  const url = basemapUrl();
  if (url) L.tileLayer(url, { maxZoom: 19, crossOrigin: true }).addTo(map);
  map.setView([30.6, 114.3], 12);
  return map;
}

export function drawGrids(map, collection, styleOf) {
  if (!collection || !collection.features || !collection.features.length) return null;
  const layer = L.geoJSON(collection, {
    style: (feature) => ({ weight: 2, color: "#0d47a1", fillOpacity: 0.12, className: "grid-shape", ...(styleOf ? styleOf(feature) : {}) }),
    onEachFeature: (feature, lyr) => {
      const p = feature.properties || {};
      lyr.bindTooltip(`${p.code || ""} ${p.name || ""}`, { sticky: true });
    },
  }).addTo(map);
  return layer;
}

// Leaflet measures its container: it must be in the document first.
export function whenAttached(el, fn) {
  let tries = 0;
  const tick = () => {
    if (el.isConnected || tries++ > 100) fn();
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

async function gridsFor(acc) {
  let grids = await getMeta(`grids:${acc}`);
  try {
    const res = await request("GET", "/api/v1/grids", { timeout: 2500 });
    if (res.ok && res.json) {
      grids = res.json;
      await setMeta(`grids:${acc}`, grids);
    }
  } catch (_) {
    /* offline: the copy from the last sync */
  }
  return grids;
}

// The worker's households (code, address, position only) for the map, fetched when online and kept.
async function refreshHouseholds(acc) {
  const rows = [];
  for (let offset = 0; offset < 2000; offset += 200) {
    const res = await request("GET", `/api/v1/households?limit=200&offset=${offset}`, { timeout: 5000 });
    if (!res.ok || !res.json) return null;
    for (const x of res.json.items) {
      if (x.lat != null && x.lon != null) rows.push({ id: x.id, code: x.code, address: x.address, lat: x.lat, lon: x.lon });
    }
    if (offset + 200 >= res.json.total) break;
  }
  await setMeta(`households:${acc}`, rows);
  return rows;
}

function householdLayer(rows, taskHouseholds) {
  const layer = L.layerGroup();
  for (const x of rows || []) {
    if (taskHouseholds.has(x.id)) continue;
    L.circleMarker([x.lat, x.lon], { radius: 5, weight: 1, color: "#fff", fillColor: "#37474f", fillOpacity: 0.9, className: "household-pin" })
      .bindPopup(`${escapeHtml(x.code)}<br>${escapeHtml(x.address || "")}`)
      .addTo(layer);
  }
  return layer;
}

export async function workerMap(container) {
  const acc = account();
  const [grids, tasks, households] = await Promise.all([gridsFor(acc), listTasks(acc), getMeta(`households:${acc}`)]);
  const taskHouseholds = new Set(tasks.map((task) => task.household && task.household.id));
  put(container, h("h2", null, t("map_title")));
  const el = h("div", { testid: "map", class: "map" });
  put(container, el);
  if (!grids || !grids.features || !grids.features.length) {
    put(container, h("p", { testid: "map-empty", class: "notice" }, t("map_empty")));
  }
  let map = null;
  whenAttached(el, () => {
    map = makeMap(el);
    const layer = drawGrids(map, grids);
    let dots = householdLayer(households, taskHouseholds).addTo(map);
    refreshHouseholds(acc)
      .then((rows) => {
        if (!rows || !map) return;
        map.removeLayer(dots);
        dots = householdLayer(rows, taskHouseholds).addTo(map);
        for (const pin of pinLayers) pin.bringToFront();
      })
      .catch(() => {});
    const pins = [];
    const pinLayers = [];
    for (const task of tasks) {
      const hh = task.household || {};
      if (hh.lat == null || hh.lon == null) continue;
      const pin = L.circleMarker([hh.lat, hh.lon], {
        radius: 9,
        weight: 2,
        color: "#fff",
        fillColor: task.overdue ? "#b71c1c" : "#e65100",
        fillOpacity: 1,
        className: "task-pin",
      }).addTo(map);
      pinLayers.push(pin);
      pin.bindPopup(`<a href="#/tasks/${task.id}">${escapeHtml(hh.head_name_masked || "")} · ${escapeHtml(hh.code || "")}</a>`);
      pins.push([hh.lat, hh.lon]);
    }
    const bounds = layer ? layer.getBounds() : pins.length ? L.latLngBounds(pins) : null;
    if (bounds && bounds.isValid()) map.fitBounds(bounds, { padding: [16, 16] });
  });
  return () => {
    if (map) map.remove();
    map = null;
  };
}

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
