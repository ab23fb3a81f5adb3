"""outbox rows carry an event id, so the broker publishes each event once whichever node publishes its row

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 12:00:00.000000

A node killed after publishing a row but before deleting it left the row to be adopted and published again by
another node 15 s later (a duplicate under a new offset). The relay now publishes each row with its ``event_id`` as
the broker's idempotency key, and the broker drops the repeat. Rows pending at upgrade time get ids made from their
row id (unique among them; new rows get a random uuid).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_events") as batch:
        batch.add_column(sa.Column("event_id", sa.String(length=36), nullable=True))
    op.execute("UPDATE outbox_events SET event_id = '0012-' || id")
    with op.batch_alter_table("outbox_events") as batch:
        batch.alter_column("event_id", existing_type=sa.String(length=36), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_events") as batch:
        batch.drop_column("event_id")
