"""note versions record their audience: what a note's version may show to whom

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 12:00:00.000000

A version is a frozen copy of a note's text. Sharing a note used to expose every version saved while it was internal
(drafts staff never meant customers to read). ``visibility`` is the audience the note had when the version was saved
(the note and its task both shared: ``shared``; else ``internal``); customers only ever list and read ``shared`` ones.
Versions saved before this migration cannot tell, so they become ``internal``: the safe default (staff still see
them; customers see the versions saved from now on while the note is shared).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("note_versions") as batch:
        batch.add_column(sa.Column("visibility", sa.String(length=16), nullable=False, server_default="internal"))


def downgrade() -> None:
    with op.batch_alter_table("note_versions") as batch:
        batch.drop_column("visibility")
