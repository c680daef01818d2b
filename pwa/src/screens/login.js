import { getSession, request, setSession } from "../api.js";
import { entriesOf, flush, otherAccountsEntries, resetAuthNeeded } from "../core.js";
import { problemText, t } from "../i18n.js";
import { h, put } from "../ui.js";
import { home } from "../main.js";

export async function login(container) {
  const previous = getSession();
  const expired = !!(previous && previous.expired);
  const waiting = expired ? (await entriesOf(previous.me.id)).length : 0;
  const others = await otherAccountsEntries(previous && previous.me ? previous.me.id : null);
  const error = h("p", { testid: "login-error", class: "error", role: "alert" });
  const username = h("input", {
    testid: "login-username",
    name: "login",
    autocomplete: "username",
    required: true,
    autocapitalize: "none",
    value: previous && previous.me ? previous.me.username : "",
  });
  const password = h("input", { testid: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const otp = h("input", { testid: "login-otp", name: "otp", inputmode: "numeric", pattern: "\\d{6}", autocomplete: "one-time-code" });
  const submit = h("button", { testid: "login-submit", type: "submit", class: "btn primary block" }, t("login_submit"));

  const form = h(
    "form",
    { testid: "login-form", class: "card", novalidate: true },
    h("h2", null, t("login_title")),
    expired
      ? h("p", { testid: "login-expired-note", class: "notice" }, waiting ? t("login_expired", { n: waiting }) : t("login_expired_plain"))
      : null,
    h("label", null, t("login_username"), username),
    h("label", null, t("login_password"), password),
    h("label", null, t("login_otp"), otp),
    submit,
    error,
  );

  const users = [...new Set(others.map((e) => e.username || e.account.slice(0, 8)))].join(", ");
  const otherNote = others.length
    ? h("p", { testid: "outbox-other-accounts", class: "muted small" }, t("login_other_account", { user: users, n: others.length }))
    : null;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    if (!username.value || !password.value) {
      error.textContent = t("login_failed");
      return;
    }
    submit.disabled = true;
    try {
      const body = { login: username.value.trim(), password: password.value };
      if (otp.value) body.otp = otp.value.trim();
      const res = await request("POST", "/api/v1/auth/login", { json: body, auth: false });
      if (!res.ok) {
        error.textContent = problemText(res.json) || t("login_failed");
        return;
      }
      const tokens = res.json;
      const me = await request("GET", "/api/v1/auth/me", { auth: false, headers: { Authorization: `Bearer ${tokens.access_token}` } });
      if (!me.ok) {
        error.textContent = problemText(me.json) || t("login_failed");
        return;
      }
      setSession(tokens, me.json);
      resetAuthNeeded();
      location.hash = home();
      flush({ force: true }).catch(() => {});
    } catch (err) {
      error.textContent = t("network_error");
    } finally {
      submit.disabled = false;
    }
  });
  put(container, form, otherNote);
}
