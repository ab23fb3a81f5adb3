"""The oracle of the visibility model test (tests/test_visibility_model.py): what staff made in one project, what
each item hangs off, and what a customer member (or anyone else) may see of it.

Every item carries a unique marker (``xq<kind><n>e<example>qx``) in its title, name or body, so a leak is found as
text wherever it shows up (JSON, CSV, markdown, a file's bytes, a live event); ids are found by key and nesting.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# An id no row has (a database integer still: larger ones are refused before any lookup).
MISSING = 2_000_000_000
READERS = ("customer", "viewer", "other_customer")
MEMBERS = ("customer", "viewer")
# Path parameters the model substitutes, by name; any other name in a GET route fails the test (model it first).
ITEM_PARAMS = {
    "task_id": "task",
    "milestone_id": "milestone",
    "note_id": "note",
    "comment_id": "comment",
    "file_id": "file",
    "request_id": "request",
    "version_id": "version",
}
# Parameters of routes about things the model does not make (webhooks): probed with a missing id only.
UNMODELLED_PARAMS = {"webhook_id"}
# Keys in answers that hold an id of a kind the model knows.
ID_KEYS = {
    "task_id": "task",
    "milestone_id": "milestone",
    "note_id": "note",
    "comment_id": "comment",
    "file_id": "file",
    "version_id": "version",
}
# A nested object under one of these keys is an item of that kind (its "id").
OBJECT_KEYS = {"task": "task", "milestone": "milestone", "note": "note", "comment": "comment", "file": "file"}
# Routes answering one item: their top-level "id" (or their list's items' ids) are of this kind.
ROUTE_KINDS = {
    "/api/tasks/{task_id}": "task",
    "/api/projects/{project_id}/tasks": "task",
    "/api/milestones/{milestone_id}": "milestone",
    "/api/projects/{project_id}/milestones": "milestone",
    "/api/notes/{note_id}": "note",
    "/api/projects/{project_id}/notes": "note",
    "/api/files/{file_id}": "file",
    "/api/projects/{project_id}/files": "file",
    "/api/tasks/{task_id}/comments": "comment",
    "/api/notes/{note_id}/versions": "version",
    "/api/notes/{note_id}/versions/{version_id}": "version",
}


@dataclass(eq=False)
class Item:
    """One thing staff made. A customer member sees it iff it exists, is shared, and so is everything it hangs off."""

    kind: str
    id: int
    marker: str
    shared: bool
    parents: list[Item] = field(default_factory=list)
    deleted: bool = False
    # Notes: the markers written into its text; requests: the task it was merged into; milestones: completed.
    content: list[str] = field(default_factory=list)
    task: Item | None = None
    milestone: Item | None = None
    completed: bool = False
    # Seen by members at some check: a removal event naming it tells them nothing new.
    seen: bool = False

    @property
    def visible(self) -> bool:
        return not self.deleted and self.shared and all(p.visible for p in self.parents)

    @property
    def tombstone(self) -> bool:
        """A deleted shared comment members saw: its thread still lists it, with an empty body."""
        return (
            self.kind == "comment"
            and self.deleted
            and self.seen
            and self.shared
            and all(p.visible for p in self.parents)
        )

    def markers(self) -> list[str]:
        return [self.marker, *self.content]


class World:
    """The oracle for one project (one hypothesis example), plus the markers of earlier examples' items."""

    def __init__(self, example: int, earlier_hidden: set[str]) -> None:
        self.example = example
        self.items: list[Item] = []
        self.counter = itertools.count(1)
        # Markers of items of earlier examples (their projects deleted since) that customers never saw at the end.
        self.earlier_hidden = earlier_hidden

    def marker(self, kind: str) -> str:
        return f"xq{kind}{next(self.counter)}e{self.example}qx"

    def add(self, item: Item) -> Item:
        self.items.append(item)
        return item

    def of(self, kind: str, live: bool = True) -> list[Item]:
        return [i for i in self.items if i.kind == kind and (not live or not i.deleted)]

    def hidden_markers(self, role: str) -> set[str]:
        """Markers ``role`` may not see: for members, of items the oracle hides; for others, of every item."""
        own = (
            {m for i in self.items for m in i.markers()}
            if role not in MEMBERS
            else {m for i in self.items if not i.visible for m in i.markers()}
        )
        return own | self.earlier_hidden

    def hidden_ids(self, role: str) -> dict[str, set[int]]:
        """Per kind, ids ``role`` may not see (an id SQLite reused for a visible item is not hidden)."""
        out: dict[str, set[int]] = {}
        for kind in {i.kind for i in self.items}:
            items = [i for i in self.items if i.kind == kind]
            seen = {i.id for i in items if (i.visible or i.tombstone) and role in MEMBERS}
            out[kind] = {i.id for i in items} - seen
        return out

    def probe_ids(self, kind: str) -> list[Item]:
        """Every item of ``kind`` to substitute into routes: live ones, and deleted ones whose id was not reused."""
        live = {i.id for i in self.of(kind)}
        return self.of(kind) + [i for i in self.of(kind, live=False) if i.deleted and i.id not in live]


class Leak(AssertionError):
    pass


def find_ids(value: Any, kind: str | None = None) -> Iterator[tuple[str, int]]:
    """(kind, id) pairs named in a JSON answer: by key (``task_id``), by nesting (``"task": {"id": ..}``), or the
    ``id`` of an answer (or of its ``items``) whose route says what it holds."""
    if isinstance(value, dict):
        for key, sub in value.items():
            if key == "id" and kind is not None and isinstance(sub, int):
                yield kind, sub
            elif key in ID_KEYS and isinstance(sub, int):
                yield ID_KEYS[key], sub
            elif key in OBJECT_KEYS:
                yield from find_ids(sub, OBJECT_KEYS[key])
            elif key == "items":
                yield from find_ids(sub, kind)
            elif key == "tasks" and isinstance(sub, dict):  # unread counts: task id -> count
                yield from (("task", int(k)) for k in sub if k.isdigit())
                yield from find_ids(sub, None)
            else:
                yield from find_ids(sub, None)
    elif isinstance(value, list):
        for sub in value:
            yield from find_ids(sub, kind)
