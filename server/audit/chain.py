"""The audit log's hash chain: each row stores the previous row's hash and its own, so a changed, removed or
inserted row is evident (`verify`, run by ``tandem audit verify``).

``hash`` is SHA-256 over a canonical serialization of the row's fields and ``prev_hash``. Appends are serialized
on the one ``audit_chain`` row, which holds the chain's head: writing it first takes PostgreSQL's row lock or
SQLite's write lock until the appending transaction ends; so rows of concurrent transactions, on any node, take
their places one after another and ids follow the chain.

The lock is taken as the last step of a commit, never earlier: an audit row added to a session is held back from
every flush before the commit (kept in ``session.info``) and inserted, chained, by the commit's own flush. A
transaction therefore takes the head lock after every other lock it takes, and holds it only for its final insert
and the commit: audited transactions do not wait for each other's work, and two of them cannot deadlock over the
head and some other row taken in the opposite order (``tests/test_audit_chain.py``, on PostgreSQL). An audit row
thus has no id before its transaction commits.

Retention (`purge_older_than`) deletes the oldest rows and records the last deleted row's id and hash as the
chain's anchor: the first kept row must link to it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, event, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction
from sqlmodel import col

from server.db import utcnow
from server.models import AuditChain, AuditEvent

GENESIS = "0" * 64

audit_chain = AuditChain.__table__  # type: ignore[attr-defined]


def _utc(value: dt.datetime) -> str:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def event_hash(fields: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 (hex) of an audit row's fields (those of `HASHED_FIELDS`) chained to ``prev_hash``."""
    values = [fields[name] for name in HASHED_FIELDS]
    values[HASHED_FIELDS.index("created_at")] = _utc(fields["created_at"])
    canonical = json.dumps(["v1", *values, prev_hash], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


HASHED_FIELDS = (
    "organization_id",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "ip",
    "user_agent",
    "details",
    "created_at",
)


def _lock_head(conn: Connection) -> tuple[str, int, str]:
    # Write to the row first, then read it: the write takes PostgreSQL's row lock or SQLite's write lock (a read
    # first would start no SQLite transaction, and two writers would read the same head), held to commit.
    conn.execute(update(audit_chain).where(audit_chain.c.id == 1).values(head_hash=audit_chain.c.head_hash))
    row = conn.execute(
        select(audit_chain.c.head_hash, audit_chain.c.anchor_id, audit_chain.c.anchor_hash).where(audit_chain.c.id == 1)
    ).one()
    return row[0], row[1], row[2]


_DEFERRED = "tandem.audit_deferred"  # audit rows held back from flushes before the commit
_COMMITTING = "tandem.audit_committing"  # set from before_commit: this flush is the commit's, chain now


def _chain_new_events(session: Session, _context: UOWTransaction, _instances: object) -> None:
    events = [obj for obj in session.new if isinstance(obj, AuditEvent) and not obj.hash]
    if not events:
        return
    if not session.info.get(_COMMITTING):
        # A flush before the commit (autoflush, an explicit flush): hold the rows back, so the head lock is not
        # taken here and held through the rest of the transaction.
        deferred: list[AuditEvent] = session.info.setdefault(_DEFERRED, [])
        events.sort(key=lambda obj: obj._sa_instance_state.insert_order)  # type: ignore[attr-defined]
        for obj in events:
            session.expunge(obj)
        deferred.extend(events)
        return
    # The order rows are inserted in, so ids follow the chain.
    events.sort(key=lambda obj: obj._sa_instance_state.insert_order)  # type: ignore[attr-defined]
    conn = session.connection()
    head, _, _ = _lock_head(conn)
    for obj in events:
        if obj.created_at is None:
            obj.created_at = utcnow()
        obj.prev_hash = head
        obj.hash = head = event_hash({name: getattr(obj, name) for name in HASHED_FIELDS}, head)
    conn.execute(update(audit_chain).where(audit_chain.c.id == 1).values(head_hash=head))


def _before_commit(session: Session) -> None:
    # The commit flushes next: the held-back rows go in with it, chained under the lock (`_chain_new_events`).
    session.info[_COMMITTING] = True
    session.add_all(session.info.pop(_DEFERRED, []))


def _transaction_ended(session: Session, *_args: object) -> None:
    session.info.pop(_COMMITTING, None)
    session.info.pop(_DEFERRED, None)  # rolled back: the rows go with the rest of the transaction


def _soft_rollback(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:  # the outermost transaction rolled back (not a savepoint)
        _transaction_ended(session)


def install() -> None:
    """Chain every audit row any ORM session inserts, at its commit (idempotent)."""
    for name, listener in (
        ("before_flush", _chain_new_events),
        ("before_commit", _before_commit),
        ("after_commit", _transaction_ended),
        ("after_soft_rollback", _soft_rollback),
    ):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


install()


@dataclass(frozen=True)
class Verdict:
    rows: int
    bad_id: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def verify(conn: Connection, batch: int = 1000) -> Verdict:
    """Walk the chain in id order from its anchor; the first row whose link or hash is wrong, or a missing head.

    Rows appended while the walk runs are checked too; the head read at the start must be among the rows seen (a
    row removed from the end of the chain is found that way).
    """
    head, expected = conn.execute(select(audit_chain.c.head_hash, audit_chain.c.anchor_hash)).one()
    columns = [AuditEvent.__table__.c[name] for name in ("id", "prev_hash", "hash", *HASHED_FIELDS)]  # type: ignore[attr-defined]
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    seen_head = head == expected
    last_id, count = -1, 0
    while True:
        rows = conn.execute(select(*columns).where(table.c.id > last_id).order_by(table.c.id).limit(batch)).all()
        if not rows:
            break
        for row in rows:
            fields = dict(row._mapping)
            if fields["prev_hash"] != expected:
                return Verdict(count, fields["id"], "does not link to the row before it (a row removed or inserted)")
            if event_hash(fields, expected) != fields["hash"]:
                return Verdict(count, fields["id"], "its fields do not match its hash (the row was changed)")
            expected = fields["hash"]
            seen_head = seen_head or expected == head
            last_id, count = fields["id"], count + 1
    if not seen_head:
        return Verdict(count, None, "the chain's head is missing (rows removed from its end)")
    return Verdict(count)


def purge_older_than(conn: Connection, cutoff: dt.datetime) -> int:
    """Delete the oldest rows, in id order, up to the first one created at or after ``cutoff`` (a row written
    late with an early time never takes newer ones with it), and make the last one deleted the chain's anchor, so
    what is kept still verifies. Returns the number deleted."""
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    _lock_head(conn)
    first_kept = conn.execute(select(func.min(table.c.id)).where(table.c.created_at >= cutoff)).scalar_one()
    older = select(table.c.id, table.c.hash)
    if first_kept is not None:
        older = older.where(table.c.id < first_kept)
    last = conn.execute(older.order_by(table.c.id.desc()).limit(1)).first()
    if last is None:
        return 0
    deleted = conn.execute(delete(table).where(col(AuditEvent.id) <= last[0])).rowcount
    conn.execute(update(audit_chain).where(audit_chain.c.id == 1).values(anchor_id=last[0], anchor_hash=last[1]))
    return int(deleted)
