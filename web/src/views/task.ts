import { api, ApiError, upload, type Page, type Status, type Task, type User } from "../api";
import { h, mount } from "../dom";
import { formatDate, t } from "../i18n";
import type { LiveClient } from "../live";
import { safeFragment } from "../safe-html";
import { colourBadge } from "./common";
import { formatSize, type StoredFile } from "./files";

export interface Comment {
  id: number;
  task_id: number;
  author: { id: number; name: string; is_customer: boolean } | null;
  body: string;
  body_html: string;
  visibility: "internal" | "shared";
  reply_to: { id: number; author_name: string | null; excerpt: string; deleted: boolean } | null;
  reactions: { emoji: string; count: number; user_ids: number[] }[];
  version: number;
  created_at: string;
  edited_at: string | null;
  deleted: boolean;
}

interface Person {
  id: number;
  name: string;
  is_customer: boolean;
}

const REACTIONS = ["👍", "🎉", "❤️", "👀", "✅"];
const TYPING_IDLE_MS = 4000;

/** Merge a comment into the thread: newer versions win, so late or duplicate events change nothing. */
export function mergeComment(thread: Map<number, Comment>, comment: Comment): boolean {
  const held = thread.get(comment.id);
  if (held && held.version > comment.version) return false;
  if (held && held.version === comment.version && comment.reactions === held.reactions) return false;
  thread.set(comment.id, comment);
  return true;
}

function timeOf(iso: string): string {
  return new Intl.DateTimeFormat(document.documentElement.lang === "sv" ? "sv-SE" : "en-GB", {
    dateStyle: "short",
    timeStyle: "short",
  }).format(new Date(iso));
}

export async function renderTask(
  root: HTMLElement,
  projectId: number,
  taskId: number,
  user: User,
  live: LiveClient,
): Promise<() => void> {
  const staff = user.role !== "customer";
  const [task, statuses, first] = await Promise.all([
    api<Task>("GET", `/api/tasks/${taskId}`),
    api<{ items: Status[] }>("GET", `/api/projects/${projectId}/statuses`),
    api<Page<Comment>>("GET", `/api/tasks/${taskId}/comments?limit=50`),
  ]);
  const people: Person[] = (await api<{ items: Person[] }>("GET", `/api/projects/${projectId}/mentionable`)).items;
  const thread = new Map<number, Comment>(first.items.map((c) => [c.id, c]));
  let older = first.next_cursor;
  let replyTo: Comment | null = null;
  const mentions = new Map<string, number>();
  const typing = new Map<string, string>();

  const list = h("ol", { class: "thread", "aria-live": "polite" });
  const typingLine = h("p", { class: "typing muted", role: "status" });
  const olderButton = h("button", { type: "button", class: "link" }, t("thread.older"));

  function renderComment(c: Comment): HTMLElement {
    const item = h("li", {
      class: `comment${c.visibility === "internal" ? " comment-internal" : ""}`,
      id: `comment-${c.id}`,
    });
    const meta = h(
      "p",
      { class: "comment-meta" },
      h("strong", {}, c.author?.name ?? "—"),
      " · ",
      h("time", { datetime: c.created_at }, timeOf(c.created_at)),
      c.edited_at ? ` · ${t("thread.edited")}` : "",
      c.visibility === "internal" ? h("span", { class: "tag-internal" }, `🔒 ${t("thread.internal")}`) : null,
    );
    item.append(meta);
    if (c.reply_to) {
      item.append(h("blockquote", { class: "quote" }, `${c.reply_to.author_name ?? "—"}: ${c.reply_to.excerpt}`));
    }
    if (c.deleted) {
      item.append(h("p", { class: "muted" }, t("thread.deleted")));
      return item;
    }
    const body = h("div", { class: "comment-body" });
    body.append(safeFragment(c.body_html));
    item.append(body);
    const actions = h("div", { class: "comment-actions" });
    for (const emoji of REACTIONS) {
      const reaction = c.reactions.find((r) => r.emoji === emoji);
      const mine = reaction?.user_ids.includes(user.id) ?? false;
      const button = h(
        "button",
        { type: "button", class: `reaction${mine ? " mine" : ""}`, "aria-pressed": String(mine) },
        `${emoji}${reaction ? ` ${reaction.count}` : ""}`,
      );
      button.addEventListener("click", async () => {
        const path = `/api/comments/${c.id}/reactions`;
        const updated = mine
          ? await api<Comment>("DELETE", `${path}/${encodeURIComponent(emoji)}`)
          : await api<Comment>("POST", path, { emoji });
        if (mergeComment(thread, updated)) draw();
      });
      actions.append(button);
    }
    const reply = h("button", { type: "button", class: "link" }, t("thread.reply"));
    reply.addEventListener("click", () => {
      replyTo = c;
      replyNote.textContent = t("thread.replyingTo", { name: c.author?.name ?? "—" });
      textarea.focus();
    });
    actions.append(reply);
    if (c.author?.id === user.id) {
      const remove = h("button", { type: "button", class: "link" }, t("thread.delete"));
      remove.addEventListener("click", async () => {
        await api("DELETE", `/api/comments/${c.id}`);
      });
      actions.append(remove);
    }
    item.append(actions);
    return item;
  }

  function draw(): void {
    const sorted = [...thread.values()].sort((a, b) => a.id - b.id);
    list.replaceChildren(...sorted.map(renderComment));
    if (!sorted.length) list.append(h("li", { class: "muted" }, t("thread.empty")));
    olderButton.hidden = older === null;
  }

  olderButton.addEventListener("click", async () => {
    if (!older) return;
    const page = await api<Page<Comment>>("GET", `/api/tasks/${taskId}/comments?limit=50&cursor=${older}`);
    for (const c of page.items) mergeComment(thread, c);
    older = page.next_cursor;
    draw();
  });

  // The composer: its internal mode is unmistakable (colour, icon, label, button text).
  const textarea = h("textarea", {
    id: "comment-body",
    rows: "3",
    maxlength: "10000",
    placeholder: t("thread.placeholder"),
    "aria-label": t("thread.placeholder"),
  });
  const internal = h("input", { type: "checkbox", id: "comment-internal" });
  const send = h("button", { type: "submit", class: "primary" }, t("thread.send"));
  const error = h("p", { class: "error", role: "alert" });
  const replyNote = h("p", { class: "muted" });
  const suggestions = h("ul", { class: "suggestions", role: "listbox", "aria-label": t("thread.mentionSuggestions") });
  const form = h(
    "form",
    { class: "composer" },
    replyNote,
    textarea,
    suggestions,
    staff
      ? h(
          "label",
          { class: "internal-toggle", for: "comment-internal" },
          internal,
          ` 🔒 ${t("thread.internalToggle")}`,
        )
      : null,
    error,
    send,
  );
  const setMode = () => {
    const isInternal = staff && internal.checked;
    form.classList.toggle("composer-internal", isInternal);
    send.textContent = isInternal ? `🔒 ${t("thread.sendInternal")}` : t("thread.send");
    textarea.setAttribute("aria-description", isInternal ? t("thread.internalHint") : "");
  };
  internal.addEventListener("change", setMode);

  let typingTimer: ReturnType<typeof setTimeout> | null = null;
  const room = () => (staff && internal.checked ? `room:task:${taskId}:staff` : `room:task:${taskId}`);
  textarea.addEventListener("input", () => {
    if (!typingTimer) live.sendPresence(room(), { typing: true });
    if (typingTimer) clearTimeout(typingTimer);
    typingTimer = setTimeout(() => {
      live.sendPresence(room(), { typing: false });
      typingTimer = null;
    }, TYPING_IDLE_MS);
    const match = textarea.value.slice(0, textarea.selectionStart).match(/@([\p{L} ]{0,30})$/u);
    suggestions.replaceChildren();
    if (!match) return;
    const query = match[1].toLowerCase();
    for (const person of people.filter((p) => p.name.toLowerCase().startsWith(query)).slice(0, 6)) {
      if (staff && internal.checked && person.is_customer) continue;
      const option = h("li", { role: "option", tabindex: "0" }, person.name);
      const choose = () => {
        const start = textarea.selectionStart - match[0].length;
        textarea.setRangeText(`@${person.name} `, start, textarea.selectionStart, "end");
        mentions.set(person.name, person.id);
        suggestions.replaceChildren();
        textarea.focus();
      };
      option.addEventListener("click", choose);
      option.addEventListener("keydown", (e) => e.key === "Enter" && choose());
      suggestions.append(option);
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = textarea.value.trim();
    if (!text) return;
    error.textContent = "";
    send.disabled = true;
    try {
      const mentioned = [...mentions].filter(([name]) => text.includes(`@${name}`)).map(([, id]) => id);
      const created = await api<Comment>("POST", `/api/tasks/${taskId}/comments`, {
        body: text,
        visibility: staff && internal.checked ? "internal" : "shared",
        mentions: mentioned,
        reply_to_id: replyTo?.id ?? null,
      });
      textarea.value = ""; // only once the server has it
      replyTo = null;
      replyNote.textContent = "";
      mentions.clear();
      mergeComment(thread, created);
      draw();
      void markRead(created.id);
    } catch (err) {
      const reason = err instanceof ApiError && err.code === "rate_limited" ? t("thread.rateLimited") : (err as Error).message;
      error.textContent = t("thread.failed", { reason });
    } finally {
      send.disabled = false;
    }
  });

  const markRead = async (commentId: number) => {
    await api("POST", `/api/tasks/${taskId}/read`, { comment_id: commentId }).catch(() => undefined);
  };
  const newest = Math.max(0, ...thread.keys());
  if (newest) void markRead(newest);

  const audience = staff ? "staff" : "shared";
  const offThread = live.subscribe(`task:${taskId}:${audience}`, (message) => {
    if (message.kind === "event") {
      const data = message.event.data;
      if (typeof data.type === "string" && data.type.startsWith("comment.")) {
        const comment = data.comment as Comment;
        const held = thread.get(comment.id);
        if (held && data.type === "comment.reactions" && held.version === comment.version) {
          thread.set(comment.id, { ...held, reactions: comment.reactions });
        } else {
          mergeComment(thread, comment);
        }
        draw();
        if (data.type === "comment.created" && document.visibilityState === "visible") void markRead(comment.id);
      }
    } else if (message.kind === "reload") {
      void api<Page<Comment>>("GET", `/api/tasks/${taskId}/comments?limit=50`).then((page) => {
        for (const c of page.items) mergeComment(thread, c);
        draw();
      });
    }
  });
  const showTyping = (message: { kind: string; frame?: Record<string, unknown> }) => {
    if (message.kind !== "presence" || !message.frame) return;
    const info = (message.frame.joined ?? message.frame.updated ?? message.frame.left) as
      | { client_id: string; user_id: string; name: string; data: { typing?: boolean } }
      | undefined;
    if (!info || info.user_id === String(user.id)) return;
    if (message.frame.left || !info.data?.typing) typing.delete(info.client_id);
    else typing.set(info.client_id, info.name);
    const names = [...new Set(typing.values())].join(", ");
    typingLine.textContent = names ? t("thread.typing", { names }) : "";
  };
  const offRoom = live.subscribe(`room:task:${taskId}`, showTyping);
  const offStaffRoom = staff ? live.subscribe(`room:task:${taskId}:staff`, showTyping) : () => undefined;

  // Attachments: the task's files the viewer may see; anyone who may upload adds one (internal for staff by
  // default on an internal task, as the server decides).
  const attachments = h("ul", { class: "attachments" });
  const drawAttachments = async () => {
    const files = await api<{ items: StoredFile[] }>("GET", `/api/projects/${projectId}/files?task_id=${taskId}`);
    attachments.replaceChildren(
      ...files.items.map((f) =>
        h(
          "li",
          {},
          h("a", { href: f.download_url, download: f.name }, f.name),
          ` · ${formatSize(f.size)}`,
          f.visibility === "internal" ? h("span", { class: "tag-internal" }, t("task.internal")) : null,
        ),
      ),
    );
  };
  const picker = h("input", { type: "file", id: "attach-file" });
  const attachError = h("p", { class: "error", role: "alert" });
  picker.addEventListener("change", async () => {
    const file = picker.files?.[0];
    if (!file) return;
    attachError.textContent = "";
    try {
      await upload(`/api/projects/${projectId}/files`, file, { name: file.name, task_id: String(taskId) });
      picker.value = "";
      await drawAttachments();
    } catch (err) {
      attachError.textContent = (err as Error).message || t("error.generic");
    }
  });
  void drawAttachments();

  const status = statuses.items.find((s) => s.id === task.status_id);
  draw();
  setMode();
  mount(
    root,
    h(
      "main",
      { class: "page task-page" },
      h("a", { href: `/projects/${projectId}`, "data-link": "true" }, `← ${t("task.back")}`),
      h("h1", {}, task.title, task.visibility === "internal" ? h("span", { class: "tag-internal" }, t("task.internal")) : null),
      h(
        "dl",
        { class: "task-facts" },
        h("dt", {}, t("task.status")),
        h("dd", {}, status?.name ?? ""),
        h("dt", {}, t("task.assignee")),
        h("dd", {}, task.assignee?.name ?? t("task.unassigned")),
        h("dt", {}, t("task.dueDate")),
        h("dd", {}, task.due_date ? formatDate(task.due_date) : t("task.noDue"), " ", colourBadge(task.colour_class)),
      ),
      h(
        "section",
        { "aria-labelledby": "attachments-title" },
        h("h2", { id: "attachments-title" }, t("task.attachments")),
        attachments,
        h("label", { for: "attach-file" }, t("task.attach")),
        picker,
        attachError,
      ),
      h("section", { "aria-labelledby": "thread-title" }, h("h2", { id: "thread-title" }, t("thread.title")), olderButton, list, typingLine, form),
    ),
  );
  return () => {
    offThread();
    offRoom();
    offStaffRoom();
  };
}
