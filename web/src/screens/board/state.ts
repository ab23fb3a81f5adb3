// The board's state and how live events change it; pure, so it is tested without a browser.
import type { Status, Task, User } from "../../api";

export interface BoardState {
  statuses: Status[];
  tasks: Map<number, Task>;
  flash: Set<number>;
}

export type Filter = "all" | "mine" | "waiting" | "overdue";

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
