"""inbound mails: replies by email already stored, by Message-ID

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 12:30:00.000000

A reply delivered twice (a relay retrying after a lost answer) must become one comment, not two.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_mails",
        sa.Column("message_key", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_inbound_mails_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["comments.id"], name=op.f("fk_inbound_mails_comment_id_comments"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("message_key", name=op.f("pk_inbound_mails")),
    )
    op.create_index(op.f("ix_inbound_mails_user_id"), "inbound_mails", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_inbound_mails_user_id"), table_name="inbound_mails")
    op.drop_table("inbound_mails")
