import { account, request } from "../api.js";
import { listNotes, putNotes } from "../db.js";
import { fmtTime, getLang, t } from "../i18n.js";
import { h, put } from "../ui.js";

export async function inbox(container) {
  const acc = account();
  try {
    const res = await request("GET", "/api/v1/notifications?limit=50", { timeout: 2500 });
    if (res.ok && res.json) await putNotes(acc, res.json.items || []);
  } catch (_) {
    /* offline */
  }
  const notes = await listNotes(acc);
  put(container, h("h2", null, t("inbox_title")));
  if (!notes.length) {
    put(container, h("p", { testid: "inbox-empty", class: "empty" }, t("inbox_empty")));
    return;
  }
  const ul = h("ul", { testid: "inbox-list", class: "list" });
  for (const note of notes) {
    const taskId = note.detail && (note.detail.task_id || (note.detail.task_ids && note.detail.task_ids.length === 1 && note.detail.task_ids[0]));
    const item = h(
      "a",
      {
        testid: "inbox-item",
        class: `item${note.read_at ? "" : " unread"}`,
        href: taskId ? `#/tasks/${taskId}` : "#/inbox",
        dataset: { notificationId: note.id, read: String(!!note.read_at) },
        onclick: () => {
          if (!note.read_at) {
            request("POST", `/api/v1/notifications/${note.id}/read`)
              .then((res) => {
                if (res.ok) putNotes(acc, [{ ...note, read_at: new Date().toISOString() }]);
              })
              .catch(() => {});
          }
        },
      },
      h("strong", null, getLang() === "en" ? note.title_en : note.title_zh),
      h("div", { class: "small muted" }, fmtTime(note.created_at)),
    );
    put(ul, h("li", null, item));
  }
  put(container, ul);
}
