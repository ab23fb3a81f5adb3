import { allPages, api, type Project, type Status, type Task, type User } from "../api";
import { h, mount } from "../dom";
import { formatDate, t } from "../i18n";
import type { LiveClient } from "../live";
import { colourBadge, legend, projectNav, taskCard } from "./common";

export interface BoardState {
  statuses: Status[];
  tasks: Map<number, Task>;
  flash: Set<number>;
}

type Filter = "all" | "mine" | "waiting" | "overdue";
type View = "columns" | "list";

interface Presence {
  client_id: string;
  user_id: string;
  name: string;
  role: string;
}

async function load(projectId: number): Promise<[Project, BoardState]> {
  const [project, statuses, tasks] = await Promise.all([
    api<Project>("GET", `/api/projects/${projectId}`),
    api<{ items: Status[] }>("GET", `/api/projects/${projectId}/statuses`),
    allPages<Task>(`/api/projects/${projectId}/tasks`),
  ]);
  return [project, { statuses: statuses.items, tasks: new Map(tasks.map((task) => [task.id, task])), flash: new Set() }];
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
    case "comment.activity":
    case "request.created":
    case "request.updated":
    case "file.created":
    case "file.updated":
    case "file.removed":
    case "settings.changed":
      return true;
    default:
      return false; // workflow.changed, project.*: refetch
  }
}

export function matches(task: Task, filter: Filter, user: User): boolean {
  switch (filter) {
    case "mine":
      return task.assignee?.id === user.id;
    case "waiting":
      return task.waiting_on_customer && task.colour_class !== "done";
    case "overdue":
      return task.colour_class === "overdue";
    default:
      return true;
  }
}

export async function renderBoard(
  root: HTMLElement,
  projectId: number,
  user: User,
  live: LiveClient,
): Promise<() => void> {
  let [project, state] = await load(projectId);
  const staff = user.role !== "customer";
  let filter: Filter = "all";
  let view: View = "columns";
  const announcer = h("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
  const boardSlot = h("div", {});
  const title = h("h1", {}, project.name);
  const here = new Map<string, Presence>();
  const avatars = h("ul", { class: "avatars", "aria-label": t("board.here") });

  const canMove = (task: Task) => staff || (task.assignee?.id === user.id && project.my_role === "customer");

  async function move(task: Task, statusId: number): Promise<void> {
    if (statusId === task.status_id) return;
    try {
      const updated = await api<Task>("PATCH", `/api/tasks/${task.id}`, { status_id: statusId });
      applyBoardEvent(state, { type: "task.updated", task: updated });
      const status = state.statuses.find((s) => s.id === statusId);
      announcer.textContent = t("board.moved", { title: task.title, status: status?.name ?? "" });
      redraw();
    } catch {
      announcer.textContent = t("board.moveFailed");
    }
  }

  function moveControl(task: Task): HTMLElement | null {
    if (!canMove(task)) return null;
    const select = h("select", { "aria-label": `${t("board.moveTo")}: ${task.title}`, class: "move" });
    for (const status of state.statuses) {
      const option = h("option", { value: String(status.id) }, status.name);
      if (status.id === task.status_id) option.selected = true;
      select.append(option);
    }
    select.addEventListener("change", () => void move(task, Number(select.value)));
    return select;
  }

  function card(task: Task): HTMLElement {
    const el = taskCard(task);
    if (state.flash.has(task.id)) el.classList.add("flash");
    const control = moveControl(task);
    if (control) {
      el.append(control);
      el.draggable = true;
      el.addEventListener("dragstart", (e) => e.dataTransfer?.setData("text/plain", String(task.id)));
    }
    return el;
  }

  function visibleTasks(): Task[] {
    return [...state.tasks.values()].filter((task) => matches(task, filter, user));
  }

  function columns(): HTMLElement {
    const tasks = visibleTasks();
    return h(
      "div",
      { class: "board" },
      ...state.statuses.map((status) => {
        const cards = tasks
          .filter((task) => task.status_id === status.id)
          .sort((a, b) => a.position - b.position || a.id - b.id)
          .map(card);
        // Set through the CSSOM: the Content-Security-Policy forbids inline style attributes.
        const dot = h("span", { class: "dot", "aria-hidden": "true" });
        dot.style.setProperty("--dot", status.colour);
        const column = h(
          "section",
          { class: "column", "aria-label": status.name, "data-status-id": String(status.id) },
          h("h3", { class: "column-title" }, dot, status.name, h("span", { class: "count" }, String(cards.length))),
          cards.length ? h("div", { class: "cards" }, ...cards) : h("p", { class: "muted" }, t("board.empty")),
        );
        column.addEventListener("dragover", (e) => e.preventDefault());
        column.addEventListener("drop", (e) => {
          e.preventDefault();
          const task = state.tasks.get(Number(e.dataTransfer?.getData("text/plain")));
          if (task && canMove(task)) void move(task, status.id);
        });
        return column;
      }),
    );
  }

  function list(): HTMLElement {
    const rows = visibleTasks().sort((a, b) => (a.due_date ?? "9999").localeCompare(b.due_date ?? "9999"));
    const statusName = (id: number) => state.statuses.find((s) => s.id === id)?.name ?? "";
    return h(
      "table",
      { class: "task-list" },
      h(
        "thead",
        {},
        h("tr", {}, ...["board.title", "board.status", "board.due", "board.assignee"].map((k) =>
          h("th", { scope: "col" }, t(k as Parameters<typeof t>[0])))),
      ),
      h(
        "tbody",
        {},
        ...rows.map((task) =>
          h(
            "tr",
            { "data-task-id": String(task.id), class: state.flash.has(task.id) ? "flash" : "" },
            h("td", {}, h("a", { href: `/projects/${projectId}/tasks/${task.id}`, "data-link": "true" }, task.title)),
            h("td", {}, moveControl(task) ?? statusName(task.status_id)),
            h("td", {}, colourBadge(task.colour_class), " ", task.due_date ? formatDate(task.due_date) : ""),
            h("td", {}, task.assignee?.name ?? t("task.unassigned")),
          ),
        ),
      ),
    );
  }

  function redraw(): void {
    boardSlot.replaceChildren(view === "columns" ? columns() : list());
    if (state.flash.size) {
      state.flash.clear();
      setTimeout(() => boardSlot.querySelectorAll(".flash").forEach((el) => el.classList.remove("flash")), 1500);
    }
  }

  const reload = async () => {
    [project, state] = await load(projectId);
    title.textContent = project.name;
    redraw();
  };

  function drawAvatars(): void {
    const people = new Map<string, Presence>();
    for (const p of here.values()) people.set(p.user_id, p);
    avatars.replaceChildren(
      ...[...people.values()].map((p) =>
        h(
          "li",
          { class: `avatar avatar-${p.role}`, title: p.name },
          h("span", { "aria-hidden": "true" }, p.name.split(/\s+/).map((w) => w[0]).join("").slice(0, 2)),
          h("span", { class: "visually-hidden" }, p.name),
        ),
      ),
    );
  }

  const audience = staff ? "staff" : "shared";
  const offBoard = live.subscribe(`project:${projectId}:${audience}`, (message) => {
    if (message.kind === "event") {
      if (applyBoardEvent(state, message.event.data)) redraw();
      else void reload();
    } else if (message.kind === "reload") {
      void reload();
    } else if (message.kind === "revoked") {
      history.replaceState(null, "", "/");
      dispatchEvent(new PopStateEvent("popstate"));
    }
  });
  const roomChannel = `room:project:${projectId}`;
  const offRoom = live.subscribe(roomChannel, (message) => {
    if (message.kind === "subscribed") {
      live.sendPresence(roomChannel, { viewing: "board" });
      live.requestPresence(roomChannel);
    } else if (message.kind === "presence") {
      const frame = message.frame;
      if (frame.type === "presence_list") {
        here.clear();
        for (const p of frame.clients as Presence[]) here.set(p.client_id, p);
      } else {
        const joined = (frame.joined ?? frame.updated) as Presence | undefined;
        const left = frame.left as Presence | undefined;
        if (joined) here.set(joined.client_id, joined);
        if (left) here.delete(left.client_id);
      }
      drawAvatars();
    }
  });

  const filterSelect = h("select", { id: "board-filter" });
  for (const [value, key] of [
    ["all", "board.filterAll"],
    ["mine", "board.filterMine"],
    ["waiting", "board.filterWaiting"],
    ["overdue", "board.filterOverdue"],
  ] as const) {
    filterSelect.append(h("option", { value }, t(key)));
  }
  filterSelect.addEventListener("change", () => {
    filter = filterSelect.value as Filter;
    redraw();
  });
  const viewToggle = h("div", { class: "segmented", role: "group", "aria-label": t("board.view") });
  for (const [value, key] of [
    ["columns", "board.columns"],
    ["list", "board.list"],
  ] as const) {
    const button = h("button", { type: "button", "aria-pressed": String(view === value), "data-view": value }, t(key));
    button.addEventListener("click", () => {
      view = value;
      viewToggle.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      redraw();
    });
    viewToggle.append(button);
  }

  redraw();
  mount(
    root,
    h(
      "main",
      { class: "page" },
      projectNav(projectId, "board"),
      h("div", { class: "board-head" }, title, avatars),
      h(
        "div",
        { class: "toolbar" },
        h("label", { for: "board-filter" }, t("board.filter")),
        filterSelect,
        viewToggle,
      ),
      legend(),
      announcer,
      boardSlot,
    ),
  );
  return () => {
    offBoard();
    offRoom();
  };
}
