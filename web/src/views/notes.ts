import { markdown } from "@codemirror/lang-markdown";
import { EditorState } from "@codemirror/state";
import { EditorView } from "@codemirror/view";
import { basicSetup } from "codemirror";
import { yCollab } from "y-codemirror.next";
import { IndexeddbPersistence } from "y-indexeddb";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { api, type Project, type User } from "../api";
import { confirmDialog } from "../app/confirm";
import { fieldError, reasonFor } from "../app/errors";
import { h, mount } from "../dom";
import { t } from "../i18n";
import "../screens/notes/notes.css";
import { projectNav } from "./common";

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
  visibility: "internal" | "shared";
  created_at: string;
  text?: string;
}

// Colours for remote cursors: distinct, readable on white, chosen from the user id so they are stable.
const COLOURS = ["#0a58ca", "#b42318", "#1a7f37", "#8250df", "#bc4c00", "#0e7490", "#a21caf", "#4d7c0f"];

export function colourFor(userId: number): string {
  return COLOURS[userId % COLOURS.length];
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
        // The text field itself is named (the note's title), not only its container: screen readers announce it.
        EditorView.contentAttributes.of({ "aria-label": note.title }),
        yCollab(ytext, provider.awareness),
      ],
    }),
  });

  const versions = h("ol", { class: "versions", id: "note-versions" });
  const versionStatus = h("p", { class: "notice", role: "status", id: "version-status" });
  const versionError = h("p", { class: "notice notice-error", role: "alert", id: "version-error" });
  const say = (ok: string, failure = "") => {
    versionStatus.textContent = ok;
    versionError.textContent = failure;
  };
  // Restoring writes the version's text into the shared document as a new edit, so everyone editing sees it at
  // once, it is stored like any edit, and the text it replaced stays in the note's history (and in any version).
  const restore = async (v: Version, button: HTMLButtonElement) => {
    const yes = await confirmDialog({
      title: t("notes.confirmRestoreTitle"),
      body: t("notes.confirmRestore", { name: v.name }),
      confirm: t("notes.restore"),
      danger: true,
    });
    if (!yes) return;
    if (!provider.wsconnected) {
      say("", t("notes.restoreOffline"));
      return;
    }
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    button.textContent = t("common.working");
    try {
      const full = await api<Version>("GET", `/api/notes/${noteId}/versions/${v.id}`);
      const text = full.text ?? "";
      if (ytext.toString() !== text) {
        ydoc.transact(() => {
          ytext.delete(0, ytext.length);
          ytext.insert(0, text);
        });
      }
      say(t("notes.restored", { name: v.name }));
    } catch (err) {
      say("", t("common.failedNowShowing", { reason: reasonFor(err) }));
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      button.textContent = t("notes.restore");
    }
  };
  const drawVersions = async () => {
    let listed: { items: Version[] };
    try {
      listed = await api<{ items: Version[] }>("GET", `/api/notes/${noteId}/versions`);
    } catch (err) {
      say("", reasonFor(err));
      return;
    }
    if (!listed.items.length) {
      versions.replaceChildren(h("li", { class: "empty" }, t("notes.noVersions")));
      return;
    }
    versions.replaceChildren(
      ...listed.items.map((v) => {
        const show = h("button", { type: "button", class: "link", "aria-expanded": "false" }, v.name);
        const body = h("pre", { class: "version-text", hidden: true });
        show.addEventListener("click", async () => {
          try {
            const full = await api<Version>("GET", `/api/notes/${noteId}/versions/${v.id}`);
            body.textContent = full.text ?? "";
            body.hidden = !body.hidden;
            show.setAttribute("aria-expanded", String(!body.hidden));
          } catch (err) {
            say("", reasonFor(err));
          }
        });
        const restoreButton = h("button", { type: "button", class: "secondary version-restore", "data-staff-only": true }, t("notes.restore"));
        restoreButton.addEventListener("click", () => void restore(v, restoreButton));
        return h(
          "li",
          { "data-version-id": String(v.id), class: v.visibility === "internal" ? "version-internal" : "" },
          show,
          " ",
          h("time", { datetime: v.created_at }, new Date(v.created_at).toLocaleString()),
          v.visibility === "internal" && staff ? h("span", { class: "tag-internal" }, `🔒 ${t("notes.versionVisibility")}`) : null,
          staff && !readOnly ? restoreButton : null,
          body,
        );
      }),
    );
  };
  const saveVersion = staff ? versionForm(noteId, drawVersions, say) : null;
  void drawVersions();

  mount(
    root,
    h(
      "main",
      { class: "page note-page" },
      projectNav(projectId, "notes", user.role !== "customer"),
      h("div", { class: "board-head" }, h("h1", {}, note.title), status, who),
      // Who sees this note is always on screen: hatched and locked when internal, green when the customer sees it.
      note.visibility === "internal"
        ? h("p", { class: "audience-tag audience-internal", id: "note-audience" }, `🔒 ${t("notes.internalHint")}`)
        : h("p", { class: "audience-tag audience-shared", id: "note-audience" }, `👥 ${t("notes.audienceShared")}`),
      readOnly ? h("p", { class: "muted" }, t("notes.readOnly")) : null,
      editorHost,
      h("section", { "aria-labelledby": "versions-title" }, h("h2", { id: "versions-title" }, t("notes.versions")), versionStatus, versionError, versions, saveVersion),
    ),
  );
  return () => {
    view.destroy();
    provider.destroy();
    void local.destroy();
    ydoc.destroy();
  };
}

function versionForm(noteId: number, refresh: () => Promise<void>, say: (ok: string, failure?: string) => void): HTMLElement {
  const name = h("input", { id: "version-name", required: true, maxlength: "200", placeholder: t("notes.versionPlaceholder") });
  const submit = h("button", { type: "submit", class: "primary" }, t("notes.save"));
  const form = h("form", { class: "toolbar", "data-staff-only": true }, h("label", { for: "version-name" }, t("notes.saveVersion")), name, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = name.value.trim();
    if (!chosen) {
      say("", t("common.required"));
      name.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = t("common.working");
    try {
      await api("POST", `/api/notes/${noteId}/versions`, { name: chosen });
      name.value = "";
      say(t("notes.versionSaved", { name: chosen }));
      await refresh();
    } catch (err) {
      say("", fieldError(err, "name") ?? reasonFor(err));
    } finally {
      submit.disabled = false;
      submit.textContent = t("notes.save");
    }
  });
  return form;
}
