// A project's requests: the queue (live), and filing a request with its custom fields and files. A customer is
// offered the form only while the project lets customers file requests, and it comes and goes live when a manager
// changes that (`settings.changed`).
import { useEffect, useState } from "preact/hooks";
import { allPages, api, upload, type Project, type User } from "../../api";
import { liveClient } from "../../app/session";
import { t, type MessageKey } from "../../i18n";
import { changedSettings, mayUse, type CustomerSettings } from "../common/permissions";
import { usePageLoad } from "../common/page-load";
import { PageNotReady, PageOutOfDate } from "../common/PageNotReady";
import { ProjectNav } from "../common/ProjectNav";
import { explain, type FieldErrors } from "../people/ui";
import { FieldInput } from "./FieldInput";
import { applyRequestEvent, fieldValue, PRIORITIES, type FieldValue, type RequestField, type TandemRequest } from "./state";
import "./requests.css";

export function StatusBadge({ status }: { status: TandemRequest["status"] }) {
  return <span class={`badge request-${status}`}>{t(`requests.status.${status}` as MessageKey)}</span>;
}

interface Loaded {
  project: Project;
  fields: RequestField[];
  settings: CustomerSettings;
}

export function Requests({ projectId, who }: { projectId: number; who: User }) {
  const staff = who.role !== "customer";
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [queue, setQueue] = useState<TandemRequest[]>([]);
  const page = usePageLoad(projectId);

  const load = async () => {
    const [project, fields, initial, settings] = await Promise.all([
      api<Project>("GET", `/api/projects/${projectId}`),
      api<{ items: RequestField[] }>("GET", `/api/projects/${projectId}/request-fields`),
      allPages<TandemRequest>(`/api/projects/${projectId}/requests`),
      api<CustomerSettings>("GET", `/api/projects/${projectId}/settings`),
    ]);
    setLoaded({ project, fields: fields.items, settings });
    setQueue(initial);
  };

  useEffect(() => {
    setLoaded(null);
    void page.run(load);
    return liveClient().subscribe(`project:${projectId}:${staff ? "staff" : "shared"}`, (message) => {
      if (message.kind === "reload") return void page.run(load);
      if (message.kind !== "event") return;
      const data = message.event.data;
      const settings = changedSettings(data);
      if (settings) setLoaded((l) => (l ? { ...l, settings } : l));
      else setQueue((q) => applyRequestEvent(q, data));
    });
  }, [projectId]);

  const retry = () => page.run(load);
  if (!loaded) return <PageNotReady class="requests-page" error={page.failed} retry={retry} />;
  const mayFile = mayUse(staff, loaded.project.my_role, loaded.settings, "customer_requests");
  return (
    <main class="page requests-page">
      <ProjectNav projectId={projectId} current="requests" />
      <h1>{t("requests.title")}</h1>
      <PageOutOfDate error={page.failed} retry={retry} />
      <ul class="request-list" aria-live="polite">
        {queue.length === 0 ? (
          <li class="muted">{t("requests.empty")}</li>
        ) : (
          queue.map((r) => (
            <li key={r.id} data-request-id={r.id}>
              <a href={`/projects/${projectId}/requests/${r.id}`}>{r.title}</a> <StatusBadge status={r.status} />
              {r.created_by && <span class="muted"> · {r.created_by.name}</span>}
            </li>
          ))
        )}
      </ul>
      {mayFile ? (
        <NewRequest
          projectId={projectId}
          fields={loaded.fields}
          filed={(created) => setQueue((q) => applyRequestEvent(q, { type: "request.created", request: created }))}
        />
      ) : (
        <p class="muted" id="requests-off">
          {t(loaded.project.my_role === "viewer" ? "requests.viewerOff" : "requests.off")}
        </p>
      )}
    </main>
  );
}

function NewRequest(props: { projectId: number; fields: RequestField[]; filed: (r: TandemRequest) => void }) {
  const { projectId, fields } = props;
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [priority, setPriority] = useState("normal");
  const [values, setValues] = useState<Record<string, string>>({});
  const [files, setFiles] = useState<File[]>([]);
  const [chooser, setChooser] = useState(0); // a new key empties the file input after sending
  const [errors, setErrors] = useState<FieldErrors>({});
  const [progress, setProgress] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    if (!title.trim()) return setErrors({ title: t("common.required") });
    const missing = fields.filter((f) => f.required && !(values[f.key] ?? "").trim());
    if (missing.length) return setErrors(Object.fromEntries(missing.map((f) => [f.key, t("common.required")])));
    setErrors({});
    setMessage(null);
    setProgress(t("requests.sending"));
    const answers: Record<string, FieldValue> = {};
    for (const field of fields) answers[field.key] = fieldValue(field.kind, values[field.key] ?? "");
    let created: TandemRequest;
    try {
      created = await api<TandemRequest>("POST", `/api/projects/${projectId}/requests`, {
        title: title.trim(),
        description,
        priority,
        fields: answers,
      });
    } catch (err) {
      const { fields: problems, message: reason } = explain(err);
      setErrors(problems);
      setProgress("");
      return setMessage({ ok: false, text: reason });
    }
    props.filed(created);
    setTitle("");
    setDescription("");
    setPriority("normal");
    setValues({});
    // The request is filed; its files follow one by one, each said as it goes.
    const failed: string[] = [];
    for (const [index, file] of files.entries()) {
      setProgress(t("requests.uploading", { n: String(index + 1), total: String(files.length), name: file.name }));
      try {
        await upload(`/api/projects/${projectId}/files`, file, { name: file.name, request_id: String(created.id) });
      } catch (err) {
        failed.push(`${file.name}: ${explain(err).message}`);
      }
    }
    setFiles([]);
    setChooser((n) => n + 1);
    setProgress("");
    setMessage(
      failed.length
        ? { ok: false, text: t("requests.filedFilesFailed", { files: failed.join("; ") }) }
        : { ok: true, text: t("requests.filed", { title: created.title }) },
    );
  };

  return (
    <form class="request-form" onSubmit={submit} noValidate aria-labelledby="new-request-title">
      <h2 id="new-request-title">{t("requests.new")}</h2>
      <p class="field">
        <label for="request-title">{t("requests.titleField")}</label>
        <input
          id="request-title"
          name="title"
          required
          maxLength={300}
          value={title}
          aria-invalid={errors.title ? true : undefined}
          aria-describedby={errors.title ? "request-title-error" : undefined}
          onInput={(e) => setTitle(e.currentTarget.value)}
        />
        {errors.title && (
          <span class="error" id="request-title-error">
            {errors.title}
          </span>
        )}
      </p>
      <p class="field">
        <label for="request-description">{t("requests.description")}</label>
        <textarea id="request-description" name="description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </p>
      <p class="field">
        <label for="request-priority">{t("requests.priority")}</label>
        <select id="request-priority" name="priority" value={priority} onChange={(e) => setPriority(e.currentTarget.value)}>
          {PRIORITIES.map((p) => (
            <option key={p} value={p}>
              {t(`priority.${p}` as MessageKey)}
            </option>
          ))}
        </select>
      </p>
      {fields.map((field) => (
        <FieldInput
          key={field.id}
          field={field}
          value={values[field.key] ?? ""}
          error={errors[field.key]}
          onInput={(value) => setValues((v) => ({ ...v, [field.key]: value }))}
        />
      ))}
      <p class="field">
        <label for="request-files">{t("requests.attachments")}</label>
        <input key={chooser} id="request-files" type="file" multiple onChange={(e) => setFiles(Array.from(e.currentTarget.files ?? []))} />
      </p>
      <p class="form-status" role="status">
        {progress}
      </p>
      {message && (
        <p class={message.ok ? "ok" : "error"} role={message.ok ? "status" : "alert"}>
          {message.text}
        </p>
      )}
      <button type="submit" class="primary" disabled={progress !== ""} aria-busy={progress !== ""}>
        {progress ? t("requests.sending") : t("requests.submit")}
      </button>
    </form>
  );
}
