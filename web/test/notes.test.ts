import { describe, expect, it } from "vitest";
import { applyNoteEvent, type Note } from "../src/screens/notes/state";

const note = (id: number, updated: string, extra: Partial<Note> = {}): Note => ({
  id,
  project_id: 1,
  task_id: null,
  title: `Note ${id}`,
  visibility: "shared",
  updated_at: updated,
  ...extra,
});

describe("applyNoteEvent", () => {
  const list = [note(2, "2026-05-02T10:00:00Z"), note(1, "2026-05-01T10:00:00Z")];

  it("adds a new note at the top, newest first", () => {
    const out = applyNoteEvent(list, { type: "note.updated", note: note(3, "2026-05-03T10:00:00Z") });
    expect(out!.map((n) => n.id)).toEqual([3, 2, 1]);
  });

  it("replaces a changed note in place of the old one and re-sorts", () => {
    const out = applyNoteEvent(list, { type: "note.updated", note: note(1, "2026-05-04T10:00:00Z", { title: "New" }) });
    expect(out!.map((n) => [n.id, n.title])).toEqual([
      [1, "New"],
      [2, "Note 2"],
    ]);
  });

  it("drops a removed note", () => {
    expect(applyNoteEvent(list, { type: "note.removed", note_id: 2 })!.map((n) => n.id)).toEqual([1]);
  });

  it("leaves other events to the caller", () => {
    expect(applyNoteEvent(list, { type: "task.updated" })).toBeNull();
  });
});
