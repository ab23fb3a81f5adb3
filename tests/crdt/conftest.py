from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from crdt.manager import RoomManager
from crdt.room import RoomSettings
from crdt.storage import MemoryNoteStore
from tests.crdt.kit import allow_all


@pytest.fixture(params=["stored later", "stored now"])
def store(request: pytest.FixtureRequest) -> MemoryNoteStore:
    """Every room test runs with a store that only stores by awaiting (PostgreSQL) and with one that also stores
    here and now (a SQLite file): the rooms' updates of a turn then go through `RoomManager`'s store together."""
    return MemoryNoteStore(appends_now=request.param == "stored now")


@pytest.fixture
async def manager(store: MemoryNoteStore) -> AsyncIterator[RoomManager]:
    rooms = RoomManager(store, allow_all, settings=RoomSettings(awareness_interval=0.02, unload_after_seconds=0.2))
    await rooms.start()
    yield rooms
    await rooms.close()
