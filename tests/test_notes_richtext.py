"""Notes as rich text (issue #20): markdown <-> the Y.XmlFragment a Tiptap/y-prosemirror editor binds to, the
migration of stored markdown notes (0018), and the exports reading the fragment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pycrdt
import pytest
from sqlalchemy import create_engine, text

from crdt import richtext
from crdt.document import (
    CONTENT,
    FRAGMENT,
    content_update,
    document_from,
    json_of,
    markdown_of,
    migration_update,
    text_of,
)
from server import migrate
from server.db import sync_url
from tests.conftest import postgres_database
from tests.workspace import seed_database

NOTE = """# Kickoff

Attendees: **Sam** and *Kim*, see the [brief](https://example.com/brief?a=1) and `v2`.
Second line of the same paragraph, ***both*** and ~~dropped~~

## Decisions

- [ ] send the contract
- [x] agree the **scope**

Between the lists

- design
- build
  - nested point

1. first
2. second

> a quote
> on two lines

```python
print("hi")
```

---

Plain symbols: 2 \\* 3, snake\\_case and [not a link\\](x)"""


def legacy_document(markdown: str) -> pycrdt.Doc:  # type: ignore[type-arg]
    """A note as stored before #20: the markdown source in the Y.Text ``content``."""
    doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
    doc.get(CONTENT, type=pycrdt.Text).insert(0, markdown)
    return doc


def test_markdown_round_trips_through_the_fragment() -> None:
    doc = document_from(content_update(NOTE))
    assert markdown_of(doc) == NOTE
    fragment = doc.get(FRAGMENT, type=pycrdt.XmlFragment)
    blocks = [child.tag for child in fragment.children]
    assert blocks[:4] == ["heading", "paragraph", "heading", "taskList"]
    assert [b for b in blocks if b.endswith("List")] == ["taskList", "bulletList", "orderedList"]
    # The structure is y-prosemirror's: node attributes on the element, marks as formatting of the text.
    heading = fragment.children[0]
    assert heading.attributes["level"] == 1
    tasks = fragment.children[3]
    assert [item.attributes["checked"] for item in tasks.children] == [False, True]
    paragraph_text = fragment.children[1].children[0]
    chunks = dict((chunk, formats) for chunk, formats in paragraph_text.diff())
    assert chunks["Sam"] == {"bold": {}}
    assert chunks["Kim"] == {"italic": {}}
    assert chunks["brief"] == {"link": {"href": "https://example.com/brief?a=1"}}
    assert chunks["v2"] == {"code": {}}


def test_plain_text_has_no_markup() -> None:
    plain = text_of(document_from(content_update(NOTE)))
    assert plain.startswith("Kickoff\n\nAttendees: Sam and Kim, see the brief and v2.\nSecond line")
    assert "[ ] send the contract\n[x] agree the scope" in plain
    assert "**" not in plain and "(https://" not in plain and "```" not in plain


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("", ""),
        ("just text", "just text"),
        ("a\nb", "a\nb"),  # a newline inside a paragraph is a line break, as the old editor showed it
        ("*a*", "*a*"),
        ("_a_", "*a*"),
        ("__a__", "**a**"),
        ("- [X] done", "- [x] done"),
        ("* one\n* two", "- one\n- two"),
        ("Heading\n===", "# Heading"),
        ("<b>raw html</b>", "<b>raw html</b>"),  # raw HTML stays text
        ("[click](javascript:alert(1))", "[click\\](javascript:alert(1))"),  # never a clickable script
        ("**bold **text", "\\*\\*bold \\*\\*text"),  # not emphasis in CommonMark: literal asterisks
        ("# 1. not a list", "# 1. not a list"),
        ("1\\. not a list", "1\\. not a list"),
        ("\\# not a heading", "\\# not a heading"),
    ],
)
def test_markdown_normal_forms(markdown: str, expected: str) -> None:
    assert richtext.to_markdown(richtext.parse_markdown(markdown)) == expected
    # And the normal form is a fixed point.
    assert richtext.to_markdown(richtext.parse_markdown(expected)) == expected


def test_marks_spanning_nodes_and_spaces_stay_valid_markdown() -> None:
    doc = {
        "type": "doc",
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "bold ", "marks": [{"type": "bold"}]},
                    {"type": "text", "text": "and italic", "marks": [{"type": "bold"}, {"type": "italic"}]},
                    {"type": "text", "text": " plain"},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "- not a bullet"},
                ],
            }
        ],
    }
    markdown = richtext.to_markdown(doc)
    assert markdown == "**bold *and italic*** plain\n\\- not a bullet"
    assert richtext.parse_markdown(markdown) == doc


def test_migration_converts_a_legacy_document_on_top_of_its_history() -> None:
    old = legacy_document(NOTE)
    stored = old.get_update()
    update = migration_update(stored)
    assert update is not None
    # An editor holding the old state merges the conversion like any edit.
    old.apply_update(update)
    assert markdown_of(old) == NOTE
    assert str(old.get(CONTENT, type=pycrdt.Text)) == NOTE  # the legacy text is left as it was
    # Converting again does nothing; neither does converting an empty or an already rich note.
    assert migration_update(old.get_update()) is None
    assert migration_update(legacy_document("").get_update()) is None
    assert migration_update(content_update("new style")) is None


def test_an_unmigrated_document_still_reads_as_its_markdown() -> None:
    """Read-side fallback: a document no migration has seen (fragment empty) reads as its legacy text."""
    doc = legacy_document("# Title\n\n- [ ] item")
    assert markdown_of(doc) == "# Title\n\n- [ ] item"
    assert text_of(doc) == "Title\n\n[ ] item"
    assert json_of(doc)["content"][1]["type"] == "taskList"
    # Once the fragment has content, edits an old client makes to the legacy text are not the note.
    doc.get(FRAGMENT, type=pycrdt.XmlFragment).children.append(pycrdt.XmlElement("paragraph")).children.append(
        pycrdt.XmlText("rich")
    )
    doc.get(CONTENT, type=pycrdt.Text).insert(0, "old client edit ")
    assert markdown_of(doc) == "rich"


def _migrates_stored_notes_and_versions(url: str) -> None:
    """A seeded workspace taken back to 0017 with its notes as the old client stored them (snapshot, log rows and a
    version of markdown source), then upgraded: every note reads as the same markdown, now from the fragment."""
    ws = seed_database(url)
    migrate.downgrade(url, "0017")
    engine = create_engine(sync_url(url))
    note, rich = ws.ids["px_shared_note"], ws.ids["px_internal_note"]
    legacy = legacy_document(NOTE)
    snapshot = legacy.get_update()
    before = legacy.get_state()
    legacy.get(CONTENT, type=pycrdt.Text).insert(len(NOTE), "\n\nA later line")
    log_row = legacy.get_update(before)
    version_data = legacy_document("# Old version\n\n- [x] done").get_update()
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM note_updates WHERE note_id = :n"), {"n": note})
            conn.execute(
                text("INSERT INTO note_snapshots (note_id, data, version, updated_at) VALUES (:n, :d, 1, :t)"),
                {"n": note, "d": snapshot, "t": dt.datetime(2026, 12, 6, 12, 0)},
            )
            conn.execute(
                text("INSERT INTO note_updates (note_id, data, created_at) VALUES (:n, :d, :t)"),
                {"n": note, "d": log_row, "t": dt.datetime(2026, 12, 6, 12, 0)},
            )
            conn.execute(
                text("UPDATE note_versions SET data = :d WHERE id = :v"),
                {"d": version_data, "v": ws.ids["px_shared_note_version"]},
            )
            untouched = conn.execute(text("SELECT count(*) FROM note_updates WHERE note_id = :n"), {"n": rich}).scalar()
        migrate.upgrade(url)
        with engine.begin() as conn:
            rows = [
                bytes(r)
                for (r,) in conn.execute(
                    text("SELECT data FROM note_updates WHERE note_id = :n ORDER BY id"), {"n": note}
                )
            ]
            stored_snapshot = bytes(
                conn.execute(text("SELECT data FROM note_snapshots WHERE note_id = :n"), {"n": note}).scalar_one()
            )
            version = bytes(
                conn.execute(
                    text("SELECT data FROM note_versions WHERE id = :v"), {"v": ws.ids["px_shared_note_version"]}
                ).scalar_one()
            )
            # A note already in the new model gets nothing appended.
            assert (
                conn.execute(text("SELECT count(*) FROM note_updates WHERE note_id = :n"), {"n": rich}).scalar()
                == untouched
            )
        assert len(rows) == 2  # the old log row and the one conversion
        converted = document_from(pycrdt.merge_updates(stored_snapshot, *rows))
        assert markdown_of(converted) == NOTE + "\n\nA later line"
        assert converted.get(FRAGMENT, type=pycrdt.XmlFragment).children[0].tag == "heading"
        restored = json_of(document_from(version))
        assert restored["content"][0] == {
            "type": "heading",
            "attrs": {"level": 1},
            "content": [{"type": "text", "text": "Old version"}],
        }
        assert len(document_from(version).get(FRAGMENT, type=pycrdt.XmlFragment).children) == 2
        # Downgrading leaves the data readable by the old code (the legacy text is untouched); upgrading again
        # converts nothing twice.
        migrate.downgrade(url, "0017")
        migrate.upgrade(url)
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM note_updates WHERE note_id = :n"), {"n": note}).scalar() == 2
    finally:
        engine.dispose()


def test_sqlite_0018_converts_stored_notes_and_versions(tmp_path: Path) -> None:
    _migrates_stored_notes_and_versions(f"sqlite:///{tmp_path / 'notes.db'}")


@pytest.mark.postgres
def test_postgresql_0018_converts_stored_notes_and_versions() -> None:
    with postgres_database() as url:
        _migrates_stored_notes_and_versions(url)
