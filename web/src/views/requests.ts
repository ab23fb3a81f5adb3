// Requests: a project's queue, filing a request (with its custom fields and files), and one request's history
// with the customer's reply and staff's triage. Live: request events on the project's stream refresh the view.
import { allPages, api, ApiError, upload, type User } from "../api";
import { h, mount } from "../dom";
import { t, type MessageKey } from "../i18n";
import type { LiveClient } from "../live";
import { projectNav } from "./common";
import { reasonFor } from "../app/errors";

export type FieldKind = "text" | "choice" | "date" | "number";
export type FieldValue = string | number | null;

export interface RequestField {
  id: number;
  key: string;
  label: string;
  kind: FieldKind;
  required: boolean;
  options: string[];
}

export interface RequestEvent {
  id: number;
  kind: string;
  actor: { id: number; name: string; is_customer: boolean } | null;
  text: string;
  task_id: number | null;
  created_at: string;
}

export interface TandemRequest {
  id: number;
  project_id: number;
  title: string;
  description: string;
  priority: string;
  status: "open" | "needs_info" | "accepted" | "merged" | "declined";
  fields: Record<string, FieldValue>;
  created_by: { id: number; name: string } | null;
  task_id: number | null;
  decline_reason: string;
  version: number;
  created_at: string;
  history: RequestEvent[];
}

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

function fieldInput(field: RequestField): HTMLElement {
  const id = `field-${field.key}`;
  let input: HTMLInputElement | HTMLSelectElement;
  if (field.kind === "choice") {
    input = h("select", { id, name: field.key }, h("option", { value: "" }, "—"));
    for (const option of field.options) input.append(h("option", { value: option }, option));
  } else {
    const type = field.kind === "date" ? "date" : field.kind === "number" ? "number" : "text";
    input = h("input", { id, name: field.key, type, step: field.kind === "number" ? "any" : false });
  }
  input.required = field.required;
  input.dataset.kind = field.kind;
  return h("p", {}, h("label", { for: id }, field.label), input);
}

function statusBadge(status: TandemRequest["status"]): HTMLElement {
  return h("span", { class: `badge request-${status}` }, t(`requests.status.${status}` as MessageKey));
}

function newRequestForm(projectId: number, fields: RequestField[], done: (r: TandemRequest) => void): HTMLElement {
  const message = h("p", { class: "error", role: "alert" });
  const files = h("input", { id: "request-files", type: "file", multiple: true });
  const form = h(
    "form",
    { class: "request-form" },
    h("h2", {}, t("requests.new")),
    h("p", {}, h("label", { for: "request-title" }, t("requests.titleField")), h("input", { id: "request-title", name: "title", required: true, maxlength: "300" })),
    h("p", {}, h("label", { for: "request-description" }, t("requests.description")), h("textarea", { id: "request-description", name: "description" })),
    h(
      "p",
      {},
      h("label", { for: "request-priority" }, t("requests.priority")),
      h(
        "select",
        { id: "request-priority", name: "priority" },
        ...(["low", "normal", "high", "urgent"] as const).map((p) =>
          h("option", { value: p, selected: p === "normal" }, t(`priority.${p}` as MessageKey)),
        ),
      ),
    ),
    ...fields.map(fieldInput),
    h("p", {}, h("label", { for: "request-files" }, t("requests.attachments")), files),
    message,
    h("button", { type: "submit" }, t("requests.submit")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const values: Record<string, FieldValue> = {};
    for (const field of fields) values[field.key] = fieldValue(field.kind, String(data.get(field.key) ?? ""));
    try {
      const created = await api<TandemRequest>("POST", `/api/projects/${projectId}/requests`, {
        title: String(data.get("title") ?? ""),
        description: String(data.get("description") ?? ""),
        priority: String(data.get("priority") ?? "normal"),
        fields: values,
      });
      for (const file of Array.from(files.files ?? [])) {
        await upload(`/api/projects/${projectId}/files`, file, { name: file.name, request_id: String(created.id) });
      }
      form.reset();
      message.textContent = "";
      done(created);
    } catch (error) {
      message.textContent = error instanceof ApiError ? reasonFor(error) : t("requests.failed");
    }
  });
  return form;
}

export async function renderRequests(
  root: HTMLElement,
  projectId: number,
  user: User,
  live: LiveClient,
): Promise<() => void> {
  const [fields, initial, settings] = await Promise.all([
    api<{ items: RequestField[] }>("GET", `/api/projects/${projectId}/request-fields`),
    allPages<TandemRequest>(`/api/projects/${projectId}/requests`),
    api<{ customer_requests: boolean }>("GET", `/api/projects/${projectId}/settings`),
  ]);
  // A customer files requests only where the project's settings allow it (the API refuses otherwise).
  const mayFile = user.role !== "customer" || settings.customer_requests;
  let queue = initial;
  const list = h("ul", { class: "request-list", "aria-live": "polite" });
  const draw = (): void => {
    list.replaceChildren(
      ...(queue.length
        ? queue.map((r) =>
            h(
              "li",
              { "data-request-id": String(r.id) },
              h("a", { href: `/projects/${projectId}/requests/${r.id}`, "data-link": "true" }, r.title),
              " ",
              statusBadge(r.status),
              r.created_by ? h("span", { class: "muted" }, ` · ${r.created_by.name}`) : null,
            ),
          )
        : [h("li", { class: "muted" }, t("requests.empty"))]),
    );
  };
  draw();
  const audience = user.role === "customer" ? "shared" : "staff";
  const off = live.subscribe(`project:${projectId}:${audience}`, (message) => {
    if (message.kind === "event") {
      queue = applyRequestEvent(queue, message.event.data);
      draw();
    }
  });
  mount(
    root,
    h(
      "main",
      { class: "page" },
      projectNav(projectId, "requests", user.role !== "customer"),
      h("h1", {}, t("requests.title")),
      list,
      mayFile
        ? newRequestForm(projectId, fields.items, (created) => {
            queue = applyRequestEvent(queue, { type: "request.created", request: created });
            draw();
          })
        : h("p", { class: "muted", id: "requests-off" }, t("requests.off")),
    ),
  );
  return off;
}

function historyItem(event: RequestEvent): HTMLElement {
  return h(
    "li",
    {},
    h("strong", {}, t(`requests.event.${event.kind}` as MessageKey)),
    event.actor ? ` · ${event.actor.name}` : "",
    h("time", { datetime: event.created_at }, ` · ${new Date(event.created_at).toLocaleString()}`),
    event.text ? h("p", {}, event.text) : null,
  );
}

function triageForm(request: TandemRequest, refresh: () => void): HTMLElement {
  const message = h("p", { class: "error", role: "alert" });
  const text = h("textarea", { id: "triage-text", "aria-label": t("requests.triageText") });
  const taskId = h("input", { id: "triage-task", type: "number", min: "1", "aria-label": t("requests.mergeTask") });
  const act = (action: string) => async () => {
    const body: Record<string, unknown> = { action };
    if (action === "ask") body.message = text.value;
    if (action === "decline") body.reason = text.value;
    if (action === "accept") body.message = text.value;
    if (action === "merge") body.task_id = Number(taskId.value);
    try {
      await api("POST", `/api/requests/${request.id}/triage`, body);
      refresh();
    } catch (error) {
      message.textContent = error instanceof ApiError ? reasonFor(error) : t("requests.failed");
    }
  };
  const button = (action: string, key: MessageKey) => {
    const b = h("button", { type: "button", "data-action": action }, t(key));
    b.addEventListener("click", act(action));
    return b;
  };
  return h(
    "section",
    { class: "triage", "aria-label": t("requests.triage"), "data-staff-only": true },
    h("h2", {}, t("requests.triage")),
    h("label", { for: "triage-text" }, t("requests.triageText")),
    text,
    h(
      "div",
      { class: "toolbar" },
      button("accept", "requests.accept"),
      button("ask", "requests.ask"),
      button("decline", "requests.decline"),
    ),
    h("label", { for: "triage-task" }, t("requests.mergeTask")),
    h("div", { class: "toolbar" }, taskId, button("merge", "requests.merge")),
    message,
  );
}

function replyForm(request: TandemRequest, refresh: () => void): HTMLElement {
  const text = h("textarea", { id: "reply-text", required: true });
  const message = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    {},
    h("label", { for: "reply-text" }, t("requests.reply")),
    text,
    message,
    h("button", { type: "submit" }, t("requests.send")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/api/requests/${request.id}/reply`, { message: text.value });
      refresh();
    } catch (error) {
      message.textContent = error instanceof ApiError ? reasonFor(error) : t("requests.failed");
    }
  });
  return form;
}

export async function renderRequest(
  root: HTMLElement,
  projectId: number,
  requestId: number,
  user: User,
  live: LiveClient,
): Promise<() => void> {
  const body = h("div", {});
  const draw = async (): Promise<void> => {
    const [request, files] = await Promise.all([
      api<TandemRequest>("GET", `/api/requests/${requestId}`),
      api<{ items: { id: number; name: string; download_url: string }[] }>(
        "GET",
        `/api/projects/${projectId}/files?request_id=${requestId}`,
      ),
    ]);
    const resolved = ["accepted", "merged", "declined"].includes(request.status);
    const parts: (HTMLElement | null)[] = [
      h("h1", {}, request.title, " ", statusBadge(request.status)),
      h("p", {}, request.description),
      h(
        "dl",
        { class: "request-fields" },
        ...Object.entries(request.fields).flatMap(([key, value]) => [h("dt", {}, key), h("dd", {}, String(value))]),
      ),
      request.task_id
        ? h("p", {}, h("a", { href: `/projects/${projectId}/tasks/${request.task_id}`, "data-link": "true" }, t("requests.openTask")))
        : null,
      request.decline_reason ? h("p", {}, t("requests.declinedBecause", { reason: request.decline_reason })) : null,
      files.items.length
        ? h(
            "ul",
            { class: "files" },
            ...files.items.map((f) => h("li", {}, h("a", { href: f.download_url, download: f.name }, f.name))),
          )
        : null,
      h("h2", {}, t("requests.history")),
      h("ol", { class: "request-history" }, ...request.history.map(historyItem)),
      resolved ? null : replyForm(request, () => void draw()),
      !resolved && user.role !== "customer" ? triageForm(request, () => void draw()) : null,
    ];
    body.replaceChildren(...parts.filter((part): part is HTMLElement => part !== null));
  };
  await draw();
  const audience = user.role === "customer" ? "shared" : "staff";
  const off = live.subscribe(`project:${projectId}:${audience}`, (message) => {
    if (message.kind !== "event") return;
    const data = message.event.data;
    if (String(data.type).startsWith("request.") && (data.request as TandemRequest).id === requestId) void draw();
  });
  mount(
    root,
    h(
      "main",
      { class: "page" },
      h("a", { href: `/projects/${projectId}/requests`, "data-link": "true" }, `← ${t("requests.title")}`),
      body,
    ),
  );
  return off;
}
