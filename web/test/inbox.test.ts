import { describe, expect, it } from "vitest";
import { setLocale, tn } from "../src/i18n";
import { applyEvent, noticeLink, noticeText, undoMarkRead, type Inbox, type Notice } from "../src/screens/inbox/state";

function notice(id: number, extra: Partial<Notice> = {}): Notice {
  return {
    id,
    kind: "mention",
    project_id: 1,
    task_id: 7,
    comment_id: 30 + id,
    request_id: null,
    text: `n${id}`,
    created_at: "2026-12-06T10:00:00Z",
    read_at: null,
    ...extra,
  };
}

describe("the inbox follows personal events", () => {
  const start: Inbox = { items: [notice(1), notice(2, { read_at: "2026-12-06T10:01:00Z" })], unread: 1 };

  it("counts a new notification once, newest first", () => {
    const event = { type: "notification.created", notification: notice(3) };
    const { state } = applyEvent(start, event);
    expect(state.items.map((n) => n.id)).toEqual([3, 1, 2]);
    expect(state.unread).toBe(2);
    expect(applyEvent(state, event).state).toBe(state); // delivered twice (a resume): counted once
  });

  it("marks read on another device: all at once, or some (then the server recounts)", () => {
    const all = applyEvent(start, { type: "notifications.read", all: true });
    expect(all.state.unread).toBe(0);
    expect(all.state.items.every((n) => n.read_at !== null)).toBe(true);
    expect(all.refetch).toBe(false);
    const some = applyEvent(start, { type: "notifications.read", ids: [1] });
    expect(some.state.items[0].read_at).not.toBeNull();
    expect(some.refetch).toBe(true);
  });

  it("leaves the inbox alone for other events", () => {
    expect(applyEvent(start, { type: "waiting.changed" })).toEqual({ state: start, refetch: false });
  });
});

describe("notification links", () => {
  it("go to the comment, the request, the task or the feedback ask", () => {
    expect(noticeLink(notice(1))).toBe("/projects/1/tasks/7#comment-31");
    expect(noticeLink(notice(2, { kind: "request", comment_id: null, task_id: null, request_id: 4 }))).toBe(
      "/projects/1/requests/4",
    );
    expect(noticeLink(notice(3, { kind: "assignment", comment_id: null }))).toBe("/projects/1/tasks/7");
    expect(noticeLink(notice(4, { kind: "feedback", comment_id: null, task_id: null }))).toBe(
      "/projects/1/reports#feedback",
    );
    expect(noticeLink(notice(5, { project_id: null }))).toBeNull();
  });
});

describe("counted messages", () => {
  it("use the language's plural forms", () => {
    setLocale("sv");
    expect(tn("inbox.open", 1)).toBe("Aviseringar, 1 oläst");
    expect(tn("inbox.open", 3)).toBe("Aviseringar, 3 olästa");
    setLocale("en");
    expect(tn("waiting.count", 1)).toBe("1 thing is waiting on you");
    expect(tn("waiting.count", 0)).toBe("0 things are waiting on you");
  });
});

describe("a notification's words", () => {
  it("come from the reader's catalog, by kind and request step", () => {
    const mention = notice(1, { params: { actor: "Anna", task: "Logo" }, text: "Anna mentioned you on Logo" });
    const asked = notice(2, { kind: "request", params: { request: "Banner", step: "asked" }, text: "x" });
    const merged = notice(3, { kind: "request", params: { request: "Banner", step: "merged" }, text: "x" });
    setLocale("sv");
    expect(noticeText(mention)).toBe("Anna nämnde dig i Logo");
    expect(noticeText(asked)).toBe("Mer information behövs om Banner");
    expect(noticeText(merged)).toBe("Banner har slagits ihop med en befintlig uppgift");
    setLocale("en");
    expect(noticeText(asked)).toBe("More information is needed on Banner");
  });

  it("are a general sentence for the kind when the params cannot word it, never the stored text", () => {
    setLocale("sv");
    // An old row migration 0020 could not parse: params {} and an English sentence.
    expect(noticeText(notice(1, { params: {}, text: "Anna: Logo" }))).toBe("Någon nämnde dig i en kommentar");
    expect(noticeText(notice(2, { kind: "later", params: { a: "b" }, text: "later words" }))).toBe(
      "Något här behöver din uppmärksamhet",
    );
    expect(noticeText(notice(3, { kind: "request", params: { step: "reopened" }, text: "r" }))).toBe(
      "En förfrågan du följer har ändrats",
    );
    // A params object that lacks a placeholder the sentence needs.
    expect(noticeText(notice(4, { kind: "status", params: { task: "Logo" }, text: "Logo → Klar" }))).toBe(
      "En uppgift du följer har fått ny status",
    );
    setLocale("en");
    expect(noticeText(notice(5, { kind: "feedback", text: "Acme" }))).toBe("You are asked for feedback on a project");
  });
});

describe("a refused mark-read", () => {
  it("is undone: the marked notifications are unread again, the count as before", () => {
    const before: Inbox = { items: [notice(1), notice(2), notice(3, { read_at: "2026-12-06T10:01:00Z" })], unread: 2 };
    const some = applyEvent(before, { type: "notifications.read", ids: [1] }).state;
    const undone = undoMarkRead(some, before, [1]);
    expect(undone.items.map((n) => n.read_at === null)).toEqual([true, true, false]);
    const all = applyEvent(before, { type: "notifications.read", all: true }).state;
    expect(all.unread).toBe(0);
    const allUndone = undoMarkRead(all, before, "all");
    expect(allUndone.unread).toBe(2);
    expect(allUndone.items.map((n) => n.read_at === null)).toEqual([true, true, false]);
  });
});
