// The REST client: JSON in and out, the session cookie, and the CSRF header on writes.

/** One invalid field of a 422 answer, as the API names it ("title", "due_date"). */
export interface FieldError {
  field: string;
  message: string;
  type: string;
}

/** A refused request: the stable `code`, and the `reason` and `params` that say which refusal (docs/API.md).
 * The English `message` is for logs; screens say it in the reader's language through `app/errors.ts`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: FieldError[] = [],
    readonly reason: string | null = null,
    readonly params: Record<string, string | number> = {},
  ) {
    super(message);
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function apiError(status: number, data: any): ApiError {
  const details = Array.isArray(data.details) ? (data.details as FieldError[]) : [];
  const params = data.params && typeof data.params === "object" ? data.params : {};
  return new ApiError(status, data.error ?? "http_error", data.message ?? "", details, data.reason ?? null, params);
}

function csrfToken(): string {
  // Behind https the cookie is `__Host-tandem_csrf`; on a plain-http development server `tandem_csrf`.
  const match =
    document.cookie.match(/(?:^|;\s*)__Host-tandem_csrf=([^;]+)/) ?? document.cookie.match(/(?:^|;\s*)tandem_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET") headers["x-csrf-token"] = csrfToken();
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return undefined as T;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw apiError(response.status, data);
  return data as T;
}

/** Upload a file as the raw request body (streamed by the browser), with query parameters. */
export async function upload<T>(path: string, file: Blob, params: Record<string, string>): Promise<T> {
  const response = await fetch(`${path}?${new URLSearchParams(params)}`, {
    method: "POST",
    headers: { accept: "application/json", "x-csrf-token": csrfToken(), "content-type": "application/octet-stream" },
    credentials: "same-origin",
    body: file,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw apiError(response.status, data);
  return data as T;
}

/** Send a CSV file as the request body; the answer's JSON comes back with its status, whatever it is (an import
 * refused row by row answers 422 with the same report as a dry run). */
export async function postCsv<T>(path: string, file: Blob): Promise<{ status: number; data: T & { error?: string } }> {
  const response = await fetch(path, {
    method: "POST",
    headers: { accept: "application/json", "x-csrf-token": csrfToken(), "content-type": "text/csv" },
    credentials: "same-origin",
    body: file,
  });
  return { status: response.status, data: await response.json().catch(() => ({})) };
}

export interface User {
  id: number;
  name: string;
  email: string | null;
  role: "owner" | "admin" | "staff" | "customer";
  client_id: number | null;
  locale: string;
}

export type ColourClass = "overdue" | "due_soon" | "on_track" | "done";

export interface Task {
  id: number;
  project_id: number;
  title: string;
  description?: string;
  status_id: number;
  status_category: string;
  assignee: { id: number; name: string; is_customer: boolean } | null;
  waiting_on_customer: boolean;
  colour_class: ColourClass;
  due_date: string | null;
  visibility: "internal" | "shared";
  milestone_id?: number | null;
  position: number;
  version: number;
  project_name?: string;
}

export interface Milestone {
  id: number;
  name: string;
  due_date: string | null;
  visibility: "internal" | "shared";
  completed_at: string | null;
}

export interface Person {
  id: number;
  name: string;
  is_customer: boolean;
}

export interface ProjectSummary {
  total: number;
  done: number;
  overdue: number;
  due_soon: number;
  waiting_on_customer: number;
}

export interface Project {
  id: number;
  name: string;
  description: string;
  client_name: string;
  archived?: boolean;
  my_role: string | null;
  summary?: ProjectSummary | null;
}

export interface Status {
  id: number;
  name: string;
  category: string;
  colour: string;
  position: number;
  wip_limit?: number | null;
  /** Its open shared tasks wait on the project's customers. */
  waits_on_customer?: boolean;
}

export interface Me {
  user: User;
  action_items: Task[];
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export async function allPages<T>(path: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page: Page<T> = await api("GET", `${path}${sep}limit=200${cursor ? `&cursor=${cursor}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}
