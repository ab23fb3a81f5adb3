"""`LiveSockets`: every control message and the session sweep reach every kind of socket of a node.

End to end (real nodes, real `/ws` and `/yjs` clients): `tests/test_passwords.py` (the sweep and a reset close both
kinds), `tests/test_realtime.py::test_logout_closes_that_sessions_sockets`, `tests/test_notes.py` (revoked access
closes note sockets). Here, the dispatch itself, with two kinds of socket that record what they were asked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from channels.protocol import CloseCode
from server.accounts.session_cache import AccessEpoch
from server.db import Database
from server.live.control import AccessChanged, Disconnect, Subject
from server.live.sockets import LivePrincipal, LiveSockets
from server.policy import Actor
from tests.conftest import make_settings


def principal(user_id: int, token_hash: str) -> LivePrincipal:
    return LivePrincipal(Actor(user_id=user_id, organization_id=1, role="member", client_id=None), token_hash)


class Kind:
    """One kind of socket (`server.live.sockets.SocketRegistry`) holding the given principals' sockets."""

    def __init__(self, *open_: LivePrincipal, fails: bool = False) -> None:
        self.open = list(open_)
        self.closed: list[tuple[LivePrincipal, int, str]] = []
        self.rechecked: list[AccessChanged] = []
        self.fails = fails

    def principals(self) -> list[LivePrincipal]:
        return list(self.open)

    def close_where(self, which: Callable[[LivePrincipal], bool], code: CloseCode, reason: str) -> None:
        for p in [p for p in self.open if which(p)]:
            self.open.remove(p)
            self.closed.append((p, code, reason))

    async def recheck(self, change: AccessChanged) -> None:
        self.rechecked.append(change)
        if self.fails:
            raise RuntimeError("database away")


@pytest.fixture
def make(tmp_path: Path) -> Callable[..., LiveSockets]:
    def make(*kinds: Kind) -> LiveSockets:
        settings = make_settings(tmp_path)
        return LiveSockets(
            settings, Database(settings.database_url), dt.timedelta(minutes=30), kinds, AccessEpoch(60.0)
        )

    return make


async def test_a_logout_closes_that_sessions_sockets_of_every_kind_and_no_others(
    make: Callable[..., LiveSockets],
) -> None:
    ann_here, ann_phone, bob = principal(1, "ann-laptop"), principal(1, "ann-phone"), principal(2, "bob")
    hub, notes = Kind(ann_here, ann_phone, bob), Kind(ann_here, bob)

    await make(hub, notes).handle(Disconnect(1, "ann-laptop"))

    assert hub.closed == [(ann_here, CloseCode.UNAUTHORIZED, "session ended")]
    assert notes.closed == [(ann_here, CloseCode.UNAUTHORIZED, "session ended")]
    assert hub.open == [ann_phone, bob] and notes.open == [bob]


async def test_a_disconnect_without_a_session_closes_every_socket_of_the_user(
    make: Callable[..., LiveSockets],
) -> None:
    ann_here, ann_phone, bob = principal(1, "ann-laptop"), principal(1, "ann-phone"), principal(2, "bob")
    hub, notes = Kind(ann_here, ann_phone, bob), Kind(ann_phone, bob)

    await make(hub, notes).handle(Disconnect(1))

    assert hub.open == [bob] and notes.open == [bob]


async def test_an_access_change_reaches_every_kind_even_when_one_fails(make: Callable[..., LiveSockets]) -> None:
    failing, other = Kind(fails=True), Kind()
    change = AccessChanged(Subject.TASK, 7)

    await make(failing, other).handle(change)

    assert failing.rechecked == [change] and other.rechecked == [change]


async def test_the_sweep_asks_about_every_kinds_sessions_and_closes_the_ended_ones(
    make: Callable[..., LiveSockets],
) -> None:
    ann, bob = principal(1, "ann"), principal(2, "bob")
    hub, notes = Kind(ann), Kind(ann, bob)
    sockets = make(hub, notes)

    assert sockets.session_hashes() == {"ann", "bob"}
    sockets.close_sessions({"bob"})

    assert hub.open == [ann] and notes.open == [ann]
    assert notes.closed == [(bob, CloseCode.UNAUTHORIZED, "session ended")]


async def test_a_node_whose_bus_reconnected_rechecks_everything_of_every_kind(
    make: Callable[..., LiveSockets],
) -> None:
    hub, notes = Kind(), Kind()

    await make(hub, notes)._recheck_everything()

    assert hub.rechecked == notes.rechecked == [AccessChanged(Subject.EVERYTHING)]
