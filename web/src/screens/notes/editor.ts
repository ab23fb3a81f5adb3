// The note editor's engine: Tiptap (ProseMirror) bound to the note's Yjs document, without any UI of its own.
// The document model is the Y.XmlFragment "prosemirror" (docs/PROTOCOL.md, crdt/richtext.py): the same node and
// mark names the server renders to markdown, so what the editor writes the export reads.
import { Editor, Extension, type AnyExtension, type JSONContent } from "@tiptap/core";
import Collaboration from "@tiptap/extension-collaboration";
import CollaborationCaret from "@tiptap/extension-collaboration-caret";
import { TaskItem, TaskList } from "@tiptap/extension-list";
import StarterKit from "@tiptap/starter-kit";
import type { WebsocketProvider } from "y-websocket";
import type * as Y from "yjs";
import { t } from "../../i18n";
import { normaliseLink } from "./link";

/** The name of the note's Y.XmlFragment (crdt/document.py FRAGMENT). */
export const FRAGMENT = "prosemirror";

// Colours for remote cursors: distinct, readable on white, chosen from the user id so they are stable.
const COLOURS = ["#0a58ca", "#b42318", "#1a7f37", "#8250df", "#bc4c00", "#0e7490", "#a21caf", "#4d7c0f"];

export function colourFor(userId: number): string {
  return COLOURS[userId % COLOURS.length];
}


/** The schema both the live editor and version previews use: StarterKit, checklists and links. */
function schemaExtensions(): AnyExtension[] {
  return [
    StarterKit.configure({
      // Undo is Yjs's (the collaboration extension's): it undoes only this person's edits, never a co-editor's.
      undoRedo: false,
      link: {
        openOnClick: false,
        autolink: true,
        defaultProtocol: "https",
        protocols: ["mailto", "tel"],
        isAllowedUri: (url) => normaliseLink(url) !== null,
        HTMLAttributes: { rel: "noopener noreferrer nofollow", target: "_blank" },
      },
    }),
    TaskList,
    TaskItem.configure({
      nested: true,
      a11y: { checkboxLabel: (node, checked) => t(checked ? "notes.taskDone" : "notes.taskOpen", { text: node.textContent || "…" }) },
    }),
  ];
}

export interface Person {
  name: string;
  color: string;
}

/** The live editor on `ydoc`; `onLink` is asked for when the person presses Ctrl/Cmd+K in the text. */
export function liveEditor(options: {
  element: HTMLElement;
  ydoc: Y.Doc;
  provider: WebsocketProvider;
  me: Person;
  label: string;
  editable: boolean;
  onLink: () => void;
}): Editor {
  // Ctrl/Cmd+K in the text makes a link (as in every word processor); elsewhere on the page it opens search.
  const linkKey = Extension.create({
    name: "tandemLinkKey",
    addKeyboardShortcuts: () => ({
      "Mod-k": () => {
        options.onLink();
        return true;
      },
    }),
  });
  return new Editor({
    element: options.element,
    editable: options.editable,
    // Tiptap's base styles come from notes.css (a <style> element it would inject needs the page's CSP nonce).
    injectCSS: false,
    extensions: [
      ...schemaExtensions(),
      linkKey,
      Collaboration.configure({ document: options.ydoc, field: FRAGMENT }),
      CollaborationCaret.configure({
        provider: options.provider,
        // The server replaces the name with the signed-in person's (crdt/awareness.py); the colour is ours.
        user: { name: options.me.name, color: options.me.color, colorLight: `${options.me.color}33` },
        render: (user) => {
          const caret = document.createElement("span");
          caret.className = "collaboration-carets__caret";
          // Not part of the text a screen reader reads out; "who is here" names co-editors.
          caret.setAttribute("aria-hidden", "true");
          caret.style.borderColor = user.color;
          const label = document.createElement("span");
          label.className = "collaboration-carets__label";
          label.style.backgroundColor = user.color;
          label.textContent = user.name;
          caret.append(label);
          return caret;
        },
        selectionRender: (user) => ({
          class: "collaboration-carets__selection",
          style: `background-color: ${user.color}33`,
          "data-user": user.name,
        }),
      }),
    ],
    editorProps: {
      attributes: {
        id: "note-text",
        class: "note-text",
        role: "textbox",
        "aria-multiline": "true",
        "aria-label": options.label,
        "aria-readonly": String(!options.editable),
      },
      handleKeyDown: (_view, event) => {
        // Keep the app's search shortcut from also firing while the link field opens.
        if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") event.stopPropagation();
        return false;
      },
    },
  });
}

/** A read-only rendering of a saved version (its ProseMirror JSON), with the same schema as the editor. */
export function previewEditor(element: HTMLElement, content: JSONContent, label: string): Editor {
  return new Editor({
    element,
    editable: false,
    injectCSS: false,
    content,
    extensions: schemaExtensions(),
    editorProps: { attributes: { class: "note-text", "aria-label": label, "aria-readonly": "true" } },
  });
}
