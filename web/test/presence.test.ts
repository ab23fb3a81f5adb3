import { describe, expect, it } from "vitest";
import { applyPresence, emptyRoom, people, presenceChanges, type PresenceEntry } from "../src/presence";

const entry = (client: string, user: string, data: Record<string, unknown> = {}): PresenceEntry => ({
  client_id: client,
  user_id: user,
  name: `Name ${user}`,
  role: "staff",
  data,
});

const diff = (joined: PresenceEntry[], updated: PresenceEntry[], left: PresenceEntry[], count: number, users: number) => ({
  type: "presence_diff",
  channel: "room:project:1",
  joined,
  updated,
  left,
  count,
  users,
});

describe("applyPresence", () => {
  it("takes the list, then applies each diff on top", () => {
    let room = applyPresence(emptyRoom(), {
      type: "presence_list",
      clients: [entry("a", "1"), entry("b", "2")],
      count: 2,
      users: 2,
      truncated: false,
    });
    room = applyPresence(room, diff([entry("c", "3")], [entry("a", "1", { viewing: "board" })], [entry("b", "2")], 2, 2));
    expect([...room.entries.keys()].sort()).toEqual(["a", "c"]);
    expect(room.entries.get("a")?.data).toEqual({ viewing: "board" });
    expect([room.count, room.users, room.sampled]).toEqual([2, 2, false]);
  });

  it("a left for someone it never heard of changes nothing, and a new list replaces everything", () => {
    let room = applyPresence(emptyRoom(), diff([], [], [entry("x", "9")], 0, 0));
    expect(room.entries.size).toBe(0);
    room = applyPresence(room, diff([entry("a", "1")], [], [], 1, 1));
    room = applyPresence(room, { type: "presence_list", clients: [entry("b", "2")], count: 1, users: 1, truncated: false });
    expect([...room.entries.keys()]).toEqual(["b"]);
  });

  it("past the list's limit keeps the counts the server sends", () => {
    let room = applyPresence(emptyRoom(), {
      type: "presence_list",
      clients: [entry("a", "1"), entry("b", "2")],
      count: 340,
      users: 120,
      truncated: true,
    });
    room = applyPresence(room, diff([entry("c", "3")], [], [entry("zz", "77")], 340, 120));
    expect(room.sampled).toBe(true);
    expect(people(room, 5)).toEqual({ shown: [entry("a", "1"), entry("b", "2"), entry("c", "3")], more: 117 });
  });

  it("ignores frames that are not presence", () => {
    const room = emptyRoom();
    expect(applyPresence(room, { type: "event" })).toBe(room);
  });
});

describe("people", () => {
  it("shows a person with two tabs once, and caps what it shows", () => {
    const room = applyPresence(emptyRoom(), {
      type: "presence_list",
      clients: [entry("a", "1"), entry("a2", "1"), entry("b", "2"), entry("c", "3")],
      count: 4,
      users: 3,
      truncated: false,
    });
    expect(people(room, 10)).toEqual({ shown: [entry("a", "1"), entry("b", "2"), entry("c", "3")], more: 0 });
    expect(people(room, 2).more).toBe(1);
  });
});

describe("presenceChanges", () => {
  it("lists the entries that are here and those that left", () => {
    const changes = presenceChanges(diff([entry("a", "1")], [entry("b", "2", { typing: true })], [entry("c", "3")], 2, 2));
    expect(changes.here.map((p) => p.client_id)).toEqual(["a", "b"]);
    expect(changes.gone.map((p) => p.client_id)).toEqual(["c"]);
    expect(presenceChanges({ type: "presence_list" })).toEqual({ here: [], gone: [] });
  });
});
