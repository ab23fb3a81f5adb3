// One request: what was asked (with its custom answers and files), its history, the answer box (the customer
// answering "needs information", or staff writing), and staff's triage (accept, ask, decline, merge). Live: a step
// taken by someone else redraws the page. After a refused write the page shows the request as it now stands.
// Staff can mark a customer's reply in the history as feedback (the thread's FeedbackMark control); customers never
// load or see marks.
import { useEffect, useState } from "preact/hooks";
import { api, type Project, type User } from "../../api";
import { liveClient } from "../../app/session";
import { t, type MessageKey } from "../../i18n";
import { usePageLoad } from "../common/page-load";
import { PageNotReady, PageOutOfDate } from "../common/PageNotReady";
import { takesPart } from "../common/permissions";
import { explain, type FieldErrors } from "../people/ui";
import { FeedbackMarkControl, useRequestFeedbackMarks, type FeedbackMark } from "../task/FeedbackMark";
import { FieldInput } from "./FieldInput";
import { StatusBadge } from "./Requests";
import { answersOf, fieldValue, RESOLVED, type FieldValue, type RequestEvent, type RequestField, type TandemRequest } from "./state";
import "./requests.css";

interface Loaded {
  project: Project;
  request: TandemRequest;
  fields: RequestField[];
  files: { id: number; name: string; download_url: string }[];
}

function when(iso: string): string {
  return new Intl.DateTimeFormat(document.documentElement.lang === "sv" ? "sv-SE" : "en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
  }).format(new Date(iso));
}

type Marks = ReturnType<typeof useRequestFeedbackMarks>;

function HistoryItem({ event, feedback }: { event: RequestEvent; feedback: Marks | null }) {
  return (
    <li id={`request-event-${event.id}`}>
      <strong>{t(`requests.event.${event.kind}` as MessageKey)}</strong>
      {event.actor ? ` · ${event.actor.name}` : ""} · <time dateTime={event.created_at}>{when(event.created_at)}</time>
      {event.text && <p>{event.text}</p>}
      {feedback && event.actor?.is_customer && event.text.trim() && (
        <FeedbackMarkControl target={{ kind: "request-event", id: event.id }} mark={feedback.marks.get(event.id)} apply={feedback.apply} />
      )}
    </li>
  );
}

export function RequestPage({ projectId, requestId, who }: { projectId: number; requestId: number; who: User }) {
  const staff = who.role !== "customer";
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const feedback = useRequestFeedbackMarks(requestId, staff);
  const page = usePageLoad(`${projectId}/${requestId}`);

  const load = async () => {
    const [project, request, fields, files] = await Promise.all([
      api<Project>("GET", `/api/projects/${projectId}`),
      api<TandemRequest>("GET", `/api/requests/${requestId}`),
      api<{ items: RequestField[] }>("GET", `/api/projects/${projectId}/request-fields`),
      api<{ items: Loaded["files"] }>("GET", `/api/projects/${projectId}/files?request_id=${requestId}`),
    ]);
    setLoaded({ project, request, fields: fields.items, files: files.items });
  };
  const refresh = () => page.run(load);

  useEffect(() => {
    setLoaded(null);
    void refresh();
    return liveClient().subscribe(`project:${projectId}:${staff ? "staff" : "shared"}`, (message) => {
      if (message.kind === "reload") return void refresh();
      if (message.kind !== "event") return;
      const data = message.event.data;
      if (data.type === "feedback.marked") {
        if (data.request_id === requestId) feedback.apply(data.request_event_id as number, data.mark as FeedbackMark | null);
        return;
      }
      const changed = data.request as TandemRequest | undefined;
      if (String(data.type).startsWith("request.") && changed?.id === requestId) void refresh();
      else if (String(data.type).startsWith("file.")) void refresh();
    });
  }, [projectId, requestId]);

  if (!loaded) return <PageNotReady class="request-page" error={page.failed} retry={refresh} />;
  const { request, fields, files, project } = loaded;
  const resolved = RESOLVED.includes(request.status);
  const answers = answersOf(request, fields);
  return (
    <main class="page request-page">
      <a href={`/projects/${projectId}/requests`}>← {t("requests.title")}</a>
      <PageOutOfDate error={page.failed} retry={refresh} />
      <h1>
        {request.title} <StatusBadge status={request.status} />
      </h1>
      {request.status === "needs_info" && !staff && (
        <p class="callout" role="note">
          {t("requests.needsInfoHint")}
        </p>
      )}
      {request.description && <p class="request-description">{request.description}</p>}
      <p class="muted">
        {t(`priority.${request.priority}` as MessageKey)}
        {request.created_by ? ` · ${request.created_by.name}` : ""}
      </p>
      {answers.length > 0 && (
        <dl class="request-fields">
          {answers.map(([label, value]) => (
            <div key={label}>
              <dt>{label}</dt>
              <dd>{value}</dd>
            </div>
          ))}
        </dl>
      )}
      {request.task_id && (
        <p>
          <a href={`/projects/${projectId}/tasks/${request.task_id}`}>{t("requests.openTask")}</a>
        </p>
      )}
      {request.decline_reason && <p>{t("requests.declinedBecause", { reason: request.decline_reason })}</p>}
      {files.length > 0 && (
        <ul class="files">
          {files.map((f) => (
            <li key={f.id}>
              <a href={f.download_url} download={f.name}>
                {f.name}
              </a>
            </li>
          ))}
        </ul>
      )}
      <h2>{t("requests.history")}</h2>
      <ol class="request-history">
        {request.history.map((event) => (
          <HistoryItem key={event.id} event={event} feedback={staff ? feedback : null} />
        ))}
      </ol>
      {!resolved && takesPart(staff, project.my_role) && (
        <Reply request={request} fields={staff ? [] : fields} done={refresh} />
      )}
      {!resolved && staff && <Triage request={request} done={refresh} />}
    </main>
  );
}

function Reply(props: { request: TandemRequest; fields: RequestField[]; done: () => Promise<void> }) {
  const { request, fields } = props;
  const asked = request.status === "needs_info";
  const start = () => Object.fromEntries(fields.map((f) => [f.key, request.fields[f.key] == null ? "" : String(request.fields[f.key])]));
  const [text, setText] = useState("");
  const [values, setValues] = useState<Record<string, string>>(start);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    if (!text.trim()) return setErrors({ message: t("common.required") });
    setErrors({});
    setMessage(null);
    setBusy(true);
    const body: { message: string; fields?: Record<string, FieldValue> } = { message: text.trim() };
    // Corrected answers go along only when the customer changed one (a reply replaces them all).
    const before = start();
    if (fields.some((f) => (values[f.key] ?? "") !== before[f.key])) {
      body.fields = Object.fromEntries(fields.map((f) => [f.key, fieldValue(f.kind, values[f.key] ?? "")]));
    }
    try {
      await api("POST", `/api/requests/${request.id}/reply`, body);
      setText("");
      setMessage({ ok: true, text: t("requests.replied") });
    } catch (err) {
      const { fields: problems, message: reason } = explain(err);
      setErrors(problems);
      setMessage({ ok: false, text: t("common.failedNowShowing", { reason }) });
    } finally {
      setBusy(false);
      await props.done();
    }
  };

  return (
    <form class="request-reply" onSubmit={submit} noValidate>
      <h2>{asked ? t("requests.answerTitle") : t("requests.replyTitle")}</h2>
      <p class="field">
        <label for="reply-text">{t("requests.reply")}</label>
        <textarea
          id="reply-text"
          required
          value={text}
          aria-invalid={errors.message ? true : undefined}
          aria-describedby={errors.message ? "reply-text-error" : undefined}
          onInput={(e) => setText(e.currentTarget.value)}
        />
        {errors.message && (
          <span class="error" id="reply-text-error">
            {errors.message}
          </span>
        )}
      </p>
      {asked && fields.length > 0 && (
        <fieldset class="reply-fields">
          <legend>{t("requests.correctFields")}</legend>
          {fields.map((field) => (
            <FieldInput
              key={field.id}
              field={field}
              prefix="reply-field"
              value={values[field.key] ?? ""}
              error={errors[field.key]}
              onInput={(value) => setValues((v) => ({ ...v, [field.key]: value }))}
            />
          ))}
        </fieldset>
      )}
      {message && (
        <p class={message.ok ? "ok" : "error"} role={message.ok ? "status" : "alert"}>
          {message.text}
        </p>
      )}
      <button type="submit" class="primary" disabled={busy} aria-busy={busy}>
        {busy ? t("common.working") : t("requests.send")}
      </button>
    </form>
  );
}

function Triage(props: { request: TandemRequest; done: () => Promise<void> }) {
  const [text, setText] = useState("");
  const [taskId, setTaskId] = useState("");
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState("");

  const act = async (action: "accept" | "ask" | "decline" | "merge") => {
    const body: Record<string, unknown> = { action };
    if (action === "ask" || action === "accept") body.message = text;
    if (action === "decline") body.reason = text;
    if (action === "merge") body.task_id = Number(taskId);
    setBusy(action);
    setError("");
    try {
      await api("POST", `/api/requests/${props.request.id}/triage`, body);
      setText("");
      setTaskId("");
    } catch (err) {
      setError(t("common.failedNowShowing", { reason: explain(err).message }));
    } finally {
      setBusy(null);
      await props.done();
    }
  };
  const button = (action: "accept" | "ask" | "decline" | "merge", key: MessageKey) => (
    <button type="button" data-action={action} disabled={busy !== null} aria-busy={busy === action} onClick={() => void act(action)}>
      {busy === action ? t("common.working") : t(key)}
    </button>
  );

  return (
    <section class="triage" aria-labelledby="triage-title" data-staff-only>
      <h2 id="triage-title">{t("requests.triage")}</h2>
      <label for="triage-text">{t("requests.triageText")}</label>
      <textarea id="triage-text" value={text} onInput={(e) => setText(e.currentTarget.value)} />
      <div class="toolbar">
        {button("accept", "requests.accept")}
        {button("ask", "requests.ask")}
        {button("decline", "requests.decline")}
      </div>
      <label for="triage-task">{t("requests.mergeTask")}</label>
      <div class="toolbar">
        <input id="triage-task" type="number" min="1" inputMode="numeric" value={taskId} onInput={(e) => setTaskId(e.currentTarget.value)} />
        {button("merge", "requests.merge")}
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
