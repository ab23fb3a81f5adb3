// My personal API tokens, and (for organization admins) the audit log.
import { api, type Page, type User } from "../api";
import { h, mount } from "../dom";
import { t, type MessageKey } from "../i18n";
import { reasonFor } from "../app/errors";

interface ApiToken {
  id: number;
  name: string;
  scopes: string[];
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  token?: string;
}

interface AuditEvent {
  id: number;
  action: string;
  actor_name: string | null;
  target_type: string;
  target_id: number | null;
  ip: string;
  details: Record<string, unknown>;
  created_at: string;
}

const SCOPES = ["read", "write", "admin"] as const;

function when(iso: string | null): string {
  return iso ? new Date(iso).toLocaleString() : t("tokens.never");
}

function tokenRow(token: ApiToken, onRevoke: (token: ApiToken) => void): HTMLElement {
  const revoke = h("button", { type: "button", class: "link" }, t("tokens.revoke"));
  revoke.addEventListener("click", () => onRevoke(token));
  return h(
    "tr",
    { "data-token-id": String(token.id) },
    h("td", {}, token.name),
    h("td", {}, token.scopes.join(", ")),
    h("td", {}, when(token.last_used_at)),
    h("td", {}, token.expires_at ? when(token.expires_at) : t("tokens.noExpiry")),
    h("td", {}, revoke),
  );
}

export async function renderTokens(root: HTMLElement, user: User): Promise<void> {
  const rows = h("tbody");
  const error = h("p", { class: "error", role: "alert" });
  const shown = h("div", { class: "token-shown", role: "status" });
  const name = h("input", { id: "token-name", name: "name", required: true, maxlength: "100" });
  const days = h("input", { id: "token-days", name: "days", type: "number", min: "1", max: "3650" });
  const boxes = SCOPES.filter((s) => s !== "admin" || user.role === "owner" || user.role === "admin").map((scope) =>
    h("input", { type: "checkbox", name: "scope", value: scope, id: `scope-${scope}`, checked: scope === "read" }),
  );

  async function load(): Promise<void> {
    const tokens = await api<{ items: ApiToken[] }>("GET", "/api/me/tokens");
    rows.replaceChildren(...tokens.items.map((token) => tokenRow(token, revoke)));
  }

  async function revoke(token: ApiToken): Promise<void> {
    if (!confirm(t("tokens.confirmRevoke", { name: token.name }))) return;
    await api("DELETE", `/api/me/tokens/${token.id}`);
    await load();
  }

  const form = h(
    "form",
    { class: "panel token-form" },
    h("h2", {}, t("tokens.new")),
    h("label", { for: "token-name" }, t("tokens.name")),
    name,
    h(
      "fieldset",
      {},
      h("legend", {}, t("tokens.scopes")),
      ...boxes.map((box) =>
        h("label", { for: box.id }, box, " ", t(`tokens.scope.${box.value}` as MessageKey)),
      ),
    ),
    h("label", { for: "token-days" }, t("tokens.expiresInDays")),
    days,
    error,
    h("button", { type: "submit", class: "primary" }, t("tokens.create")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const scopes = boxes.filter((b) => b.checked).map((b) => b.value);
    try {
      const made = await api<ApiToken>("POST", "/api/me/tokens", {
        name: name.value,
        scopes,
        expires_in_days: days.value ? Number(days.value) : null,
      });
      shown.replaceChildren(
        h("p", {}, t("tokens.copyNow")),
        h("code", { id: "new-token" }, made.token ?? ""),
      );
      form.reset();
      await load();
    } catch (err) {
      error.textContent = reasonFor(err);
    }
  });
  const table = h(
    "table",
    { class: "tokens" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...(["tokens.name", "tokens.scopes", "tokens.lastUsed", "tokens.expires", "tokens.actions"] as const).map(
          (key) => h("th", { scope: "col" }, t(key)),
        ),
      ),
    ),
    rows,
  );
  await load();
  mount(
    root,
    h(
      "main",
      { class: "page" },
      h("h1", {}, t("tokens.title")),
      h("p", { class: "muted" }, t("tokens.intro")),
      shown,
      table,
      form,
    ),
  );
}

function detailsText(event: AuditEvent): string {
  return Object.entries(event.details)
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : String(value)}`)
    .join(", ");
}

export async function renderAudit(root: HTMLElement): Promise<void> {
  const rows = h("tbody");
  const more = h("button", { type: "button", class: "link", hidden: true }, t("audit.more"));
  const filter = h("input", { id: "audit-action", name: "action", placeholder: "auth." });
  let cursor: string | null = null;

  async function load(reset: boolean): Promise<void> {
    const params = new URLSearchParams({ limit: "50" });
    if (filter.value.trim()) params.set("action", filter.value.trim());
    if (!reset && cursor) params.set("cursor", cursor);
    const page = await api<Page<AuditEvent>>("GET", `/api/audit?${params}`);
    const lines = page.items.map((e) =>
      h(
        "tr",
        { "data-audit-id": String(e.id) },
        h("td", {}, new Date(e.created_at).toLocaleString()),
        h("td", {}, h("code", {}, e.action)), // a stable code (docs/API.md), the same in every language
        h("td", {}, e.actor_name ?? "—"),
        h("td", {}, h("code", {}, e.target_id === null ? e.target_type : `${e.target_type} ${e.target_id}`)),
        h("td", {}, e.ip),
        h("td", {}, h("code", {}, detailsText(e))),
      ),
    );
    if (reset) rows.replaceChildren(...lines);
    else rows.append(...lines);
    cursor = page.next_cursor;
    more.hidden = cursor === null;
  }

  more.addEventListener("click", () => void load(false));
  const form = h(
    "form",
    { class: "audit-filter" },
    h("label", { for: "audit-action" }, t("audit.filter")),
    filter,
    h("button", { type: "submit", class: "primary" }, t("audit.apply")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void load(true);
  });
  const heads = ["audit.when", "audit.action", "audit.actor", "audit.target", "audit.ip", "audit.details"] as const;
  await load(true);
  mount(
    root,
    h(
      "main",
      { class: "page" },
      h("h1", {}, t("audit.title")),
      form,
      h(
        "table",
        { class: "audit" },
        h("thead", {}, h("tr", {}, ...heads.map((key) => h("th", { scope: "col" }, t(key))))),
        rows,
      ),
      more,
    ),
  );
}
