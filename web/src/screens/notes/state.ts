// The notes list as live events change it (no DOM, no session: tested on its own).
export interface Note {
  id: number;
  project_id: number;
  task_id: number | null;
  title: string;
  visibility: "internal" | "shared";
  updated_at: string;
}

const newestFirst = (a: Note, b: Note) => b.updated_at.localeCompare(a.updated_at) || b.id - a.id;

/** A note event from the project's stream applied to the list (docs/PROTOCOL.md: `note.updated`, `note.removed`). */
export function applyNoteEvent(notes: Note[], data: Record<string, unknown>): Note[] | null {
  if (data.type === "note.updated") {
    const note = data.note as Note;
    return [...notes.filter((n) => n.id !== note.id), note].sort(newestFirst);
  }
  if (data.type === "note.removed") return notes.filter((n) => n.id !== data.note_id);
  return null;
}

