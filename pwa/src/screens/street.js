// Supervisor screens: online tools (they read and change the server directly).
import { api, uuid } from "../api.js";
import { fmtTime, problemText, t } from "../i18n.js";
import { clear, h, put, toast } from "../ui.js";
import { drawGrids, makeMap, whenAttached } from "./map.js";
import { loadTypeNames, typeName } from "./tasks.js";

function failure(container, error) {
  put(container, h("p", { class: "error", role: "alert" }, error.problem ? problemText(error.problem) : t("needs_online")));
}

async function workers() {
  try {
    return await api("GET", "/api/v1/workers");
  } catch (_) {
    return [];
  }
}

function option(value, label, selected) {
  return h("option", { value, selected: selected ? true : undefined }, label);
}

const filters = { overdue: "", grid_code: "", assignee: "", type_code: "", state: "" };

export async function tasks(container) {
  await loadTypeNames();
  const root = h("div", { testid: "street-tasks" }, h("h2", null, t("street_title")));
  put(container, root);
  const people = await workers();
  const names = Object.fromEntries(people.map((w) => [w.id, w.display_name || w.username]));
  const grids = [...new Set(people.flatMap((w) => w.grids || []))].sort();

  const overdue = h("select", { testid: "street-filter-overdue" }, option("", t("filter_any")), option("true", t("filter_yes")), option("false", t("filter_no")));
  const grid = h("select", { testid: "street-filter-grid" }, option("", t("filter_any")), grids.map((g) => option(g, g)));
  const worker = h("select", { testid: "street-filter-worker" }, option("", t("filter_any")), people.map((w) => option(w.id, names[w.id])));
  const type = h("input", { testid: "street-filter-type", placeholder: t("filter_type") });
  const st = h(
    "select",
    { testid: "street-filter-state" },
    option("", t("filter_any")),
    ["new", "accepted", "visited", "returned", "closed"].map((s) => option(s, t(`state_${s}`))),
  );
  overdue.value = filters.overdue;
  grid.value = filters.grid_code;
  worker.value = filters.assignee;
  type.value = filters.type_code;
  st.value = filters.state;
  const apply = h("button", { testid: "street-filter-apply", type: "button", class: "btn" }, t("filter_apply"));
  const active = Object.values(filters).filter(Boolean).length;
  put(root, 
    h(
      "details",
      { class: "card", open: active > 0 ? true : undefined },
      h("summary", { testid: "street-filters-toggle", class: "summary" }, t("filter_apply"), active ? ` (${active})` : ""),
      h(
        "div",
        { class: "filters" },
        h("label", null, t("filter_overdue"), overdue),
        h("label", null, t("filter_grid"), grid),
        h("label", null, t("filter_worker"), worker),
        h("label", null, t("filter_type"), type),
        h("label", null, t("filter_state"), st),
        apply,
      ),
    ),
  );
  const listBox = h("div");
  const count = h("span", { testid: "street-selected-count", class: "muted" }, t("selected_n", { n: 0 }));
  const selectAll = h("input", { testid: "street-select-all", type: "checkbox" });
  const target = h("select", { testid: "street-reassign-worker" }, option("", "—"), people.map((w) => option(w.id, `${names[w.id]} (${(w.grids || []).join(",")})`)));
  const reason = h("input", { testid: "street-reassign-reason", maxlength: "500", placeholder: t("reassign_reason") });
  const result = h("p", { testid: "street-reassign-result", class: "small", role: "status" });
  const submit = h("button", { testid: "street-reassign-submit", type: "button", class: "btn primary" }, t("reassign_submit"));
  const selected = () => Array.from(listBox.querySelectorAll('input[data-testid="street-task-select"]:checked')).map((x) => x.value);
  const paintCount = () => {
    count.textContent = t("selected_n", { n: selected().length });
  };
  put(root, 
    h(
      "section",
      { class: "card reassign" },
      h("div", { class: "row between" }, h("label", { class: "check" }, selectAll, t("select_all")), count),
      h("label", null, t("reassign_to"), target),
      h("label", null, t("reassign_reason"), reason),
      submit,
      result,
    ),
    listBox,
  );

  async function load() {
    filters.overdue = overdue.value;
    filters.grid_code = grid.value;
    filters.assignee = worker.value;
    filters.type_code = type.value.trim();
    filters.state = st.value;
    const q = new URLSearchParams({ limit: "200" });
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    put(clear(listBox), h("p", { class: "muted" }, t("loading")));
    let page;
    try {
      page = await api("GET", `/api/v1/tasks?${q}`);
    } catch (error) {
      clear(listBox);
      failure(listBox, error);
      return;
    }
    selectAll.checked = false;
    if (!page.items.length) {
      put(clear(listBox), h("p", { testid: "street-empty", class: "empty" }, t("street_empty")));
      paintCount();
      return;
    }
    const ul = h("ul", { class: "list" });
    for (const task of page.items) {
      const hh = task.household || {};
      put(ul, 
        h(
          "li",
          { testid: "street-task-row", class: `item${task.overdue ? " late" : ""}`, dataset: { taskId: task.id } },
          h(
            "label",
            { class: "check" },
            h("input", { testid: "street-task-select", type: "checkbox", value: task.id, onchange: paintCount }),
            h(
              "span",
              null,
              h("strong", null, `${hh.head_name_masked || ""} · ${hh.code || ""}`),
              " ",
              h("span", { class: `badge st-${task.state}` }, t(`state_${task.state}`)),
              task.overdue ? h("span", { class: "badge late" }, t("overdue")) : null,
              h("br"),
              h("span", { class: "small muted" }, `${task.grid_code || "—"} · ${t("assignee")}: ${names[task.assignee_id] || "—"} · ${t("due")} ${fmtTime(task.due_at)} · ${(task.type_codes || []).map(typeName).join("、")}`),
            ),
          ),
          h("a", { testid: "street-task-open", class: "btn small", href: `#/tasks/${task.id}` }, t("task_title")),
        ),
      );
    }
    put(clear(listBox), ul);
    paintCount();
  }

  selectAll.addEventListener("change", () => {
    for (const box of listBox.querySelectorAll('input[data-testid="street-task-select"]')) box.checked = selectAll.checked;
    paintCount();
  });
  apply.addEventListener("click", load);
  submit.addEventListener("click", async () => {
    const ids = selected();
    if (!ids.length || !target.value || reason.value.trim().length < 2) {
      result.textContent = t("reassign_pick");
      return;
    }
    submit.disabled = true;
    try {
      const out = await api("POST", "/api/v1/tasks/reassign", {
        json: { task_ids: ids, worker_id: target.value, reason: reason.value.trim() },
        headers: { "Idempotency-Key": uuid() },
      });
      result.textContent = t("reassign_done", { n: out.moved });
      reason.value = "";
      await load();
    } catch (error) {
      result.textContent = error.problem ? problemText(error.problem) : t("needs_online");
    }
    submit.disabled = false;
  });
  await load();
}

export async function map(container) {
  put(container, h("h2", null, t("street_map_title")));
  let grids;
  let workload = [];
  try {
    [grids, workload] = await Promise.all([api("GET", "/api/v1/grids"), api("GET", "/api/v1/grids/workload").catch(() => [])]);
  } catch (error) {
    failure(container, error);
    return;
  }
  const byCode = Object.fromEntries((workload || []).map((w) => [w.grid_code, w]));
  const el = h("div", { testid: "street-map", class: "map" });
  put(container, 
    el,
    h(
      "div",
      { testid: "street-map-legend", class: "legend row small" },
      h("span", null, h("i", { class: "sw overdue" }), t("legend_overdue")),
      h("span", null, h("i", { class: "sw open" }), t("legend_open")),
      h("span", null, h("i", { class: "sw clear" }), t("legend_clear")),
    ),
  );
  let m = null;
  whenAttached(el, () => {
    m = makeMap(el);
    const layer = drawGrids(m, grids, (feature) => {
      const w = byCode[feature.properties.code] || { open: 0, overdue: 0 };
      const kind = w.overdue > 0 ? "overdue" : w.open > 0 ? "open" : "clear";
      const color = { overdue: "#b71c1c", open: "#ef6c00", clear: "#2e7d32" }[kind];
      return { color, fillColor: color, fillOpacity: 0.35, className: `grid-shape grid-${kind}` };
    });
    if (layer) {
      layer.eachLayer((lyr) => {
        const p = lyr.feature.properties;
        const w = byCode[p.code] || { open: 0, overdue: 0 };
        lyr.bindTooltip(`${p.code} ${p.name}: ${w.open} / ${w.overdue}`, { sticky: true });
      });
      const b = layer.getBounds();
      if (b.isValid()) m.fitBounds(b, { padding: [12, 12] });
    }
  });
  return () => {
    if (m) m.remove();
  };
}

export async function covers(container) {
  const people = await workers();
  // The phone's own date (the street's), not UTC's: before 08:00 in China UTC is still yesterday.
  const now = new Date();
  const today = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}-${String(now.getDate()).padStart(2, "0")}`;
  const pick = (testid) => h("select", { testid, required: true }, option("", "—"), people.map((w) => option(w.id, `${w.display_name || w.username}`)));
  const worker = pick("cover-worker");
  const substitute = pick("cover-substitute");
  const start = h("input", { testid: "cover-start", type: "date", value: today, required: true });
  const end = h("input", { testid: "cover-end", type: "date", value: today, required: true });
  const reason = h("input", { testid: "cover-reason", maxlength: "255" });
  const result = h("p", { testid: "cover-result", role: "status" });
  const list = h("ul", { testid: "cover-list", class: "list" });
  const names = Object.fromEntries(people.map((w) => [w.id, w.display_name || w.username]));
  async function loadList() {
    try {
      const rows = await api("GET", "/api/v1/covers");
      put(clear(list), 
        ...rows.map((c) =>
          h("li", { testid: "cover-item", class: "item small" }, `${names[c.worker_id] || c.worker_id} → ${names[c.substitute_id] || c.substitute_id} · ${c.starts_on} – ${c.ends_on} · ${c.state}`),
        ),
      );
    } catch (error) {
      clear(list);
      failure(list, error);
    }
  }
  const form = h(
    "form",
    { testid: "cover-form", class: "card" },
    h("h2", null, t("covers_title")),
    h("label", null, t("cover_worker"), worker),
    h("label", null, t("cover_substitute"), substitute),
    h("label", null, t("cover_start"), start),
    h("label", null, t("cover_end"), end),
    h("label", null, t("cover_reason"), reason),
    h("button", { testid: "cover-submit", type: "submit", class: "btn primary block" }, t("cover_submit")),
    result,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/api/v1/covers", {
        json: { worker_id: worker.value, substitute_id: substitute.value, starts_on: start.value, ends_on: end.value, reason: reason.value.trim() },
        headers: { "Idempotency-Key": uuid() },
      });
      result.textContent = t("cover_done");
      toast(t("cover_done"));
      await loadList();
    } catch (error) {
      result.textContent = error.problem ? problemText(error.problem) : t("needs_online");
    }
  });
  put(container, form, list);
  await loadList();
}

export async function unplaced(container) {
  put(container, h("h2", null, t("unplaced_title")));
  const warnings = h("section", { testid: "unplaced-warnings", class: "card" }, h("h3", null, t("unplaced_warnings")));
  const households = h("section", { testid: "unplaced-households", class: "card" }, h("h3", null, t("unplaced_households")));
  put(container, warnings, households);
  const [w, hh] = await Promise.all([
    api("GET", "/api/v1/warnings/unmatched").catch((e) => e),
    api("GET", "/api/v1/grids/unplaced").catch((e) => e),
  ]);
  if (Array.isArray(w)) {
    if (!w.length) put(warnings, h("p", { class: "muted" }, t("none")));
    for (const x of w) {
      put(warnings, 
        h("div", { testid: "unplaced-warning-item", class: "item small" }, `${x.type_code} · ${x.id_number_masked || "—"} · ${x.source}/${x.source_record_id} · ${fmtTime(x.received_at)}`),
      );
    }
  } else failure(warnings, w);
  if (Array.isArray(hh)) {
    if (!hh.length) put(households, h("p", { class: "muted" }, t("none")));
    for (const x of hh) {
      put(households, 
        h(
          "div",
          { testid: "unplaced-household-item", class: "item small" },
          `${x.code} · ${x.head_name} · ${x.address}${x.lon != null ? ` · ${x.lat.toFixed(5)}, ${x.lon.toFixed(5)}` : ""}`,
        ),
      );
    }
  } else failure(households, hh);
}

export async function health(container) {
  put(container, h("h2", null, t("health_title")));
  let rows;
  try {
    rows = await api("GET", "/api/v1/workers/sync-health");
  } catch (error) {
    failure(container, error);
    return;
  }
  const table = h(
    "table",
    { testid: "health-table", class: "table" },
    h(
      "thead",
      null,
      h("tr", null, ["health_worker", "health_pending", "health_attention", "health_oldest", "health_error", "health_reported"].map((k) => h("th", null, t(k)))),
    ),
  );
  const body = h("tbody");
  // Who needs a look first: refused items, then the most waiting, then the oldest unsent.
  rows.sort(
    (a, b) =>
      (b.needs_attention || 0) - (a.needs_attention || 0) ||
      (b.pending || 0) - (a.pending || 0) ||
      String(a.oldest_pending_at || "9").localeCompare(String(b.oldest_pending_at || "9")) ||
      String(b.reported_at || "").localeCompare(String(a.reported_at || "")),
  );
  for (const r of rows) {
    const risky = r.needs_attention > 0 || (r.oldest_pending_at && Date.now() - new Date(r.oldest_pending_at).getTime() > 24 * 3600_000);
    put(body, 
      h(
        "tr",
        { testid: "health-row", class: risky ? "late" : "", dataset: { workerId: r.worker_id } },
        h("td", null, r.display_name || r.username),
        h("td", { testid: "health-pending" }, String(r.pending ?? "—")),
        h("td", { testid: "health-attention" }, String(r.needs_attention ?? "—")),
        h("td", { testid: "health-oldest" }, fmtTime(r.oldest_pending_at)),
        h("td", { testid: "health-error", class: "small" }, r.last_error || ""),
        h("td", { class: "small" }, fmtTime(r.reported_at || r.last_sync_at)),
      ),
    );
  }
  put(table, body);
  put(container, h("div", { class: "scroll" }, table));
}
