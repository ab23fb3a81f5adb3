"""Notes become rich text: each stored note and version gets its markdown converted into the Y.XmlFragment

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 14:40:00.000000

Before, a note's content was the Y.Text ``content`` (markdown source); now it is the Y.XmlFragment ``prosemirror``
the rich-text editor binds to (crdt/document.py, docs/PROTOCOL.md "Document model"). For every note whose stored
state (snapshot and log) has legacy text and an empty fragment, one update is appended to its log that builds the
fragment from the markdown, written on top of the same document (so clients holding the old state merge it like any
edit). Every named version's frozen state gets the same update folded in, so versions preview and restore as rich text.
The legacy text stays in the documents untouched. Running it again converts nothing (notes with a fragment are skipped).

Downgrade changes nothing: the old code reads the legacy text, which is still there (without edits made since).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pycrdt
import sqlalchemy as sa
from alembic import op

from crdt.document import migration_update

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

note_updates = sa.table(
    "note_updates",
    sa.column("id", sa.Integer),
    sa.column("note_id", sa.Integer),
    sa.column("data", sa.LargeBinary),
    sa.column("created_at", sa.DateTime),
)
note_snapshots = sa.table("note_snapshots", sa.column("note_id", sa.Integer), sa.column("data", sa.LargeBinary))
note_versions = sa.table("note_versions", sa.column("id", sa.Integer), sa.column("data", sa.LargeBinary))


def _merged(parts: list[bytes]) -> bytes:
    if not parts:
        return b"\x00\x00"
    return parts[0] if len(parts) == 1 else pycrdt.merge_updates(*parts)


def _conversion(data: bytes) -> bytes | None:
    """The converting update for a stored state; None for one that needs none or is not a Yjs update at all
    (a damaged row is left exactly as it is rather than stopping the upgrade)."""
    try:
        return migration_update(data)
    except ValueError:
        return None


def upgrade() -> None:
    conn = op.get_bind()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    note_ids = (
        conn.execute(sa.union(sa.select(note_updates.c.note_id), sa.select(note_snapshots.c.note_id))).scalars().all()
    )
    for note_id in sorted(set(note_ids)):
        snapshot = conn.execute(
            sa.select(note_snapshots.c.data).where(note_snapshots.c.note_id == note_id)
        ).scalar_one_or_none()
        log = (
            conn.execute(
                sa.select(note_updates.c.data).where(note_updates.c.note_id == note_id).order_by(note_updates.c.id)
            )
            .scalars()
            .all()
        )
        parts = ([bytes(snapshot)] if snapshot is not None else []) + [bytes(row) for row in log]
        try:
            merged = _merged(parts)
        except ValueError:
            continue  # a damaged log: left alone, as the rooms would
        update = _conversion(merged)
        if update is not None:
            conn.execute(sa.insert(note_updates).values(note_id=note_id, data=update, created_at=now))
    version_ids = conn.execute(sa.select(note_versions.c.id).order_by(note_versions.c.id)).scalars().all()
    for version_id in version_ids:
        data = bytes(conn.execute(sa.select(note_versions.c.data).where(note_versions.c.id == version_id)).scalar_one())
        update = _conversion(data)
        if update is not None:
            conn.execute(
                sa.update(note_versions)
                .where(note_versions.c.id == version_id)
                .values(data=pycrdt.merge_updates(data, update))
            )


def downgrade() -> None:
    pass
