// A project's activity (GET /api/projects/{id}/activity) and the person's last visit (PUT .../visit): the server
// sends customers shared items only; this module only words each event in the person's language.
import { api } from "../../api";
import { formatDate, t, type MessageKey } from "../../i18n";

export interface ActivityEvent {
  id: number;
  project_id: number;
  kind: string;
  internal: boolean;
  title: string;
  changes: Record<string, [string | null, string | null]>;
  actor_name: string | null;
  task_id: number | null;
  milestone_id: number | null;
  comment_id: number | null;
  request_id: number | null;
  link: string;
  created_at: string;
}

export interface ActivityPage {
  items: ActivityEvent[];
  last_visit_at: string | null;
  next_before: number | null;
}

export const loadActivity = (projectId: number, before?: number, limit = 50): Promise<ActivityPage> =>
  api<ActivityPage>("GET", `/api/projects/${projectId}/activity?limit=${limit}${before ? `&before=${before}` : ""}`);

export const markVisited = (projectId: number): Promise<{ visited_at: string; previous_visit_at: string | null }> =>
  api("PUT", `/api/projects/${projectId}/visit`);

const KINDS = new Set([
  "task.created", "task.updated", "task.completed", "task.shared", "task.internal",
  "milestone.created", "milestone.updated", "milestone.completed", "milestone.shared", "milestone.internal",
  "comment.created", "request.filed", "request.updated",
]);

/** One line saying what happened: "Anna moved Homepage", in the person's language. */
export function describe(event: ActivityEvent): string {
  const key = (KINDS.has(event.kind) ? `activity.${event.kind}` : "activity.other") as MessageKey;
  const status = event.changes.status?.[1] ?? "";
  return t(key, {
    actor: event.actor_name ?? t("activity.someone"),
    title: event.title,
    status: event.kind === "request.updated" ? requestStatus(status) : status,
  });
}

function requestStatus(status: string): string {
  const key = `requests.status.${status}` as MessageKey;
  try {
    return t(key);
  } catch {
    return status;
  }
}

function value(field: string, raw: string | null): string {
  if (raw === null || raw === "") return t("activity.none");
  if (field === "due_date") return formatDate(raw);
  if (field === "priority") return t(`priority.${raw}` as MessageKey);
  return raw;
}

const FIELDS = ["title", "name", "description", "due_date", "status", "priority", "assignee", "milestone"];

/** Each change of the event as "due date: 10 Jan 2030 → 20 Jan 2030". */
export function changeLines(event: ActivityEvent): string[] {
  if (event.kind === "request.updated") return [];
  return FIELDS.filter((f) => f in event.changes).map((field) => {
    const [old, now] = event.changes[field];
    return t("activity.change", {
      field: t(`activity.field.${field}` as MessageKey),
      old: value(field, old),
      new: value(field, now),
    });
  });
}

export function isNew(event: ActivityEvent, since: string | null): boolean {
  return since !== null && Date.parse(event.created_at) > Date.parse(since);
}

export function formatWhen(iso: string, locale: string): string {
  return new Intl.DateTimeFormat(locale === "sv" ? "sv-SE" : "en-GB", { dateStyle: "medium", timeStyle: "short" }).format(
    new Date(iso),
  );
}
