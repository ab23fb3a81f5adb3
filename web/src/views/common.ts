import type { ColourClass, Task } from "../api";
import { h } from "../dom";
import { formatDate, t, type MessageKey } from "../i18n";

const ICONS: Record<ColourClass, string> = { overdue: "!", due_soon: "◷", on_track: "✓", done: "✔" };

export function colourBadge(colour: ColourClass): HTMLElement {
  // Colour is never the only signal: an icon and a word go with it.
  return h(
    "span",
    { class: `badge badge-${colour}` },
    h("span", { "aria-hidden": "true" }, ICONS[colour]),
    " ",
    t(`colour.${colour}` as MessageKey),
  );
}

export function legend(): HTMLElement {
  const classes: ColourClass[] = ["overdue", "due_soon", "on_track", "done"];
  return h(
    "div",
    { class: "legend", role: "note", "aria-label": t("colour.legend") },
    ...classes.map((c) => colourBadge(c)),
  );
}

export function taskCard(task: Task, extra?: string): HTMLElement {
  const href = `/projects/${task.project_id}/tasks/${task.id}`;
  return h(
    "article",
    { class: `card card-${task.colour_class}`, "data-task-id": String(task.id) },
    h("h3", { class: "card-title" }, h("a", { href, "data-link": "true" }, task.title)),
    extra ? h("p", { class: "card-project" }, extra) : null,
    h(
      "p",
      { class: "card-meta" },
      colourBadge(task.colour_class),
      " ",
      task.due_date ? t("task.due", { date: formatDate(task.due_date) }) : t("task.noDue"),
    ),
    h(
      "p",
      { class: "card-meta" },
      task.assignee ? task.assignee.name : t("task.unassigned"),
      task.visibility === "internal" ? h("span", { class: "tag-internal" }, t("task.internal")) : null,
    ),
  );
}

export type ProjectSection = "board" | "notes" | "requests" | "files" | "reports" | "milestones" | "people";

/** The project's sections, the current one marked for assistive technology. */
export function projectNav(projectId: number, current: ProjectSection): HTMLElement {
  const sections: [ProjectSection, MessageKey, string][] = [
    ["board", "nav.board", ""],
    ["requests", "requests.title", "/requests"],
    ["files", "files.title", "/files"],
    ["notes", "nav.notes", "/notes"],
    ["reports", "nav.reports", "/reports"],
    ["milestones", "nav.milestones", "/milestones"],
    ["people", "nav.people", "/people"],
  ];
  return h(
    "nav",
    { class: "project-nav", "aria-label": t("nav.project") },
    h("a", { href: "/", "data-link": "true" }, `← ${t("board.back")}`),
    ...sections.map(([section, key, suffix]) =>
      h(
        "a",
        { href: `/projects/${projectId}${suffix}`, "data-link": "true", "aria-current": section === current ? "page" : "false" },
        t(key),
      ),
    ),
  );
}
