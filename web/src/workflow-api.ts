// The API of configuring a project: its workflow (statuses, templates), what its customers may do, its request
// fields and its milestones. Thin typed calls over `api()`, plus the checks the API makes, made before sending.
import { api, type Milestone, type Project, type Status, type User } from "./api";
import type { Template } from "./people-api";

export type Category = "todo" | "active" | "blocked" | "done";
export const CATEGORIES: readonly Category[] = ["todo", "active", "blocked", "done"];

export type FieldKind = "text" | "choice" | "date" | "number";
export const FIELD_KINDS: readonly FieldKind[] = ["text", "choice", "date", "number"];

export interface CustomerSettings {
  project_id: number;
  customer_comment: boolean;
  customer_requests: boolean;
  customer_upload: boolean;
  customer_edit_notes: boolean;
  customer_move_own: boolean;
}
export type Permission = Exclude<keyof CustomerSettings, "project_id">;
export const PERMISSIONS: readonly Permission[] = [
  "customer_comment",
  "customer_requests",
  "customer_upload",
  "customer_edit_notes",
  "customer_move_own",
];

export interface RequestField {
  id: number;
  key: string;
  label: string;
  kind: FieldKind;
  required: boolean;
  options: string[];
  position: number;
}

export interface StatusChange {
  name?: string;
  category?: Category;
  colour?: string;
  position?: number;
  wip_limit?: number | null;
  waits_on_customer?: boolean;
}

// What the API allows (server/policy.py): workflow, settings and request fields are the project's managers'
// (and admins'); milestones any staff member's; customers configure nothing.
export const mayConfigure = {
  project: (user: User, project: Pick<Project, "my_role">) =>
    user.role === "owner" || user.role === "admin" || (user.role === "staff" && project.my_role === "manager"),
  milestones: (user: User) => user.role !== "customer",
};

export const listStatuses = async (projectId: number) =>
  (await api<{ items: Status[] }>("GET", `/api/projects/${projectId}/statuses`)).items;
export const createStatus = (projectId: number, body: StatusChange & { name: string; category: Category; colour: string }) =>
  api<Status>("POST", `/api/projects/${projectId}/statuses`, body);
export const updateStatus = (projectId: number, statusId: number, change: StatusChange) =>
  api<Status>("PATCH", `/api/projects/${projectId}/statuses/${statusId}`, change);
export const deleteStatus = (projectId: number, statusId: number, moveTo: number | null) =>
  api<void>(
    "DELETE",
    `/api/projects/${projectId}/statuses/${statusId}${moveTo === null ? "" : `?move_to=${moveTo}`}`,
  );
export const applyTemplate = (projectId: number, templateId: number, moves: Record<string, string>) =>
  api<{ items: Status[] }>("POST", `/api/projects/${projectId}/workflow/apply`, { template_id: templateId, moves });
export type { Template };

export const getSettings = (projectId: number) => api<CustomerSettings>("GET", `/api/projects/${projectId}/settings`);
export const updateSettings = (projectId: number, change: Partial<Record<Permission, boolean>>) =>
  api<CustomerSettings>("PATCH", `/api/projects/${projectId}/settings`, change);

export const listRequestFields = async (projectId: number) =>
  (await api<{ items: RequestField[] }>("GET", `/api/projects/${projectId}/request-fields`)).items;
export const createRequestField = (
  projectId: number,
  body: { key: string; label: string; kind: FieldKind; required: boolean; options: string[] },
) => api<RequestField>("POST", `/api/projects/${projectId}/request-fields`, body);
/** A field's label, required, a choice's options or its place; its key and kind never change (docs/API.md). */
export const updateRequestField = (
  projectId: number,
  fieldId: number,
  change: { label?: string; required?: boolean; options?: string[]; position?: number },
) => api<RequestField>("PATCH", `/api/projects/${projectId}/request-fields/${fieldId}`, change);
export const deleteRequestField = (projectId: number, fieldId: number) =>
  api<void>("DELETE", `/api/projects/${projectId}/request-fields/${fieldId}`);

export const listMilestones = async (projectId: number) =>
  (await api<{ items: Milestone[] }>("GET", `/api/projects/${projectId}/milestones`)).items;
export const createMilestone = (
  projectId: number,
  body: { name: string; due_date: string | null; visibility: Milestone["visibility"] },
) => api<Milestone>("POST", `/api/projects/${projectId}/milestones`, body);
export const updateMilestone = (
  id: number,
  change: { name?: string; due_date?: string | null; visibility?: Milestone["visibility"]; completed?: boolean },
) => api<Milestone>("PATCH", `/api/milestones/${id}`, change);
export const deleteMilestone = (id: number) => api<void>("DELETE", `/api/milestones/${id}`);

// The API's own checks, in the same limits (server/schemas.py, server/api/requests.py). Each returns a problem
// ("required", "tooLong", …) or "" when the value would be accepted.
export type Problem = "" | "required" | "tooLong" | "colour" | "wip" | "key" | "options" | "duplicate";

export function checkStatusName(name: string, others: readonly Pick<Status, "name">[] = []): Problem {
  const trimmed = name.trim();
  if (!trimmed) return "required";
  if (trimmed.length > 80) return "tooLong";
  return others.some((s) => s.name.trim().toLowerCase() === trimmed.toLowerCase()) ? "duplicate" : "";
}

export function checkColour(colour: string): Problem {
  return /^#[0-9a-fA-F]{6}$/.test(colour) ? "" : "colour";
}

/** A WIP limit as typed: empty means no limit; otherwise a whole number from 1 to 10,000. */
export function parseWip(text: string): { value: number | null; problem: Problem } {
  const trimmed = text.trim();
  if (!trimmed) return { value: null, problem: "" };
  if (!/^\d+$/.test(trimmed)) return { value: null, problem: "wip" };
  const value = Number(trimmed);
  return value >= 1 && value <= 10_000 ? { value, problem: "" } : { value: null, problem: "wip" };
}

export function checkFieldKey(key: string, existing: readonly Pick<RequestField, "key">[]): Problem {
  if (!key) return "required";
  if (!/^[a-z][a-z0-9_]{0,39}$/.test(key)) return "key";
  return existing.some((f) => f.key === key) ? "duplicate" : "";
}

/** A field key from its label ("Due by (date)" -> "due_by_date"), which the person may still change. */
export function keyFromLabel(label: string): string {
  const key = label
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^[^a-z]+/, "")
    .replace(/_+$/, "")
    .slice(0, 40)
    .replace(/_+$/, "");
  return key;
}

/** The options a choice field loses by an edit: requests that chose one keep it (shown to the person first). */
export function droppedOptions(before: readonly string[], after: readonly string[]): string[] {
  return before.filter((o) => !after.includes(o));
}

/** Choice options, one a line: trimmed, blank lines dropped, each at most 100 characters, at most 50. */
export function parseOptions(text: string): { options: string[]; problem: Problem } {
  const options = text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
  if (!options.length) return { options, problem: "options" };
  if (options.length > 50 || options.some((o) => o.length > 100)) return { options, problem: "tooLong" };
  return { options, problem: "" };
}

/**
 * Moving the status at `index` one place up (-1) or down (+1): the position changes that give every status its
 * place in the new order (0, 1, 2, …), only for those whose position changes.
 */
export function reorder(statuses: readonly Status[], index: number, delta: -1 | 1): { id: number; position: number }[] {
  const target = index + delta;
  if (index < 0 || index >= statuses.length || target < 0 || target >= statuses.length) return [];
  const order = [...statuses];
  [order[index], order[target]] = [order[target], order[index]];
  return order.flatMap((status, position) => (status.position === position ? [] : [{ id: status.id, position }]));
}

/** The board's column count beside its WIP limit: "3 / 4", or "3" without a limit; full at or over the limit. */
export function wipLabel(count: number, limit: number | null | undefined): { text: string; full: boolean } {
  if (limit === null || limit === undefined) return { text: String(count), full: false };
  return { text: `${count} / ${limit}`, full: count >= limit };
}
