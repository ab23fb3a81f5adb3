import { describe, expect, it } from "vitest";
import { mergeComment, type Comment } from "../src/screens/task/thread-state";

const comment = (version: number, body: string): Comment => ({
  id: 1,
  task_id: 1,
  author: null,
  body,
  body_html: `<p>${body}</p>`,
  visibility: "shared",
  reply_to: null,
  reactions: [],
  version,
  created_at: "2026-01-01T00:00:00Z",
  edited_at: null,
  deleted: false,
});

describe("mergeComment", () => {
  it("keeps the newest version whatever order events arrive in", () => {
    const thread = new Map<number, Comment>();
    expect(mergeComment(thread, comment(2, "edited"))).toBe(true);
    expect(mergeComment(thread, comment(1, "original"))).toBe(false);
    expect(thread.get(1)?.body).toBe("edited");
    expect(mergeComment(thread, comment(3, ""))).toBe(true);
  });
});
