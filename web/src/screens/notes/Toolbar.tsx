// The note's formatting toolbar: one tab stop (arrow keys move between its buttons, as WAI-ARIA's toolbar pattern
// says), every button named in the person's language with its shortcut, and pressed while its format applies at the
// cursor. A button applies to the selection and gives the focus back to the text, so typing goes on.
import type { Editor } from "@tiptap/core";
import { useEffect, useRef, useState } from "preact/hooks";
import { t, type MessageKey } from "../../i18n";
import { normaliseLink } from "./link";

const mac = typeof navigator !== "undefined" && /Mac|iPhone|iPad/.test(navigator.platform);
const MOD = mac ? "Meta" : "Control";

/** "Control+Alt+1" as a person reads it on their keyboard ("Ctrl+Alt+1", "⌘+B"). */
function readable(keys: string): string {
  return keys.replace("Control", "Ctrl").replace("Meta", "⌘").replace("Shift", "⇧");
}

interface Tool {
  id: string;
  label: MessageKey;
  params?: Record<string, string>;
  icon: string;
  keys: string;
  active: (e: Editor) => boolean;
  run: (e: Editor) => void;
}

const TOOLS: Tool[] = [
  { id: "bold", label: "notes.bold", icon: "B", keys: `${MOD}+B`, active: (e) => e.isActive("bold"), run: (e) => e.chain().focus().toggleBold().run() },
  { id: "italic", label: "notes.italic", icon: "I", keys: `${MOD}+I`, active: (e) => e.isActive("italic"), run: (e) => e.chain().focus().toggleItalic().run() },
  ...([1, 2, 3] as const).map(
    (level): Tool => ({
      id: `h${level}`,
      label: "notes.heading",
      params: { level: String(level) },
      icon: `H${level}`,
      keys: `${MOD}+Alt+${level}`,
      active: (e) => e.isActive("heading", { level }),
      run: (e) => e.chain().focus().toggleHeading({ level }).run(),
    }),
  ),
  { id: "bullets", label: "notes.bulletList", icon: "•", keys: `${MOD}+Shift+8`, active: (e) => e.isActive("bulletList"), run: (e) => e.chain().focus().toggleBulletList().run() },
  { id: "numbers", label: "notes.orderedList", icon: "1.", keys: `${MOD}+Shift+7`, active: (e) => e.isActive("orderedList"), run: (e) => e.chain().focus().toggleOrderedList().run() },
  { id: "checklist", label: "notes.taskList", icon: "☑", keys: `${MOD}+Shift+9`, active: (e) => e.isActive("taskList"), run: (e) => e.chain().focus().toggleTaskList().run() },
];

export function Toolbar({ editor, linkOpen, setLinkOpen }: { editor: Editor; linkOpen: boolean; setLinkOpen: (open: boolean) => void }) {
  const [focusAt, setFocusAt] = useState(0);
  const [, setTick] = useState(0);
  const bar = useRef<HTMLDivElement>(null);
  // What applies at the cursor changes with every transaction (typing, moving, a co-editor's edit): draw again then.
  // The toolbar subscribes itself: its props stay the same object, so a parent's re-render would not redraw it.
  useEffect(() => {
    const redraw = () => setTick((n) => n + 1);
    editor.on("transaction", redraw);
    return () => {
      editor.off("transaction", redraw);
    };
  }, [editor]);
  const count = TOOLS.length + 1; // and the link button

  const onKeyDown = (event: KeyboardEvent) => {
    const moves: Record<string, number> = { ArrowRight: focusAt + 1, ArrowLeft: focusAt - 1, Home: 0, End: count - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = (moves[event.key] + count) % count;
    setFocusAt(next);
    bar.current?.querySelectorAll<HTMLButtonElement>(":scope > button")[next]?.focus();
  };

  return (
    <>
      <div class="note-toolbar" role="toolbar" aria-label={t("notes.toolbar")} aria-controls="note-text" ref={bar} onKeyDown={onKeyDown}>
        {TOOLS.map((tool, i) => {
          const name = t(tool.label, tool.params);
          const pressed = tool.active(editor);
          return (
            <button
              key={tool.id}
              type="button"
              class={`tool tool-${tool.id}`}
              data-tool={tool.id}
              aria-label={name}
              aria-pressed={pressed ? "true" : "false"}
              aria-keyshortcuts={tool.keys}
              title={`${name} (${readable(tool.keys)})`}
              tabIndex={i === focusAt ? 0 : -1}
              // A mouse press must not take the focus (and the selection) from the text.
              onMouseDown={(e) => e.preventDefault()}
              onFocus={() => setFocusAt(i)}
              onClick={() => tool.run(editor)}
            >
              <span aria-hidden="true">{tool.icon}</span>
            </button>
          );
        })}
        <button
          type="button"
          class="tool tool-link"
          data-tool="link"
          aria-label={t("notes.link")}
          aria-pressed={editor.isActive("link") ? "true" : "false"}
          aria-expanded={linkOpen ? "true" : "false"}
          aria-keyshortcuts={`${MOD}+K`}
          title={`${t("notes.link")} (${readable(`${MOD}+K`)})`}
          tabIndex={focusAt === TOOLS.length ? 0 : -1}
          onMouseDown={(e) => e.preventDefault()}
          onFocus={() => setFocusAt(TOOLS.length)}
          onClick={() => setLinkOpen(!linkOpen)}
        >
          <span aria-hidden="true">🔗</span>
        </button>
      </div>
      {linkOpen && <LinkForm editor={editor} close={() => setLinkOpen(false)} />}
    </>
  );
}

/** The link's address for the selected text (or the link at the cursor): apply, remove, or Escape to leave it. */
function LinkForm({ editor, close }: { editor: Editor; close: () => void }) {
  const current = (editor.getAttributes("link").href as string | undefined) ?? "";
  const [href, setHref] = useState(current);
  const [error, setError] = useState("");
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    input.current?.focus();
    input.current?.select();
  }, []);
  const done = () => {
    close();
    editor.commands.focus();
  };
  const apply = (event: Event) => {
    event.preventDefault();
    const url = normaliseLink(href);
    if (url === null) {
      setError(t("notes.linkInvalid"));
      input.current?.focus();
      return;
    }
    const chain = editor.chain().focus().extendMarkRange("link");
    // With nothing selected, the address itself becomes the linked text.
    if (editor.state.selection.empty && !editor.isActive("link")) {
      chain.insertContent({ type: "text", text: href.trim(), marks: [{ type: "link", attrs: { href: url } }] }).run();
    } else {
      chain.setLink({ href: url }).run();
    }
    close();
  };
  return (
    <form
      class="note-link-form"
      onSubmit={apply}
      onKeyDown={(e) => {
        if (e.key === "Escape") {
          e.preventDefault();
          done();
        }
      }}
    >
      <label for="note-link-href">{t("notes.linkAddress")}</label>
      <input
        id="note-link-href"
        ref={input}
        type="text"
        inputMode="url"
        autoComplete="url"
        placeholder="https://"
        value={href}
        aria-invalid={error ? "true" : undefined}
        aria-describedby={error ? "note-link-error" : undefined}
        onInput={(e) => {
          setHref((e.target as HTMLInputElement).value);
          setError("");
        }}
      />
      <button type="submit" class="primary">
        {t("notes.linkApply")}
      </button>
      {current && (
        <button
          type="button"
          class="secondary"
          onClick={() => {
            editor.chain().focus().extendMarkRange("link").unsetLink().run();
            close();
          }}
        >
          {t("notes.linkRemove")}
        </button>
      )}
      <button type="button" class="secondary" onClick={done}>
        {t("common.cancel")}
      </button>
      {error && (
        <p class="field-error" id="note-link-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
