"""informal feedback marks on a request's history: a customer's reply on a request (by email or in the portal)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 19:00:00.000000

A mark now points at a comment *or* a request event (``request_event_id``, unique, removed with the event), never
both and never neither (``ck_feedback_marks_one_item``). ``inbound_mails.request_event_id`` remembers which request
event a reply by email became (a request without a task), so such a mark can say it came by email.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ONE_ITEM = "(comment_id IS NULL) <> (request_event_id IS NULL)"


def upgrade() -> None:
    with op.batch_alter_table("feedback_marks") as batch:
        batch.alter_column("comment_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("request_event_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_feedback_marks_request_event_id_request_events"),
            "request_events",
            ["request_event_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_unique_constraint(batch.f("uq_feedback_marks_request_event_id"), ["request_event_id"])
        batch.create_check_constraint(batch.f("ck_feedback_marks_one_item"), ONE_ITEM)
    with op.batch_alter_table("inbound_mails") as batch:
        batch.add_column(sa.Column("request_event_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_inbound_mails_request_event_id_request_events"),
            "request_events",
            ["request_event_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("inbound_mails") as batch:
        batch.drop_constraint(batch.f("fk_inbound_mails_request_event_id_request_events"), type_="foreignkey")
        batch.drop_column("request_event_id")
    op.execute("DELETE FROM feedback_marks WHERE comment_id IS NULL")
    with op.batch_alter_table("feedback_marks") as batch:
        batch.drop_constraint(batch.f("ck_feedback_marks_one_item"), type_="check")
        batch.drop_constraint(batch.f("uq_feedback_marks_request_event_id"), type_="unique")
        batch.drop_constraint(batch.f("fk_feedback_marks_request_event_id_request_events"), type_="foreignkey")
        batch.drop_column("request_event_id")
        batch.alter_column("comment_id", existing_type=sa.Integer(), nullable=False)
