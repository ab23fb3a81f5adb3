"""notifications carry their kind's params, so clients word them in the reader's language

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 14:40:00.000000

``notifications.params`` is a JSON object (server/inbox/notify.py says what each kind holds). Rows made before it get
their params back from the English sentences the server used to write ("{actor}: {task}", "{task} → {status}",
"{request}: filed", the project's name for feedback); a sentence that does not parse keeps ``{}`` and clients show
its ``text`` as before. Downgrading drops the column (the sentences stay in ``text``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The request steps as the old sentences said them.
_OLD_STEPS = {
    "filed": "filed",
    "new reply": "reply",
    "accepted": "accepted",
    "information needed": "asked",
    "declined": "declined",
}


def params_from_text(kind: str, text: str) -> dict[str, str]:
    """The params an old notification's English sentence was made of ({} when it does not parse)."""
    if kind in ("mention", "assignment") and ": " in text:
        actor, task = text.split(": ", 1)
        return {"actor": actor, "task": task}
    if kind == "status" and " → " in text:
        task, status = text.rsplit(" → ", 1)
        return {"task": task, "status": status}
    if kind == "feedback" and text:
        return {"project": text}
    if kind == "request" and ": merged into " in text:
        title, task = text.split(": merged into ", 1)
        return {"request": title, "step": "merged", "task": task}
    if kind == "request" and ": " in text:
        title, said = text.rsplit(": ", 1)
        if said in _OLD_STEPS:
            return {"request": title, "step": _OLD_STEPS[said]}
    return {}


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("params", sa.Text(), nullable=False, server_default="{}"))
    conn = op.get_bind()
    notifications = sa.table(
        "notifications",
        sa.column("id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("text", sa.String),
        sa.column("params", sa.Text),
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(notifications.c.id, notifications.c.kind, notifications.c.text)
            .where(notifications.c.id > last)
            .order_by(notifications.c.id)
            .limit(1000)
        ).all()
        if not rows:
            break
        for row_id, kind, text in rows:
            params = params_from_text(kind, text or "")
            if params:
                conn.execute(
                    sa.update(notifications).where(notifications.c.id == row_id).values(params=json.dumps(params))
                )
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("params")
