// The organization's audit log (admins): newest first, filtered by action prefix, older pages on request. Action
// codes and raw details are stable codes (docs/API.md), shown as code, the same in every language.
import { useEffect, useState } from "preact/hooks";
import { api, type Page } from "../../api";
import { pageMissing } from "../../app/NotFound";
import { formatDateTime, t } from "../../i18n";
import { reasonFor } from "../../app/errors";
import { LoadFailed } from "../common/LoadFailed";

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

function detailsText(event: AuditEvent): string {
  return Object.entries(event.details)
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : String(value)}`)
    .join(", ");
}

const HEADS = ["audit.when", "audit.action", "audit.actor", "audit.target", "audit.ip", "audit.details"] as const;

export function AuditLog() {
  const [filter, setFilter] = useState("");
  const [events, setEvents] = useState<AuditEvent[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [busy, setBusy] = useState(true);
  // Why the last load failed, and where it started (Try again repeats it); never thrown.
  const [failure, setFailure] = useState<{ reason: string; from: string | null } | null>(null);

  const load = async (from: string | null) => {
    setBusy(true);
    const params = new URLSearchParams({ limit: "50" });
    if (filter.trim()) params.set("action", filter.trim());
    if (from) params.set("cursor", from);
    try {
      const page = await api<Page<AuditEvent>>("GET", `/api/audit?${params}`);
      setEvents((old) => (from ? [...(old ?? []), ...page.items] : page.items));
      setCursor(page.next_cursor);
      setFailure(null);
    } catch (err) {
      if (!pageMissing(err)) setFailure({ reason: reasonFor(err), from }); // may not read it: "not found"
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    void load(null);
  }, []);

  const submit = (event: Event) => {
    event.preventDefault();
    void load(null);
  };
  return (
    <main class="page" aria-busy={busy}>
      <h1>{t("audit.title")}</h1>
      <form class="audit-filter" onSubmit={submit}>
        <label for="audit-action">{t("audit.filter")}</label>
        <input id="audit-action" name="action" placeholder="auth." value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        <button type="submit" class="primary" disabled={busy}>
          {t("audit.apply")}
        </button>
      </form>
      {failure && (
        <LoadFailed
          id="page-load-failed"
          text={t(events === null ? "common.loadFailed" : "common.refreshFailed", { reason: failure.reason })}
          retry={() => load(failure.from)}
        />
      )}
      <table class="audit">
        <thead>
          <tr>
            {HEADS.map((key) => (
              <th scope="col" key={key}>
                {t(key)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {(events ?? []).map((e) => (
            <tr key={e.id} data-audit-id={String(e.id)}>
              <td>{formatDateTime(e.created_at)}</td>
              <td>
                <code>{e.action}</code>
              </td>
              <td>{e.actor_name ?? "—"}</td>
              <td>
                <code>{e.target_id === null ? e.target_type : `${e.target_type} ${e.target_id}`}</code>
              </td>
              <td>{e.ip}</td>
              <td>
                <code>{detailsText(e)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {events?.length === 0 && <p class="muted">{t("audit.none")}</p>}
      <p class="muted" role="status">
        {busy ? t("common.working") : ""}
      </p>
      {cursor && !busy && (
        <button type="button" class="link" onClick={() => void load(cursor)}>
          {t("audit.more")}
        </button>
      )}
    </main>
  );
}
