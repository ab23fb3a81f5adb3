"""audit_events.prev_hash/hash and audit_chain: the audit log's hash chain; auth_sessions.ip

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 12:50:00.000000

Each audit row now stores the previous row's hash and its own (server/audit/chain.py); ``audit_chain`` holds the
chain's head, which appends lock, and the anchor a retention purge leaves. Existing rows are chained in id order.
Sessions record the address they signed in from, for "where you're signed in".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
# As server/audit/chain.py's event_hash (version "v1"), kept here so this migration does not change with the app.
FIELDS = ("organization_id", "actor_id", "action", "target_type", "target_id", "ip", "user_agent", "details")


def _hash(row: sa.Row[tuple[object, ...]], created_at: object, prev: str) -> str:
    if isinstance(created_at, str):
        created_at = dt.datetime.fromisoformat(created_at)
    assert isinstance(created_at, dt.datetime)
    aware = created_at if created_at.tzinfo is not None else created_at.replace(tzinfo=dt.UTC)
    stamp = aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    values = [row._mapping[name] for name in FIELDS]
    canonical = json.dumps(["v1", *values, stamp, prev], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("auth_sessions") as batch:
        batch.add_column(sa.Column("ip", sa.String(length=64), nullable=False, server_default=""))
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=False, server_default=""))
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=False, server_default=""))
    chain = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("anchor_id", sa.Integer(), nullable=False),
        sa.Column("anchor_hash", sa.String(length=64), nullable=False),
    )
    events = sa.table(
        "audit_events",
        sa.column("id", sa.Integer),
        sa.column("created_at"),
        sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
        *(sa.column(name) for name in FIELDS),
    )
    conn = op.get_bind()
    head, last_id = GENESIS, 0
    while True:
        rows = conn.execute(sa.select(events).where(events.c.id > last_id).order_by(events.c.id).limit(1000)).all()
        if not rows:
            break
        for row in rows:
            digest = _hash(row, row.created_at, head)
            conn.execute(sa.update(events).where(events.c.id == row.id).values(prev_hash=head, hash=digest))
            head, last_id = digest, row.id
    op.bulk_insert(chain, [{"id": 1, "head_hash": head, "anchor_id": 0, "anchor_hash": GENESIS}])


def downgrade() -> None:
    op.drop_table("audit_chain")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
    with op.batch_alter_table("auth_sessions") as batch:
        batch.drop_column("ip")
