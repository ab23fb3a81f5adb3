"""Step sequences the visibility model test (tests/test_visibility_model.py) once failed on, replayed by its
``test_corpus`` on SQLite and PostgreSQL. Each entry: a name saying what leaked, then the steps as
``(action, arguments)``; indices pick among the live items of a kind in creation order."""

from __future__ import annotations

from typing import Any

CORPUS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "a shared task and an internal one": [
        ("create_task", {"shared": True, "milestone": None}),
        ("create_task", {"shared": False, "milestone": None}),
    ],
}
