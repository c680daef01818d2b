// Smart matching (智能研判) and the application on the family's behalf (代办申请), from a task.
// Online, the server matches (authoritative). Offline, or when the server cannot be reached, the
// phone matches with the rules and household facts kept at sync time (eligibility.js) and says so.
// The application always goes through the outbox, so it is never lost to a bad connection, with the
// photos taken on this screen (ID card, signed authorisation) riding in the same entry.
import { account, api, ApiError, request } from "../api.js";
import { cachedCatalogue, cachedFacts, cachedRules, entriesOf, queueApplication, rememberFacts, state, subscribe } from "../core.js";
import { getTask, keepApplications, keepTypedFacts, keptApplications, typedFacts } from "../db.js";
import { explainLeaf, matchAll } from "../eligibility.js";
import { fmtTime, getLang, has, problemText, t } from "../i18n.js";
import { compressPhoto } from "../photos.js";
import { clear, h, put, toast } from "../ui.js";

const SHOWN = ["eligible", "possible"];

// An enum fact's option said aloud (低保边缘, not "marginal"), in the current language; null if unknown.
function optionLabel(fact, code) {
  const key = `fact_${fact}_${code}`;
  return has(key) ? t(key) : null;
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
  // Online, the server's list (kept on the phone); offline, the list as last seen.
  async function loadHistory() {
    const res = offline() ? null : await request("GET", `/api/v1/households/${hh.id}/applications`, { timeout: 6000 }).catch(() => null);
    let items = res && res.ok && Array.isArray(res.json) ? res.json : null;
    let keptAt = null;
    if (items) await keepApplications(acc, hh.id, items).catch(() => {});
    else {
      const kept = await keptApplications(acc, hh.id).catch(() => null);
      if (kept) [items, keptAt] = [kept.items, kept.at];
    }
    clear(history).append(h("h3", null, t("apply_applications")));
    history.dataset.source = keptAt ? "phone" : items ? "server" : "none";
    if (!items) return put(history, h("p", { class: "muted small" }, t("apply_offline")));
    if (keptAt) put(history, h("p", { testid: "apply-applications-kept", class: "muted small" }, t("apply_history_kept", { t: fmtTime(keptAt) })));
    if (!items.length) put(history, h("p", { class: "muted small" }, t("apply_none")));
    for (const app of items) put(history, statusCard(app));
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
  // The phone's copy of the file's facts, and what was typed here before: kept per household on
  // this phone, shown as editable inputs, and sent with each application (the server records them).
  const facts = await typedFacts(acc, hh.id).catch(() => ({}));
  let householdFacts = { ...(((await cachedFacts(hh.id).catch(() => null)) || {}).facts || {}), ...facts };
  const factInfo = Object.fromEntries((rules.facts || []).map((f) => [f.name, f]));
  const materialName = (code) => {
    const names = (rules.materials || {})[code];
    return names ? pick(names[0], names[1]) : code;
  };
  const factLabel = (name) => (factInfo[name] ? pick(factInfo[name].label_zh, factInfo[name].label_en) : name);

  const matchBox = h("section", { testid: "match-section", class: "card" });
  const applyBox = h("form", { testid: "apply-form", class: "card", novalidate: true, hidden: true });
  put(root, matchBox, applyBox);
  let matches = [];

  function factInput(name) {
    const f = factInfo[name] || { kind: "number", options: [] };
    const current = facts[name];
    let input;
    if (f.kind === "boolean") {
      input = h("select", { testid: "match-fact", dataset: { fact: name } }, h("option", { value: "" }, "—"), h("option", { value: "true" }, t("filter_yes")), h("option", { value: "false" }, t("filter_no")));
    } else if (f.kind === "enum") {
      input = h("select", { testid: "match-fact", dataset: { fact: name } }, h("option", { value: "" }, "—"), (f.options || []).map((o) => h("option", { value: o }, optionLabel(name, o) || o)));
    } else {
      input = h("input", { testid: "match-fact", type: "number", min: "0", step: f.kind === "integer" ? "1" : "any", dataset: { fact: name } });
    }
    if (current !== undefined && current !== null) input.value = String(current);
    const unit = f.unit_zh ? ` (${pick(f.unit_zh, f.unit_en)})` : "";
    return h("label", null, factLabel(name) + unit, input);
  }

  // What the worker typed, into this screen's facts and the phone's copy of the household's facts,
  // so the screen opened again (offline too) starts from them.
  async function readFacts() {
    for (const el of matchBox.querySelectorAll('[data-testid="match-fact"]')) {
      const name = el.dataset.fact;
      const f = factInfo[name] || { kind: "number" };
      if (el.value === "") continue;
      if (f.kind === "boolean") facts[name] = el.value === "true";
      else if (f.kind === "enum") facts[name] = el.value;
      else facts[name] = f.kind === "integer" ? parseInt(el.value, 10) : Number(el.value);
    }
    if (!Object.keys(facts).length) return;
    householdFacts = { ...householdFacts, ...facts };
    await rememberFacts(hh.id, householdFacts).catch(() => {});
    await keepTypedFacts(acc, hh.id, facts).catch(() => {});
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
        // Said in the language on screen (enum options by their labels in that language).
        reasons: m.leaves.map((leaf) => explainLeaf(leaf, factInfo[leaf.fact], { zh: getLang() !== "en", optionLabel })),
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
    const missingAll = new Set(Object.keys(facts)); // what was typed stays editable
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
          h("ul", { class: "reasons small" }, (m.reasons || pick(m.reasons_zh, m.reasons_en)).map((r) => h("li", { testid: "match-reason" }, r))),
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
        h("button", { testid: "match-rerun", type: "button", class: "btn", onclick: () => readFacts().then(runMatch) }, t("match_rerun")),
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
  // Photos taken on this screen: {sha256, blob, size, url, label}; a choice names one as `n:<sha256>`.
  const taken = [];
  const situation = h("textarea", { testid: "apply-situation", rows: "3", maxlength: "500" });
  const idNumber = h("input", { testid: "apply-id-number", type: "text", inputmode: "text", maxlength: "18", autocomplete: "off" });
  const method = h(
    "select",
    { testid: "apply-consent-method" },
    ["signed_authorisation", "verbal", "in_app"].map((m) => h("option", { value: m }, t(`consent_${m}`))),
  );
  // Who consented: a member of the household (kept at sync, names masked), or, with no member
  // picked, someone else (a guardian…) by name and relation.
  const members = hh.members || [];
  const relationName = (code) => (has(`rel_${code}`) ? t(`rel_${code}`) : code);
  const member = h(
    "select",
    { testid: "apply-consent-member", onchange: () => paintConsent() },
    h("option", { value: "" }, t("apply_consent_other")),
    members.map((m) => h("option", { value: m.id }, t("apply_consent_member", { name: m.name_masked, relation: relationName(m.relation) }))),
  );
  const who = h("input", { testid: "apply-consent-name", type: "text", maxlength: "50" });
  const relation = h("input", { testid: "apply-consent-relation", type: "text", maxlength: "32" });
  const otherPerson = h(
    "div",
    { testid: "apply-consent-other" },
    h("label", null, t("apply_consent_name"), who),
    h("label", null, t("apply_consent_relation"), relation),
  );
  function paintConsent() {
    otherPerson.hidden = member.value !== "";
  }
  paintConsent();
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

  // A new photo for one material: shrunk on the phone (no EXIF, ≤ 300 KB), chosen for it at once.
  async function takePhoto(mat, input) {
    const file = input.files && input.files[0];
    input.value = "";
    if (!file) return;
    error.textContent = "";
    submit.disabled = true;
    const busy = materialsBox.querySelector(`[data-testid="apply-photo-busy"][data-material="${mat}"]`);
    if (busy) busy.hidden = false;
    try {
      const p = await compressPhoto(file);
      if (!taken.some((x) => x.sha256 === p.sha256)) {
        taken.push({ ...p, url: URL.createObjectURL(p.blob), label: t("apply_photo_new", { n: taken.length + 1 }) });
      }
      chosen[mat] = `n:${p.sha256}`;
    } catch (err) {
      console.warn(err);
      error.textContent = t("apply_photo_failed");
    } finally {
      submit.disabled = false;
      paintApply();
    }
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
        taken.map((p) => h("option", { value: `n:${p.sha256}` }, p.label)),
        photos.map((p) => h("option", { value: p.photo_id }, p.label)),
      );
      select.value = chosen[mat] || "";
      const inputId = `apply-photo-${mat}`;
      const camera = h("input", {
        testid: "apply-material-photo-input",
        id: inputId,
        type: "file",
        accept: "image/*",
        capture: "environment",
        class: "file",
        dataset: { material: mat },
      });
      camera.addEventListener("change", () => takePhoto(mat, camera));
      const shown = taken.find((p) => `n:${p.sha256}` === chosen[mat]);
      put(
        materialsBox,
        h(
          "div",
          { testid: "apply-material", class: "material", dataset: { material: mat } },
          h("label", null, materialName(mat), select),
          h("label", { testid: "apply-material-photo", class: "btn small", for: inputId }, t("apply_photo_take")),
          camera,
          h("span", { testid: "apply-photo-busy", class: "muted small", hidden: true, dataset: { material: mat } }, t("apply_photo_busy")),
          shown ? h("figure", { testid: "apply-material-thumb", class: "thumb", dataset: { sha256: shown.sha256, bytes: String(shown.size) } }, h("img", { src: shown.url, alt: "" })) : null,
        ),
      );
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
      h("label", null, t("apply_consent_who"), member),
      otherPerson,
    ),
    error,
    submit,
  );
  put(root, result);

  function consent() {
    const at = new Date().toISOString();
    if (member.value) return { method: method.value, at, member_id: member.value };
    return who.value.trim() ? { method: method.value, at, name: who.value.trim(), relation: relation.value.trim() } : null;
  }

  applyBox.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const codes = selected();
    if (!codes.length) return;
    const materials = {};
    const missing = [];
    const sending = []; // the photos taken here that this application hands in
    for (const mat of neededMaterials()) {
      const v = chosen[mat] || "";
      if (!v) missing.push(materialName(mat));
      else if (v === "to_follow") materials[mat] = { to_follow: true };
      else if (v.startsWith("n:")) {
        const p = taken.find((x) => `n:${x.sha256}` === v);
        if (!sending.includes(p)) sending.push(p);
        materials[mat] = { photos: [{ entry_photo: p.sha256 }] };
      } else {
        const p = photos.find((x) => x.photo_id === v);
        materials[mat] = { photos: [p && p.ref ? { ...p.ref } : { photo_id: v }] };
      }
    }
    const agreed = consent();
    if (!idNumber.value.trim() || !agreed || missing.length) {
      error.textContent = missing.length ? `${t("apply_materials_needed")}: ${missing.join("、")}` : idNumber.value.trim() ? t("apply_fill_consent") : t("apply_fill_all");
      return;
    }
    const draft = {
      applicant_id_number: idNumber.value.trim().toUpperCase(),
      services: codes.map((service) => ({ service, answers: situation.value.trim() ? { situation: situation.value.trim() } : {} })),
      materials,
      consent: agreed,
      facts: { ...facts },
      ...(typeof rules.version === "number" ? { rule_version: rules.version } : {}),
    };
    // Into the outbox: its id is the application's id and Idempotency-Key, kept until the server has it.
    submit.disabled = true;
    let id;
    try {
      id = await queueApplication({ taskId, householdId: hh.id, draft, services: codes, photos: sending });
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
  // Leaving the screen: the previews go (the photos themselves are in the outbox, or were not used).
  return () => {
    for (const p of taken) URL.revokeObjectURL(p.url);
  };
}
