// The project's notes: a live list (created, renamed, shared, made internal or deleted by anyone shows at once),
// and for staff, creating, renaming, sharing or making internal, and deleting. The editor is NoteEditor.tsx.
import { useEffect, useState } from "preact/hooks";
import { allPages, api, type Project, type Task, type User } from "../../api";
import { confirmDialog } from "../../app/confirm";
import { liveClient } from "../../app/session";
import { t } from "../../i18n";
import { AudienceChoice } from "../common/AudienceChoice";
import { PageNotReady, PageOutOfDate } from "../common/PageNotReady";
import { usePageLoad } from "../common/page-load";
import { ProjectNav } from "../common/ProjectNav";
import "./notes.css";
import { applyNoteEvent, type Note } from "./state";

type Audience = Note["visibility"];

import { checkName, explain, Field, NoticeLine, failed, type FieldErrors, type Notice } from "../people/ui";

function AudienceTag({ visibility }: { visibility: Audience }) {
  return visibility === "internal" ? (
    <span class="audience-tag audience-internal">
      <span aria-hidden="true">🔒 </span>
      {t("notes.audienceInternal")}
    </span>
  ) : (
    <span class="audience-tag audience-shared">
      <span aria-hidden="true">👥 </span>
      {t("notes.audienceShared")}
    </span>
  );
}

export function NotesList({ projectId, who }: { projectId: number; who: User }) {
  const staff = who.role !== "customer";
  const [project, setProject] = useState<Project | null>(null);
  const [notes, setNotes] = useState<Note[] | null>(null);
  const [tasks, setTasks] = useState<Task[]>([]);
  const [notice, setNotice] = useState<Notice | null>(null);
  const page = usePageLoad(projectId);

  const load = async () => {
    const [p, listed] = await Promise.all([
      api<Project>("GET", `/api/projects/${projectId}`),
      api<{ items: Note[] }>("GET", `/api/projects/${projectId}/notes`),
    ]);
    setProject(p);
    setNotes(listed.items);
  };
  // Never throws: a failure before the page is shown says so with Try again; after a change, the page stays as it
  // was, said to be possibly out of date (PageOutOfDate). The project gone or not theirs: the in-app not-found page.
  const reload = () => page.run(load);

  useEffect(() => {
    setProject(null);
    void reload();
    if (staff) void allPages<Task>(`/api/projects/${projectId}/tasks`).then(setTasks, () => setTasks([]));
    return liveClient().subscribe(`project:${projectId}:${staff ? "staff" : "shared"}`, (message) => {
      if (message.kind === "event") {
        const data = message.event.data;
        // A task made internal or deleted takes its notes with it (for customers): the list is fetched again.
        if (data.type === "task.removed") void reload();
        else setNotes((current) => (current ? applyNoteEvent(current, data) ?? current : current));
      } else if (message.kind === "reload") {
        void reload();
      }
    });
  }, [projectId]);

  // After a failed write the list is fetched again, so what is shown is what the server has.
  const failedWrite = async (err: unknown) => {
    setNotice(failed(err));
    await reload();
  };

  if (!project || !notes) return <PageNotReady class="notes-page" error={page.failed} retry={reload} />;
  return (
    <main class="page notes-page">
      <ProjectNav projectId={projectId} current="notes" />
      <h1>{`${project.name}: ${t("notes.title")}`}</h1>
      <PageOutOfDate error={page.failed} retry={reload} />
      <NoticeLine notice={notice} />
      {notes.length === 0 && <p class="empty">{t("notes.empty")}</p>}
      {notes.length > 0 && (
        <ul class="rows notes-list" id="notes-list">
          {notes.map((note) => (
            <NoteRow
              key={note.id}
              note={note}
              projectId={projectId}
              staff={staff}
              onDone={(text) => setNotice({ kind: "ok", text })}
              onFailed={failedWrite}
              onChanged={(changed) => setNotes((c) => (c ? applyNoteEvent(c, { type: "note.updated", note: changed }) : c))}
              onDeleted={() => setNotes((c) => (c ? c.filter((n) => n.id !== note.id) : c))}
            />
          ))}
        </ul>
      )}
      {staff && (
        <CreateNote
          projectId={projectId}
          tasks={tasks}
          onCreated={(note) => {
            setNotes((c) => (c ? applyNoteEvent(c, { type: "note.updated", note }) : [note]));
            setNotice({ kind: "ok", text: t("notes.created", { title: note.title }) });
          }}
        />
      )}
    </main>
  );
}

function NoteRow(props: {
  note: Note;
  projectId: number;
  staff: boolean;
  onDone: (text: string) => void;
  onFailed: (err: unknown) => Promise<void>;
  onChanged: (note: Note) => void;
  onDeleted: () => void;
}) {
  const { note, staff } = props;
  const [renaming, setRenaming] = useState(false);
  const [title, setTitle] = useState(note.title);
  const [titleError, setTitleError] = useState("");
  const [busy, setBusy] = useState<"" | "rename" | "audience" | "delete">("");
  const internal = note.visibility === "internal";

  const patch = async (what: "rename" | "audience", change: Partial<Note>) => {
    setBusy(what);
    try {
      const changed = await api<Note>("PATCH", `/api/notes/${note.id}`, change);
      props.onChanged(changed);
      return changed;
    } finally {
      setBusy("");
    }
  };

  const rename = async (event: Event) => {
    event.preventDefault();
    const problem = checkName(title);
    setTitleError(problem);
    if (problem) return;
    try {
      const changed = await patch("rename", { title: title.trim() });
      setRenaming(false);
      props.onDone(t("notes.renamed", { title: changed.title }));
    } catch (err) {
      const { fields, message } = explain(err);
      setTitleError(fields.title ?? message);
    }
  };

  const changeAudience = async () => {
    const to: Audience = internal ? "shared" : "internal";
    const yes = await confirmDialog({
      title: internal ? t("notes.confirmShareTitle") : t("notes.confirmInternalTitle"),
      body: internal ? t("notes.confirmShare", { title: note.title }) : t("notes.confirmInternal", { title: note.title }),
      confirm: internal ? t("notes.share") : t("notes.makeInternal"),
    });
    if (!yes) return;
    try {
      await patch("audience", { visibility: to });
      props.onDone(to === "shared" ? t("notes.nowShared", { title: note.title }) : t("notes.nowInternal", { title: note.title }));
    } catch (err) {
      await props.onFailed(err);
    }
  };

  const remove = async () => {
    const yes = await confirmDialog({
      title: t("notes.confirmDeleteTitle"),
      body: t("notes.confirmDelete", { title: note.title }),
      confirm: t("notes.delete"),
      danger: true,
    });
    if (!yes) return;
    setBusy("delete");
    try {
      await api<void>("DELETE", `/api/notes/${note.id}`);
      props.onDeleted();
      props.onDone(t("notes.deleted", { title: note.title }));
    } catch (err) {
      await props.onFailed(err);
    } finally {
      setBusy("");
    }
  };

  return (
    <li class={`note-row${internal ? " note-internal" : ""}`} data-note-id={note.id} data-visibility={note.visibility}>
      <div class="row-who">
        <a class="note-link" href={`/projects/${props.projectId}/notes/${note.id}`}>
          <strong>{note.title}</strong>
        </a>
        <small>
          <AudienceTag visibility={note.visibility} />
        </small>
      </div>
      {staff && !renaming && (
        <div class="row-controls" data-staff-only>
          <button type="button" class="secondary" onClick={() => { setTitle(note.title); setTitleError(""); setRenaming(true); }}>
            {t("notes.rename")}
            <span class="visually-hidden"> {note.title}</span>
          </button>
          <button
            type="button"
            class={internal ? "secondary note-share" : "secondary note-make-internal"}
            disabled={busy === "audience"}
            aria-busy={busy === "audience"}
            onClick={changeAudience}
          >
            {busy === "audience" ? t("common.working") : internal ? `👥 ${t("notes.share")}` : `🔒 ${t("notes.makeInternal")}`}
            <span class="visually-hidden"> {note.title}</span>
          </button>
          <button
            type="button"
            class="secondary danger-quiet"
            disabled={busy === "delete"}
            aria-busy={busy === "delete"}
            onClick={remove}
          >
            {busy === "delete" ? t("common.working") : t("notes.delete")}
            <span class="visually-hidden"> {note.title}</span>
          </button>
        </div>
      )}
      {staff && renaming && (
        <form class="note-rename" onSubmit={rename} noValidate data-staff-only>
          <Field id={`note-rename-${note.id}`} label={t("notes.newName")} error={titleError}>
            {(a) => <input {...a} maxLength={200} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />}
          </Field>
          <div class="actions">
            <button type="submit" class="primary" disabled={busy === "rename"} aria-busy={busy === "rename"}>
              {busy === "rename" ? t("common.working") : t("notes.saveName")}
            </button>
            <button type="button" class="secondary" onClick={() => setRenaming(false)}>
              {t("common.cancel")}
            </button>
          </div>
        </form>
      )}
    </li>
  );
}

function CreateNote(props: { projectId: number; tasks: Task[]; onCreated: (note: Note) => void }) {
  const [title, setTitle] = useState("");
  const [audience, setAudience] = useState<Audience>("internal");
  const [taskId, setTaskId] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState("");
  const [busy, setBusy] = useState(false);
  // A shared note cannot hang off an internal task (the API refuses it), so those are not offered.
  const offered = props.tasks.filter((task) => audience === "internal" || task.visibility === "shared");

  const submit = async (event: Event) => {
    event.preventDefault();
    const problem = checkName(title);
    setErrors(problem ? { title: problem } : {});
    setMessage(problem ? t("common.fixFields") : "");
    if (problem) return;
    setBusy(true);
    try {
      const body: Record<string, unknown> = { title: title.trim(), visibility: audience };
      if (taskId && offered.some((task) => String(task.id) === taskId)) body.task_id = Number(taskId);
      const note = await api<Note>("POST", `/api/projects/${props.projectId}/notes`, body);
      setTitle("");
      setTaskId("");
      props.onCreated(note);
    } catch (err) {
      const { fields, message: why } = explain(err);
      setErrors(fields);
      setMessage(why);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="panel-section" aria-labelledby="new-note-title" data-staff-only>
      <h2 id="new-note-title">{t("notes.new")}</h2>
      <form class="stack" id="note-create" onSubmit={submit} noValidate>
        <Field id="note-title" label={t("notes.newTitle")} error={errors.title}>
          {(a) => <input {...a} maxLength={200} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />}
        </Field>
        <AudienceChoice name="note-audience" words="notes" value={audience} onChange={setAudience} />
        <Field id="note-task" label={t("notes.task")} error={errors.task_id} hint={audience === "shared" ? t("notes.taskSharedHint") : undefined}>
          {(a) => (
            <select {...a} value={taskId} onChange={(e) => setTaskId(e.currentTarget.value)}>
              <option value="">{t("notes.noTask")}</option>
              {offered.map((task) => (
                <option key={task.id} value={String(task.id)}>
                  {task.visibility === "internal" ? `🔒 ${task.title}` : task.title}
                </option>
              ))}
            </select>
          )}
        </Field>
        <p class="error" role="alert">
          {message}
        </p>
        <div class="actions">
          <button type="submit" id="note-create-submit" class={audience === "internal" ? "primary post-internal" : "primary"} disabled={busy} aria-busy={busy}>
            {busy ? t("common.working") : audience === "internal" ? `🔒 ${t("notes.createInternal")}` : `👥 ${t("notes.createShared")}`}
          </button>
        </div>
      </form>
    </section>
  );
}
