// What needs the person's attention, kept live: their notifications (the bell) and a stamp that moves whenever
// their "waiting on you" list may have changed. One subscription to `user:{id}` per tab feeds both; other screens
// that want the person's own events add a listener with `onPersonal` instead of subscribing again (a channel has
// one handler in live.ts).
import { signal } from "@preact/signals";
import { api, type ColourClass, type Page } from "../../api";
import { reasonFor } from "../../app/errors";
import { toast } from "../../app/toast";
import { hasKey, t, type MessageKey } from "../../i18n";
import type { ChannelMessage, LiveClient } from "../../live";

export type NotificationKind = "mention" | "assignment" | "request" | "status" | "feedback";

export interface Notice {
  id: number;
  kind: NotificationKind | string;
  project_id: number | null;
  task_id: number | null;
  comment_id: number | null;
  request_id: number | null;
  /** What the sentence is made of (docs/API.md, notifications): worded here from the catalogs. */
  params?: Record<string, string>;
  /** The sentence in the recipient's language when it was made: kept by the API for compatibility, never shown
   * (it may be English, or a language other than the reader's). */
  text: string;
  created_at: string;
  read_at: string | null;
}

export type WaitingKind = "task" | "request" | "feedback" | "mention";

export interface WaitingItem {
  kind: WaitingKind;
  id: number;
  project_id: number;
  project_name: string;
  task_id: number | null;
  title: string;
  excerpt: string;
  due_date: string | null;
  colour_class: ColourClass;
  since: string;
  link: string;
}

export interface Inbox {
  items: Notice[];
  /** Unread notifications, counted up to UNREAD_CAP (the bell then shows "99+"). */
  unread: number;
  /** Why the notifications could not be loaded (in the reader's language), until a load succeeds. */
  failed?: string;
}

export const UNREAD_CAP = 100;
export const KNOWN_KINDS: readonly string[] = ["mention", "assignment", "request", "status", "feedback"];
export const inbox = signal<Inbox>({ items: [], unread: 0 });
/** Moves when something may have entered or left the person's "waiting on you" list: refetch it. */
export const waitingStamp = signal(0);

type PersonalEvent = Record<string, unknown> & { type?: string };
const listeners = new Set<(event: PersonalEvent) => void>();

/** Hear the person's own events (`user:{id}`); returns the way to stop. */
export function onPersonal(listener: (event: PersonalEvent) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

// Events that say the "waiting on you" list may have changed (docs/PROTOCOL.md, personal events).
const WAITING_HINTS = new Set(["waiting.changed", "feedback.requested", "action_items.changed", "notification.created"]);

/** The inbox after a personal event; `refetch` is true when only the server can tell the new unread count. */
export function applyEvent(state: Inbox, event: PersonalEvent): { state: Inbox; refetch: boolean } {
  if (event.type === "notification.created") {
    const notice = event.notification as Notice;
    if (state.items.some((n) => n.id === notice.id)) return { state, refetch: false };
    return {
      state: { ...state, items: [notice, ...state.items], unread: state.unread + (notice.read_at ? 0 : 1) },
      refetch: false,
    };
  }
  if (event.type === "notifications.read") {
    const all = event.all === true;
    const ids = new Set((event.ids as number[] | undefined) ?? []);
    const now = new Date().toISOString();
    const items = state.items.map((n) => (!n.read_at && (all || ids.has(n.id)) ? { ...n, read_at: now } : n));
    // Notifications older than the loaded page may have been read too: the count comes from the server.
    return { state: { ...state, items, unread: all ? 0 : state.unread }, refetch: !all };
  }
  return { state, refetch: false };
}

/** A notification's sentence in the reader's language, from its kind and params. Without usable params (a kind or
 * request step this client does not know, a placeholder the params lack, or an old notification whose English
 * sentence migration 0020 could not parse) it is a general sentence for its kind: the stored `text` is never shown. */
export function noticeText(n: Notice): string {
  const params = Object.fromEntries(Object.entries(n.params ?? {}).map(([name, value]) => [name, String(value)]));
  let key = `inbox.text.${n.kind}`;
  if (n.kind === "request") key = `inbox.text.request.${params.step === "merged" && !params.task ? "merged_hidden" : params.step}`;
  if (KNOWN_KINDS.includes(n.kind) && hasKey(key)) {
    const needed = [...t(key).matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    if (needed.every((name) => params[name])) return t(key, params);
  }
  return t((KNOWN_KINDS.includes(n.kind) ? `inbox.generic.${n.kind}` : "inbox.generic.other") as MessageKey);
}

/** Where the web client shows a notification's item. */
export function noticeLink(n: Notice): string | null {
  if (n.project_id === null) return null;
  const project = `/projects/${n.project_id}`;
  if (n.comment_id !== null && n.task_id !== null) return `${project}/tasks/${n.task_id}#comment-${n.comment_id}`;
  if (n.request_id !== null) return `${project}/requests/${n.request_id}`;
  if (n.task_id !== null) return `${project}/tasks/${n.task_id}`;
  if (n.kind === "feedback") return `${project}/reports#feedback`;
  return project;
}

export async function loadInbox(): Promise<void> {
  try {
    const [page, unread] = await Promise.all([
      api<Page<Notice>>("GET", "/api/notifications?limit=30"),
      api<Page<Notice>>("GET", `/api/notifications?unread=true&limit=${UNREAD_CAP}`),
    ]);
    inbox.value = { items: page.items, unread: unread.items.length };
  } catch (err) {
    // Kept in the inbox (the panel says it, with a way to try again) rather than a toast at every page load.
    inbox.value = { ...inbox.value, failed: reasonFor(err) };
  }
}

async function refreshUnread(): Promise<void> {
  try {
    const unread = await api<Page<Notice>>("GET", `/api/notifications?unread=true&limit=${UNREAD_CAP}`);
    inbox.value = { ...inbox.value, unread: unread.items.length };
  } catch (err) {
    inbox.value = { ...inbox.value, failed: reasonFor(err) };
  }
}

/** The inbox with a failed mark-read undone: the notifications it marked are unread again (unless the server has
 * since said they were read elsewhere, which only a reload tells), and the count is the one before. */
export function undoMarkRead(state: Inbox, before: Inbox, which: number[] | "all"): Inbox {
  const wasUnread = new Set(
    before.items.filter((n) => n.read_at === null && (which === "all" || which.includes(n.id))).map((n) => n.id),
  );
  const items = state.items.map((n) => (wasUnread.has(n.id) ? { ...n, read_at: null } : n));
  return { ...state, items, unread: which === "all" ? before.unread : state.unread };
}

/** Mark notifications read (`"all"`, or some), here at once and, through the server, on the other devices. If the
 * server refuses, the marks are undone and a toast says why. */
export async function markRead(which: number[] | "all"): Promise<void> {
  const before = inbox.value;
  const event = which === "all" ? { type: "notifications.read", all: true } : { type: "notifications.read", ids: which };
  inbox.value = applyEvent(inbox.value, event).state;
  try {
    await api("POST", "/api/notifications/read", which === "all" ? { all: true } : { ids: which });
  } catch (err) {
    inbox.value = undoMarkRead(inbox.value, before, which);
    toast(t("inbox.markFailed", { reason: reasonFor(err) }));
    return;
  }
  if (which !== "all") await refreshUnread();
}

/** Follow `user:{id}` for this tab: the inbox and the waiting stamp stay current. Returns the way to stop. */
export function followPersonal(live: LiveClient, userId: number): () => void {
  void loadInbox(); // shown at once, even before the socket is live (a failure is kept in `inbox.failed`)
  let loaded = false;
  const stop = live.subscribe(`user:${userId}`, (message: ChannelMessage) => {
    if (message.kind === "reload" || (message.kind === "subscribed" && !loaded)) {
      // Loaded once the channel is followed (nothing falls between), and again when events were lost.
      loaded = true;
      void loadInbox();
      waitingStamp.value++;
      return;
    }
    if (message.kind !== "event") return;
    const event = message.event.data as PersonalEvent;
    const { state, refetch } = applyEvent(inbox.value, event);
    inbox.value = state;
    if (refetch) void refreshUnread();
    if (event.type && WAITING_HINTS.has(event.type)) waitingStamp.value++;
    for (const listener of listeners) listener(event);
  });
  return stop;
}
