"""project activity, last visits, the progress digest's cadence, and informal feedback marks

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 14:40:00.000000

``activity_events`` holds the changes shown in a project's activity feed and the progress digest, each with the
audience it had when it happened; ``project_visits`` when a person last looked at a project; the progress digest's
cadence (``weekly`` for everyone already there) and when it last went out; ``feedback_marks`` staff's marking of a
customer comment as informal feedback.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "activity_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("milestone_id", sa.Integer(), nullable=True),
        sa.Column("comment_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("activity_events", "project_id", "projects", "CASCADE"),
        _fk("activity_events", "task_id", "tasks", "CASCADE"),
        _fk("activity_events", "milestone_id", "milestones", "CASCADE"),
        _fk("activity_events", "comment_id", "comments", "CASCADE"),
        _fk("activity_events", "request_id", "requests", "CASCADE"),
        _fk("activity_events", "actor_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_events")),
    )
    with op.batch_alter_table("activity_events") as batch:
        batch.create_index("ix_activity_events_project_id_id", ["project_id", "id"], unique=False)
        for column in ("task_id", "milestone_id", "comment_id", "request_id"):
            batch.create_index(batch.f(f"ix_activity_events_{column}"), [column], unique=False)
    op.create_table(
        "project_visits",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
        _fk("project_visits", "user_id", "users", "CASCADE"),
        _fk("project_visits", "project_id", "projects", "CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "project_id", name=op.f("pk_project_visits")),
    )
    op.create_table(
        "feedback_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("theme", sa.String(length=40), nullable=False),
        sa.Column("marked_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("feedback_marks", "comment_id", "comments", "CASCADE"),
        _fk("feedback_marks", "project_id", "projects", "CASCADE"),
        _fk("feedback_marks", "marked_by_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_marks")),
        sa.UniqueConstraint("comment_id", name=op.f("uq_feedback_marks_comment_id")),
    )
    with op.batch_alter_table("feedback_marks") as batch:
        batch.create_index(batch.f("ix_feedback_marks_project_id"), ["project_id"], unique=False)
    with op.batch_alter_table("notification_preferences") as batch:
        batch.add_column(sa.Column("progress", sa.String(length=16), nullable=False, server_default="weekly"))
        batch.add_column(sa.Column("last_progress_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notification_preferences") as batch:
        batch.drop_column("last_progress_at")
        batch.drop_column("progress")
    op.drop_table("feedback_marks")
    op.drop_table("project_visits")
    op.drop_table("activity_events")
