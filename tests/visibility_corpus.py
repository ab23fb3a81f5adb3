"""Step sequences the visibility model test (tests/test_visibility_model.py) once failed on, replayed by its
``test_corpus`` on SQLite and PostgreSQL. Each entry: a name saying what leaked, then the steps as
``(action, arguments)``; indices pick among the live items of a kind in creation order.

``OPEN`` names the entries that still fail, with who is on them: they run as strict expected failures, so the day
the leak is fixed the entry turns red until it is moved out of ``OPEN``."""

from __future__ import annotations

from typing import Any

CORPUS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    # SQLite gives a new note the id of a note just deleted; the deleted note's room, still in memory until it
    # unloads (10 s after its last client), served its internal text to customers on the new shared note.
    "a deleted note's room serves its text under a reused id": [
        ("create_note", {"shared": False, "task": None}),
        ("write_note", {"note": 0}),
        ("delete_note", {"note": 0}),
        ("create_note", {"shared": True, "task": None}),
    ],
    # The feedback notification for a completed shared milestone carried the milestone's name; made internal
    # afterwards, the name stayed in the customer's notifications. Notifications now name the project only.
    "a feedback notification names a milestone made internal": [
        ("create_milestone", {"shared": True}),
        ("complete_milestone", {"milestone": 0}),
        ("set_milestone_visibility", {"milestone": 0, "shared": False}),
    ],
    # A shared comment's tombstone (comment.deleted) on the shared thread names a comment customers saw: allowed.
    "a deleted shared comment's tombstone": [
        ("create_task", {"shared": True, "milestone": None}),
        ("comment", {"task": 0, "shared": True}),
        ("upload_file", {"on": "comment", "index": 0, "shared": True}),
        ("delete_comment", {"comment": 0}),
    ],
    # The shared stream's task.removed names tasks customers saw; here, under SQLite's reused id, both meanings.
    "a removal event under a reused task id": [
        ("create_task", {"shared": False, "milestone": None}),
        ("create_task", {"shared": False, "milestone": None}),
        ("delete_task", {"task": 1}),
        ("create_task", {"shared": True, "milestone": None}),
        ("move_task", {"task": 0, "status": 0}),
        ("set_task_visibility", {"task": 1, "shared": False}),
    ],
}

OPEN: dict[str, str] = {}
