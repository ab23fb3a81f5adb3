import { markdown } from "@codemirror/lang-markdown";
import { EditorState } from "@codemirror/state";
import { EditorView } from "@codemirror/view";
import { basicSetup } from "codemirror";
import { yCollab } from "y-codemirror.next";
import { IndexeddbPersistence } from "y-indexeddb";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { api, type Project, type User } from "../api";
import { h, mount } from "../dom";
import { t } from "../i18n";
import { projectNav } from "./common";
import { reasonFor } from "../app/errors";

interface Note {
  id: number;
  project_id: number;
  title: string;
  visibility: "internal" | "shared";
  updated_at: string;
}

interface Version {
  id: number;
  name: string;
  created_at: string;
  text?: string;
}

// Colours for remote cursors: distinct, readable on white, chosen from the user id so they are stable.
const COLOURS = ["#0a58ca", "#b42318", "#1a7f37", "#8250df", "#bc4c00", "#0e7490", "#a21caf", "#4d7c0f"];

export function colourFor(userId: number): string {
  return COLOURS[userId % COLOURS.length];
}

export async function renderNotes(root: HTMLElement, projectId: number, user: User): Promise<() => void> {
  const [project, notes] = await Promise.all([
    api<Project>("GET", `/api/projects/${projectId}`),
    api<{ items: Note[] }>("GET", `/api/projects/${projectId}/notes`),
  ]);
  const staff = user.role !== "customer";
  const list = h(
    "ul",
    { class: "projects" },
    ...notes.items.map((note) =>
      h(
        "li",
        { class: "project-row" },
        h("a", { href: `/projects/${projectId}/notes/${note.id}`, "data-link": "true" }, h("strong", {}, note.title)),
        note.visibility === "internal" ? h("span", { class: "tag-internal" }, t("task.internal")) : null,
      ),
    ),
  );
  const form = staff ? createForm(projectId) : null;
  mount(
    root,
    h(
      "main",
      { class: "page" },
      projectNav(projectId, "notes"),
      h("h1", {}, `${project.name}: ${t("notes.title")}`),
      notes.items.length ? list : h("p", { class: "muted" }, t("notes.empty")),
      form,
    ),
  );
  return () => undefined;
}

function createForm(projectId: number): HTMLElement {
  const title = h("input", { id: "note-title", required: true, maxlength: "200" });
  const shared = h("input", { type: "checkbox", id: "note-shared" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "composer" },
    h("label", { for: "note-title" }, t("notes.newTitle")),
    title,
    h("label", { class: "internal-toggle", for: "note-shared" }, shared, ` ${t("notes.sharedToggle")}`),
    error,
    h("button", { type: "submit", class: "primary" }, t("notes.create")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const note = await api<Note>("POST", `/api/projects/${projectId}/notes`, {
        title: title.value,
        visibility: shared.checked ? "shared" : "internal",
      });
      history.pushState(null, "", `/projects/${projectId}/notes/${note.id}`);
      dispatchEvent(new PopStateEvent("popstate"));
    } catch (err) {
      error.textContent = reasonFor(err);
    }
  });
  return form;
}

/** The same initials the board's presence shows ("Sam Staff" → "SS"). */
function initials(name: string): string {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => w[0])
    .join("")
    .slice(0, 2);
}

export async function renderNote(
  root: HTMLElement,
  projectId: number,
  noteId: number,
  user: User,
): Promise<() => void> {
  const [project, note, settings] = await Promise.all([
    api<Project>("GET", `/api/projects/${projectId}`),
    api<Note>("GET", `/api/notes/${noteId}`),
    api<{ customer_edit_notes: boolean }>("GET", `/api/projects/${projectId}/settings`),
  ]);
  const staff = user.role !== "customer";
  // Viewers only read; customers edit shared notes only where the project's settings allow it.
  const readOnly = project.my_role === "viewer" || (!staff && !settings.customer_edit_notes);
  const ydoc = new Y.Doc();
  // Kept in the browser too: the last-seen note stays readable offline, and offline edits merge on return.
  const local = new IndexeddbPersistence(`tandem-note-${noteId}`, ydoc);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const provider = new WebsocketProvider(`${scheme}://${location.host}/yjs`, String(noteId), ydoc);
  provider.awareness.setLocalStateField("user", { name: user.name, color: colourFor(user.id), colorLight: `${colourFor(user.id)}33` });
  const ytext = ydoc.getText("content");
  const status = h("span", { class: "connection", role: "status", "data-connection": "connecting" }, t("connection.connecting"));
  // The header already says whether the connection is up; the note says what happens to edits: saved with
  // everyone, or kept on this device until the connection is back (IndexedDB, merged on return).
  provider.on("status", ({ status: s }: { status: string }) => {
    const state = s === "connected" ? "live" : s === "connecting" ? "reconnecting" : "offline";
    status.dataset.connection = state;
    status.textContent = t(state === "live" ? "notes.synced" : "notes.savedLocally");
  });
  const who = h("ul", { class: "avatars", "aria-label": t("board.here") });
  const drawWho = () => {
    // The server binds `user` (name, id, role) to whoever is signed in on that socket, so the name shown is theirs
    // whatever their client claims; one avatar per person, however many tabs they have open.
    const people = new Map<string, { name: string; color: string }>();
    provider.awareness.getStates().forEach((state) => {
      const person = state.user as { name: string; color: string; id?: number } | undefined;
      if (person && typeof person.name === "string") people.set(String(person.id ?? person.name), person);
    });
    who.replaceChildren(
      ...[...people.values()].map((p) => {
        const avatar = h("li", { class: "avatar", title: p.name }, h("span", { "aria-hidden": "true" }, initials(p.name)), h("span", { class: "visually-hidden" }, p.name));
        avatar.style.setProperty("background", p.color);
        return avatar;
      }),
    );
  };
  provider.awareness.on("change", drawWho);
  drawWho();

  const editorHost = h("div", { class: "editor", "aria-label": note.title });
  const view = new EditorView({
    parent: editorHost,
    state: EditorState.create({
      doc: ytext.toString(),
      extensions: [
        basicSetup,
        markdown(),
        EditorView.lineWrapping,
        // The page's Content-Security-Policy admits CodeMirror's stylesheet by this per-page nonce.
        EditorView.cspNonce.of(document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content ?? ""),
        EditorState.readOnly.of(readOnly),
        EditorView.editable.of(!readOnly),
        yCollab(ytext, provider.awareness),
      ],
    }),
  });

  const versions = h("ol", { class: "versions" });
  const drawVersions = async () => {
    const listed = await api<{ items: Version[] }>("GET", `/api/notes/${noteId}/versions`);
    versions.replaceChildren(
      ...listed.items.map((v) => {
        const show = h("button", { type: "button", class: "link" }, v.name);
        const body = h("pre", { class: "version-text", hidden: true });
        show.addEventListener("click", async () => {
          const full = await api<Version>("GET", `/api/notes/${noteId}/versions/${v.id}`);
          body.textContent = full.text ?? "";
          body.hidden = !body.hidden;
        });
        return h("li", {}, show, " ", h("time", { datetime: v.created_at }, new Date(v.created_at).toLocaleString()), body);
      }),
    );
  };
  const saveVersion = staff ? versionForm(noteId, drawVersions) : null;
  void drawVersions();

  mount(
    root,
    h(
      "main",
      { class: "page note-page" },
      projectNav(projectId, "notes"),
      h("div", { class: "board-head" }, h("h1", {}, note.title), status, who),
      note.visibility === "internal" ? h("p", { class: "tag-internal" }, t("notes.internalHint")) : null,
      readOnly ? h("p", { class: "muted" }, t("notes.readOnly")) : null,
      editorHost,
      h("section", { "aria-labelledby": "versions-title" }, h("h2", { id: "versions-title" }, t("notes.versions")), versions, saveVersion),
    ),
  );
  return () => {
    view.destroy();
    provider.destroy();
    void local.destroy();
    ydoc.destroy();
  };
}

function versionForm(noteId: number, refresh: () => Promise<void>): HTMLElement {
  const name = h("input", { id: "version-name", required: true, maxlength: "200", placeholder: t("notes.versionPlaceholder") });
  const form = h("form", { class: "toolbar" }, h("label", { for: "version-name" }, t("notes.saveVersion")), name, h("button", { type: "submit", class: "primary" }, t("notes.save")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await api("POST", `/api/notes/${noteId}/versions`, { name: name.value });
    name.value = "";
    await refresh();
  });
  return form;
}
