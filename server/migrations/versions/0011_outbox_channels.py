"""outbox rows name all their channels: one row per event instead of one per audience stream

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 05:00:00.000000

A board change on a shared item was written twice (``project:N:staff`` and ``project:N:shared``, same payload): two
INSERTs in the request's transaction. ``channels`` holds the channel names separated by spaces; the relay
publishes the event to each in order. Existing rows name one channel each, which is a valid list.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_events") as batch:
        batch.alter_column(
            "channel", new_column_name="channels", existing_type=sa.String(length=128), type_=sa.Text(), nullable=False
        )


def downgrade() -> None:
    # One row per channel again. The copies get new ids, so an old relay may publish them after younger events:
    # harmless for snapshot events, and the table is empty unless a node died with events unpublished.
    outbox = sa.table(
        "outbox_events",
        sa.column("id", sa.Integer),
        sa.column("channels", sa.Text),
        sa.column("payload", sa.Text),
        sa.column("node_id", sa.String),
        sa.column("created_at", sa.DateTime),
    )
    conn = op.get_bind()
    for row in conn.execute(sa.select(outbox).where(outbox.c.channels.contains(" "))).all():
        first, *rest = row.channels.split()
        conn.execute(sa.update(outbox).where(outbox.c.id == row.id).values(channels=first))
        for channel in rest:
            conn.execute(
                sa.insert(outbox).values(
                    channels=channel, payload=row.payload, node_id=row.node_id, created_at=row.created_at
                )
            )
    with op.batch_alter_table("outbox_events") as batch:
        batch.alter_column(
            "channels", new_column_name="channel", existing_type=sa.Text(), type_=sa.String(length=128), nullable=False
        )
