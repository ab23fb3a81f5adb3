// Who is looking at the same thing: a presence room's members as avatars.
import { useEffect, useState } from "preact/hooks";
import { liveClient } from "../../app/session";
import { t } from "../../i18n";

export interface Presence {
  client_id: string;
  user_id: string;
  name: string;
  role: string;
}

/** Join `room` (saying what is viewed) and follow who else is in it. */
export function usePresence(room: string, viewing: string): Presence[] {
  const [here, setHere] = useState<Map<string, Presence>>(new Map());
  useEffect(() => {
    const live = liveClient();
    return live.subscribe(room, (message) => {
      if (message.kind === "subscribed") {
        live.sendPresence(room, { viewing });
        live.requestPresence(room);
      } else if (message.kind === "presence") {
        const frame = message.frame;
        setHere((old) => {
          const next = new Map(frame.type === "presence_list" ? [] : old);
          if (frame.type === "presence_list") {
            for (const p of frame.clients as Presence[]) next.set(p.client_id, p);
          } else {
            const joined = (frame.joined ?? frame.updated) as Presence | undefined;
            const left = frame.left as Presence | undefined;
            if (joined) next.set(joined.client_id, joined);
            if (left) next.delete(left.client_id);
          }
          return next;
        });
      }
    });
  }, [room]);
  const people = new Map<string, Presence>();
  for (const p of here.values()) people.set(p.user_id, p);
  return [...people.values()];
}

export function Avatars({ people }: { people: Presence[] }) {
  return (
    <ul class="avatars" aria-label={t("board.here")}>
      {people.map((p) => (
        <li key={p.user_id} class={`avatar avatar-${p.role}`} title={p.name}>
          <span aria-hidden="true">
            {p.name
              .split(/\s+/)
              .map((w) => w[0])
              .join("")
              .slice(0, 2)}
          </span>
          <span class="visually-hidden">{p.name}</span>
        </li>
      ))}
    </ul>
  );
}
