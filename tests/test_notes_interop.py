"""Interop: two stock Yjs clients (the real `yjs` and `y-websocket` npm packages, in Node) and one pycrdt client
co-edit one note's document model (the Y.XmlFragment "prosemirror": paragraphs, some with bold text) through two
Tandem nodes joined by Redis; all converge to the text `/export` returns, the markdown export shows their marks,
and each stock client sees the other under the name the server bound to its socket, not the one it announced."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pycrdt
import pytest

from tests.crdt.yclient import YClient
from tests.nodes import cluster
from tests.workspace import Workspace

INTEROP = Path(__file__).resolve().parent / "interop"
REDIS = "redis://127.0.0.1:6379/0"
EDITS = 30
TOKEN = re.compile(r"\[(\w+):(\d+)\]")


def ensure_node_modules() -> None:
    """Install the pinned npm packages (package-lock.json) once, with a deadline."""
    if (INTEROP / "node_modules" / "y-websocket").is_dir():
        return
    npm = shutil.which("npm")
    assert npm, "npm is required for the Yjs interop test (Node.js 20+)"
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=INTEROP, check=True, timeout=300)


class NodeEditor:
    """``tests/interop/editor.mjs`` in a subprocess: a y-websocket provider that makes ``EDITS`` edits."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.state: dict[str, Any] = {}

    @classmethod
    async def start(cls, base: str, note_id: int, token: str, name: str) -> NodeEditor:
        node = shutil.which("node")
        assert node, "node is required for the Yjs interop test"
        process = await asyncio.create_subprocess_exec(
            node,
            str(INTEROP / "editor.mjs"),
            base,
            str(note_id),
            token,
            name,
            str(EDITS),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=INTEROP,
        )
        return cls(process)

    async def wait(self, check: Any, timeout: float = 30.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while not (self.state and check(self.state)):
                    line = await self.process.stdout.readline()
                    if not line:
                        raise AssertionError(f"editor exited ({self.process.returncode}); last state {self.state}")
                    self.state = json.loads(line)
        except TimeoutError:
            raise AssertionError(f"editor state not reached in {timeout}s: {self.state}") from None
        return self.state

    async def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            async with asyncio.timeout(5):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def editors() -> AsyncIterator[list[NodeEditor]]:
    started: list[NodeEditor] = []
    yield started
    for editor in started:
        await editor.stop()


def tokens(text: str) -> set[tuple[str, int]]:
    return {(name, int(i)) for name, i in TOKEN.findall(text)}


async def test_yjs_and_pycrdt_clients_converge_through_two_nodes(
    workspace_template: tuple[Path, Workspace], tmp_path: Path, editors: list[NodeEditor]
) -> None:
    await asyncio.to_thread(ensure_node_modules)
    shutil.copy(workspace_template[0], tmp_path / "tandem.db")
    ws = workspace_template[1]
    with cluster(tmp_path, f"sqlite:///{tmp_path / 'tandem.db'}", REDIS, count=2) as (a, b):
        async with httpx.AsyncClient(
            base_url=a.http, headers={"authorization": f"Bearer {ws.token('staff')}"}, timeout=10
        ) as api:
            created = await api.post(
                f"/api/projects/{ws.ids['px']}/notes", json={"title": "Interop", "visibility": "shared"}
            )
            assert created.status_code == 201
            note_id = created.json()["id"]
        js_a = await NodeEditor.start(f"ws://127.0.0.1:{a.port}/yjs", note_id, ws.token("staff"), "jsA")
        js_b = await NodeEditor.start(f"ws://127.0.0.1:{b.port}/yjs", note_id, ws.token("customer"), "jsB")
        editors.extend([js_a, js_b])
        python = await YClient.connect(f"ws://127.0.0.1:{b.port}/yjs/{note_id}", token=ws.token("owner"))
        try:
            await asyncio.wait_for(python.synced.wait(), 10)
            for i in range(EDITS):
                # A paragraph in the middle of the note, as the browser's editor would add it.
                paragraph = pycrdt.XmlElement("paragraph", contents=[pycrdt.XmlText(f"[py:{i}]")])
                await python.add_block(paragraph, index=len(python.fragment.children) // 2)
                await asyncio.sleep(0.005)
            everything = {(name, i) for name in ("jsA", "jsB", "py") for i in range(EDITS)}
            state_a = await js_a.wait(lambda s: tokens(s["text"]) == everything)
            await js_b.wait(lambda s: s["text"] == state_a["text"])
            await python.wait_text(state_a["text"], timeout=30)
            assert len(TOKEN.findall(state_a["text"])) == len(everything)  # nothing twice
            assert {block["tag"] for block in state_a["blocks"]} == {"paragraph"}
            assert len(state_a["blocks"]) == len(everything)
            # Awareness crosses nodes, each peer shown by the name the server authenticated: the Node clients
            # announce themselves as "jsA" and "jsB", and each sees the other as "Staff" or "Customer".
            seen_a = await js_a.wait(lambda s: "Customer" in s["peers"])
            seen_b = await js_b.wait(lambda s: "Staff" in s["peers"])
            assert "jsB" not in seen_a["peers"] and "jsA" not in seen_b["peers"]
            for node in (a, b):
                async with httpx.AsyncClient(base_url=node.http, timeout=10) as client:
                    exported = await client.get(
                        f"/api/notes/{note_id}/export", headers={"authorization": f"Bearer {ws.token('customer')}"}
                    )
                assert exported.text == state_a["text"]
                # The marks a stock client sets are the editor's: the markdown export shows them as bold.
                async with httpx.AsyncClient(base_url=node.http, timeout=10) as client:
                    markdown = await client.get(
                        f"/api/notes/{note_id}/export?format=markdown",
                        headers={"authorization": f"Bearer {ws.token('customer')}"},
                    )
                assert "**[jsA:0]**" in markdown.text and "**[jsB:5]**" in markdown.text
                assert "\n\n[py:0]" in markdown.text  # plain paragraphs stay plain
        finally:
            await python.close()
