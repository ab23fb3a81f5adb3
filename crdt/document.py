"""What a note's document holds, and reading it as markdown, text or ProseMirror JSON.

A note is one Yjs document whose content is the ``Y.XmlFragment`` named ``"prosemirror"`` (``FRAGMENT``): the
ProseMirror tree the web editor (Tiptap, bound by y-prosemirror) edits; its structure is described in
``crdt/richtext.py`` and docs/PROTOCOL.md. Any stock Yjs client can edit it (``ydoc.getXmlFragment("prosemirror")``).

Before issue #20 the content was the ``Y.Text`` named ``"content"`` (``CONTENT``) holding markdown source. Migration
0018 converted every stored note and version into the fragment (one extra update on top of the same document, so the
CRDT history is intact). The legacy text is left in the document, frozen: it is stored and relayed like any root type,
but it is read only when the fragment is empty (a document no migration has seen), and then read as markdown. Edits an
old client makes to ``content`` after the fragment exists are kept in the document but are not part of the note.
"""

from __future__ import annotations

from typing import Any

import pycrdt

from crdt import richtext

FRAGMENT = "prosemirror"
CONTENT = "content"  # the legacy Y.Text of markdown source (before migration 0018)


def document_from(update: bytes) -> pycrdt.Doc:  # type: ignore[type-arg]
    """A document holding ``update``.

    Raises:
        ValueError: ``update`` is not a valid Yjs v1 update.
    """
    doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
    doc.apply_update(update)
    return doc


def _root(doc: pycrdt.Doc, name: str, kind: type) -> Any:  # type: ignore[type-arg]
    """The root type ``name`` read as ``kind``, or None if a client made it another type."""
    try:
        return doc.get(name, type=kind)
    except (TypeError, ValueError):
        return None


def legacy_text_of(doc: pycrdt.Doc) -> str:  # type: ignore[type-arg]
    """The pre-#20 markdown source (the ``content`` Y.Text), "" if there is none."""
    text = _root(doc, CONTENT, pycrdt.Text)
    return "" if text is None else str(text)


def json_of(doc: pycrdt.Doc) -> richtext.Node:  # type: ignore[type-arg]
    """The note as ProseMirror JSON: the fragment, or (if it is empty) the legacy markdown text converted."""
    fragment = _root(doc, FRAGMENT, pycrdt.XmlFragment)
    if fragment is not None and len(fragment.children) > 0:
        return richtext.read_fragment(fragment)
    legacy = legacy_text_of(doc)
    if legacy:
        return richtext.parse_markdown(legacy)
    return {"type": "doc", "content": []}


def markdown_of(doc: pycrdt.Doc) -> str:  # type: ignore[type-arg]
    """The note as markdown (what the markdown export, versions and digests show)."""
    return richtext.to_markdown(json_of(doc))


def text_of(doc: pycrdt.Doc) -> str:  # type: ignore[type-arg]
    """The note as plain text, without markup (the text export)."""
    return richtext.to_plain_text(json_of(doc))


def content_update(markdown: str) -> bytes:
    """An update that creates a document whose fragment holds ``markdown`` (used once, when a note is created)."""
    doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
    richtext.write_fragment(doc.get(FRAGMENT, type=pycrdt.XmlFragment), richtext.parse_markdown(markdown))
    return doc.get_update()


def migration_update(update: bytes) -> bytes | None:
    """The update that converts a stored pre-#20 document (``update``) to the fragment, or None if it needs none.

    The conversion is written on top of the same document (its state vector), so applying it anywhere the old
    state is known gives the fragment; documents whose fragment already has content, or whose legacy text is
    empty, are left alone (running the migration twice changes nothing).
    """
    doc = document_from(update)
    fragment = _root(doc, FRAGMENT, pycrdt.XmlFragment)
    legacy = legacy_text_of(doc)
    if fragment is None or len(fragment.children) > 0 or not legacy.strip():
        return None
    before = doc.get_state()
    richtext.write_fragment(fragment, richtext.parse_markdown(legacy))
    return doc.get_update(before)
