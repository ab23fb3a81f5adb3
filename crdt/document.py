"""What a note's document holds, and reading it as text.

A note is one Yjs document with one shared type: the ``Y.Text`` named ``"content"``, holding the note's markdown
source. Editors bind to it (``ydoc.getText("content")``; CodeMirror's y-codemirror, Monaco's y-monaco, a
plain ``<textarea>``). Other root types a client may add are stored and relayed but not exported.
"""

from __future__ import annotations

import pycrdt

CONTENT = "content"


def document_from(update: bytes) -> pycrdt.Doc:  # type: ignore[type-arg]
    """A document holding ``update``.

    Raises:
        ValueError: ``update`` is not a valid Yjs v1 update.
    """
    doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
    doc.apply_update(update)
    return doc


def text_of(doc: pycrdt.Doc) -> str:  # type: ignore[type-arg]
    """The note's text: the ``content`` Y.Text ("" if the document has none, or a client made it another type)."""
    try:
        return str(doc.get(CONTENT, type=pycrdt.Text))
    except (TypeError, ValueError):
        return ""


def text_update(text: str) -> bytes:
    """An update that creates a document whose ``content`` is ``text`` (used once, when a note is created)."""
    doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
    content = doc.get(CONTENT, type=pycrdt.Text)
    content += text
    return doc.get_update()
