// Requests: the types the API answers, and the pure pieces the screens share (tested in web/test/requests.test.ts).
import type { FieldKind, RequestField } from "../../workflow-api";

export type { FieldKind, RequestField };
export type FieldValue = string | number | null;

export interface RequestEvent {
  id: number;
  kind: string;
  actor: { id: number; name: string; is_customer: boolean } | null;
  text: string;
  task_id: number | null;
  created_at: string;
}

export type RequestStatus = "open" | "needs_info" | "accepted" | "merged" | "declined";

export interface TandemRequest {
  id: number;
  project_id: number;
  title: string;
  description: string;
  priority: string;
  status: RequestStatus;
  fields: Record<string, FieldValue>;
  created_by: { id: number; name: string } | null;
  task_id: number | null;
  decline_reason: string;
  version: number;
  created_at: string;
  history: RequestEvent[];
}

export const RESOLVED: readonly RequestStatus[] = ["accepted", "merged", "declined"];
export const PRIORITIES = ["low", "normal", "high", "urgent"] as const;

/** Apply a live request event to a queue (newest first); keeps the newest version of each request. */
export function applyRequestEvent(queue: TandemRequest[], data: Record<string, unknown>): TandemRequest[] {
  if (data.type !== "request.created" && data.type !== "request.updated") return queue;
  const incoming = data.request as TandemRequest;
  const held = queue.find((r) => r.id === incoming.id);
  if (held && held.version >= incoming.version) return queue;
  const rest = queue.filter((r) => r.id !== incoming.id);
  return [incoming, ...rest].sort((a, b) => b.id - a.id);
}

/** The value a custom field input holds, as the API expects it (null when empty). */
export function fieldValue(kind: FieldKind, raw: string): FieldValue {
  const text = raw.trim();
  if (text === "") return null;
  if (kind === "number") {
    const n = Number(text);
    return Number.isFinite(n) ? n : text; // the server explains what is wrong
  }
  return text;
}

/** A request's custom answers in the form's order, each under its field's label; answers of removed fields last,
 * under their key (requests keep the values they have). */
export function answersOf(request: Pick<TandemRequest, "fields">, fields: readonly RequestField[]): [string, string][] {
  const out: [string, string][] = [];
  const seen = new Set<string>();
  for (const field of fields) {
    seen.add(field.key);
    const value = request.fields[field.key];
    if (value !== null && value !== undefined && value !== "") out.push([field.label, String(value)]);
  }
  for (const [key, value] of Object.entries(request.fields)) {
    if (!seen.has(key) && value !== null && value !== "") out.push([key, String(value)]);
  }
  return out;
}
