// Writing a comment. The audience is never a checkbox: a shared reply and an internal note are two composers,
// each with its own text and its own button (the internal one hatched, locked and worded so), so no key press
// can send one as the other. Customers get only the shared one.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, type Person } from "../../api";
import { reasonFor } from "../../app/errors";
import { t } from "../../i18n";
import type { Comment } from "./thread-state";
import type { TypingTracker } from "./typing";

export type Audience = "shared" | "internal";
const MAX_COMMENT = 10_000;

interface Props {
  audience: Audience;
  taskId: number;
  staff: boolean;
  people: Person[];
  typing: TypingTracker;
  replyTo: Comment | null;
  clearReply: () => void;
  onPosted: (comment: Comment) => void;
  /** Staff move what they are writing to the other audience (an explicit act, a visible result). */
  onMoveDraft?: (text: string) => void;
  /** Text moved here from the other composer (`n` counts moves, so the same text can arrive twice). */
  incoming?: { text: string; n: number } | null;
  focusToken?: number;
  /** Opened on request (the internal note): the text field takes the focus at once. */
  focusOnMount?: boolean;
}

export function Composer(props: Props) {
  const { audience, taskId, staff, people, typing, replyTo } = props;
  const internal = audience === "internal";
  const room = internal ? `room:task:${taskId}:staff` : `room:task:${taskId}`;
  const id = `comment-body${internal ? "-internal" : ""}`;
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [query, setQuery] = useState<{ at: number; term: string } | null>(null);
  const [active, setActive] = useState(0); // the suggestion the arrow keys are on
  const mentions = useRef(new Map<string, number>());
  const area = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    const moved = props.incoming;
    if (moved) {
      setText((old) => (old ? `${old}\n${moved.text}` : moved.text));
      area.current?.focus();
    }
  }, [props.incoming?.n]);
  useEffect(() => {
    if (props.focusToken || props.focusOnMount) area.current?.focus();
  }, [props.focusToken]);

  const candidates = query
    ? people.filter((p) => (!internal || !p.is_customer) && p.name.toLowerCase().startsWith(query.term.toLowerCase())).slice(0, 6)
    : [];
  const chosen = Math.min(active, Math.max(candidates.length - 1, 0));

  const onInput = (value: string, caret: number) => {
    setText(value);
    setError("");
    typing.typed(room);
    const match = value.slice(0, caret).match(/@([\p{L} ]{0,30})$/u);
    setQuery(match ? { at: caret - match[0].length, term: match[1] } : null);
    setActive(0);
  };
  const mention = (person: Person) => {
    const el = area.current!;
    const before = text.slice(0, query!.at);
    const after = text.slice(el.selectionStart);
    const inserted = `@${person.name} `;
    // Back in the text at once, caret after the name, so the next key typed lands there (not on the list).
    const next = before + inserted + after;
    el.value = next;
    el.focus();
    el.setSelectionRange(before.length + inserted.length, before.length + inserted.length);
    setText(next);
    mentions.current.set(person.name, person.id);
    setQuery(null);
  };

  const post = async () => {
    const body = text.trim();
    if (!body || busy) {
      if (!body) setError(t("thread.emptyBody"));
      return;
    }
    if (body.length > MAX_COMMENT) return setError(t("thread.tooLong"));
    setBusy(true);
    setError("");
    try {
      const created = await api<Comment>("POST", `/api/tasks/${taskId}/comments`, {
        body,
        visibility: audience,
        mentions: [...mentions.current].filter(([name]) => body.includes(`@${name}`)).map(([, pid]) => pid),
        reply_to_id: replyTo?.id ?? null,
      });
      setText(""); // only once the server has it
      mentions.current.clear();
      typing.stop();
      props.clearReply();
      props.onPosted(created);
    } catch (err) {
      setError(t("thread.failed", { reason: reasonFor(err) }));
    } finally {
      setBusy(false);
    }
  };

  const label = internal ? t("thread.internalLabel") : staff ? t("thread.sharedLabel") : t("thread.placeholder");
  return (
    <form
      class={`composer${internal ? " composer-internal" : " composer-shared"}`}
      data-staff-only={internal || undefined}
      aria-label={label}
      aria-busy={busy}
      onSubmit={(e) => e.preventDefault() /* posting is only ever a press on a named button */}
    >
      {staff && (
        <p class="composer-audience" id={`${id}-audience`} data-staff-only>
          <span aria-hidden="true">{internal ? "🔒 " : "👥 "}</span>
          {internal ? t("thread.internalHint") : t("thread.sharedHint")}
        </p>
      )}
      {replyTo && (
        <p class="muted reply-note">
          {t("thread.replyingTo", { name: replyTo.author?.name ?? "—" })}{" "}
          <button type="button" class="link" onClick={props.clearReply}>
            {t("thread.cancel")}
          </button>
        </p>
      )}
      <label for={id} class="visually-hidden">
        {label}
      </label>
      <textarea
        id={id}
        ref={area}
        rows={3}
        value={text}
        placeholder={internal ? t("thread.internalPlaceholder") : t("thread.placeholder")}
        aria-describedby={staff ? `${id}-audience` : undefined}
        onInput={(e) => onInput(e.currentTarget.value, e.currentTarget.selectionStart)}
        // Leaving the text closes the suggestions, unless focus went into them (Tab, to pick one by keyboard).
        onBlur={(e) => {
          if (!(e.relatedTarget instanceof Element && e.relatedTarget.closest(".suggestions"))) setQuery(null);
        }}
        aria-activedescendant={candidates.length ? `${id}-suggestion-${chosen}` : undefined}
        onKeyDown={(e) => {
          // With suggestions open, the arrow keys choose a person and Enter takes them (Escape closes the list);
          // otherwise Enter is a new line, as always.
          if (!candidates.length) return;
          if (e.key === "ArrowDown" || e.key === "ArrowUp") {
            e.preventDefault();
            const step = e.key === "ArrowDown" ? 1 : candidates.length - 1;
            setActive((chosen + step) % candidates.length);
          } else if (e.key === "Enter") {
            e.preventDefault();
            mention(candidates[chosen]);
          } else if (e.key === "Escape") {
            e.preventDefault();
            setQuery(null);
          }
        }}
      />
      {candidates.length > 0 && (
        <ul
          class="suggestions"
          role="listbox"
          aria-label={t("thread.mentionSuggestions")}
          // A press, however long (a slow tap on a phone), keeps focus in the text, so the list stays until the click
          // picks a person.
          onMouseDown={(e) => e.preventDefault()}
          onFocusOut={(e) => {
            const to = e.relatedTarget;
            if (!(to instanceof Element && (to.closest(".suggestions") || to === area.current))) setQuery(null);
          }}
        >
          {candidates.map((person, i) => (
            <li
              key={person.id}
              id={`${id}-suggestion-${i}`}
              role="option"
              aria-selected={i === chosen}
              tabIndex={0}
              onClick={() => mention(person)}
              onKeyDown={(e) => e.key === "Enter" && (e.preventDefault(), mention(person))}
            >
              {person.name}
            </li>
          ))}
        </ul>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="composer-actions">
        <button
          type="button"
          id={internal ? "post-internal" : "post-shared"}
          class={internal ? "post-internal" : "primary post-shared"}
          disabled={busy}
          onClick={() => void post()}
        >
          {internal ? `🔒 ${t("thread.sendInternal")}` : staff ? t("thread.sendShared") : t("thread.send")}
        </button>
        {busy && <span class="muted" role="status">{t("form.saving")}</span>}
        {props.onMoveDraft && text.trim() && (
          <button
            type="button"
            class="link"
            onClick={() => {
              typing.stop();
              props.onMoveDraft!(text);
              setText("");
            }}
          >
            {internal ? t("thread.moveToShared") : t("thread.moveToInternal")}
          </button>
        )}
      </div>
    </form>
  );
}
