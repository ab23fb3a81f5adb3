// The task's fields. Staff edit each in place and each saves on its own; a customer reads them (and moves a task
// assigned to them, if the project lets them). What the API refuses a role is not offered to it.
import { useState } from "preact/hooks";
import type { Milestone, Person, Status, Task } from "../../api";
import { confirmDialog } from "../../app/confirm";
import { formatDate, t } from "../../i18n";
import { ColourBadge } from "../common/TaskCard";
import { validTitle } from "../board/QuickAdd";
import { RichText } from "./Markdown";
import { FieldStatus, useTaskSaver, valueOf, type Field } from "./save";

const DESCRIPTION_MAX = 20_000; // the API's limit (server/schemas.py Text)

interface Props {
  task: Task;
  accept: (task: Task) => void;
  statuses: Status[];
  milestones: Milestone[];
  people: Person[];
  editable: boolean;
  movable: boolean;
}

/** A text field edited in place: a draft while typing, saved on blur (and Enter for one line). */
function useDraft(task: Task, field: Field) {
  const [draft, setDraft] = useState<{ value: string; from: unknown } | null>(null);
  const shown = draft ? draft.value : String(valueOf(task, field) ?? "");
  return {
    shown,
    draft,
    edit: (value: string) => setDraft((d) => ({ value, from: d ? d.from : valueOf(task, field) })),
    done: () => setDraft(null),
  };
}

export function Details({ task, accept, statuses, milestones, people, editable, movable }: Props) {
  const { states, save, fail } = useTaskSaver(task, accept);
  const title = useDraft(task, "title");
  const description = useDraft(task, "description");
  const [previewing, setPreviewing] = useState(false);
  const shared = task.visibility === "shared";
  const described = (field: string) => `task-${field}-status`;

  const saveTitle = async () => {
    if (!title.draft || title.draft.value === task.title) return title.done();
    const invalid = validTitle(title.draft.value);
    if (invalid) return fail("title", t(invalid));
    const outcome = await save("title", title.draft.value.trim(), title.draft.from, title.draft.value);
    if (outcome !== "error") title.done();
  };
  const saveDescription = async () => {
    if (!description.draft || description.draft.value === (task.description ?? "")) return description.done();
    if (description.draft.value.length > DESCRIPTION_MAX) return fail("description", t("task.descriptionTooLong"));
    const outcome = await save("description", description.draft.value, description.draft.from, description.draft.value);
    if (outcome !== "error") description.done();
  };
  const choose = (field: Field, value: unknown, label: string) => void save(field, value, valueOf(task, field), label);

  const changeVisibility = async () => {
    const next = shared ? "internal" : "shared";
    if (next === "internal" && task.assignee?.is_customer) return fail("visibility", t("task.unassignCustomerFirst"));
    const yes = await confirmDialog({
      title: t(shared ? "task.makeInternalTitle" : "task.shareTitle"),
      body: t(shared ? "task.makeInternalBody" : "task.shareBody", { title: task.title }),
      confirm: t(shared ? "task.makeInternal" : "task.share"),
    });
    if (yes) await save("visibility", next, task.visibility, t(shared ? "task.makeInternal" : "task.share"));
  };

  const status = statuses.find((s) => s.id === task.status_id);
  // The status is a select for staff (under its label) and for a customer who may move the task (in the facts list,
  // where its name is its aria-label).
  const statusSelect = (ariaLabel?: string) => (
    <>
      <select
        id="task-status"
        aria-label={ariaLabel}
        aria-describedby={described("status_id")}
        value={String(task.status_id)}
        onChange={(e) => choose("status_id", Number(e.currentTarget.value), e.currentTarget.selectedOptions[0].text)}
      >
        {statuses.map((s) => (
          <option key={s.id} value={String(s.id)}>
            {s.name}
          </option>
        ))}
      </select>
      <FieldStatus id={described("status_id")} state={states.status_id} />
    </>
  );
  // Only whom the API would take: customers only on shared tasks, shared tasks only in shared milestones.
  const assignable = people.filter((p) => shared || !p.is_customer);
  const placeable = milestones.filter((m) => !m.completed_at && (!shared || m.visibility === "shared"));

  if (!editable) {
    return (
      <>
        <h1>{task.title}</h1>
        <dl class="task-facts">
          <dt>{t("task.status")}</dt>
          <dd>{movable ? statusSelect(t("task.status")) : status?.name}</dd>
          <dt>{t("task.assignee")}</dt>
          <dd>{task.assignee?.name ?? t("task.unassigned")}</dd>
          <dt>{t("task.dueDate")}</dt>
          <dd>
            {task.due_date ? formatDate(task.due_date) : t("task.noDue")} <ColourBadge colour={task.colour_class} />
          </dd>
        </dl>
        {task.description ? <RichText text={task.description} class="task-description" /> : null}
      </>
    );
  }

  return (
    <div class={`task-edit${shared ? "" : " is-internal"}`} data-staff-only>
      <h1 class="visually-hidden">{task.title}</h1>
      <div class="field">
        <label for="task-title">{t("task.titleLabel")}</label>
        <input
          id="task-title"
          class="task-title-input"
          value={title.shown}
          maxLength={300}
          aria-invalid={states.title?.state === "error" ? "true" : "false"}
          aria-describedby={described("title")}
          onInput={(e) => title.edit(e.currentTarget.value)}
          onBlur={() => void saveTitle()}
          onKeyDown={(e) => {
            if (e.key === "Enter") {
              e.preventDefault();
              void saveTitle();
            } else if (e.key === "Escape") title.done();
          }}
        />
        <FieldStatus id={described("title")} state={states.title} />
      </div>

      <div class={`audience ${shared ? "audience-shared" : "audience-internal"}`}>
        <p id="task-audience">
          <span aria-hidden="true">{shared ? "👥 " : "🔒 "}</span>
          {t(shared ? "task.audienceShared" : "task.audienceInternal")}
        </p>
        <button type="button" id="task-visibility" data-staff-only aria-describedby={`task-audience ${described("visibility")}`} onClick={() => void changeVisibility()}>
          {t(shared ? "task.makeInternal" : "task.share")}
        </button>
        <FieldStatus id={described("visibility")} state={states.visibility} />
      </div>

      <div class="field-grid">
        <div class="field">
          <label for="task-status">{t("task.status")}</label>
          {statusSelect()}
        </div>
        <div class="field">
          <label for="task-assignee">{t("task.assignee")}</label>
          <select
            id="task-assignee"
            value={String(task.assignee?.id ?? "")}
            aria-describedby={described("assignee_id")}
            onChange={(e) => {
              const v = e.currentTarget.value;
              choose("assignee_id", v ? Number(v) : null, e.currentTarget.selectedOptions[0].text);
            }}
          >
            <option value="">{t("task.unassigned")}</option>
            {assignable.map((p) => (
              <option key={p.id} value={String(p.id)}>
                {p.is_customer ? t("task.customerPerson", { name: p.name }) : p.name}
              </option>
            ))}
          </select>
          <FieldStatus id={described("assignee_id")} state={states.assignee_id} />
        </div>
        <div class="field">
          <label for="task-due">{t("task.dueDate")}</label>
          <input
            id="task-due"
            type="date"
            value={task.due_date ?? ""}
            aria-describedby={`task-colour ${described("due_date")}`}
            onChange={(e) => {
              const v = e.currentTarget.value;
              choose("due_date", v || null, v ? formatDate(v) : t("task.noDue"));
            }}
          />
          <span id="task-colour">
            <ColourBadge colour={task.colour_class} />
          </span>
          <FieldStatus id={described("due_date")} state={states.due_date} />
        </div>
        <div class="field">
          <label for="task-milestone">{t("task.milestone")}</label>
          <select
            id="task-milestone"
            value={String(task.milestone_id ?? "")}
            aria-describedby={described("milestone_id")}
            onChange={(e) => {
              const v = e.currentTarget.value;
              choose("milestone_id", v ? Number(v) : null, e.currentTarget.selectedOptions[0].text);
            }}
          >
            <option value="">{t("task.noMilestone")}</option>
            {placeable.map((m) => (
              <option key={m.id} value={String(m.id)}>
                {m.name}
              </option>
            ))}
          </select>
          <FieldStatus id={described("milestone_id")} state={states.milestone_id} />
        </div>
      </div>

      <div class="field">
        <div class="field-head">
          <label for="task-description">{t("task.description")}</label>
          <button type="button" class="link" aria-pressed={previewing} onClick={() => setPreviewing(!previewing)}>
            {t("task.preview")}
          </button>
        </div>
        {previewing ? (
          <RichText text={description.shown} class="task-description" />
        ) : (
          <textarea
            id="task-description"
            rows={6}
            value={description.shown}
            placeholder={t("task.descriptionPlaceholder")}
            aria-describedby={described("description")}
            onInput={(e) => description.edit(e.currentTarget.value)}
            onBlur={() => void saveDescription()}
          />
        )}
        <FieldStatus id={described("description")} state={states.description} />
      </div>
    </div>
  );
}
