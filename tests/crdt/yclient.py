"""A y-websocket client on pycrdt and `websockets`: the Python peer of the interop and end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pycrdt
import websockets

from crdt import protocol as p
from crdt.document import FRAGMENT, text_of


class YClient:
    """Connects to ``/yjs/{note_id}``, syncs, applies what arrives, sends local edits. Every wait has a deadline."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
        self.fragment = self.doc.get(FRAGMENT, type=pycrdt.XmlFragment)
        self.synced = asyncio.Event()
        self.changed = asyncio.Event()
        self.denied: list[str] = []
        self.awareness: dict[int, Any] = {}
        self.close_code: int | None = None
        self._socket: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._outgoing: list[bytes] = []
        self.doc.observe(lambda e: self._outgoing.append(e.update))

    @classmethod
    async def connect(
        cls, url: str, timeout: float = 10.0, origin: str | None = None, token: str | None = None
    ) -> YClient:
        """Connect to ``url``; ``token`` goes in the ``Authorization`` header (never in the URL)."""
        client = cls(url)
        headers = {"Authorization": f"Bearer {token}"} if token else None
        client._socket = await asyncio.wait_for(
            websockets.connect(  # type: ignore[arg-type]
                url, max_size=None, compression=None, origin=origin, additional_headers=headers
            ),
            timeout,
        )
        client._reader = asyncio.get_running_loop().create_task(client._read())
        with contextlib.suppress(websockets.ConnectionClosed):  # refused sockets close at once
            await client._send(p.encode_sync_step1(client.doc.get_state()))
        return client

    async def _send(self, data: bytes) -> None:
        await self._socket.send(data)

    async def send_raw(self, data: bytes | str) -> None:
        await self._socket.send(data)

    async def _read(self) -> None:
        try:
            async for data in self._socket:
                if isinstance(data, str):
                    continue
                message = p.decode(data)
                self._outgoing.clear()
                match message:
                    case p.SyncStep1(sv):
                        await self._send(p.encode_sync_step2(self.doc.get_update(sv)))
                    case p.SyncStep2(update):
                        self.doc.apply_update(update)
                        self.synced.set()
                    case p.SyncUpdate(update):
                        self.doc.apply_update(update)
                    case p.Auth(_, reason):
                        self.denied.append(reason)
                    case p.Awareness(entries):
                        for entry in entries:
                            self.awareness[entry.client_id] = json.loads(entry.state)
                self._outgoing.clear()
                self.changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            rcvd = getattr(self._socket, "close_code", None)
            self.close_code = rcvd
            self.changed.set()

    @property
    def text(self) -> pycrdt.XmlText | None:
        """The text of the note's first paragraph (where `edit` types), or None before there is one."""
        for block in self.fragment.children:
            if isinstance(block, pycrdt.XmlElement):
                for child in block.children:
                    if isinstance(child, pycrdt.XmlText):
                        return child
                return None
        return None

    async def edit(self, text: str, index: int | None = None, formats: dict[str, Any] | None = None) -> None:
        """Type ``text`` into the first paragraph at ``index`` (its end by default), as an editor would.

        Like an editor, it types into the document it has synced (a refused socket never syncs: then after 2 s).
        """
        if not self.synced.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.synced.wait(), 2)
        self._outgoing.clear()
        with self.doc.transaction():
            target = self.text
            if target is None:
                blocks = [b for b in self.fragment.children if isinstance(b, pycrdt.XmlElement)]
                paragraph = blocks[0] if blocks else self.fragment.children.append(pycrdt.XmlElement("paragraph"))
                target = paragraph.children.append(pycrdt.XmlText())
            target.insert(len(target) if index is None else index, text, formats or {})
        await self._flush()

    async def add_block(self, element: pycrdt.XmlElement, index: int | None = None) -> pycrdt.XmlElement:
        """Insert a block (a paragraph, heading, list...) into the note at ``index`` (the end by default)."""
        self._outgoing.clear()
        with self.doc.transaction():
            at = len(self.fragment.children) if index is None else index
            added: pycrdt.XmlElement = self.fragment.children.insert(at, element)
        await self._flush()
        return added

    async def change(self, edit: Any) -> None:
        """Run ``edit()`` (any change to ``self.doc``) in one transaction and send it."""
        self._outgoing.clear()
        with self.doc.transaction():
            edit()
        await self._flush()

    async def _flush(self) -> None:
        updates, self._outgoing = self._outgoing, []
        for update in updates:
            await self._send(p.encode_update(update))

    async def set_awareness(self, clock: int, state: dict[str, Any]) -> None:
        await self._send(p.encode_awareness([p.AwarenessEntry(self.doc.client_id, clock, json.dumps(state))]))

    async def wait(self, check: Any, timeout: float = 10.0, what: str = "condition") -> None:
        try:
            async with asyncio.timeout(timeout):
                while not check():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise TimeoutError(f"{what}: text is {str(self)!r}, close code {self.close_code}") from None

    async def wait_text(self, expected: str, timeout: float = 10.0) -> None:
        await self.wait(lambda: str(self) == expected, timeout, f"text {expected!r}")

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        await self.wait(lambda: self.close_code is not None, timeout, "closed")
        return self.close_code

    async def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._socket.close(), 5)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def __str__(self) -> str:
        """The note as plain text: what the server's text export returns for the same document."""
        return text_of(self.doc)
