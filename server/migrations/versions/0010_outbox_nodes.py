"""outbox nodes: which relays are alive, so that only a dead node's rows are adopted

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 02:00:00.000000

Until now a node adopted any row older than five seconds, so an overloaded node that was still publishing its own
rows had them published a second time by its neighbours (and every duplicate went to every subscriber).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_nodes",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_outbox_nodes")),
    )


def downgrade() -> None:
    op.drop_table("outbox_nodes")
