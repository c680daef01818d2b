// Department officers: their department's cases (#/cases) and one case with its decision steps (#/cases/<id>).
// Online tools, like the supervisor screens.
import { api, ApiError } from "../api.js";
import { fmtTime, getLang, has, problemText, t } from "../i18n.js";
import { clear, h, put, toast } from "../ui.js";

const STATES = ["new", "accepted", "info_requested", "approved", "rejected"];
const pick = (zh, en) => (getLang() === "en" ? en : zh);
const caseState = (s) => (has(`case_state_${s}`) ? t(`case_state_${s}`) : s);

function problem(error) {
  if (error instanceof ApiError) return problemText(error.problem) || error.message;
  return t("needs_online");
}

function stateBadge(s) {
  return h("span", { testid: "case-state", class: `badge cs-${s}` }, caseState(s));
}

// --- list ----------------------------------------------------------------------------------------
export async function list(container) {
  const params = new URLSearchParams((location.hash.split("?")[1] || ""));
  const stateSel = h(
    "select",
    { testid: "cases-filter-state" },
    h("option", { value: "" }, t("filter_any")),
    STATES.map((s) => h("option", { value: s }, caseState(s))),
  );
  const overdueSel = h(
    "select",
    { testid: "cases-filter-overdue" },
    h("option", { value: "" }, t("filter_any")),
    h("option", { value: "true" }, t("filter_yes")),
    h("option", { value: "false" }, t("filter_no")),
  );
  stateSel.value = params.get("state") || "";
  overdueSel.value = params.get("overdue") || "";
  const apply = h(
    "button",
    {
      testid: "cases-filter-apply",
      type: "button",
      class: "btn small",
      onclick: () => {
        const q = new URLSearchParams();
        if (stateSel.value) q.set("state", stateSel.value);
        if (overdueSel.value) q.set("overdue", overdueSel.value);
        const hash = `#/cases${q.toString() ? `?${q}` : ""}`;
        if (location.hash === hash) window.gridaid.render();
        else location.hash = hash;
      },
    },
    t("filter_apply"),
  );
  put(
    container,
    h(
      "div",
      { class: "row between" },
      h("h2", null, t("cases_title")),
      h("button", { testid: "cases-refresh", type: "button", class: "btn small", onclick: () => load() }, t("tasks_sync")),
    ),
    h("div", { class: "row filters" }, h("label", null, t("filter_state"), stateSel), h("label", null, t("filter_overdue"), overdueSel), apply),
  );
  const results = h("div", { testid: "cases-results" });
  put(container, results);
  const q = new URLSearchParams({ limit: "200" });
  if (stateSel.value) {
    q.set("state", stateSel.value);
    if (["approved", "rejected"].includes(stateSel.value)) q.set("include_decided", "true");
  }
  if (overdueSel.value) q.set("overdue", overdueSel.value);
  async function load() {
    let page;
    try {
      page = await api("GET", `/api/v1/cases?${q}`, { timeout: 8000 });
    } catch (error) {
      clear(results).append(h("p", { testid: "cases-error", class: "error" }, problem(error)));
      return;
    }
    clear(results).append(h("p", { testid: "cases-total", class: "muted small" }, t("cases_total", { n: page.total })));
    if (!page.items.length) {
      put(results, h("p", { testid: "cases-empty", class: "empty" }, t("cases_empty")));
      return;
    }
    const table = h("table", { testid: "cases-list", class: "table cases" });
    put(
      table,
      h("thead", null, h("tr", null, [t("case_service"), t("task_household"), t("filter_state"), t("due")].map((x) => h("th", null, x)))),
    );
    const body = h("tbody");
    for (const c of page.items) {
      const hh = c.household || {};
      put(
        body,
        h(
          "tr",
          { testid: "case-row", class: c.overdue ? "late" : "", dataset: { caseId: c.id, state: c.state, service: c.service, applicationId: c.application_id } },
          h("td", null, h("a", { testid: "case-open", href: `#/cases/${c.id}` }, pick(c.service_name_zh, c.service_name_en))),
          h("td", null, `${hh.head_name_masked || ""} · ${hh.code || ""}`),
          h("td", null, stateBadge(c.state)),
          h("td", null, fmtTime(c.due_at), c.overdue ? h("span", { testid: "case-overdue", class: "badge late" }, t("overdue")) : null),
        ),
      );
    }
    put(table, body);
    put(results, h("div", { class: "scroll-x" }, table));
  }
  await load();
  // An inbox: new cases arrive from the routing job; look again every 10 s while the list is open.
  const timer = setInterval(() => {
    if (!document.hidden) load();
  }, 10_000);
  return () => clearInterval(timer);
}

// --- detail --------------------------------------------------------------------------------------
function kv(label, value, testid) {
  return h("div", { class: "kv", testid }, h("span", { class: "muted" }, label), h("span", null, value == null || value === "" ? "—" : String(value)));
}

export async function detail(container, caseId) {
  put(container, h("a", { href: "#/cases", class: "back", testid: "case-back" }, `‹ ${t("back")}`));
  let c;
  try {
    c = await api("GET", `/api/v1/cases/${caseId}`, { timeout: 8000 });
  } catch (error) {
    put(container, h("p", { testid: "case-error", class: "error" }, problem(error)));
    return;
  }
  const root = h("div", { testid: "case-detail", dataset: { caseId, state: c.state } });
  put(container, root);
  paint(root, c);
}

function paint(root, c) {
  clear(root);
  root.dataset.state = c.state;
  const hh = c.household || {};
  const decided = c.state === "approved" || c.state === "rejected";
  put(
    root,
    h("h2", null, pick(c.service_name_zh, c.service_name_en)),
    h("div", { class: "row" }, stateBadge(c.state), c.overdue ? h("span", { class: "badge late" }, t("overdue")) : null),
    h("p", { testid: "case-due" }, `${t("due")}: ${fmtTime(c.due_at)}`),
    c.state === "approved"
      ? h("p", { testid: "case-decision", class: "notice" }, t("case_approved_line", { amount: c.amount_yuan, period: t(`period_${c.period}`) }))
      : null,
    c.state === "rejected" ? h("p", { testid: "case-decision", class: "notice" }, `${t("case_reason")}: ${c.reason}`) : null,
    c.info_request ? h("p", { testid: "case-info-request", class: "small" }, `${t("case_info_request")}: ${c.info_request}`) : null,
    h(
      "section",
      { testid: "case-household", class: "card" },
      h("h3", null, t("task_household")),
      kv(t("task_code"), hh.code),
      kv(t("task_head"), hh.head_name_masked),
      kv(t("task_category"), has(`cat_${hh.category}`) ? t(`cat_${hh.category}`) : hh.category),
      kv(t("task_phone"), hh.phone_masked),
      kv(t("task_grid"), hh.grid_code),
      c.applicant ? kv(t("case_applicant"), `${c.applicant.name_masked} ${c.applicant.id_number_masked}`) : null,
      c.members && c.members.length
        ? h("ul", { class: "small" }, c.members.map((m) => h("li", { testid: "case-member" }, `${m.name_masked} · ${has(`rel_${m.relation}`) ? t(`rel_${m.relation}`) : m.relation} · ${m.id_number_masked}${m.disability_grade ? ` · ${t("case_disability", { g: m.disability_grade })}` : ""}`)))
        : null,
    ),
  );
  const answers = Object.entries(c.answers || {});
  put(
    root,
    h(
      "section",
      { testid: "case-answers", class: "card" },
      h("h3", null, t("case_answers")),
      answers.length ? answers.map(([k, v]) => kv(has(`answer_${k}`) ? t(`answer_${k}`) : k, v, "case-answer")) : h("p", { class: "muted small" }, t("none")),
      kv(t("case_verdict"), has(`verdict_${c.verdict}`) ? t(`verdict_${c.verdict}`) : c.verdict),
      kv(t("case_rule_version"), c.rule_version),
    ),
    h(
      "section",
      { testid: "case-materials", class: "card" },
      h("h3", null, t("apply_materials")),
      h(
        "ul",
        { class: "list" },
        (c.materials || []).map((m) =>
          h(
            "li",
            { testid: "case-material", dataset: { material: m.material, status: m.status } },
            `${pick(m.name_zh, m.name_en)}: `,
            h("span", { class: `badge mat-${m.status}` }, has(`mat_${m.status}`) ? t(`mat_${m.status}`) : m.status),
            m.photos && m.photos.length ? ` (${m.photos.length})` : "",
          ),
        ),
      ),
    ),
    h(
      "section",
      { testid: "case-consent", class: "card" },
      h("h3", null, t("apply_consent")),
      kv(t("apply_consent_method"), c.consent ? t(`consent_${c.consent.method}`) : ""),
      kv(t("apply_consent_name"), c.consent && `${c.consent.by_masked}${c.consent.relation ? ` (${c.consent.relation})` : ""}`),
      kv(t("case_consent_at"), c.consent && fmtTime(c.consent.at)),
    ),
  );
  if (decided) return;

  const error = h("p", { testid: "case-action-error", class: "error", role: "alert" });
  async function step(path, body, button) {
    error.textContent = "";
    button.disabled = true;
    try {
      const out = await api("POST", `/api/v1/cases/${c.id}/${path}`, body ? { json: body } : {});
      toast(t("case_saved"));
      paint(root, out);
    } catch (err) {
      error.textContent = problem(err);
      button.disabled = false;
    }
  }
  const actions = h("section", { testid: "case-actions", class: "card" }, h("h3", null, t("case_actions")));
  if (c.state !== "accepted") {
    const accept = h("button", { testid: "case-accept", type: "button", class: "btn", onclick: () => step("accept", null, accept) }, t("case_accept"));
    put(actions, accept);
  }
  // Ask for more information.
  const message = h("input", { testid: "case-info-message", type: "text", maxlength: "200" });
  const ask = h(
    "button",
    {
      testid: "case-request-info",
      type: "button",
      class: "btn",
      onclick: () => (message.value.trim().length < 2 ? (error.textContent = t("case_need_text")) : step("request-info", { message: message.value.trim() }, ask)),
    },
    t("case_request_info"),
  );
  if (c.state !== "info_requested") put(actions, h("div", { class: "step" }, h("label", null, t("case_info_message"), message), ask));
  // Approve.
  const amount = h("input", { testid: "case-amount", type: "number", min: "0", step: "1", inputmode: "numeric" });
  const period = h("select", { testid: "case-period" }, ["one_off", "monthly", "yearly"].map((p) => h("option", { value: p }, t(`period_${p}`))));
  const months = h("input", { testid: "case-period-months", type: "number", min: "1", max: "120", step: "1" });
  const approve = h(
    "button",
    {
      testid: "case-approve",
      type: "button",
      class: "btn primary",
      onclick: () => {
        const n = parseInt(amount.value, 10);
        if (!(n >= 0)) {
          error.textContent = t("case_need_amount");
          return;
        }
        const body = { amount_yuan: n, period: period.value };
        const m = parseInt(months.value, 10);
        if (period.value !== "one_off" && m >= 1) body.period_months = m;
        step("approve", body, approve);
      },
    },
    t("case_approve"),
  );
  put(
    actions,
    h(
      "div",
      { class: "step" },
      h("label", null, t("case_amount"), amount),
      h("label", null, t("case_period"), period),
      h("label", null, t("case_period_months"), months),
      approve,
    ),
  );
  // Reject.
  const reason = h("input", { testid: "case-reject-reason", type: "text", maxlength: "500" });
  const reject = h(
    "button",
    {
      testid: "case-reject",
      type: "button",
      class: "btn danger",
      onclick: () => (reason.value.trim().length < 2 ? (error.textContent = t("case_need_text")) : step("reject", { reason: reason.value.trim() }, reject)),
    },
    t("case_reject"),
  );
  put(actions, h("div", { class: "step" }, h("label", null, t("case_reason"), reason), reject), error);
  put(root, actions);
}
