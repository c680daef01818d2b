import { getSession } from "../api.js";
import { discard, entriesOf, otherAccountsEntries, requeue, state, syncNow } from "../core.js";
import { fmtTime, problemText, t } from "../i18n.js";
import { h, put, toast } from "../ui.js";

function describe(entry) {
  const sent = entry.photos.filter((p) => p.done).length;
  return [
    h("div", { class: "row between" }, h("strong", { testid: "outbox-item-kind" }, t(`outbox_kind_${entry.kind || "visit"}`)), h("span", { testid: "outbox-item-state", class: `badge ob-${entry.state}` }, t(`outbox_state_${entry.state}`))),
    h("div", { class: "small muted" }, t("outbox_created", { t: fmtTime(entry.created_at) }), " · ", h("a", { href: `#/tasks/${entry.task_id}` }, entry.task_id.slice(0, 8))),
    entry.kind === "application" && entry.services ? h("div", { testid: "outbox-item-services", class: "small" }, entry.services.join("、")) : null,
    h("div", { class: "small row" }, h("span", { testid: "outbox-item-attempts" }, t("outbox_attempts", { n: entry.attempts })), entry.photos.length ? h("span", { testid: "outbox-item-photos" }, t("outbox_photos", { a: sent, b: entry.photos.length })) : null),
  ];
}

export async function outbox(container) {
  const entries = await entriesOf();
  const others = await otherAccountsEntries();
  const waiting = entries.filter((e) => e.state !== "needs_attention");
  const attention = entries.filter((e) => e.state === "needs_attention");
  const session = getSession();
  const root = h("div", { testid: "outbox-screen" });
  const button = h(
    "button",
    {
      testid: "outbox-sync-now",
      type: "button",
      class: "btn primary block",
      onclick: async () => {
        button.disabled = true;
        await syncNow().catch(() => {});
        button.disabled = false;
        if (!state.online || state.lastError === "network") toast(t("network_error"));
      },
    },
    t("outbox_sync_now"),
  );
  put(root, 
    h("h2", null, t("outbox_title")),
    h("p", { testid: "outbox-summary", class: entries.length ? "notice" : "ok" }, entries.length ? t("outbox_summary", { n: entries.length }) : t("outbox_all_sent")),
    session && session.expired ? h("p", { class: "error" }, t("outbox_auth")) : null,
    button,
  );
  if (!entries.length) put(root, h("p", { testid: "outbox-empty", class: "empty" }, t("outbox_all_sent")));
  if (waiting.length) {
    const ul = h("ul", { testid: "outbox-list", class: "list" });
    for (const entry of waiting) {
      put(ul, 
        h(
          "li",
          { testid: "outbox-item", class: "item", dataset: { outboxId: entry.id, state: entry.state, kind: entry.kind || "visit" } },
          describe(entry),
          entry.last_error ? h("div", { testid: "outbox-item-error", class: "small error" }, t("outbox_last_error", { e: entry.last_error })) : null,
        ),
      );
    }
    put(root, ul);
  }
  if (attention.length) {
    const ul = h("ul", { testid: "outbox-attention-list", class: "list attention" });
    for (const entry of attention) {
      put(ul, 
        h(
          "li",
          { testid: "outbox-attention-item", class: "item", dataset: { outboxId: entry.id, state: entry.state, kind: entry.kind || "visit" } },
          describe(entry),
          h("div", { testid: "outbox-attention-message", class: "error" }, (entry.problem && problemText(entry.problem)) || entry.last_error || ""),
          h(
            "div",
            { class: "row" },
            h("button", { testid: "outbox-retry", type: "button", class: "btn small", onclick: () => requeue(entry.id).then(() => syncNow()) }, t("outbox_retry")),
            h(
              "button",
              {
                testid: "outbox-discard",
                type: "button",
                class: "btn small danger",
                onclick: () => {
                  if (confirm(t("outbox_discard_confirm"))) discard(entry.id);
                },
              },
              t("outbox_discard"),
            ),
          ),
        ),
      );
    }
    put(root, h("h3", null, t("outbox_attention")), ul);
  }
  if (others.length) {
    const users = [...new Set(others.map((e) => e.username || e.account.slice(0, 8)))].join(", ");
    put(root, h("p", { testid: "outbox-other-accounts", class: "muted small" }, t("outbox_other", { n: others.length, users })));
  }
  put(container, root);
}
