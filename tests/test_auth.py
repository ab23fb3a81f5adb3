"""server/accounts/auth.py: a request's session, user and memberships are read in one statement, on SQLite and
PostgreSQL, and that statement refuses what the policy must never see (an expired, idle or ended session, an
inactive user)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlmodel import col, select

from server.accounts.auth import AuthService, actor_for_session
from server.db import Database, utcnow
from server.errors import Refused
from server.models import AuthSession, Membership, User
from server.ratelimit import MemoryRateLimiter
from server.security import token_hash
from tests.conftest import make_settings
from tests.workspace import ROLES, Workspace

pytestmark = pytest.mark.both_databases


def service(tmp_path: Path, database_url: str) -> AuthService:
    return AuthService(make_settings(tmp_path, database_url=database_url), MemoryRateLimiter())


def refusing_changes(auth: AuthService, user_id: int, hashed: str) -> list[tuple[Any, Any, dict[str, Any]]]:
    """Changes (model, which row, values) after any one of which the session ``hashed`` of user ``user_id`` must
    give no actor: expired, idle past ``auth.idle``, or its user made inactive."""
    moment = dt.timedelta(seconds=1)
    return [
        (AuthSession, AuthSession.token_hash == hashed, {"expires_at": utcnow() - moment}),
        (AuthSession, AuthSession.token_hash == hashed, {"last_seen_at": utcnow() - auth.idle - moment}),
        (User, User.id == user_id, {"is_active": False}),
    ]


async def statements_with_sessions_fresh(db: Database) -> list[str]:
    """Every statement ``db``'s engine runs from now on; every session is first marked as used just now, so that
    reading one does not also write its ``last_seen_at``."""
    async with db.session() as session:
        await session.exec(update(AuthSession).values(last_seen_at=utcnow()))  # type: ignore[call-overload]
        await session.commit()
    statements: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    return statements


async def test_every_role_is_authenticated_in_one_statement_with_its_memberships(
    database_url: str, workspace: Workspace, tmp_path: Path
) -> None:
    auth = service(tmp_path, database_url)
    db = Database(database_url)
    try:
        statements = await statements_with_sessions_fresh(db)
        for role in ROLES:
            async with db.session() as session:
                rows = await session.exec(
                    select(Membership.project_id, Membership.role).where(Membership.user_id == workspace.users[role])
                )
                expected = dict(rows.all())
                statements.clear()
                actor = await auth.actor_for_token(session, workspace.token(role))
                assert actor is not None and actor.user_id == workspace.users[role]
                assert actor.memberships == expected, role
                # Customers too: what their managers turned off comes in the same statement (customer_off_json).
                assert len(statements) == 1, (role, statements)
                socket = await actor_for_session(
                    session, workspace.users[role], token_hash(workspace.token(role)), auth.idle
                )
                assert socket is not None and socket.memberships == expected
    finally:
        await db.close()


async def test_no_actor_for_an_ended_expired_idle_or_inactive_session(
    database_url: str, workspace: Workspace, tmp_path: Path
) -> None:
    auth = service(tmp_path, database_url)
    db = Database(database_url)
    staff = workspace.users["staff"]
    hashed = token_hash(workspace.token("staff"))
    try:
        async with db.session() as session:
            assert await auth.actor_for_token(session, "no-such-token") is None
        changes = refusing_changes(auth, staff, hashed)
        for model, where, values in changes:
            async with db.session() as session:
                await session.exec(update(model).where(where).values(**values))  # type: ignore[call-overload]
                assert await auth.actor_for_token(session, workspace.token("staff")) is None, values
                assert await actor_for_session(session, staff, hashed, auth.idle) is None, values
                await session.rollback()
    finally:
        await db.close()


async def test_a_storms_sessions_are_read_in_one_statement_each_with_its_own_actor(
    database_url: str, workspace: Workspace, tmp_path: Path
) -> None:
    """`AuthService.session_actors`, a reconnect storm's admissions joined: one statement gives each valid session the
    actor REST authenticates it as, never another's; an unknown, ended or enrolling session gets none; the uses due
    are recorded in one more statement."""
    auth = service(tmp_path, database_url)
    db = Database(database_url)
    try:
        await statements_with_sessions_fresh(db)
        expected = {}
        for role in ROLES:
            async with db.session() as session:
                expected[token_hash(workspace.token(role))] = await auth.actor_for_token(session, workspace.token(role))
        assert len({actor.user_id for actor in expected.values() if actor is not None}) == len(ROLES)
        statements: list[str] = []
        for engine in {db.read_engine, *db.write_engines}:
            event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        unknown = token_hash("no-such-token")
        assert await auth.session_actors(db, [unknown, *reversed(expected)]) == expected
        assert len(statements) == 1, statements

        staff, customer = token_hash(workspace.token("staff")), token_hash(workspace.token("customer"))
        due = utcnow() - dt.timedelta(minutes=5)
        async with db.session() as session:
            hashes = col(AuthSession.token_hash)
            await session.exec(update(AuthSession).where(hashes.in_([staff, customer])).values(last_seen_at=due))
            await session.exec(update(AuthSession).where(hashes == staff).values(needs_enrolment=True))
            await session.commit()
        statements.clear()
        found = await auth.session_actors(db, list(expected))
        assert found == {hashed: actor for hashed, actor in expected.items() if hashed != staff}  # staff must enrol
        assert len(statements) == 2, statements  # the read, and one UPDATE for both uses due
        async with db.session() as session:
            rows = await session.exec(select(AuthSession.last_seen_at).where(hashes.in_([staff, customer])))
            assert all(seen > due + dt.timedelta(minutes=4) for seen in rows.all())
    finally:
        await db.close()


async def test_a_sockets_admission_reads_the_same_actor_without_the_orm_and_refuses_the_same_sessions(
    database_url: str, workspace: Workspace, tmp_path: Path
) -> None:
    """`AuthService.session_actor`, every socket's admission: one Core statement through `Database.read` (on SQLite a
    reader thread) gives each role the actor REST authenticates; an ended, expired or idle session, an inactive
    user, another user's ticket, an enrolling session get none; a use is recorded when due, as REST records it."""
    auth = service(tmp_path, database_url)
    db = Database(database_url)
    staff = workspace.users["staff"]
    hashed = token_hash(workspace.token("staff"))
    try:
        statements = await statements_with_sessions_fresh(db)
        for role in ROLES:
            async with db.session() as session:
                expected = await auth.actor_for_token(session, workspace.token(role))
            statements.clear()
            token = token_hash(workspace.token(role))
            assert await auth.session_actor(db, token) == expected, role
            assert await auth.session_actor(db, token, user_id=workspace.users[role]) == expected, role
            # One statement each, no ORM session: on SQLite on the reader thread's own engine (not listened to here).
            assert len(statements) == (0 if db.dialect == "sqlite" else 2), statements
            assert await auth.session_actor(db, token, user_id=workspace.users[role] + 1000) is None
        assert await auth.session_actor(db, token_hash("no-such-token")) is None

        due = utcnow() - dt.timedelta(minutes=5)
        async with db.session() as session:
            await session.exec(update(AuthSession).where(AuthSession.token_hash == hashed).values(last_seen_at=due))  # type: ignore[call-overload]
            await session.commit()
        # Each change below is made in the database directly: the epoch advances as the control message each
        # sends in the server would make it (what the node reuses until then: tests/test_session_cache.py).
        auth.epoch.advance()
        assert await auth.session_actor(db, hashed, user_id=staff) is not None  # a ticket: asking for it was the use
        async with db.session() as session:
            seen = (await session.exec(select(AuthSession.last_seen_at).where(AuthSession.token_hash == hashed))).one()
        assert seen == due
        assert await auth.session_actor(db, hashed) is not None
        async with db.session() as session:
            seen = (await session.exec(select(AuthSession.last_seen_at).where(AuthSession.token_hash == hashed))).one()
        assert seen > due + dt.timedelta(minutes=4)

        changes = [
            *refusing_changes(auth, staff, hashed),
            (AuthSession, AuthSession.token_hash == hashed, {"token_hash": "0" * 64}),  # ended
        ]
        for model, where, values in changes:
            async with db.session() as session:
                row = select(AuthSession.id, AuthSession.expires_at).where(AuthSession.token_hash == hashed)
                session_id, expires_at = (await session.exec(row)).one()
                await session.exec(update(model).where(where).values(**values))  # type: ignore[call-overload]
                await session.commit()
                auth.epoch.advance()
                assert await auth.session_actor(db, hashed) is None, values
                assert await auth.session_actor(db, hashed, user_id=staff) is None, values
                await session.exec(update(User).where(User.id == staff).values(is_active=True))  # type: ignore[call-overload]
                await session.exec(
                    update(AuthSession)  # type: ignore[call-overload]
                    .where(AuthSession.id == session_id)
                    .values(token_hash=hashed, expires_at=expires_at, last_seen_at=utcnow())
                )
                await session.commit()
                auth.epoch.advance()
                assert await auth.session_actor(db, hashed) is not None

        async with db.session() as session:
            await session.exec(update(AuthSession).where(AuthSession.token_hash == hashed).values(needs_enrolment=True))  # type: ignore[call-overload]
            await session.commit()
        auth.epoch.advance()
        with pytest.raises(Refused):
            await auth.session_actor(db, hashed)
    finally:
        await db.close()
