// Saving one field of a task: version-checked, with a quiet "saved", the API's reason beside the field on failure,
// and never a silent loss when someone else changed the same field first.
import { useRef, useState } from "preact/hooks";
import { api, ApiError, type Task } from "../../api";
import { fieldError, reasonFor } from "../../app/errors";
import { t } from "../../i18n";

export type Field = "title" | "description" | "assignee_id" | "due_date" | "milestone_id" | "status_id" | "visibility";

/** What became of a save: on "error" the person's value is kept for another try; on "conflict" theirs is shown. */
export type Outcome = "saved" | "conflict" | "error";

export interface FieldState {
  state: "saving" | "saved" | "error" | "conflict";
  message?: string;
}

/** The field's value as the API takes it, read from the task as the API gives it. */
export function valueOf(task: Task, field: Field): unknown {
  if (field === "assignee_id") return task.assignee?.id ?? null;
  if (field === "description") return task.description ?? "";
  if (field === "milestone_id") return task.milestone_id ?? null;
  return task[field];
}

export function useTaskSaver(task: Task | null, accept: (task: Task) => void) {
  const [states, setStates] = useState<Partial<Record<Field, FieldState>>>({});
  const latest = useRef(task);
  latest.current = task;
  const mark = (field: Field, state: FieldState | null) =>
    setStates((old) => {
      const next = { ...old };
      if (state) next[field] = state;
      else delete next[field];
      return next;
    });

  /**
   * Save `value` into `field`. `startedFrom` is the field's value when the person began to change it: when the
   * server's copy no longer has it, someone else changed this field meanwhile and their value wins, visibly, with
   * the person's own value quoted in the message (`shown`, as they wrote it).
   */
  async function save(field: Field, value: unknown, startedFrom: unknown, shown: string): Promise<Outcome> {
    const base = latest.current;
    if (!base) return "error";
    if (valueOf(base, field) !== startedFrom) {
      mark(field, { state: "conflict", message: t("task.conflict", { mine: shown }) });
      return "conflict";
    }
    mark(field, { state: "saving" });
    for (let attempt = 0; attempt < 2; attempt++) {
      const current = latest.current!;
      try {
        const updated = await api<Task>("PATCH", `/api/tasks/${current.id}`, { [field]: value, version: current.version });
        accept(updated);
        mark(field, { state: "saved" });
        return "saved";
      } catch (err) {
        if (err instanceof ApiError && err.code === "version_conflict") {
          const fresh = await api<Task>("GET", `/api/tasks/${current.id}`);
          accept(fresh);
          latest.current = fresh;
          // Someone changed another field: ours still applies, on the new version. The same field: theirs wins.
          if (valueOf(fresh, field) === startedFrom) continue;
          mark(field, { state: "conflict", message: t("task.conflict", { mine: shown }) });
          return "conflict";
        }
        mark(field, { state: "error", message: fieldError(err, field) ?? reasonFor(err) });
        return "error";
      }
    }
    mark(field, { state: "conflict", message: t("task.conflict", { mine: shown }) });
    return "conflict";
  }

  return { states, save, clear: (field: Field) => mark(field, null), fail: (field: Field, message: string) => mark(field, { state: "error", message }) };
}

/** The quiet line beside a field: "Saving…", "Saved", or why not (an alert). */
export function FieldStatus({ id, state }: { id: string; state?: FieldState }) {
  if (!state) return <span id={id} class="field-status" />;
  if (state.state === "saving" || state.state === "saved") {
    return (
      <span id={id} class="field-status muted" role="status">
        {t(state.state === "saving" ? "form.saving" : "form.saved")}
      </span>
    );
  }
  return (
    <span id={id} class={`field-status error field-${state.state}`} role="alert">
      {state.message}
    </span>
  );
}
