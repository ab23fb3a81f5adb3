"""The note store contract, on memory and on the application database: durable appends, loads that merge to the
same text, and compaction that loses nothing, whether it crashes midway or races another node's."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pycrdt
import pytest
from sqlalchemy import Connection

from crdt.document import FRAGMENT, content_update, document_from, text_of
from crdt.manager import RoomManager
from crdt.room import RoomSettings
from crdt.storage import MemoryNoteStore, NoteStore
from server.db import Database, utcnow
from server.notes.store import SqlNoteStore
from tests.conftest import postgres_database
from tests.crdt.kit import SimClient, allow_all
from tests.workspace import Workspace

ON_BOTH = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def seeded_url(
    kind: str, request: pytest.FixtureRequest, workspace_template: tuple[Path, Workspace], tmp_path: Path
) -> Iterator[str]:
    """The seeded workspace on a SQLite file (appends go through `Database.write`'s writer thread) or PostgreSQL."""
    if kind == "sqlite":
        shutil.copy(workspace_template[0], tmp_path / "tandem.db")
        yield f"sqlite:///{tmp_path / 'tandem.db'}"
        return
    template, pg_workspace = request.getfixturevalue("pg_template")
    assert pg_workspace.ids == workspace_template[1].ids  # the tests take their ids from ``workspace``
    with postgres_database(template) as url:
        yield url


@pytest.fixture(params=ON_BOTH)
def seeded_database_url(
    request: pytest.FixtureRequest, workspace_template: tuple[Path, Workspace], tmp_path: Path
) -> Iterator[str]:
    yield from seeded_url(request.param, request, workspace_template, tmp_path)


@pytest.fixture
async def database(seeded_database_url: str) -> AsyncIterator[Database]:
    db = Database(seeded_database_url)
    yield db
    await db.close()


@pytest.fixture(params=["memory", *ON_BOTH])
def store_url(
    request: pytest.FixtureRequest, workspace_template: tuple[Path, Workspace], tmp_path: Path
) -> Iterator[str | None]:
    if request.param == "memory":
        yield None
    else:
        yield from seeded_url(request.param, request, workspace_template, tmp_path)


@pytest.fixture
async def note_store(store_url: str | None) -> AsyncIterator[NoteStore]:
    if store_url is None:
        yield MemoryNoteStore()
        return
    db = Database(store_url)
    yield SqlNoteStore(db)
    await db.close()


def note_id(ws: Workspace) -> int:
    return ws.ids["px_shared_note"]


async def text_in(store: NoteStore, note: int) -> str:
    return text_of(document_from((await store.load(note)).merged()))


def edits(count: int, base: bytes) -> list[bytes]:
    """``count`` successive single-character appends on top of ``base``, as separate updates."""
    doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
    doc.apply_update(base)
    out: list[bytes] = []
    doc.observe(lambda e: out.append(e.update))
    # Typed at the end of the note's first paragraph (made first in an empty note).
    fragment = doc.get(FRAGMENT, type=pycrdt.XmlFragment)
    if len(fragment.children) == 0:
        fragment.children.append(pycrdt.XmlElement("paragraph", contents=[pycrdt.XmlText()]))
    content = fragment.children[0].children[0]
    for i in range(count):
        content.insert(len(content), str(i % 10))
    return out


async def test_append_load_compact(note_store: NoteStore, workspace: Workspace) -> None:
    note = note_id(workspace)
    base = (await note_store.load(note)).merged()
    start = await text_in(note_store, note)
    for update in edits(25, base):
        await note_store.append(note, update)
    expected = start + "0123456789" * 2 + "01234"
    assert await text_in(note_store, note) == expected
    assert await note_store.compact(note)
    stored = await note_store.load(note)
    assert stored.log_rows == 0 and len(stored.updates) == 1
    assert await text_in(note_store, note) == expected
    assert not await note_store.compact(note)


async def test_a_long_log_compacts_whole_merged_a_slice_at_a_time(database: Database, workspace: Workspace) -> None:
    """More rows than one merge slice (`_MERGE_SLICE`) and one snapshot already there: every edit survives, in
    order, and every row folded in is gone (the DELETE takes their ids as one parameter, on either database)."""
    store = SqlNoteStore(database)
    note = note_id(workspace)
    start = await text_in(store, note)
    for update in edits(30, (await store.load(note)).merged()):
        await store.append(note, update)
    assert await store.compact(note)  # a snapshot to merge the long log into
    for update in edits(300, (await store.load(note)).merged()):
        await store.append(note, update)
    assert (await store.load(note)).log_rows == 300
    assert await store.compact(note)
    stored = await store.load(note)
    assert stored.log_rows == 0
    assert await text_in(store, note) == start + "0123456789" * 3 + "0123456789" * 30


async def test_a_crash_mid_compaction_loses_nothing(
    database: Database, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqlNoteStore(database)
    note = note_id(workspace)
    for update in edits(10, (await store.load(note)).merged()):
        await store.append(note, update)
    before = await text_in(store, note)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("node died between writing the snapshot and deleting the rows")

    monkeypatch.setattr(store, "_drop_rows", crash)  # the folded rows' DELETE, after the snapshot's write
    with pytest.raises(RuntimeError):
        await store.compact(note)
    monkeypatch.undo()
    assert await text_in(store, note) == before
    assert (await store.load(note)).log_rows == 11  # the seed row and ten edits, all still there
    assert await store.compact(note)
    assert await text_in(store, note) == before


async def test_racing_compactions_and_appends_lose_nothing(database: Database, workspace: Workspace) -> None:
    nodes = [SqlNoteStore(database), SqlNoteStore(database)]
    note = note_id(workspace)
    updates = edits(60, (await nodes[0].load(note)).merged())
    start = await text_in(nodes[0], note)

    async def writer(store: SqlNoteStore, mine: list[bytes]) -> None:
        for update in mine:
            await store.append(note, update)
            if len(mine) % 7 == 0:
                await store.compact(note)

    await asyncio.gather(
        writer(nodes[0], updates[0::2]),
        writer(nodes[1], updates[1::2]),
        *(node.compact(note) for node in nodes for _ in range(5)),
    )
    await nodes[1].compact(note)
    assert await text_in(nodes[0], note) == start + ("0123456789" * 6)


async def test_a_room_compacts_when_its_log_grows(database: Database, workspace: Workspace) -> None:
    store = SqlNoteStore(database)
    rooms = RoomManager(store, allow_all, settings=RoomSettings(compact_after_rows=5))
    await rooms.start()
    try:
        note = note_id(workspace)
        client = SimClient(rooms, note).connect()
        await client.wait_for(lambda: client.synced)
        for i in range(12):
            client.type(str(i % 10))
            await asyncio.sleep(0.01)
        expected = "px shared note text" + "012345678901"
        await client.wait_for(lambda: str(client) == expected)
        # The client's own document has every edit at once; the store has them once the last appends commit.
        async with asyncio.timeout(5):
            while await store.log_rows(note) >= 5 or await text_in(store, note) != expected:
                await asyncio.sleep(0.02)
        await client.leave()
    finally:
        await rooms.close()


async def test_seed_text_is_stored_once(database: Database, workspace: Workspace) -> None:
    store = SqlNoteStore(database)
    note = note_id(workspace)
    rooms = RoomManager(store, allow_all)
    await rooms.start()
    try:
        for _ in range(3):
            client = SimClient(rooms, note).connect()
            await client.wait_for(lambda c=client: c.synced)
            await client.leave()
        assert await text_in(store, note) == "px shared note text"
    finally:
        await rooms.close()
    assert text_of(document_from(content_update("x"))) == "x"


async def test_loads_racing_compactions_never_lose_content(database: Database, workspace: Workspace) -> None:
    """Regression: load() read the snapshot, then the log; a compaction committing in between emptied the log the
    load was about to read, and the load came back without the compacted content."""
    store = SqlNoteStore(database)
    note = note_id(workspace)
    base = (await store.load(note)).merged()
    expected = text_of(document_from(base))
    for round_ in range(15):
        for update in edits(4, (await store.load(note)).merged()):
            await store.append(note, update)
        expected = text_of(document_from((await store.load(note)).merged()))
        loads = await asyncio.gather(store.compact(note), *(store.load(note) for _ in range(8)))
        for stored in loads[1:]:
            assert text_of(document_from(stored.merged())) == expected, f"round {round_}"  # type: ignore[union-attr]


async def test_appends_from_many_rooms_share_commits_and_all_land(database: Database, workspace: Workspace) -> None:
    from sqlalchemy import event

    store = SqlNoteStore(database)
    notes = [workspace.ids["px_shared_note"], workspace.ids["px_internal_note"]]
    start = {note: await text_in(store, note) for note in notes}
    updates = {note: edits(40, (await store.load(note)).merged()) for note in notes}
    commits: list[int] = []
    for engine in database.write_engines:
        event.listen(engine, "commit", lambda conn: commits.append(1))

    async def room(note: int) -> None:  # a room appends its batches one after another
        for update in updates[note]:
            await store.append(note, update)

    async with asyncio.timeout(30):
        await asyncio.gather(*(room(note) for note in notes), *(store.append(notes[0], b"\x00\x00") for _ in range(20)))

    assert 0 < len(commits) < 100  # 100 appends, far fewer transactions
    for note in notes:
        assert await text_in(store, note) == start[note] + "0123456789" * 4


async def test_a_bad_row_fails_only_its_own_append(database: Database, workspace: Workspace) -> None:
    store = SqlNoteStore(database)
    note = note_id(workspace)
    start = await text_in(store, note)
    good = edits(3, (await store.load(note)).merged())
    missing_note = 10**9  # no such note: the foreign key refuses the row

    async with asyncio.timeout(30):
        results = await asyncio.gather(
            *(store.append(note, update) for update in good),
            store.append(missing_note, good[0]),
            return_exceptions=True,
        )

    assert results[:3] == [None, None, None]
    assert isinstance(results[3], Exception)
    assert await text_in(store, note) == start + "012"


async def test_a_write_that_fails_commits_nothing(database: Database, workspace: Workspace) -> None:
    """`Database.write` (the note log's path) commits all of its statements or none, on either database."""
    from sqlalchemy import func, insert, select

    from server.models import NoteUpdate

    table = NoteUpdate.__table__  # type: ignore[attr-defined]
    note = note_id(workspace)
    count = select(func.count()).select_from(table).where(table.c.note_id == note)

    def two_rows_then_fail(conn: Connection) -> None:
        conn.execute(insert(table), [{"note_id": note, "data": b"\x00\x00", "created_at": utcnow()}] * 2)
        raise RuntimeError("fails after its inserts")

    before = await database.write(lambda conn: conn.execute(count).scalar_one())
    with pytest.raises(RuntimeError):
        await database.write(two_rows_then_fail)
    assert await database.write(lambda conn: conn.execute(count).scalar_one()) == before
    await database.write(
        lambda conn: conn.execute(insert(table), {"note_id": note, "data": b"\x00\x00", "created_at": utcnow()})
    )
    async with database.engine.connect() as conn:  # the async engine sees what the writer committed
        assert (await conn.execute(count)).scalar_one() == before + 1


async def test_a_row_stored_now_never_overtakes_an_append_underway(database: Database, workspace: Workspace) -> None:
    store = SqlNoteStore(database)
    note = note_id(workspace)
    start = await text_in(store, note)
    first, second = edits(2, (await store.load(note)).merged())
    underway = asyncio.ensure_future(store.append(note, first))
    await asyncio.sleep(0)  # its row waits for the writer
    assert not store.append_now([(note, second)])  # it would commit before the first
    async with asyncio.timeout(10):
        await underway
    # A SQLite file stores here and now; PostgreSQL never can (every statement is a round trip to await).
    assert store.appends_now == (database.dialect == "sqlite")
    if not store.append_now([(note, second)]):
        await store.append(note, second)
    assert await text_in(store, note) == start + "01"
