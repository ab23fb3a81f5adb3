import { describe, expect, it } from "vitest";
import { TypingTracker, TYPING_IDLE_MS } from "../src/screens/task/typing";

function tracker() {
  const sent: [string, boolean][] = [];
  const timers: { fn: () => void; ms: number; cleared: boolean }[] = [];
  const typing = new TypingTracker({
    send: (room, on) => sent.push([room, on]),
    setTimer: (fn, ms) => {
      const timer = { fn, ms, cleared: false };
      timers.push(timer);
      return timer;
    },
    clearTimer: (handle) => {
      if (handle) (handle as { cleared: boolean }).cleared = true;
    },
  });
  const fireLast = () => timers.filter((x) => !x.cleared).at(-1)?.fn();
  return { typing, sent, timers, fireLast };
}

describe("TypingTracker", () => {
  it("says typing once per burst and takes it back when idle", () => {
    const { typing, sent, timers, fireLast } = tracker();
    typing.typed("room:task:1");
    typing.typed("room:task:1");
    expect(sent).toEqual([["room:task:1", true]]);
    expect(timers.at(-1)?.ms).toBe(TYPING_IDLE_MS);
    fireLast();
    expect(sent).toEqual([
      ["room:task:1", true],
      ["room:task:1", false],
    ]);
  });

  it("takes typing back from the shared room when the writer moves to the internal note", () => {
    const { typing, sent } = tracker();
    typing.typed("room:task:1");
    typing.typed("room:task:1:staff");
    expect(sent).toEqual([
      ["room:task:1", true],
      ["room:task:1", false],
      ["room:task:1:staff", true],
    ]);
  });

  it("takes it back on send, and says nothing when nothing was said", () => {
    const { typing, sent } = tracker();
    typing.stop();
    expect(sent).toEqual([]);
    typing.typed("room:task:1:staff");
    typing.stop();
    typing.stop();
    expect(sent).toEqual([
      ["room:task:1:staff", true],
      ["room:task:1:staff", false],
    ]);
  });
});
