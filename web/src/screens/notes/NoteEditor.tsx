// One note, co-edited live: a rich-text editor (Tiptap on the note's Yjs document) with a formatting toolbar, who is
// here, whether edits are saved with everyone or kept on this device, and the note's named versions.
import type { Editor, JSONContent } from "@tiptap/core";
import { useEffect, useRef, useState } from "preact/hooks";
import { IndexeddbPersistence } from "y-indexeddb";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { api, type Project, type User } from "../../api";
import { confirmDialog } from "../../app/confirm";
import { fieldError, reasonFor } from "../../app/errors";
import { pageMissing } from "../../app/NotFound";
import { formatDateTime, t } from "../../i18n";
import { ProjectNav } from "../common/ProjectNav";
import { colourFor, liveEditor, previewEditor } from "./editor";
import "./notes.css";
import type { Note } from "./state";
import { Toolbar } from "./Toolbar";

interface Version {
  id: number;
  name: string;
  visibility: "internal" | "shared";
  created_at: string;
  text?: string;
  doc?: JSONContent;
}

type Connection = "connecting" | "live" | "reconnecting" | "offline";

/** The same initials the board's presence shows ("Sam Staff" → "SS"). */
function initials(name: string): string {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => w[0])
    .join("")
    .slice(0, 2);
}

interface Loaded {
  project: Project;
  note: Note;
  readOnly: boolean;
}

export function NoteEditor({ projectId, noteId, who }: { projectId: number; noteId: number; who: User }) {
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [loadError, setLoadError] = useState("");
  useEffect(() => {
    let gone = false;
    setLoaded(null);
    Promise.all([
      api<Project>("GET", `/api/projects/${projectId}`),
      api<Note>("GET", `/api/notes/${noteId}`),
      api<{ customer_edit_notes: boolean }>("GET", `/api/projects/${projectId}/settings`),
    ]).then(
      ([project, note, settings]) => {
        if (gone) return;
        // Viewers only read; customers edit shared notes only where the project's settings allow it. The server
        // enforces the same (a read-only socket's edits are refused); the page says so and offers no toolbar.
        const readOnly = project.my_role === "viewer" || (who.role === "customer" && !settings.customer_edit_notes);
        setLoaded({ project, note, readOnly });
      },
      (err: unknown) => {
        if (gone || pageMissing(err)) return;
        setLoadError(reasonFor(err));
      },
    );
    return () => {
      gone = true;
    };
  }, [projectId, noteId]);
  if (!loaded) {
    return (
      <main class="page note-page" aria-busy={loadError ? undefined : "true"}>
        <ProjectNav projectId={projectId} current="notes" />
        {loadError ? (
          <p class="error" role="alert">
            {loadError}
          </p>
        ) : (
          <p class="muted">{t("notes.loading")}</p>
        )}
      </main>
    );
  }
  return <NotePage key={noteId} {...loaded} who={who} />;
}

function NotePage({ project, note, readOnly, who }: Loaded & { who: User }) {
  const staff = who.role !== "customer";
  const host = useRef<HTMLDivElement>(null);
  const [editor, setEditor] = useState<Editor | null>(null);
  const [provider, setProvider] = useState<WebsocketProvider | null>(null);
  const [connection, setConnection] = useState<Connection>("connecting");
  const [people, setPeople] = useState<{ key: string; name: string; color: string }[]>([]);
  const [linkOpen, setLinkOpen] = useState(false);

  useEffect(() => {
    const ydoc = new Y.Doc();
    // Kept in the browser too: the last-seen note stays readable offline, and offline edits merge on return.
    const local = new IndexeddbPersistence(`tandem-note-${note.id}`, ydoc);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebsocketProvider(`${scheme}://${location.host}/yjs`, String(note.id), ydoc);
    // The header already says whether the connection is up; the note says what happens to edits: saved with
    // everyone, or kept on this device until the connection is back (IndexedDB, merged on return).
    ws.on("status", ({ status }: { status: string }) => {
      setConnection(status === "connected" ? "live" : status === "connecting" ? "reconnecting" : "offline");
    });
    const drawWho = () => {
      // The server binds `user` (name, id, role) to whoever is signed in on that socket, so the name shown is theirs
      // whatever their client claims; one avatar per person, however many tabs they have open.
      const seen = new Map<string, { key: string; name: string; color: string }>();
      ws.awareness.getStates().forEach((state) => {
        const person = state.user as { name: string; color: string; id?: number } | undefined;
        if (person && typeof person.name === "string") {
          const key = String(person.id ?? person.name);
          seen.set(key, { key, name: person.name, color: person.color });
        }
      });
      setPeople([...seen.values()]);
    };
    ws.awareness.on("change", drawWho);
    const made = liveEditor({
      element: host.current!,
      ydoc,
      provider: ws,
      me: { name: who.name, color: colourFor(who.id) },
      label: note.title,
      editable: !readOnly,
      onLink: () => setLinkOpen(true),
    });
    // Read-only, a checklist's boxes are disabled too (Tiptap's would only spring back when clicked).
    const disableBoxes = () =>
      host.current?.querySelectorAll<HTMLInputElement>("input[type=checkbox]").forEach((box) => (box.disabled = true));
    if (readOnly) made.on("transaction", disableBoxes);
    drawWho();
    setEditor(made);
    setProvider(ws);
    return () => {
      made.off("transaction", disableBoxes);
      made.destroy();
      ws.awareness.off("change", drawWho);
      ws.destroy();
      void local.destroy();
      ydoc.destroy();
    };
  }, [note.id]);

  const live = connection === "live";
  return (
    <main class="page note-page">
      <ProjectNav projectId={project.id} current="notes" />
      <div class="board-head">
        <h1>{note.title}</h1>
        <span class="connection" role="status" data-connection={connection}>
          {connection === "connecting" ? t("connection.connecting") : live ? t("notes.synced") : t("notes.savedLocally")}
        </span>
        <ul class="avatars" aria-label={t("board.here")}>
          {people.map((p) => (
            <li key={p.key} class="avatar" title={p.name} style={{ background: p.color }}>
              <span aria-hidden="true">{initials(p.name)}</span>
              <span class="visually-hidden">{p.name}</span>
            </li>
          ))}
        </ul>
      </div>
      {/* Who sees this note is always on screen: hatched and locked when internal, green when the customer sees it. */}
      <p class="note-meta">
        {note.visibility === "internal" ? (
          <span class="audience-tag audience-internal" id="note-audience">
            <span aria-hidden="true">🔒 </span>
            {t("notes.internalHint")}
          </span>
        ) : (
          <span class="audience-tag audience-shared" id="note-audience">
            <span aria-hidden="true">👥 </span>
            {t("notes.audienceShared")}
          </span>
        )}{" "}
        <a href="#versions-title" class="versions-link">
          {t("notes.versions")}
        </a>
      </p>
      {readOnly ? (
        <p class="notice note-read-only" id="note-read-only">
          {t("notes.readOnly")}
        </p>
      ) : (
        editor && <Toolbar editor={editor} linkOpen={linkOpen} setLinkOpen={setLinkOpen} />
      )}
      <div class={`note-editor${readOnly ? " is-read-only" : ""}`} ref={host} />
      <Versions noteId={note.id} staff={staff} readOnly={readOnly} editor={editor} provider={provider} />
    </main>
  );
}

function Versions(props: {
  noteId: number;
  staff: boolean;
  readOnly: boolean;
  editor: Editor | null;
  provider: WebsocketProvider | null;
}) {
  const { noteId, staff } = props;
  const [versions, setVersions] = useState<Version[] | null>(null);
  const [status, setStatus] = useState("");
  const [error, setError] = useState("");
  const say = (ok: string, failure = "") => {
    setStatus(ok);
    setError(failure);
  };
  const refresh = async () => {
    try {
      setVersions((await api<{ items: Version[] }>("GET", `/api/notes/${noteId}/versions`)).items);
    } catch (err) {
      say("", reasonFor(err));
    }
  };
  useEffect(() => {
    void refresh();
  }, [noteId]);

  // Restoring writes the version into the shared document as a new edit, so everyone editing sees it at once, it
  // is stored like any edit, and what it replaced stays in the note's history (and in any version saved before).
  const restore = async (v: Version) => {
    const yes = await confirmDialog({
      title: t("notes.confirmRestoreTitle"),
      body: t("notes.confirmRestore", { name: v.name }),
      confirm: t("notes.restore"),
      danger: true,
    });
    if (!yes) return;
    if (!props.provider?.wsconnected || !props.editor) {
      say("", t("notes.restoreOffline"));
      return;
    }
    try {
      const full = await api<Version>("GET", `/api/notes/${noteId}/versions/${v.id}`);
      props.editor.commands.setContent(full.doc ?? { type: "doc", content: [] });
      say(t("notes.restored", { name: v.name }));
    } catch (err) {
      say("", t("common.failedNowShowing", { reason: reasonFor(err) }));
    }
  };

  return (
    <section aria-labelledby="versions-title">
      <h2 id="versions-title" tabIndex={-1}>
        {t("notes.versions")}
      </h2>
      <p class="notice" role="status" id="version-status">
        {status}
      </p>
      <p class="notice notice-error" role="alert" id="version-error">
        {error}
      </p>
      <ol class="versions" id="note-versions">
        {versions && !versions.length && <li class="empty">{t("notes.noVersions")}</li>}
        {versions?.map((v) => (
          <VersionRow
            key={v.id}
            noteId={noteId}
            version={v}
            staff={staff}
            canRestore={staff && !props.readOnly}
            onRestore={() => restore(v)}
            onError={(reason) => say("", reason)}
          />
        ))}
      </ol>
      {staff && <VersionForm noteId={noteId} refresh={refresh} say={say} />}
    </section>
  );
}

function VersionRow(props: {
  noteId: number;
  version: Version;
  staff: boolean;
  canRestore: boolean;
  onRestore: () => Promise<void>;
  onError: (reason: string) => void;
}) {
  const v = props.version;
  const [doc, setDoc] = useState<JSONContent | null>(null);
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const preview = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open || !doc || !preview.current) return;
    const shown = previewEditor(preview.current, doc, v.name);
    return () => shown.destroy();
  }, [open, doc]);
  const toggle = async () => {
    if (open) {
      setOpen(false);
      return;
    }
    try {
      const full = await api<Version>("GET", `/api/notes/${props.noteId}/versions/${v.id}`);
      setDoc(full.doc ?? { type: "doc", content: [] });
      setOpen(true);
    } catch (err) {
      props.onError(reasonFor(err));
    }
  };
  return (
    <li data-version-id={String(v.id)} class={v.visibility === "internal" ? "version-internal" : ""}>
      <button type="button" class="link" aria-expanded={open ? "true" : "false"} onClick={() => void toggle()}>
        {v.name}
      </button>{" "}
      <time dateTime={v.created_at}>{formatDateTime(v.created_at)}</time>
      {v.visibility === "internal" && props.staff && <span class="tag-internal">🔒 {t("notes.versionVisibility")}</span>}
      {props.canRestore && (
        <button
          type="button"
          class="secondary version-restore"
          disabled={busy}
          aria-busy={busy ? "true" : undefined}
          onClick={async () => {
            setBusy(true);
            try {
              await props.onRestore();
            } finally {
              setBusy(false);
            }
          }}
        >
          {busy ? t("common.working") : t("notes.restore")}
        </button>
      )}
      {open && <div class="version-text note-editor is-read-only" ref={preview} />}
    </li>
  );
}

function VersionForm(props: { noteId: number; refresh: () => Promise<void>; say: (ok: string, failure?: string) => void }) {
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    const chosen = name.trim();
    if (!chosen) {
      props.say("", t("common.required"));
      input.current?.focus();
      return;
    }
    setBusy(true);
    try {
      await api("POST", `/api/notes/${props.noteId}/versions`, { name: chosen });
      setName("");
      props.say(t("notes.versionSaved", { name: chosen }));
      await props.refresh();
    } catch (err) {
      props.say("", fieldError(err, "name") ?? reasonFor(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="toolbar" onSubmit={submit}>
      <label for="version-name">{t("notes.saveVersion")}</label>
      <input
        id="version-name"
        ref={input}
        required
        maxLength={200}
        placeholder={t("notes.versionPlaceholder")}
        value={name}
        onInput={(e) => setName((e.target as HTMLInputElement).value)}
      />
      <button type="submit" class="primary" disabled={busy}>
        {busy ? t("common.working") : t("notes.save")}
      </button>
    </form>
  );
}
