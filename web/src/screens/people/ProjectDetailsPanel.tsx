// A project's name and description, archiving it, and (admins) deleting it after typing its name.
import { useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import type { User } from "../../api";
import { t } from "../../i18n";
import { deleteProject, getProject, may, updateProject, type ProjectDetails } from "../../people-api";
import { checkName, Dialog, explain, failed, Field, type FieldErrors, type Notice } from "./ui";

export function ProjectDetailsPanel(props: {
  project: ProjectDetails;
  user: User;
  onChanged: (project: ProjectDetails) => void;
  onNotice: (notice: Notice | null) => void;
}) {
  const { project, user, onChanged, onNotice } = props;
  const [name, setName] = useState(project.name);
  const [description, setDescription] = useState(project.description);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState<"" | "save" | "archive">("");
  const [saved, setSaved] = useState(false);
  const [deleting, setDeleting] = useState(false);

  const save = async (event: Event) => {
    event.preventDefault();
    const problem = checkName(name);
    setErrors(problem ? { name: problem } : {});
    if (problem) return;
    setBusy("save");
    setSaved(false);
    onNotice(null);
    try {
      onChanged(await updateProject(project.id, { name: name.trim(), description }));
      setSaved(true);
    } catch (err) {
      const { fields } = explain(err);
      setErrors(fields);
      onNotice(failed(err));
    } finally {
      setBusy("");
    }
  };

  const toggleArchive = async () => {
    setBusy("archive");
    onNotice(null);
    try {
      const changed = await updateProject(project.id, { archived: !project.archived });
      onChanged(changed);
      onNotice({ kind: "ok", text: t(changed.archived ? "settings.archived" : "settings.unarchived") });
    } catch (err) {
      onNotice(failed(err));
      onChanged(await getProject(project.id).catch(() => project));
    } finally {
      setBusy("");
    }
  };

  return (
    <section class="panel-section" aria-labelledby="details-title">
      <h2 id="details-title">{t("settings.details")}</h2>
      <form class="stack" onSubmit={save} noValidate>
        <Field id="settings-name" label={t("settings.name")} error={errors.name}>
          {(a) => (
            <input
              {...a}
              maxLength={200}
              value={name}
              onInput={(e) => {
                setName(e.currentTarget.value);
                setSaved(false);
              }}
            />
          )}
        </Field>
        <Field id="settings-description" label={t("settings.description")} error={errors.description}>
          {(a) => (
            <textarea
              {...a}
              maxLength={20000}
              value={description}
              onInput={(e) => {
                setDescription(e.currentTarget.value);
                setSaved(false);
              }}
            />
          )}
        </Field>
        <div class="actions">
          <button type="submit" id="settings-save" class="primary" disabled={busy !== ""} aria-busy={busy === "save"}>
            {busy === "save" ? t("common.saving") : t("common.save")}
          </button>
          <span role="status" class="muted">
            {saved ? `✓ ${t("common.saved")}` : ""}
          </span>
        </div>
      </form>
      <hr />
      {project.archived && <p class="hint">{t("settings.archivedNote")}</p>}
      <div class="actions">
        <button
          type="button"
          id="settings-archive"
          class="secondary"
          disabled={busy !== ""}
          aria-busy={busy === "archive"}
          onClick={() => void toggleArchive()}
        >
          {busy === "archive" ? t("common.working") : t(project.archived ? "settings.unarchive" : "settings.archive")}
        </button>
        {may.deleteProject(user) && (
          <button type="button" id="settings-delete" class="secondary danger-quiet" onClick={() => setDeleting(true)}>
            {t("settings.delete")}
          </button>
        )}
      </div>
      {deleting && <DeleteDialog project={project} onClose={() => setDeleting(false)} />}
    </section>
  );
}

function DeleteDialog({ project, onClose }: { project: ProjectDetails; onClose: () => void }) {
  const { route } = useLocation();
  const [typed, setTyped] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const matches = typed.trim() === project.name.trim();

  const confirm = async (event: Event) => {
    event.preventDefault();
    if (!matches) return;
    setBusy(true);
    setError("");
    try {
      await deleteProject(project.id);
      route("/");
    } catch (err) {
      setError(explain(err).message);
      setBusy(false);
    }
  };

  return (
    <Dialog id="delete-project" title={t("settings.deleteTitle", { project: project.name })} onClose={onClose}>
      <form class="stack" onSubmit={confirm} noValidate>
        <p>{t("settings.deleteBody")}</p>
        <Field id="delete-confirm-name" label={t("settings.deleteConfirmLabel")}>
          {(a) => <input {...a} autoComplete="off" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />}
        </Field>
        <p class="error" role="alert">
          {error}
        </p>
        <div class="actions">
          <button type="submit" class="danger" disabled={!matches || busy} aria-busy={busy}>
            {busy ? t("settings.deleting") : t("settings.deleteConfirm")}
          </button>
          <button type="button" class="secondary" onClick={onClose}>
            {t("common.cancel")}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
