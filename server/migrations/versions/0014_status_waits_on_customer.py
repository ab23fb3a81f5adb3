"""statuses.waits_on_customer: the workflow column whose tasks wait on the customer

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 11:30:00.000000

"Waiting on the customer" was the assignee's role alone, so a card moved into the "Waiting on customer" column
waited on nobody. A status flagged ``waits_on_customer`` now makes its shared, open tasks wait on the project's
customers too (server/waiting/rules.py). Existing projects' default column ("Waiting on customer", blocked) is flagged.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("statuses") as batch:
        batch.add_column(sa.Column("waits_on_customer", sa.Boolean(), nullable=False, server_default=sa.false()))
    statuses = sa.table(
        "statuses", sa.column("name", sa.String), sa.column("category", sa.String), sa.column("waits_on_customer")
    )
    op.execute(
        sa.update(statuses)
        .where(statuses.c.name == "Waiting on customer", statuses.c.category == "blocked")
        .values(waits_on_customer=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("statuses") as batch:
        batch.drop_column("waits_on_customer")
