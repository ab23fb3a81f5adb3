// The task's files the reader may see; whoever may upload adds one (the server decides its audience).
import { useEffect, useState } from "preact/hooks";
import { api, upload } from "../../api";
import { reasonFor } from "../../app/errors";
import { t } from "../../i18n";
import { formatSize, type StoredFile } from "../files/files";
import { InternalTag } from "../common/TaskCard";

export function Attachments({ projectId, taskId, canUpload }: { projectId: number; taskId: number; canUpload: boolean }) {
  const [files, setFiles] = useState<StoredFile[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const refresh = async () =>
    setFiles((await api<{ items: StoredFile[] }>("GET", `/api/projects/${projectId}/files?task_id=${taskId}`)).items);
  useEffect(() => void refresh(), [taskId]);

  const attach = async (input: HTMLInputElement) => {
    const file = input.files?.[0];
    if (!file) return;
    setError("");
    setBusy(true);
    try {
      await upload(`/api/projects/${projectId}/files`, file, { name: file.name, task_id: String(taskId) });
      input.value = "";
      await refresh();
    } catch (err) {
      setError(reasonFor(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="attachments-title">
      <h2 id="attachments-title">{t("task.attachments")}</h2>
      <ul class="attachments">
        {files.map((f) => (
          <li key={f.id}>
            <a href={f.download_url} download={f.name}>
              {f.name}
            </a>
            {` · ${formatSize(f.size)}`}
            {f.visibility === "internal" && <InternalTag />}
          </li>
        ))}
      </ul>
      {canUpload && (
        <>
          <label for="attach-file">{t("task.attach")}</label>
          <input type="file" id="attach-file" disabled={busy} onChange={(e) => void attach(e.currentTarget)} />
          {busy && <span class="muted" role="status">{t("form.saving")}</span>}
          {error && (
            <p class="error" role="alert">
              {error}
            </p>
          )}
        </>
      )}
    </section>
  );
}
