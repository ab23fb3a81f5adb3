// "Waiting on you": every kind of item that waits on the person (GET /api/me/waiting), across their projects, most
// urgent first, each row saying what to do, with the colour, an icon and a word. Refetched live on every hint.
import { useEffect, useState } from "preact/hooks";
import { api, type ColourClass } from "../../api";
import { formatDate, t, tn, type MessageKey } from "../../i18n";
import { waitingStamp, type WaitingItem, type WaitingKind } from "../inbox/state";
import "./home.css";

const COLOUR_ICONS: Record<ColourClass, string> = { overdue: "!", due_soon: "◷", on_track: "✓", done: "✔" };
const KIND_ICONS: Record<WaitingKind, string> = { task: "☐", request: "?", feedback: "★", mention: "@" };
const COLOURS: ColourClass[] = ["overdue", "due_soon", "on_track", "done"];

export function ColourBadge({ colour }: { colour: ColourClass }) {
  // Colour is never the only signal: an icon and a word go with it.
  return (
    <span class={`badge badge-${colour}`}>
      <span aria-hidden="true">{COLOUR_ICONS[colour]}</span> {t(`colour.${colour}` as MessageKey)}
    </span>
  );
}

function Row({ item }: { item: WaitingItem }) {
  return (
    <li class={`card waiting-item card-${item.colour_class}`} data-kind={item.kind} data-id={item.id}
      data-focus-key={`${item.kind}:${item.id}`}>
      <h3 class="card-title">
        <span class="waiting-kind">
          <span aria-hidden="true">{KIND_ICONS[item.kind]}</span> {t(`waiting.kind.${item.kind}` as MessageKey)}
        </span>
        <span>{item.title}</span>
      </h3>
      <p class="card-project">{item.project_name}</p>
      {item.excerpt && <p class="waiting-excerpt">“{item.excerpt}”</p>}
      <p class="card-meta">
        <ColourBadge colour={item.colour_class} />{" "}
        {item.due_date ? t("task.due", { date: formatDate(item.due_date) }) : null}
      </p>
      <a class="waiting-action" href={item.link}>
        {t(`waiting.action.${item.kind}` as MessageKey)} →
      </a>
    </li>
  );
}

export function WaitingOnYou() {
  const [items, setItems] = useState<WaitingItem[] | null>(null);
  const [failed, setFailed] = useState(false);
  const stamp = waitingStamp.value;
  useEffect(() => {
    let current = true;
    api<{ items: WaitingItem[] }>("GET", "/api/me/waiting")
      .then((answer) => {
        if (!current) return;
        setItems(answer.items);
        setFailed(false);
      })
      .catch(() => current && setFailed(true));
    return () => {
      current = false;
    };
  }, [stamp]);
  return (
    <section class="waiting" aria-labelledby="waiting-title" aria-busy={items === null}>
      <h2 id="waiting-title">{t("home.waitingOnYou")}</h2>
      {items !== null && items.length > 0 && (
        <p class="muted" role="status">
          {tn("waiting.count", items.length)}
        </p>
      )}
      <div class="legend" role="note" aria-label={t("colour.legend")}>
        {COLOURS.map((c) => (
          <ColourBadge key={c} colour={c} />
        ))}
      </div>
      {failed && <p class="error">{t("waiting.failed")}</p>}
      {items !== null &&
        (items.length ? (
          <ul class="waiting-list">
            {items.map((item) => (
              <Row key={`${item.kind}:${item.id}`} item={item} />
            ))}
          </ul>
        ) : (
          <p class="muted">{t("home.nothingWaiting")}</p>
        ))}
    </section>
  );
}
