// Staff only: mark a customer's comment (or emailed reply), or a customer's reply in a request's history, as feedback
// (praise, concern, request for change) with a theme, change or remove the mark. A thread's marks are read from
// GET /api/tasks/{id}/feedback-marks and follow the thread's staff stream; a request's from
// GET /api/requests/{id}/feedback-marks and the project's staff stream ("feedback.marked" on both). Customers never
// load, receive or see them (server/feedback/marks.py).
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { reasonFor } from "../../app/errors";
import { toast } from "../../app/toast";
import { t, type MessageKey } from "../../i18n";
import "./feedback-mark.css";

export interface FeedbackMark {
  comment_id: number | null;
  task_id: number | null;
  request_event_id: number | null;
  request_id: number | null;
  kind: "praise" | "concern" | "change";
  theme: string;
  by_email: boolean;
}

const KINDS = ["praise", "concern", "change"] as const;
const THEMES = ["communication", "speed", "quality", "clarity", "people", "tools", "other"];

/** What a mark is on: a comment of a task's thread, or an entry of a request's history. */
export interface MarkTarget {
  kind: "comment" | "request-event";
  id: number;
}

function useMarks(url: string, key: (m: FeedbackMark) => number | null, staff: boolean) {
  const [marks, setMarks] = useState<Map<number, FeedbackMark>>(new Map());
  useEffect(() => {
    if (!staff) return;
    let current = true;
    api<{ items: FeedbackMark[] }>("GET", url)
      .then((r) => current && setMarks(new Map(r.items.map((m) => [key(m) ?? 0, m]))))
      .catch((err: unknown) => current && toast(reasonFor(err)));
    return () => {
      current = false;
    };
  }, [url, staff]);
  const apply = (itemId: number, mark: FeedbackMark | null) =>
    setMarks((old) => {
      const next = new Map(old);
      if (mark) next.set(itemId, mark);
      else next.delete(itemId);
      return next;
    });
  return { marks, apply };
}

/** The task's marks by comment id (staff), and how to apply a live "feedback.marked" event. */
export function useFeedbackMarks(taskId: number, staff: boolean) {
  return useMarks(`/api/tasks/${taskId}/feedback-marks`, (m) => m.comment_id, staff);
}

/** The request's marks by history entry id (staff), and how to apply a live "feedback.marked" event. */
export function useRequestFeedbackMarks(requestId: number, staff: boolean) {
  return useMarks(`/api/requests/${requestId}/feedback-marks`, (m) => m.request_event_id, staff);
}

export function FeedbackMarkControl(props: {
  target: MarkTarget;
  mark: FeedbackMark | undefined;
  apply: (itemId: number, mark: FeedbackMark | null) => void;
}) {
  const { target, mark } = props;
  const itemId = target.id;
  const url = target.kind === "comment" ? `/api/comments/${itemId}/feedback` : `/api/request-events/${itemId}/feedback`;
  const [open, setOpen] = useState(false);
  const [kind, setKind] = useState<FeedbackMark["kind"]>(mark?.kind ?? "concern");
  const [theme, setTheme] = useState(mark?.theme ?? "communication");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const id = target.kind === "comment" ? `fbmark-${itemId}` : `fbmark-event-${itemId}`;

  const start = () => {
    setKind(mark?.kind ?? "concern");
    setTheme(mark?.theme ?? "communication");
    setError("");
    setOpen(true);
  };
  const save = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      props.apply(itemId, await api<FeedbackMark>("PUT", url, { kind, theme }));
      setOpen(false);
      toast(t("fbmark.saved"));
    } catch (err) {
      setError(reasonFor(err));
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    setBusy(true);
    try {
      await api("DELETE", url);
      props.apply(itemId, null);
      setOpen(false);
      toast(t("fbmark.removed"));
    } catch (err) {
      setError(reasonFor(err));
    } finally {
      setBusy(false);
    }
  };

  const label = mark
    ? t("fbmark.edit", { kind: t(`fbmark.kind.${mark.kind}` as MessageKey), theme: t(`feedback.theme.${mark.theme}` as MessageKey) })
    : t("fbmark.mark");
  return (
    <span class="fbmark" data-staff-only>
      <button type="button" class={mark ? `fbmark-tag fbmark-${mark.kind}` : "link"} aria-expanded={open} aria-controls={id} onClick={() => (open ? setOpen(false) : start())}>
        <span aria-hidden="true">★ </span>
        {label}
        {mark?.by_email ? ` (${t("fbmark.byEmail")})` : ""}
      </button>
      {open && (
        <form id={id} class="fbmark-form" onSubmit={(e) => void save(e)} onKeyDown={(e) => e.key === "Escape" && setOpen(false)}>
          <p class="hint">{t("fbmark.staffOnly")}</p>
          <fieldset>
            <legend>{t("fbmark.kind")}</legend>
            {KINDS.map((k) => (
              <label key={k} class="choice">
                <input type="radio" name={`${id}-kind`} value={k} checked={kind === k} onChange={() => setKind(k)} />
                <span>{t(`fbmark.kind.${k}` as MessageKey)}</span>
              </label>
            ))}
          </fieldset>
          <label for={`${id}-theme`}>{t("fbmark.theme")}</label>
          <select id={`${id}-theme`} value={theme} onChange={(e) => setTheme(e.currentTarget.value)}>
            {THEMES.map((th) => (
              <option key={th} value={th}>
                {t(`feedback.theme.${th}` as MessageKey)}
              </option>
            ))}
          </select>
          {error && (
            <p class="error" role="alert">
              {error}
            </p>
          )}
          <div class="fbmark-buttons">
            <button type="submit" class="primary" disabled={busy}>
              {t("fbmark.save")}
            </button>
            {mark && (
              <button type="button" disabled={busy} onClick={() => void remove()}>
                {t("fbmark.remove")}
              </button>
            )}
            <button type="button" onClick={() => setOpen(false)}>
              {t("common.cancel")}
            </button>
          </div>
        </form>
      )}
    </span>
  );
}
