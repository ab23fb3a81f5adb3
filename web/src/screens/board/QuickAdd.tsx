// "+ Add task" where the eye already is: Enter saves and keeps the field open for the next one, Escape stops.
import { useLayoutEffect, useRef, useState } from "preact/hooks";
import { api, type Task } from "../../api";
import { fieldError, reasonFor } from "../../app/errors";
import { t } from "../../i18n";

const TITLE_MAX = 300; // the API's limit (server/schemas.py Title)

export function validTitle(text: string): "task.titleRequired" | "task.titleTooLong" | null {
  const title = text.trim();
  if (!title) return "task.titleRequired";
  if (title.length > TITLE_MAX) return "task.titleTooLong";
  return null;
}

export function QuickAdd(props: { projectId: number; statusId: number; where: string; onCreated: (task: Task) => void }) {
  const [open, setOpen] = useState(false);
  const [title, setTitle] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const opener = useRef<HTMLButtonElement>(null);
  const id = `quick-add-${props.statusId}`;
  // Focus in the same render that shows the field (not after paint): keys typed right after the click belong to it.
  useLayoutEffect(() => {
    if (open) input.current?.focus();
  }, [open]);

  const stop = () => {
    setOpen(false);
    setTitle("");
    setError(null);
    setTimeout(() => opener.current?.focus());
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    if (busy) return;
    const invalid = validTitle(title);
    if (invalid) {
      setError(t(invalid));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const created = await api<Task>("POST", `/api/projects/${props.projectId}/tasks`, {
        title: title.trim(),
        status_id: props.statusId,
      });
      props.onCreated(created);
      setTitle(""); // only once the server has it; the field stays open for the next one
    } catch (err) {
      setError(fieldError(err, "title") ?? reasonFor(err, { status: props.where }));
    } finally {
      setBusy(false);
      input.current?.focus();
    }
  };

  if (!open) {
    return (
      <button type="button" ref={opener} class="quick-add-open" onClick={() => setOpen(true)}>
        + {t("board.addTask")}
        <span class="visually-hidden"> ({props.where})</span>
      </button>
    );
  }
  return (
    <form class="quick-add" onSubmit={submit} aria-busy={busy}>
      <label for={id} class="visually-hidden">
        {t("board.newTaskIn", { status: props.where })}
      </label>
      <input
        id={id}
        ref={input}
        class="quick-add-title"
        value={title}
        maxLength={TITLE_MAX}
        placeholder={t("board.newTaskPlaceholder")}
        aria-invalid={error ? "true" : "false"}
        aria-describedby={`${id}-hint${error ? ` ${id}-error` : ""}`}
        onInput={(e) => setTitle(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            e.preventDefault();
            stop();
          }
        }}
      />
      {error && (
        <p id={`${id}-error`} class="error" role="alert">
          {error}
        </p>
      )}
      <p id={`${id}-hint`} class="muted hint">
        {busy ? t("form.saving") : t("board.quickAddHint")}
      </p>
    </form>
  );
}
