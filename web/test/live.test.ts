import { describe, expect, it } from "vitest";
import { backoffDelay, LiveClient, splitFrames, type ChannelMessage, type SocketLike } from "../src/live";

class FakeSocket implements SocketLike {
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  sent: Record<string, unknown>[] = [];
  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(): void {}
  push(...frames: unknown[]): void {
    this.onmessage?.({ data: frames.map((f) => JSON.stringify(f)).join("\n") });
  }
}

function harness() {
  const sockets: FakeSocket[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const client = new LiveClient({
    url: "ws://test/ws",
    socketFactory: () => {
      const socket = new FakeSocket();
      sockets.push(socket);
      return socket;
    },
    setTimer: (fn, ms) => {
      timers.push({ fn, ms });
      return timers.length;
    },
    clearTimer: () => undefined,
    random: () => 0.5,
    pingIntervalMs: 30_000,
  });
  return { client, sockets, timers };
}

const event = (offset: number, data: Record<string, unknown> = {}) => ({
  type: "event",
  channel: "project:1:shared",
  offset,
  epoch: "e1",
  data,
});

describe("splitFrames", () => {
  it("splits coalesced newline-delimited frames", () => {
    expect(splitFrames('{"a":1}\n{"b":2}\n')).toEqual([{ a: 1 }, { b: 2 }]);
  });
});

describe("backoffDelay", () => {
  it("grows exponentially with jitter and is capped", () => {
    expect(backoffDelay(0, 15_000, () => 0)).toBe(125);
    expect(backoffDelay(3, 15_000, () => 1)).toBe(2000);
    expect(backoffDelay(20, 15_000, () => 1)).toBe(15_000);
    expect(backoffDelay(20, 15_000, () => 0)).toBe(7_500);
  });
});

describe("LiveClient", () => {
  it("subscribes when live and delivers events in order, once", () => {
    const { client, sockets } = harness();
    const seen: ChannelMessage[] = [];
    client.subscribe("project:1:shared", (m) => m.kind !== "subscribed" && seen.push(m));
    client.start();
    sockets[0].onopen?.({});
    expect(sockets[0].sent[0]).toMatchObject({ type: "subscribe", channel: "project:1:shared" });
    sockets[0].push({ type: "subscribed", channel: "project:1:shared", position: { offset: 4, epoch: "e1" } });
    sockets[0].push(event(5, { n: 5 }), event(6, { n: 6 }));
    sockets[0].push(event(6, { n: 6 })); // a duplicate is dropped
    expect(seen.map((m) => (m.kind === "event" ? m.event.data.n : m.kind))).toEqual([5, 6]);
    expect(client.positions.get("project:1:shared")).toEqual({ offset: 6, epoch: "e1" });
  });

  it("reconnects with backoff and resumes from the last position", () => {
    const { client, sockets, timers } = harness();
    const states: string[] = [];
    client.onState((s) => states.push(s));
    client.subscribe("project:1:shared", () => undefined);
    client.start();
    sockets[0].onopen?.({});
    sockets[0].push({ type: "subscribed", channel: "project:1:shared", position: { offset: 0, epoch: "e1" } });
    sockets[0].push(event(1), event(2));
    sockets[0].onclose?.({ code: 1006, reason: "" });
    expect(client.state).toBe("reconnecting");
    const retry = timers.filter((t) => t.ms !== 30_000).at(-1)!;
    expect(retry.ms).toBeGreaterThan(0);
    retry.fn();
    sockets[1].onopen?.({});
    expect(sockets[1].sent[0]).toMatchObject({
      type: "subscribe",
      channel: "project:1:shared",
      since: { offset: 2, epoch: "e1" },
    });
    expect(states).toEqual(["connecting", "live", "reconnecting", "live"]);
  });

  it("asks the view to reload when history cannot fill the gap", () => {
    const { client, sockets } = harness();
    const seen: string[] = [];
    client.subscribe("project:1:shared", (m) => seen.push(m.kind));
    client.start();
    sockets[0].onopen?.({});
    sockets[0].push({ type: "subscribed", channel: "project:1:shared", position: { offset: 3, epoch: "e1" } });
    expect(seen.splice(0)).toEqual(["subscribed"]);
    sockets[0].push({ type: "reload", channel: "project:1:shared", position: { offset: 90, epoch: "e1" } });
    sockets[0].push(event(91));
    expect(seen).toEqual(["reload", "event"]);
  });

  it("backs off more each time a busy server turns it away (1013), and resets once served", () => {
    const { client, sockets, timers } = harness();
    client.subscribe("project:1:shared", () => undefined);
    client.start();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      sockets[i].onopen?.({});
      sockets[i].onclose?.({ code: 1013, reason: "server busy, try again later" });
      expect(client.state).toBe("reconnecting");
      const retry = timers.filter((t) => t.ms !== 30_000).at(-1)!;
      delays.push(retry.ms);
      retry.fn();
    }
    expect(delays).toEqual([187.5, 375, 750, 1500]);
    sockets[4].onopen?.({});
    sockets[4].push({ type: "subscribed", channel: "project:1:shared", position: { offset: 0, epoch: "e1" } });
    sockets[4].onclose?.({ code: 1006, reason: "" });
    expect(timers.filter((t) => t.ms !== 30_000).at(-1)!.ms).toBe(187.5);
  });

  it("stops reconnecting once signed out", () => {
    const { client, sockets, timers } = harness();
    client.start();
    sockets[0].onopen?.({});
    const before = timers.length;
    sockets[0].onclose?.({ code: 4401, reason: "session ended" });
    expect(client.state).toBe("signed-out");
    expect(timers.length).toBe(before);
  });

  it("goes offline with the device and resumes when it is back", () => {
    const { client, sockets } = harness();
    client.subscribe("project:1:shared", () => undefined);
    client.start();
    sockets[0].onopen?.({});
    sockets[0].push({ type: "subscribed", channel: "project:1:shared", position: { offset: 0, epoch: "e1" } });
    sockets[0].push(event(1));
    client.pause();
    expect(client.state).toBe("offline");
    client.retryNow();
    sockets[1].onopen?.({});
    expect(sockets[1].sent[0]).toMatchObject({ since: { offset: 1, epoch: "e1" } });
    expect(client.state).toBe("live");
  });

  it("reconnects a half-open socket that stopped answering pings", () => {
    let now = 0;
    const sockets: FakeSocket[] = [];
    const timers: { fn: () => void; ms: number }[] = [];
    const client = new LiveClient({
      url: "ws://test/ws",
      socketFactory: () => {
        const socket = new FakeSocket();
        sockets.push(socket);
        return socket;
      },
      setTimer: (fn, ms) => timers.push({ fn, ms }),
      clearTimer: () => undefined,
      random: () => 0.5,
      pingIntervalMs: 1000,
      clock: () => now,
    });
    client.start();
    sockets[0].onopen?.({});
    now = 1000;
    timers.at(-1)!.fn(); // first ping goes out
    expect(sockets[0].sent.at(-1)).toMatchObject({ type: "ping" });
    now = 3500; // no pong, nothing at all
    timers.at(-1)!.fn();
    expect(client.state).toBe("reconnecting");
  });

  it("tells the view when access is revoked", () => {
    const { client, sockets } = harness();
    const seen: string[] = [];
    client.subscribe("project:1:shared", (m) => seen.push(m.kind));
    client.start();
    sockets[0].onopen?.({});
    sockets[0].push({ type: "unsubscribed", channel: "project:1:shared", reason: "forbidden" });
    expect(seen).toEqual(["revoked"]);
  });

  it("asks for a room's list with a limit, and hands its diffs and list to the room's handler", () => {
    const { client, sockets } = harness();
    const seen: ChannelMessage[] = [];
    client.subscribe("room:project:1", (m) => m.kind === "presence" && seen.push(m));
    client.start();
    sockets[0].onopen?.({});
    sockets[0].push({ type: "subscribed", channel: "room:project:1", position: { offset: 0, epoch: "e1" } });
    client.requestPresence("room:project:1", 100);
    expect(sockets[0].sent.at(-1)).toMatchObject({ type: "presence_list", channel: "room:project:1", limit: 100 });
    const diff = { type: "presence_diff", channel: "room:project:1", joined: [], updated: [], left: [], count: 0, users: 0 };
    sockets[0].push({ type: "presence_list", channel: "room:project:1", clients: [], count: 0, users: 0 }, diff);
    sockets[0].push({ type: "presence", channel: "room:project:1", joined: {} }); // protocol 1: not sent any more
    expect(seen.map((m) => (m.kind === "presence" ? m.frame.type : m.kind))).toEqual(["presence_list", "presence_diff"]);
  });
});
