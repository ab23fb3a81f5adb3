// Who is looking at the same thing: a presence room's members as avatars.
import { useEffect, useState } from "preact/hooks";
import { liveClient } from "../../app/session";
import { t, tn } from "../../i18n";
import { applyPresence, emptyRoom, people, PRESENCE_LIST_LIMIT, type PresenceEntry } from "../../presence";

export type Presence = PresenceEntry;

/** Avatars shown before "+N": a busy room shows a few faces and how many more people are there. */
const MAX_AVATARS = 12;

/** Join `room` (saying what is viewed) and follow who else is in it. */
export function usePresence(room: string, viewing: string): { people: Presence[]; more: number } {
  const [here, setHere] = useState(emptyRoom);
  useEffect(() => {
    const live = liveClient();
    setHere(emptyRoom());
    return live.subscribe(room, (message) => {
      if (message.kind === "subscribed") {
        live.sendPresence(room, { viewing });
        live.requestPresence(room, PRESENCE_LIST_LIMIT);
      } else if (message.kind === "presence") {
        const frame = message.frame;
        setHere((old) => applyPresence(old, frame));
      }
    });
  }, [room]);
  const { shown, more } = people(here, MAX_AVATARS);
  return { people: shown, more };
}

export function Avatars({ people, more = 0 }: { people: Presence[]; more?: number }) {
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
      {more > 0 && (
        <li class="avatar avatar-more" title={tn("board.moreHere", more)}>
          <span aria-hidden="true">+{more}</span>
          <span class="visually-hidden">{tn("board.moreHere", more)}</span>
        </li>
      )}
    </ul>
  );
}
