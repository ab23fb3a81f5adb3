"""Helpers for room tests: an in-memory transport, and a Yjs client on pycrdt that speaks through any transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pycrdt
from websockets.frames import Opcode

from crdt import protocol as p
from crdt.document import FRAGMENT, text_of
from crdt.manager import Access, RoomManager
from crdt.transport import Peer, pump_from
from tests.frames import read_frame


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.arrived = asyncio.Event()

    def write(self, data: bytes) -> None:
        self.sent.append(data)
        self.arrived.set()

    def write_frame(self, frame: bytes) -> bool:
        """Take fan-out frames as a raw socket would: what arrives is the frame's payload."""
        self.write(frame_payload(frame))
        return True

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.arrived.set()


def frame_payload(frame: bytes) -> bytes:
    """The payload of one binary frame, as a client reads it."""
    opcode, payload = read_frame(frame)
    assert opcode is Opcode.BINARY
    return payload


class SimClient:
    """A y-websocket client on pycrdt, wired to a room manager through a `FakeTransport` and a frame queue."""

    def __init__(
        self,
        manager: RoomManager,
        note_id: int,
        *,
        readonly: bool = False,
        principal: Any = None,
        identity: dict[str, object] | None = None,
    ) -> None:
        self.manager = manager
        self.note_id = note_id
        self.transport = FakeTransport()
        self.peer = Peer(self.transport, principal, readonly=readonly, identity=identity)
        self.doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
        self.fragment = self.doc.get(FRAGMENT, type=pycrdt.XmlFragment)
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.received: list[p.Message] = []
        self.synced = False
        self._seen = 0
        self._outgoing: list[bytes] = []
        self.doc.observe(lambda e: self._outgoing.append(e.update))
        self.task: asyncio.Task[None] | None = None

    async def _frames(self) -> AsyncIterator[bytes]:
        while True:
            frame = await self.inbox.get()
            if frame is None:
                return
            yield frame

    def connect(self) -> SimClient:
        self.task = asyncio.get_running_loop().create_task(
            self.manager.serve(self.note_id, self.peer, pump_from(self._frames()))
        )
        self.send(p.encode_sync_step1(self.doc.get_state()))
        return self

    def send(self, data: bytes) -> None:
        self.inbox.put_nowait(data)

    def type(self, text: str, index: int | None = None) -> None:
        """Edit locally and send the update, as a provider does."""
        self._outgoing.clear()
        with self.doc.transaction():
            # Into the note's first paragraph, as an editor types (one is made in an empty note).
            blocks = [b for b in self.fragment.children if isinstance(b, pycrdt.XmlElement)]
            block = blocks[0] if blocks else self.fragment.children.append(pycrdt.XmlElement("paragraph"))
            texts = [c for c in block.children if isinstance(c, pycrdt.XmlText)]
            target = texts[0] if texts else block.children.append(pycrdt.XmlText())
            target.insert(len(target) if index is None else index, text, {})
        for update in self._outgoing:
            self.send(p.encode_update(update))
        self._outgoing.clear()

    def pump(self) -> None:
        """Process what the server sent (applying updates, answering its sync step 1)."""
        while self._seen < len(self.transport.sent):
            data = self.transport.sent[self._seen]
            self._seen += 1
            message = p.decode(data)
            self.received.append(message)
            match message:
                case p.SyncStep1(sv):
                    self._outgoing.clear()
                    self.send(p.encode_sync_step2(self.doc.get_update(sv)))
                case p.SyncStep2(update):
                    self.doc.apply_update(update)
                    self.synced = True
                case p.SyncUpdate(update):
                    self.doc.apply_update(update)
            self._outgoing.clear()

    async def wait_for(self, check: Any, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while True:
                self.pump()
                if check():
                    return
                self.transport.arrived.clear()
                await self.transport.arrived.wait()

    async def leave(self) -> None:
        self.inbox.put_nowait(None)
        if self.task is not None:
            async with asyncio.timeout(5):
                await self.task

    def __str__(self) -> str:
        """The note as plain text (what the server's text export returns for the same document)."""
        return text_of(self.doc)


async def allow_all(principal: object, note_id: int) -> Access:
    return Access.WRITE
