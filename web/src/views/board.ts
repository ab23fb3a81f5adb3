import { allPages, api, type Project, type Status, type Task, type User } from "../api";
import { h, mount } from "../dom";
import { t } from "../i18n";
import type { LiveClient } from "../live";
import { legend, taskCard } from "./common";

interface BoardState {
  statuses: Status[];
  tasks: Map<number, Task>;
  flash: Set<number>;
}

async function load(projectId: number): Promise<[Project, BoardState]> {
  const [project, statuses, tasks] = await Promise.all([
    api<Project>("GET", `/api/projects/${projectId}`),
    api<{ items: Status[] }>("GET", `/api/projects/${projectId}/statuses`),
    allPages<Task>(`/api/projects/${projectId}/tasks`),
  ]);
  return [project, { statuses: statuses.items, tasks: new Map(tasks.map((task) => [task.id, task])), flash: new Set() }];
}

function columns(state: BoardState): HTMLElement {
  const tasks = [...state.tasks.values()];
  return h(
    "div",
    { class: "board" },
    ...state.statuses.map((status) => {
      const cards = tasks
        .filter((task) => task.status_id === status.id)
        .sort((a, b) => a.position - b.position || a.id - b.id)
        .map((task) => {
          const card = taskCard(task);
          if (state.flash.has(task.id)) card.classList.add("flash");
          return card;
        });
      // Set through the CSSOM: the Content-Security-Policy forbids inline style attributes.
      const dot = h("span", { class: "dot", "aria-hidden": "true" });
      dot.style.setProperty("--dot", status.colour);
      return h(
        "section",
        { class: "column", "aria-label": status.name, "data-status-id": String(status.id) },
        h("h3", { class: "column-title" }, dot, status.name, h("span", { class: "count" }, String(cards.length))),
        cards.length ? h("div", { class: "cards" }, ...cards) : h("p", { class: "muted" }, t("board.empty")),
      );
    }),
  );
}

/** Apply one board event; returns false when the board must be reloaded from the API instead. */
export function applyBoardEvent(state: BoardState, data: Record<string, unknown>): boolean {
  switch (data.type) {
    case "task.created":
    case "task.updated": {
      const task = data.task as Task;
      const held = state.tasks.get(task.id);
      if (held && held.version >= task.version) return true; // stale or duplicate
      state.tasks.set(task.id, task);
      state.flash.add(task.id);
      return true;
    }
    case "task.removed": {
      const held = state.tasks.get(data.task_id as number);
      if (held && held.version < (data.version as number)) state.tasks.delete(held.id);
      return true;
    }
    case "milestone.updated":
    case "milestone.removed":
    case "members.changed":
      return true;
    default:
      return false; // workflow.changed, project.*: refetch
  }
}

export async function renderBoard(
  root: HTMLElement,
  header: HTMLElement,
  projectId: number,
  user: User,
  live: LiveClient,
): Promise<() => void> {
  let [project, state] = await load(projectId);
  const boardSlot = h("div", {}, columns(state));
  const title = h("h1", {}, project.name);
  const redraw = () => {
    boardSlot.replaceChildren(columns(state));
    const flashed = [...state.flash];
    state.flash.clear();
    if (flashed.length) setTimeout(() => boardSlot.querySelectorAll(".flash").forEach((el) => el.classList.remove("flash")), 1500);
  };
  const reload = async () => {
    [project, state] = await load(projectId);
    title.textContent = project.name;
    redraw();
  };
  const audience = user.role === "customer" ? "shared" : "staff";
  const unsubscribe = live.subscribe(`project:${projectId}:${audience}`, (message) => {
    if (message.kind === "event") {
      if (applyBoardEvent(state, message.event.data)) redraw();
      else void reload();
    } else if (message.kind === "reload") {
      void reload();
    } else {
      history.replaceState(null, "", "/");
      dispatchEvent(new PopStateEvent("popstate"));
    }
  });
  mount(
    root,
    header,
    h(
      "main",
      { class: "page" },
      h("a", { href: "/", "data-link": "true" }, `← ${t("board.back")}`),
      title,
      legend(),
      boardSlot,
    ),
  );
  return unsubscribe;
}
