// A project's integrations: outgoing webhooks (add, delivery log, turn back on, delete) and importing tasks from
// CSV (a dry run shown as a preview table, then the import). Offered as the API allows (server/policy.py): every
// staff member reads the webhooks, the project's managers (and admins) change them; staff import tasks.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, postCsv, type User } from "../../api";
import { confirmDialog } from "../../app/confirm";
import { formatDateTime, t, tn, type MessageKey } from "../../i18n";
import { getProject, may, type ProjectDetails } from "../../people-api";
import { AudienceChoice, type Audience } from "../common/AudienceChoice";
import { ProjectNav } from "../common/ProjectNav";
import "../notes/notes.css";
import { PageNotReady, PageOutOfDate } from "../common/PageNotReady";
import { usePageLoad } from "../common/page-load";
import { CopyLink, explain, failed, Field, NoticeLine, type FieldErrors, type Notice } from "../people/ui";

interface Webhook {
  id: number;
  url: string;
  description: string;
  events: string[];
  audience: Audience;
  enabled: boolean;
  disabled_reason: string | null;
  consecutive_failures: number;
  secret_hint: string;
  secret: string | null;
}

interface Delivery {
  id: number;
  event_type: string;
  status: "pending" | "delivered" | "failed" | "cancelled";
  attempts: number;
  response_status: number | null;
  last_error: string | null;
  created_at: string;
}

interface ImportReport {
  dry_run: boolean;
  created: number;
  rows: { row: number; title: string; errors: string[] }[];
}

export const EVENTS = [
  "task.status_changed",
  "comment.created",
  "request.filed",
  "request.triaged",
  "milestone.completed",
] as const;

// The API's URL rule (server/api/webhooks.py), in short: http(s), a host, no credentials, no fragment.
const URL_RULE = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?([/?][!-"$-~]*)?$/;

const when = formatDateTime;

export function Integrations({ projectId, who }: { projectId: number; who: User }) {
  const [project, setProject] = useState<ProjectDetails | null>(null);
  const [hooks, setHooks] = useState<Webhook[] | null>(null);
  const [notice, setNotice] = useState<Notice | null>(null);
  const page = usePageLoad(projectId);
  const staff = who.role !== "customer";
  const manages = project !== null && may.manageProject(who, project);

  const load = async () => {
    const [p, listed] = await Promise.all([
      getProject(projectId),
      api<{ items: Webhook[] }>("GET", `/api/projects/${projectId}/webhooks`),
    ]);
    setProject(p);
    setHooks(listed.items);
  };
  // Never throws: a failure before the page is shown says so with Try again; after a change, the page stays as it
  // was, said to be possibly out of date (PageOutOfDate).
  const reload = () => page.run(load);
  useEffect(() => {
    setProject(null);
    void reload();
  }, [projectId]);

  const failedWrite = async (err: unknown) => {
    setNotice(failed(err));
    await reload();
  };

  if (!project || !hooks) return <PageNotReady class="integrations-page" error={page.failed} retry={reload} />;
  return (
    <main class="page integrations-page">
      <ProjectNav projectId={projectId} current="integrations" />
      <h1>{`${project.name}: ${t("integrations.title")}`}</h1>
      <PageOutOfDate error={page.failed} retry={reload} />
      <NoticeLine notice={notice} />
      <section class="panel-section" aria-labelledby="hooks-title">
        <h2 id="hooks-title">{t("hooks.title")}</h2>
        <p class="hint">{t("hooks.intro")}</p>
        {hooks.length === 0 && <p class="empty">{t("hooks.none")}</p>}
        {hooks.length > 0 && (
          <ul class="rows" id="webhooks">
            {hooks.map((hook) => (
              <WebhookRow
                key={hook.id}
                hook={hook}
                manages={manages || (!staff && hook.audience === "shared")}
                onDone={(text) => setNotice({ kind: "ok", text })}
                onFailed={failedWrite}
                onChanged={(changed) => setHooks((c) => c?.map((h) => (h.id === changed.id ? changed : h)) ?? null)}
                onDeleted={() => setHooks((c) => c?.filter((h) => h.id !== hook.id) ?? null)}
              />
            ))}
          </ul>
        )}
        {manages && <NewWebhook projectId={projectId} onCreated={(hook) => setHooks((c) => [...(c ?? []), hook])} />}
      </section>
      {staff && <CsvImport projectId={projectId} />}
    </main>
  );
}

function AudienceTag({ audience }: { audience: Audience }) {
  return audience === "internal" ? (
    <span class="audience-tag audience-internal">🔒 {t("hooks.audienceInternal")}</span>
  ) : (
    <span class="audience-tag audience-shared">👥 {t("hooks.audienceShared")}</span>
  );
}

function WebhookRow(props: {
  hook: Webhook;
  manages: boolean;
  onDone: (text: string) => void;
  onFailed: (err: unknown) => Promise<void>;
  onChanged: (hook: Webhook) => void;
  onDeleted: () => void;
}) {
  const { hook, manages } = props;
  const [log, setLog] = useState<Delivery[] | null>(null);
  const [logOpen, setLogOpen] = useState(false);
  const [logError, setLogError] = useState("");
  const [busy, setBusy] = useState<"" | "enable" | "delete" | "log">("");

  const loadLog = async () => {
    setBusy("log");
    try {
      setLog((await api<{ items: Delivery[] }>("GET", `/api/webhooks/${hook.id}/deliveries?limit=50`)).items);
      setLogError("");
    } catch (err) {
      setLogError(explain(err).message);
    } finally {
      setBusy("");
    }
  };

  const toggleLog = async () => {
    const open = !logOpen;
    setLogOpen(open);
    if (open) await loadLog();
  };

  const enable = async () => {
    setBusy("enable");
    try {
      props.onChanged(await api<Webhook>("PATCH", `/api/webhooks/${hook.id}`, { enabled: true }));
      props.onDone(t("hooks.enabledNow"));
    } catch (err) {
      await props.onFailed(err);
    } finally {
      setBusy("");
    }
  };

  const remove = async () => {
    const yes = await confirmDialog({
      title: t("hooks.confirmDeleteTitle"),
      body: t("hooks.confirmDelete", { url: hook.url }),
      confirm: t("hooks.delete"),
      danger: true,
    });
    if (!yes) return;
    setBusy("delete");
    try {
      await api<void>("DELETE", `/api/webhooks/${hook.id}`);
      props.onDeleted();
      props.onDone(t("hooks.deleted"));
    } catch (err) {
      await props.onFailed(err);
    } finally {
      setBusy("");
    }
  };

  return (
    <li class={`webhook${hook.audience === "internal" ? " webhook-internal" : ""}`} data-webhook-id={hook.id}>
      <div class="row-who">
        <strong class="webhook-url">{hook.url}</strong>
        {hook.description && <small>{hook.description}</small>}
        <small>
          <AudienceTag audience={hook.audience} />
        </small>
        <small>{hook.events.map((e) => t(`hooks.event.${e}` as MessageKey)).join(", ")}</small>
        <small class={hook.enabled ? "hook-on" : "hook-off"} data-enabled={String(hook.enabled)}>
          {hook.enabled
            ? `● ${t("hooks.enabled")}`
            : `○ ${hook.disabled_reason ? t("hooks.disabledWhy", { reason: hook.disabled_reason }) : t("hooks.disabled")}`}
        </small>
      </div>
      <div class="row-controls">
        <button type="button" class="secondary hook-log" aria-expanded={logOpen} onClick={toggleLog}>
          {logOpen ? t("hooks.hideLog") : t("hooks.log")}
        </button>
        {manages && !hook.enabled && (
          <button type="button" class="secondary hook-enable" disabled={busy === "enable"} aria-busy={busy === "enable"} onClick={enable}>
            {busy === "enable" ? t("common.working") : t("hooks.enable")}
          </button>
        )}
        {manages && (
          <button type="button" class="secondary danger-quiet" disabled={busy === "delete"} aria-busy={busy === "delete"} onClick={remove}>
            {busy === "delete" ? t("common.working") : t("hooks.delete")}
          </button>
        )}
      </div>
      {logOpen && (
        <div class="row-link delivery-log">
          <div class="actions">
            <button type="button" class="secondary hook-refresh" disabled={busy === "log"} aria-busy={busy === "log"} onClick={loadLog}>
              {busy === "log" ? t("common.working") : t("hooks.refresh")}
            </button>
          </div>
          {logError && (
            <p class="error" role="alert">
              {logError}
            </p>
          )}
          {log && log.length === 0 && <p class="empty">{t("hooks.noDeliveries")}</p>}
          {log && log.length > 0 && (
            <div class="table-scroll">
              <table class="deliveries">
                <thead>
                  <tr>
                    <th scope="col">{t("hooks.col.when")}</th>
                    <th scope="col">{t("hooks.col.event")}</th>
                    <th scope="col">{t("hooks.col.status")}</th>
                    <th scope="col">{t("hooks.col.attempts")}</th>
                    <th scope="col">{t("hooks.col.answer")}</th>
                  </tr>
                </thead>
                <tbody>
                  {log.map((d) => (
                    <tr key={d.id} data-status={d.status}>
                      <td>{when(d.created_at)}</td>
                      <td>{t(`hooks.event.${d.event_type}` as MessageKey)}</td>
                      <td>{t(`hooks.status.${d.status}` as MessageKey)}</td>
                      <td>{d.attempts}</td>
                      <td>{d.response_status ?? d.last_error ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </div>
      )}
    </li>
  );
}

function NewWebhook(props: { projectId: number; onCreated: (hook: Webhook) => void }) {
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [events, setEvents] = useState<string[]>([]);
  const [audience, setAudience] = useState<Audience>("internal");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState("");
  const [busy, setBusy] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);

  const check = (): FieldErrors => {
    const found: FieldErrors = {};
    if (!url.trim()) found.url = t("common.required");
    else if (!URL_RULE.test(url.trim()) || url.trim().length > 2000) found.url = t("hooks.badUrl");
    if (!events.length) found.events = t("hooks.pickEvent");
    if (description.length > 200) found.description = "≤ 200";
    return found;
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    const found = check();
    setErrors(found);
    setMessage(Object.keys(found).length ? t("common.fixFields") : "");
    if (Object.keys(found).length) return;
    setBusy(true);
    setSecret(null);
    try {
      const hook = await api<Webhook>("POST", `/api/projects/${props.projectId}/webhooks`, {
        url: url.trim(),
        events,
        audience,
        description,
      });
      setSecret(hook.secret);
      setUrl("");
      setDescription("");
      setEvents([]);
      props.onCreated({ ...hook, secret: null });
    } catch (err) {
      const { fields, message: why } = explain(err);
      setErrors(fields);
      setMessage(why);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="new-webhook">
      <h3>{t("hooks.new")}</h3>
      <form class="stack" id="webhook-create" onSubmit={submit} noValidate data-staff-only>
        <Field id="hook-url" label={t("hooks.url")} error={errors.url} hint={t("hooks.urlHint")}>
          {(a) => (
            <input {...a} type="url" inputMode="url" maxLength={2000} value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
          )}
        </Field>
        <Field id="hook-description" label={t("hooks.description")} error={errors.description}>
          {(a) => <input {...a} maxLength={200} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />}
        </Field>
        <fieldset class="choices" id="hook-events" aria-describedby={errors.events ? "hook-events-error" : undefined}>
          <legend>{t("hooks.events")}</legend>
          {EVENTS.map((name) => (
            <label class="choice" key={name}>
              <input
                type="checkbox"
                value={name}
                checked={events.includes(name)}
                onChange={(e) =>
                  setEvents((c) => (e.currentTarget.checked ? [...c, name] : c.filter((x) => x !== name)))
                }
              />
              <span>{t(`hooks.event.${name}` as MessageKey)}</span>
            </label>
          ))}
          {errors.events && (
            <p id="hook-events-error" class="field-error">
              {errors.events}
            </p>
          )}
        </fieldset>
        <AudienceChoice name="hook-audience" words="hooks" value={audience} onChange={setAudience} />
        <p class="error" role="alert">
          {message}
        </p>
        <div class="actions">
          <button type="submit" id="hook-create-submit" class="primary" disabled={busy} aria-busy={busy}>
            {busy ? t("common.working") : t("hooks.create")}
          </button>
        </div>
      </form>
      <div role="status" id="hook-created">
        {secret && (
          <div class="notice">
            <p>{t("hooks.created")}</p>
            <CopyLink id="hook-secret" link={secret} label={t("hooks.secret")} />
          </div>
        )}
      </div>
    </div>
  );
}

const IMPORT_REASONS: Record<string, MessageKey> = {
  invalid_columns: "import.badColumns",
  malformed_csv: "import.badCsv",
  too_large: "import.tooLarge",
};

function CsvImport({ projectId }: { projectId: number }) {
  const [file, setFile] = useState<File | null>(null);
  const [fileError, setFileError] = useState("");
  const [preview, setPreview] = useState<ImportReport | null>(null);
  const [result, setResult] = useState<Notice | null>(null);
  const [busy, setBusy] = useState<"" | "check" | "import">("");
  const path = `/api/projects/${projectId}/tasks/import`;

  const send = async (dryRun: boolean): Promise<ImportReport | null> => {
    try {
      const { status, data } = await postCsv<ImportReport>(`${path}${dryRun ? "?dry_run=true" : ""}`, file!);
      if (Array.isArray(data.rows)) return { ...data, dry_run: dryRun } as ImportReport;
      const key = IMPORT_REASONS[data.error ?? ""];
      setResult(
        key
          ? { kind: "error", text: t(key) }
          : failed(new ApiError(status, data.error ?? "http_error", "", [])),
      );
    } catch (err) {
      setResult(failed(err));
    }
    return null;
  };

  const check = async (event: Event) => {
    event.preventDefault();
    setResult(null);
    setPreview(null);
    if (!file) {
      setFileError(t("import.pickFile"));
      return;
    }
    setFileError("");
    setBusy("check");
    setPreview(await send(true));
    setBusy("");
  };

  const confirmImport = async () => {
    if (!file || !preview) return;
    setBusy("import");
    const report = await send(false);
    setBusy("");
    if (!report) return;
    if (report.created > 0 || report.rows.every((r) => !r.errors.length)) {
      setPreview(null);
      setResult({ kind: "ok", text: tn("import.done", report.created) });
    } else {
      // Something changed since the check (a status renamed, a person gone): the rows say what; nothing was stored.
      setPreview({ ...report, dry_run: true });
      setResult({ kind: "error", text: t("import.failed") });
    }
  };

  const bad = preview ? preview.rows.filter((r) => r.errors.length).length : 0;
  return (
    <section class="panel-section" aria-labelledby="import-title" id="csv-import" data-staff-only>
      <h2 id="import-title">{t("import.title")}</h2>
      <p class="hint">{t("import.intro")}</p>
      <form class="stack" onSubmit={check} noValidate>
        <Field id="import-file" label={t("import.file")} error={fileError}>
          {(a) => (
            <input
              {...a}
              type="file"
              accept=".csv,text/csv"
              onChange={(e) => {
                setFile(e.currentTarget.files?.[0] ?? null);
                setPreview(null);
                setResult(null);
              }}
            />
          )}
        </Field>
        <div class="actions">
          <button type="submit" id="import-check" class="secondary" disabled={busy !== ""} aria-busy={busy === "check"}>
            {busy === "check" ? t("import.checking") : t("import.check")}
          </button>
        </div>
      </form>
      {preview && (
        <div class="import-preview" id="import-preview">
          <h3>{t("import.preview")}</h3>
          <p class={bad ? "notice notice-error" : "notice"} role={bad ? "alert" : "status"}>
            {bad ? tn("import.previewErrors", bad) : tn("import.previewOk", preview.rows.length)}
          </p>
          <div class="table-scroll">
            <table class="import-rows">
              <thead>
                <tr>
                  <th scope="col">{t("import.col.row")}</th>
                  <th scope="col">{t("import.col.title")}</th>
                  <th scope="col">{t("import.col.result")}</th>
                </tr>
              </thead>
              <tbody>
                {preview.rows.map((r) => (
                  <tr key={r.row} class={r.errors.length ? "row-error" : ""} data-row={r.row}>
                    <td>{r.row}</td>
                    <td>{r.title}</td>
                    <td>{r.errors.length ? r.errors.join("; ") : `✓ ${t("import.rowOk")}`}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {!bad && preview.rows.length > 0 && (
            <div class="actions">
              <button type="button" id="import-confirm" class="primary" disabled={busy !== ""} aria-busy={busy === "import"} onClick={confirmImport}>
                {busy === "import" ? t("import.importing") : tn("import.confirm", preview.rows.length)}
              </button>
            </div>
          )}
        </div>
      )}
      <div id="import-result">
        <p class="notice" role="status">
          {result?.kind === "ok" ? result.text : ""}
        </p>
        <p class="notice notice-error" role="alert">
          {result?.kind === "error" ? result.text : ""}
        </p>
      </div>
    </section>
  );
}
