import { describe, expect, it } from "vitest";
import { ReadMarker } from "../src/screens/task/read-marker";
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

describe("ReadMarker", () => {
  // A server that answers each read-position POST when the test says so.
  function server() {
    const calls: { id: number; answer: (ok: boolean) => void }[] = [];
    const reports: unknown[] = [];
    const marker = new ReadMarker({
      send: (id) => new Promise((resolve, reject) => calls.push({ id, answer: (ok) => (ok ? resolve({}) : reject(new Error("500"))) })),
      report: (failure) => reports.push(failure === null ? null : (failure as Error).message),
    });
    return { calls, reports, marker };
  }

  it("says a failure, and Try again sends the furthest position and clears it", async () => {
    const { calls, reports, marker } = server();
    const first = marker.mark(5);
    calls[0].answer(false);
    await first;
    expect(reports).toEqual(["500"]);
    const again = marker.retry();
    expect(calls[1].id).toBe(5);
    calls[1].answer(true);
    await again;
    expect(reports).toEqual(["500", null]);
  });

  it("lets a later mark cover an earlier failure, and never reports one a stored position covers", async () => {
    const { calls, reports, marker } = server();
    const five = marker.mark(5);
    const six = marker.mark(6);
    calls[1].answer(true);
    await six;
    calls[0].answer(false); // 5 failed after 6 was stored: nothing is lost
    await five;
    expect(reports).toEqual([null]);

    const seven = marker.mark(7);
    calls[2].answer(false);
    await seven;
    const later = marker.mark(3); // an older comment seen: the position sent is still the furthest reached
    expect(calls[3].id).toBe(7);
    calls[3].answer(true);
    await later;
    expect(reports).toEqual([null, "500", null]);
    await marker.mark(7); // already stored: not sent again
    expect(calls).toHaveLength(4);
  });
});
