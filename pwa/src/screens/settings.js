import { account, clearSession, getSession, request } from "../api.js";
import { APP_VERSION, entriesOf } from "../core.js";
import { forgetAccount } from "../db.js";
import { getLang, has, problemText, setLang, t } from "../i18n.js";
import { h, put, toast } from "../ui.js";
import { basemapUrl } from "./map.js";

function isIos() {
  return /iPad|iPhone|iPod/.test(navigator.userAgent) || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
}

function isStandalone() {
  return (window.matchMedia && window.matchMedia("(display-mode: standalone)").matches) || navigator.standalone === true;
}

function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function keyBytes(base64url) {
  const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4);
  const raw = atob(padded);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

async function currentSubscription() {
  if (!pushSupported()) return null;
  const reg = await navigator.serviceWorker.getRegistration();
  return reg && reg.pushManager ? reg.pushManager.getSubscription() : null;
}

async function pushOn() {
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new Error(t("settings_push_denied"));
  const key = await request("GET", "/api/v1/push/vapid-public-key");
  if (!key.ok) throw new Error(problemText(key.json) || t("needs_online"));
  const reg = await navigator.serviceWorker.ready;
  let sub = await reg.pushManager.getSubscription();
  if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key.json.public_key) });
  const res = await request("POST", "/api/v1/push/subscriptions", { json: sub.toJSON() });
  if (!res.ok) throw new Error(problemText(res.json) || `HTTP ${res.status}`);
}

async function pushOff() {
  const sub = await currentSubscription();
  if (!sub) return;
  await request("DELETE", "/api/v1/push/subscriptions", { json: { endpoint: sub.endpoint } }).catch(() => null);
  await sub.unsubscribe();
}

export async function settings(container) {
  const session = getSession();
  const me = session && session.me;
  const root = h("div", { testid: "settings-screen" }, h("h2", null, t("settings_title")));
  if (me) put(root, h("p", { testid: "settings-user" }, t("settings_user", { name: me.display_name, user: me.username, role: has(`role_${me.role}`) ? t(`role_${me.role}`) : me.role })));

  const lang = h(
    "select",
    { testid: "settings-language", onchange: () => { setLang(lang.value); window.gridaid.render(); } },
    h("option", { value: "zh-CN" }, "简体中文"),
    h("option", { value: "en" }, "English"),
  );
  lang.value = getLang();
  put(root, h("label", { class: "card" }, t("settings_language"), lang));

  // Push
  const pushBox = h("section", { class: "card" }, h("h3", null, t("settings_push")));
  const status = h("p", { testid: "settings-push-status", class: "small" });
  const toggle = h("input", { testid: "settings-push-toggle", type: "checkbox", class: "switch" });
  put(pushBox, h("label", { class: "check" }, toggle, t("settings_push")), status);
  if (isIos() && !isStandalone()) {
    put(pushBox, h("p", { testid: "settings-ios-guide", class: "notice" }, t("settings_ios_guide")));
    toggle.disabled = true;
  }
  if (!pushSupported()) {
    toggle.disabled = true;
    status.textContent = t("settings_push_unsupported");
  } else {
    currentSubscription()
      .then((sub) => {
        toggle.checked = !!sub;
        status.textContent = sub ? t("settings_push_on") : t("settings_push_off");
      })
      .catch(() => {});
  }
  toggle.addEventListener("change", async () => {
    toggle.disabled = true;
    try {
      if (toggle.checked) await pushOn();
      else await pushOff();
      status.textContent = toggle.checked ? t("settings_push_on") : t("settings_push_off");
    } catch (error) {
      toggle.checked = !toggle.checked;
      status.textContent = error.message || String(error);
    }
    toggle.disabled = false;
  });
  put(root, pushBox);

  // Basemap (configuration; none needed)
  const basemap = h("input", { testid: "settings-basemap", type: "url", value: basemapUrl(), placeholder: "https://…/{z}/{x}/{y}.png" });
  put(root, 
    h(
      "section",
      { class: "card" },
      h("label", null, t("settings_basemap"), basemap),
      h(
        "button",
        {
          testid: "settings-basemap-save",
          type: "button",
          class: "btn small",
          onclick: () => {
            localStorage.setItem("gridaid.basemap", basemap.value.trim());
            toast(t("save"));
          },
        },
        t("save"),
      ),
    ),
  );

  // Sign out: refused while anything of this account is unsent.
  const refused = h("p", { testid: "settings-signout-refused", class: "error", hidden: true, role: "alert" });
  const signout = h(
    "button",
    {
      testid: "settings-signout",
      type: "button",
      class: "btn danger block",
      onclick: async () => {
        const acc = account();
        const waiting = (await entriesOf(acc)).length;
        if (waiting) {
          refused.textContent = t("settings_signout_refused", { n: waiting });
          refused.hidden = false;
          return;
        }
        signout.disabled = true;
        await pushOff().catch(() => {});
        await request("POST", "/api/v1/auth/logout").catch(() => null);
        if (acc) await forgetAccount(acc);
        clearSession();
        location.hash = "#/login";
      },
    },
    t("settings_signout"),
  );
  put(root, h("section", { class: "card" }, signout, refused), h("p", { class: "muted small" }, t("settings_version", { v: APP_VERSION })));
  put(container, root);
}
