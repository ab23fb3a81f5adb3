// Who is in a presence room, kept from the hub's frames (docs/PROTOCOL.md, "Presence", protocol 2): the room's
// `presence_list` reply, then each `presence_diff` applied on top. Pure, so the board and the thread share it.

export interface PresenceEntry {
  client_id: string;
  user_id: string;
  name: string;
  role: string;
  data?: Record<string, unknown>;
}

export interface Room {
  /** Entries by client id: all of them, or (when `sampled`) those the list showed plus those that came since. */
  entries: Map<string, PresenceEntry>;
  /** Entries (sockets) and different people in the whole room, as the server last said. */
  count: number;
  users: number;
  sampled: boolean;
}

/** What the board asks for: past this many entries the server answers a sample and the counts. */
export const PRESENCE_LIST_LIMIT = 100;

export const emptyRoom = (): Room => ({ entries: new Map(), count: 0, users: 0, sampled: false });

function distinctUsers(entries: Map<string, PresenceEntry>): number {
  return new Set([...entries.values()].map((e) => e.user_id)).size;
}

/** The room after `frame` (a `presence_list` reply or a `presence_diff`); other frames leave it as it was. */
export function applyPresence(room: Room, frame: Record<string, unknown>): Room {
  if (frame.type === "presence_list") {
    const entries = new Map<string, PresenceEntry>();
    for (const p of (frame.clients ?? []) as PresenceEntry[]) entries.set(p.client_id, p);
    return {
      entries,
      count: (frame.count as number | undefined) ?? entries.size,
      users: (frame.users as number | undefined) ?? distinctUsers(entries),
      sampled: frame.truncated === true,
    };
  }
  if (frame.type !== "presence_diff") return room;
  const entries = new Map(room.entries);
  for (const p of (frame.left ?? []) as PresenceEntry[]) entries.delete(p.client_id);
  for (const p of [...((frame.joined ?? []) as PresenceEntry[]), ...((frame.updated ?? []) as PresenceEntry[])]) {
    entries.set(p.client_id, p);
  }
  return {
    entries,
    count: (frame.count as number | undefined) ?? entries.size,
    users: (frame.users as number | undefined) ?? distinctUsers(entries),
    sampled: room.sampled,
  };
}

/** Which diff entries a frame carries as changed or gone, for views that follow changes (who is typing). */
export function presenceChanges(frame: Record<string, unknown>): { here: PresenceEntry[]; gone: PresenceEntry[] } {
  if (frame.type !== "presence_diff") return { here: [], gone: [] };
  return {
    here: [...((frame.joined ?? []) as PresenceEntry[]), ...((frame.updated ?? []) as PresenceEntry[])],
    gone: (frame.left ?? []) as PresenceEntry[],
  };
}

/** One entry per person (a user with two tabs is shown once), at most `max`, and how many more people are here. */
export function people(room: Room, max: number): { shown: PresenceEntry[]; more: number } {
  const byUser = new Map<string, PresenceEntry>();
  for (const p of room.entries.values()) if (!byUser.has(p.user_id)) byUser.set(p.user_id, p);
  const shown = [...byUser.values()].slice(0, max);
  return { shown, more: Math.max(0, Math.max(room.users, byUser.size) - shown.length) };
}
