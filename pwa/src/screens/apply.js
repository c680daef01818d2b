// Smart matching (智能研判) and the application on the family's behalf (代办申请), from a task.
// Online, the server matches (authoritative). Offline, or when the server cannot be reached, the
// phone matches with the rules and household facts kept at sync time (eligibility.js) and says so.
// The application always goes through the outbox, so it is never lost to a bad connection.
import { account, api, ApiError, request } from "../api.js";
import { cachedCatalogue, cachedFacts, cachedRules, entriesOf, queueApplication, state, subscribe } from "../core.js";
import { getTask } from "../db.js";
import { matchAll } from "../eligibility.js";
import { fmtTime, getLang, problemText, t } from "../i18n.js";
import { clear, h, put, toast } from "../ui.js";

const SHOWN = ["eligible", "possible"];

// Reasons from the rule's leaves, in the words the server uses (backend/matching/explain.py).
const OP_WORDS = { "<": ["低于", "below"], "<=": ["不超过", "at most"], ">": ["高于", "above"], ">=": ["至少", "at least"], "==": ["为", "is"], "!=": ["不为", "is not"], in: ["属于", "one of"], has: ["包含", "includes"] };

function sayValue(value, fact, zh) {
  if (typeof value === "boolean") return zh ? (value ? "是" : "否") : value ? "yes" : "no";
  if (Array.isArray(value)) return value.map((v) => sayValue(v, fact, zh)).join(zh ? "、" : ", ");
  if (typeof value === "string") return value;
  const unit = fact ? (zh ? fact.unit_zh : fact.unit_en) || "" : "";
  return zh ? `${value}${unit}` : `${value} ${unit}`.trim();
}

export function leafReason(leaf, fact, zh) {
  const label = fact ? (zh ? fact.label_zh : fact.label_en) : leaf.fact;
  let condition;
  if ((leaf.op === "==" || leaf.op === "!=") && typeof leaf.expected === "boolean") {
    const positive = leaf.expected === (leaf.op === "==");
    condition = positive ? label : zh ? `并非${label}` : `not ${label}`;
  } else {
    const [opZh, opEn] = OP_WORDS[leaf.op] || [leaf.op, leaf.op];
    const expected = sayValue(leaf.expected, fact, zh);
    condition = zh ? `${label}${opZh}${expected}` : `${label} ${opEn} ${expected}`;
  }
  if (leaf.outcome === "unknown") return zh ? `尚不清楚：${condition}` : `Not known yet: ${condition}`;
  const actual = sayValue(leaf.actual, fact, zh);
  if (leaf.outcome === "met") return zh ? `符合：${condition}（实际：${actual}）` : `Meets: ${condition} (actual: ${actual})`;
  return zh ? `不符合：${condition}（实际：${actual}）` : `Does not meet: ${condition} (actual: ${actual})`;
}

function pick(zh, en) {
  return getLang() === "en" ? en : zh;
}

function errorText(error) {
  if (error instanceof ApiError) {
    const p = error.problem || {};
    const items = (p.errors || []).map((e) => e.material || e.service || e.field).filter(Boolean);
    return problemText(p) + (items.length && !p.detail_zh ? ` (${items.join(", ")})` : "");
  }
  return t("needs_online");
}

// The application's one status sentence, in the current language.
function statusCard(app) {
  return h(
    "div",
    { testid: "application-item", class: "item", dataset: { applicationId: app.id, decided: String(app.decided), total: String(app.total) } },
    h("div", { class: "small muted" }, fmtTime(app.created_at)),
    h("div", { testid: "application-summary" }, pick(app.summary_zh, app.summary_en)),
  );
}

export async function apply(container, taskId) {
  const acc = account();
  put(container, h("a", { href: `#/tasks/${taskId}`, class: "back", testid: "apply-back" }, `‹ ${t("back")}`));
  const root = h("div", { testid: "apply-screen", dataset: { taskId } });
  put(container, root);
  put(root, h("h2", null, t("match_title")));
  const offline = () => !state.online || navigator.onLine === false;
  let task = await getTask(acc, taskId);
  if (!task && !offline()) {
    const res = await request("GET", `/api/v1/tasks/${taskId}`, { timeout: 4000 }).catch(() => null);
    if (res && res.ok) task = res.json;
  }
  if (!task || !task.household) {
    put(root, h("p", { testid: "apply-offline", class: "notice" }, t("apply_offline")));
    return;
  }
  const hh = task.household;
  put(root, h("p", { class: "muted" }, `${hh.head_name_masked || ""} · ${hh.code || ""}`));

  // Earlier applications of this household, each as one sentence.
  const history = h("section", { testid: "apply-applications", class: "card" }, h("h3", null, t("apply_applications")));
  put(root, history);
  async function loadHistory() {
    const res = offline() ? null : await request("GET", `/api/v1/households/${hh.id}/applications`, { timeout: 6000 }).catch(() => null);
    clear(history).append(h("h3", null, t("apply_applications")));
    if (!res || !res.ok) return put(history, h("p", { class: "muted small" }, t("apply_offline")));
    if (!res.json.length) put(history, h("p", { class: "muted small" }, t("apply_none")));
    for (const app of res.json) put(history, statusCard(app));
  }
  loadHistory();

  // The rules kept at sync time; fetched now if the phone has none yet and can.
  const kept = await cachedRules().catch(() => null);
  let rules = kept && kept.rules;
  if (!rules && !offline()) rules = await api("GET", "/api/v1/matching/rules", { timeout: 6000 }).catch(() => null);
  if (!rules && offline()) {
    put(root, h("p", { testid: "apply-offline", class: "notice" }, t("apply_offline")));
    return;
  }
  rules = rules || { facts: [], materials: {}, services: {}, params: {} };
  const catalogue = (await cachedCatalogue().catch(() => null)) || {};
  const householdFacts = ((await cachedFacts(hh.id).catch(() => null)) || {}).facts || {};
  const factInfo = Object.fromEntries((rules.facts || []).map((f) => [f.name, f]));
  const materialName = (code) => {
    const names = (rules.materials || {})[code];
    return names ? pick(names[0], names[1]) : code;
  };
  const factLabel = (name) => (factInfo[name] ? pick(factInfo[name].label_zh, factInfo[name].label_en) : name);

  const matchBox = h("section", { testid: "match-section", class: "card" });
  const applyBox = h("form", { testid: "apply-form", class: "card", novalidate: true, hidden: true });
  put(root, matchBox, applyBox);
  const facts = {};
  let matches = [];

  function factInput(name) {
    const f = factInfo[name] || { kind: "number", options: [] };
    const current = facts[name];
    let input;
    if (f.kind === "boolean") {
      input = h("select", { testid: "match-fact", dataset: { fact: name } }, h("option", { value: "" }, "—"), h("option", { value: "true" }, t("filter_yes")), h("option", { value: "false" }, t("filter_no")));
    } else if (f.kind === "enum") {
      input = h("select", { testid: "match-fact", dataset: { fact: name } }, h("option", { value: "" }, "—"), (f.options || []).map((o) => h("option", { value: o }, o)));
    } else {
      input = h("input", { testid: "match-fact", type: "number", min: "0", step: f.kind === "integer" ? "1" : "any", dataset: { fact: name } });
    }
    if (current !== undefined && current !== null) input.value = String(current);
    const unit = f.unit_zh ? ` (${pick(f.unit_zh, f.unit_en)})` : "";
    return h("label", null, factLabel(name) + unit, input);
  }

  function readFacts() {
    for (const el of matchBox.querySelectorAll('[data-testid="match-fact"]')) {
      const name = el.dataset.fact;
      const f = factInfo[name] || { kind: "number" };
      if (el.value === "") continue;
      if (f.kind === "boolean") facts[name] = el.value === "true";
      else if (f.kind === "enum") facts[name] = el.value;
      else facts[name] = f.kind === "integer" ? parseInt(el.value, 10) : Number(el.value);
    }
  }

  // On the phone: the cached rules over the file's facts plus what was typed here.
  function matchHere() {
    return matchAll(rules, { ...householdFacts, ...facts }).map((m) => {
      const names = catalogue[m.service] || {};
      return {
        ...m,
        name_zh: names.name_zh || m.service,
        name_en: names.name_en || m.service,
        department: names.department || "",
        reasons_zh: m.leaves.map((leaf) => leafReason(leaf, factInfo[leaf.fact], true)),
        reasons_en: m.leaves.map((leaf) => leafReason(leaf, factInfo[leaf.fact], false)),
      };
    });
  }

  async function runMatch() {
    clear(matchBox).append(h("h3", null, t("match_title")), h("p", { class: "muted small" }, t("loading")));
    let all = null;
    let local = false;
    if (!offline()) {
      try {
        all = (await api("POST", `/api/v1/households/${hh.id}/match`, { json: { facts }, timeout: 10000 })).matches;
      } catch (error) {
        // A refusal is shown; a lost connection or a failing server falls back to the phone.
        if (error instanceof ApiError && error.status < 500) {
          clear(matchBox).append(h("h3", null, t("match_title")), h("p", { testid: "match-error", class: "error" }, errorText(error)));
          return;
        }
      }
    }
    if (!all) {
      if (!rules.services || !Object.keys(rules.services).length) {
        clear(matchBox).append(h("h3", null, t("match_title")), h("p", { testid: "apply-offline", class: "notice" }, t("apply_offline")));
        return;
      }
      all = matchHere();
      local = true;
    }
    matches = all.filter((m) => SHOWN.includes(m.verdict));
    clear(matchBox).append(h("h3", null, t("match_title")));
    matchBox.dataset.source = local ? "phone" : "server";
    if (local) put(matchBox, h("p", { testid: "match-local", class: "notice small" }, t("match_local")));
    if (!matches.length) put(matchBox, h("p", { testid: "match-empty", class: "empty" }, t("match_empty")));
    const ul = h("ul", { testid: "match-list", class: "list" });
    const missingAll = new Set();
    for (const m of matches) {
      for (const name of m.missing) missingAll.add(name);
      put(
        ul,
        h(
          "li",
          { testid: "match-item", class: "item", dataset: { service: m.service, verdict: m.verdict, department: m.department } },
          h(
            "label",
            { class: "check row between" },
            h("span", null, h("input", { type: "checkbox", testid: "apply-service", value: m.service, onchange: paintApply }), " ", h("strong", null, pick(m.name_zh, m.name_en))),
            h("span", { testid: "match-verdict", class: `badge v-${m.verdict}` }, t(`verdict_${m.verdict}`)),
          ),
          h("ul", { class: "reasons small" }, pick(m.reasons_zh, m.reasons_en).map((r) => h("li", { testid: "match-reason" }, r))),
          m.missing.length ? h("p", { testid: "match-missing", class: "small muted" }, `${t("match_missing")}: ${m.missing.map(factLabel).join("、")}`) : null,
        ),
      );
    }
    put(matchBox, ul);
    if (missingAll.size) {
      const box = h("details", { testid: "match-facts", class: "facts" }, h("summary", null, t("match_add_facts")));
      for (const name of missingAll) put(box, factInput(name));
      put(
        box,
        h("button", { testid: "match-rerun", type: "button", class: "btn", onclick: () => { readFacts(); runMatch(); } }, t("match_rerun")),
      );
      put(matchBox, box);
    }
    paintApply();
  }

  // --- the application ---------------------------------------------------------------------------
  const photos = []; // [{photo_id, label}]
  let lastFound = "";
  // Photos of this task's visits still in the outbox: named by the visit entry and the content hash.
  for (const entry of await entriesOf(acc)) {
    if (entry.kind !== "visit" || entry.task_id !== taskId) continue;
    try {
      const found = JSON.parse(entry.body).found;
      if (found) lastFound = found;
    } catch (_) {}
    entry.photos.forEach((p) => {
      if (p.done && p.photo_id) photos.push({ photo_id: p.photo_id, label: t("apply_photo_n", { n: photos.length + 1, t: fmtTime(entry.created_at) }) });
      else photos.push({ photo_id: `q:${entry.id}:${p.sha256}`, label: `${t("apply_photo_n", { n: photos.length + 1, t: fmtTime(entry.created_at) })} · ${t("apply_photo_queued")}`, ref: { visit_entry: entry.id, sha256: p.sha256 } });
    });
  }
  const photoLoad = (offline() ? Promise.reject(new Error("offline")) : request("GET", `/api/v1/visits?task_id=${taskId}`, { timeout: 6000 }))
    .then((res) => {
      if (!res.ok || !Array.isArray(res.json)) return;
      let n = 0;
      for (const v of res.json) {
        if (v.found) lastFound = v.found;
        for (const p of v.photos) {
          if (!p.complete || !p.photo_id || photos.some((x) => x.photo_id === p.photo_id)) continue;
          n += 1;
          photos.push({ photo_id: p.photo_id, label: t("apply_photo_n", { n, t: fmtTime(v.visited_at) }) });
        }
      }
    })
    .catch(() => {});

  const chosen = {}; // material → select value, kept across repaints
  const situation = h("textarea", { testid: "apply-situation", rows: "3", maxlength: "500" });
  const idNumber = h("input", { testid: "apply-id-number", type: "text", inputmode: "text", maxlength: "18", autocomplete: "off" });
  const method = h(
    "select",
    { testid: "apply-consent-method" },
    ["signed_authorisation", "verbal", "in_app"].map((m) => h("option", { value: m }, t(`consent_${m}`))),
  );
  const who = h("input", { testid: "apply-consent-name", type: "text", maxlength: "50" });
  const relation = h("input", { testid: "apply-consent-relation", type: "text", maxlength: "32" });
  const materialsBox = h("fieldset", { testid: "apply-materials", class: "materials" });
  const error = h("p", { testid: "apply-error", class: "error", role: "alert" });
  const submit = h("button", { testid: "apply-submit", type: "submit", class: "btn primary block" }, t("apply_submit"));
  const result = h("div", { testid: "apply-result" });

  function selected() {
    return Array.from(matchBox.querySelectorAll('[data-testid="apply-service"]:checked')).map((x) => x.value);
  }

  function neededMaterials() {
    const set = [];
    for (const code of selected()) {
      const m = matches.find((x) => x.service === code);
      for (const mat of (m && m.materials) || []) if (!set.includes(mat)) set.push(mat);
    }
    return set;
  }

  function paintApply() {
    const codes = selected();
    applyBox.hidden = codes.length === 0;
    clear(materialsBox).append(h("legend", null, t("apply_materials")));
    for (const mat of neededMaterials()) {
      const select = h(
        "select",
        { testid: "apply-material-choice", dataset: { material: mat }, onchange: () => (chosen[mat] = select.value) },
        h("option", { value: "" }, t("apply_material_missing")),
        h("option", { value: "to_follow" }, t("apply_to_follow")),
        photos.map((p) => h("option", { value: p.photo_id }, p.label)),
      );
      select.value = chosen[mat] || "";
      put(materialsBox, h("label", { testid: "apply-material", dataset: { material: mat } }, materialName(mat), select));
    }
  }

  put(
    applyBox,
    h("h3", null, t("apply_title")),
    h("label", null, t("apply_situation"), situation),
    h("label", null, t("apply_id_number"), idNumber),
    materialsBox,
    h(
      "fieldset",
      null,
      h("legend", null, t("apply_consent")),
      h("label", null, t("apply_consent_method"), method),
      h("label", null, t("apply_consent_name"), who),
      h("label", null, t("apply_consent_relation"), relation),
    ),
    error,
    submit,
  );
  put(root, result);

  applyBox.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const codes = selected();
    if (!codes.length) return;
    const materials = {};
    const missing = [];
    for (const mat of neededMaterials()) {
      const v = chosen[mat] || "";
      if (!v) missing.push(materialName(mat));
      else if (v === "to_follow") materials[mat] = { to_follow: true };
      else {
        const p = photos.find((x) => x.photo_id === v);
        materials[mat] = { photos: [p && p.ref ? { ...p.ref } : { photo_id: v }] };
      }
    }
    if (!idNumber.value.trim() || !who.value.trim() || missing.length) {
      error.textContent = missing.length ? `${t("apply_materials_needed")}: ${missing.join("、")}` : t("apply_fill_all");
      return;
    }
    const draft = {
      applicant_id_number: idNumber.value.trim().toUpperCase(),
      services: codes.map((service) => ({ service, answers: situation.value.trim() ? { situation: situation.value.trim() } : {} })),
      materials,
      consent: { method: method.value, at: new Date().toISOString(), name: who.value.trim(), relation: relation.value.trim() },
    };
    // Into the outbox: its id is the application's id and Idempotency-Key, kept until the server has it.
    submit.disabled = true;
    let id;
    try {
      id = await queueApplication({ taskId, householdId: hh.id, draft, services: codes });
    } catch (err) {
      error.textContent = String((err && err.message) || err);
      submit.disabled = false;
      return;
    }
    applyBox.hidden = true;
    for (const box of matchBox.querySelectorAll('[data-testid="apply-service"]')) box.checked = false;
    submit.disabled = false;
    await showQueued(id);
  });

  // While the application is in the outbox the screen says so; once sent, its status sentence.
  async function showQueued(id) {
    const entry = (await entriesOf(acc)).find((e) => e.id === id);
    if (entry) {
      const names = entry.services.map((code) => {
        const m = matches.find((x) => x.service === code) || catalogue[code] || {};
        return pick(m.name_zh || code, m.name_en || code);
      });
      clear(result).append(
        h("h3", null, t("apply_status")),
        h(
          "div",
          { testid: "apply-queued", class: "item notice", dataset: { outboxId: id, state: entry.state } },
          h("div", null, entry.state === "needs_attention" ? t("apply_needs_attention") : t("apply_queued")),
          h("div", { class: "small" }, names.join("、")),
          entry.state === "needs_attention" ? h("div", { testid: "apply-queued-error", class: "error" }, (entry.problem && problemText(entry.problem)) || entry.last_error || "") : null,
          h("a", { href: "#/outbox", class: "small" }, t("outbox_title")),
        ),
      );
      return;
    }
    if (offline()) return;
    toast(t("apply_done"));
    const fresh = await api("GET", `/api/v1/applications/${id}`).catch(() => null);
    if (fresh) clear(result).append(h("h3", null, t("apply_status")), statusCard(fresh));
    loadHistory();
  }
  let watching = null;
  let again = false;
  function watch() {
    const box = result.querySelector('[data-testid="apply-queued"]');
    if (!box) return;
    if (watching) {
      again = true;
      return;
    }
    watching = showQueued(box.dataset.outboxId).finally(() => {
      watching = null;
      if (again) {
        again = false;
        watch();
      }
    });
  }
  const stop = subscribe((what) => {
    if (!root.isConnected) return stop();
    if (what === "outbox" || what === "application" || what === "net") watch();
  });

  await photoLoad;
  situation.value = lastFound.slice(0, 500);
  await runMatch();
}
