import type { ComponentChildren } from "preact";
import type { ColourClass, Task } from "../../api";
import { formatDate, t, type MessageKey } from "../../i18n";

const ICONS: Record<ColourClass, string> = { overdue: "!", due_soon: "◷", on_track: "✓", done: "✔" };

/** Colour is never the only signal: an icon and a word go with it. */
export function ColourBadge({ colour }: { colour: ColourClass }) {
  return (
    <span class={`badge badge-${colour}`}>
      <span aria-hidden="true">{ICONS[colour]}</span> {t(`colour.${colour}` as MessageKey)}
    </span>
  );
}

export function Legend() {
  const classes: ColourClass[] = ["overdue", "due_soon", "on_track", "done"];
  return (
    <div class="legend" role="note" aria-label={t("colour.legend")}>
      {classes.map((c) => (
        <ColourBadge key={c} colour={c} />
      ))}
    </div>
  );
}

export function InternalTag() {
  return (
    <span class="tag-internal">
      <span aria-hidden="true">🔒 </span>
      {t("task.internal")}
    </span>
  );
}

interface CardProps {
  task: Task;
  flash?: boolean;
  /** A card its reader may move can be dragged to another column (the move control is the keyboard way). */
  draggable?: boolean;
  children?: ComponentChildren;
}

export function TaskCard({ task, flash, draggable, children }: CardProps) {
  const href = `/projects/${task.project_id}/tasks/${task.id}`;
  const classes = ["card", `card-${task.colour_class}`, task.visibility === "internal" ? "card-internal" : "", flash ? "flash" : ""];
  return (
    <article
      class={classes.filter(Boolean).join(" ")}
      data-task-id={String(task.id)}
      data-colour={task.colour_class}
      draggable={draggable}
      onDragStart={draggable ? (e) => e.dataTransfer?.setData("text/plain", String(task.id)) : undefined}
    >
      <h3 class="card-title">
        <a href={href}>{task.title}</a>
      </h3>
      <p class="card-meta">
        <ColourBadge colour={task.colour_class} />{" "}
        {task.due_date ? t("task.due", { date: formatDate(task.due_date) }) : t("task.noDue")}
      </p>
      <p class="card-meta">
        {task.assignee ? task.assignee.name : t("task.unassigned")}
        {task.visibility === "internal" && <InternalTag />}
      </p>
      {children}
    </article>
  );
}
