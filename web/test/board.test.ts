import { describe, expect, it } from "vitest";
import type { Task, User } from "../src/api";
import { applyBoardEvent, matches, type BoardState } from "../src/screens/board/state";

const task = (id: number, version: number, extra: Partial<Task> = {}): Task => ({
  id,
  project_id: 1,
  title: `task ${id}`,
  status_id: 1,
  status_category: "todo",
  assignee: null,
  waiting_on_customer: false,
  colour_class: "on_track",
  due_date: null,
  visibility: "shared",
  position: id,
  version,
  ...extra,
});

const state = (): BoardState => ({ statuses: [], tasks: new Map([[1, task(1, 3)]]), flash: new Set() });

describe("applyBoardEvent", () => {
  it("applies newer versions and ignores stale or duplicate ones", () => {
    const s = state();
    applyBoardEvent(s, { type: "task.updated", task: task(1, 2, { status_id: 9 }) });
    expect(s.tasks.get(1)?.status_id).toBe(1);
    applyBoardEvent(s, { type: "task.updated", task: task(1, 4, { status_id: 9 }) });
    expect(s.tasks.get(1)?.status_id).toBe(9);
    expect(s.flash.has(1)).toBe(true);
  });

  it("removes a task that was deleted or made internal, unless it changed since", () => {
    const s = state();
    applyBoardEvent(s, { type: "task.removed", task_id: 1, version: 3 });
    expect(s.tasks.has(1)).toBe(true);
    applyBoardEvent(s, { type: "task.removed", task_id: 1, version: 4 });
    expect(s.tasks.has(1)).toBe(false);
  });

  it("asks for a reload when the workflow changed", () => {
    expect(applyBoardEvent(state(), { type: "workflow.changed", tasks_moved: true })).toBe(false);
  });
});

describe("filters", () => {
  const me = { id: 7, role: "customer" } as User;
  it("select mine, waiting on customer and overdue", () => {
    const mine = task(1, 1, { assignee: { id: 7, name: "Me", is_customer: true }, waiting_on_customer: true });
    const late = task(2, 1, { colour_class: "overdue" });
    expect([mine, late].filter((x) => matches(x, "mine", me)).map((x) => x.id)).toEqual([1]);
    expect([mine, late].filter((x) => matches(x, "waiting", me)).map((x) => x.id)).toEqual([1]);
    expect([mine, late].filter((x) => matches(x, "overdue", me)).map((x) => x.id)).toEqual([2]);
  });
});
