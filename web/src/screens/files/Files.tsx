// A project's files: the list (live), download, upload with progress, a new version of a file, and deleting one.
// A customer is offered upload, new versions and delete (of their own files) only while the project lets customers
// upload; a manager turning that off takes the controls away live (`settings.changed`). Long names wrap anywhere.
import { useEffect, useState } from "preact/hooks";
import { api, upload, type Project, type User } from "../../api";
import { confirmDialog } from "../../app/confirm";
import { liveClient } from "../../app/session";
import { t, tn } from "../../i18n";
import { changedSettings, mayUse, type CustomerSettings } from "../common/permissions";
import { usePageLoad } from "../common/page-load";
import { PageNotReady, PageOutOfDate } from "../common/PageNotReady";
import { ProjectNav } from "../common/ProjectNav";
import { explain } from "../people/ui";
import { formatSize, mayManage, type StoredFile } from "./files";
import "./files.css";

interface Loaded {
  project: Project;
  settings: CustomerSettings;
}

type Message = { ok: boolean; text: string } | null;

export function Files({ projectId, who }: { projectId: number; who: User }) {
  const staff = who.role !== "customer";
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [files, setFiles] = useState<StoredFile[] | null>(null);
  const [message, setMessage] = useState<Message>(null);
  const [busy, setBusy] = useState<string>(""); // what is under way, said in words
  const page = usePageLoad(projectId);

  const list = async () => setFiles((await api<{ items: StoredFile[] }>("GET", `/api/projects/${projectId}/files`)).items);
  const load = async () => {
    const [project, settings] = await Promise.all([
      api<Project>("GET", `/api/projects/${projectId}`),
      api<CustomerSettings>("GET", `/api/projects/${projectId}/settings`),
      list(),
    ]);
    setLoaded({ project, settings });
  };

  useEffect(() => {
    setLoaded(null);
    setFiles(null);
    void page.run(load);
    return liveClient().subscribe(`project:${projectId}:${staff ? "staff" : "shared"}`, (live) => {
      if (live.kind === "reload") return void page.run(load);
      if (live.kind !== "event") return;
      const data = live.event.data;
      const settings = changedSettings(data);
      if (settings) setLoaded((l) => (l ? { ...l, settings } : l));
      else if (String(data.type).startsWith("file.")) void page.run(list);
    });
  }, [projectId]);

  const retry = () => page.run(load);
  if (!loaded || files === null) return <PageNotReady class="files-page" error={page.failed} retry={retry} />;
  const mayUpload = mayUse(staff, loaded.project.my_role, loaded.settings, "customer_upload");

  /** Runs a write with its progress; on failure says why and shows the list as the server has it. */
  const write = async (doing: string, done: string, run: () => Promise<string[]>) => {
    setBusy(doing);
    setMessage(null);
    try {
      const failed = await run();
      setMessage(failed.length ? { ok: false, text: t("files.someFailed", { files: failed.join("; ") }) } : { ok: true, text: done });
    } catch (err) {
      setMessage({ ok: false, text: t("common.failedNowShowing", { reason: explain(err).message }) });
    } finally {
      setBusy("");
      await page.run(list); // a list that cannot be had says the page may be out of date
    }
  };

  const newVersion = (file: StoredFile, chosen: File) =>
    write(t("files.uploadingVersion", { name: file.name }), t("files.versionAdded", { name: file.name }), async () => {
      await upload(`/api/files/${file.id}/versions`, chosen, { name: chosen.name });
      return [];
    });
  const remove = async (file: StoredFile) => {
    const yes = await confirmDialog({
      title: t("files.deleteTitle"),
      body: t("files.deleteBody", { name: file.name }),
      confirm: t("files.delete"),
      danger: true,
    });
    if (!yes) return;
    await write(t("files.deleting", { name: file.name }), t("files.deleted", { name: file.name }), async () => {
      await api("DELETE", `/api/files/${file.id}`);
      return [];
    });
  };

  return (
    <main class="page files-page">
      <ProjectNav projectId={projectId} current="files" />
      <h1>{t("files.title")}</h1>
      <PageOutOfDate error={page.failed} retry={retry} />
      {mayUpload ? (
        <UploadForm projectId={projectId} staff={staff} busy={busy} write={write} />
      ) : (
        <p class="muted" id="upload-off">
          {t(loaded.project.my_role === "viewer" ? "files.viewerOff" : "files.uploadOff")}
        </p>
      )}
      <p class="form-status" role="status">
        {busy}
      </p>
      {message && (
        <p class={message.ok ? "ok" : "error"} role={message.ok ? "status" : "alert"} id="files-message">
          {message.text}
        </p>
      )}
      <ul class="file-list">
        {files.length === 0 ? (
          <li class="muted">{t("files.empty")}</li>
        ) : (
          files.map((f) => (
            <li key={f.id} data-file-id={f.id} class={f.visibility === "internal" ? "is-internal" : undefined}>
              <a class="file-name" href={f.download_url} download={f.name}>
                {f.name}
              </a>
              <span class="muted file-meta">
                {formatSize(f.size)} · {t("files.version", { n: String(f.version) })}
                {f.uploaded_by ? ` · ${f.uploaded_by.name}` : ""}
              </span>
              {f.visibility === "internal" && <span class="tag-internal">{t("task.internal")}</span>}
              {mayManage(f, who, staff, mayUpload) && (
                <span class="file-actions">
                  <label class="button file-button" for={`file-version-${f.id}`}>
                    {t("files.newVersionShort")}
                    <span class="visually-hidden"> {t("files.ofName", { name: f.name })}</span>
                  </label>
                  <input
                    id={`file-version-${f.id}`}
                    class="visually-hidden file-version"
                    type="file"
                    disabled={busy !== ""}
                    onChange={(e) => {
                      const chosen = e.currentTarget.files?.[0];
                      e.currentTarget.value = "";
                      if (chosen) void newVersion(f, chosen);
                    }}
                  />
                  <button type="button" class="secondary danger-quiet" disabled={busy !== ""} onClick={() => void remove(f)}>
                    {t("files.delete")}
                    <span class="visually-hidden"> {f.name}</span>
                  </button>
                </span>
              )}
            </li>
          ))
        )}
      </ul>
    </main>
  );
}

function UploadForm(props: {
  projectId: number;
  staff: boolean;
  busy: string;
  write: (doing: string, done: string, run: () => Promise<string[]>) => Promise<void>;
}) {
  const [chosen, setChosen] = useState<File[]>([]);
  const [visibility, setVisibility] = useState<"internal" | "shared">("internal");
  const [key, setKey] = useState(0); // a new key empties the file input
  const [error, setError] = useState("");

  const submit = async (event: Event) => {
    event.preventDefault();
    if (!chosen.length) return setError(t("files.chooseFirst"));
    setError("");
    const names = chosen.map((f) => f.name).join(", ");
    await props.write(tn("files.uploading", chosen.length), t("files.uploaded", { names }), async () => {
      const failed: string[] = [];
      for (const file of chosen) {
        const params: Record<string, string> = { name: file.name };
        if (props.staff) params.visibility = visibility;
        try {
          await upload(`/api/projects/${props.projectId}/files`, file, params);
        } catch (err) {
          failed.push(`${file.name}: ${explain(err).message}`);
        }
      }
      return failed;
    });
    setChosen([]);
    setKey((k) => k + 1);
  };

  return (
    <form class="upload-form" onSubmit={submit} noValidate>
      <p class="field">
        <label for="file-upload">{t("files.upload")}</label>
        <input
          key={key}
          id="file-upload"
          type="file"
          multiple
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? "file-upload-error" : undefined}
          onChange={(e) => setChosen(Array.from(e.currentTarget.files ?? []))}
        />
        {error && (
          <span class="error" id="file-upload-error">
            {error}
          </span>
        )}
      </p>
      {props.staff && (
        <p class="field" data-staff-only>
          <label for="file-visibility">{t("files.visibility")}</label>
          <select id="file-visibility" value={visibility} onChange={(e) => setVisibility(e.currentTarget.value as "internal" | "shared")}>
            <option value="internal">{t("files.internal")}</option>
            <option value="shared">{t("files.shared")}</option>
          </select>
        </p>
      )}
      <button type="submit" class="primary" disabled={props.busy !== ""} aria-busy={props.busy !== ""}>
        {props.busy ? t("common.working") : t("files.send")}
      </button>
    </form>
  );
}
