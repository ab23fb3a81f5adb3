"""Fan-out frames built once (``channels.frames``) and written as they are to sockets a real uvicorn serves
(``server/live/uvicorn_socket.py``), by the notes' and the hub's transports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from websockets.asyncio.client import connect
from websockets.frames import Opcode

from channels.client import TandemClient
from channels.frames import TEXT, websocket_frame
from server.live import uvicorn_socket
from server.live.sockets import AsgiSocket
from tests.frames import read_frame
from tests.nodes import ROOT, free_port
from tests.workspace import Workspace


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_a_frame_carries_its_payload_at_every_length_encoding(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert read_frame(websocket_frame(data)) == (Opcode.BINARY, data)
    text = ("é" * size)[: size // 2].encode()
    assert read_frame(websocket_frame(text, TEXT)) == (Opcode.TEXT, text)


Script = Callable[[Any], Any]


@asynccontextmanager
async def uvicorn_serving(script: Script, **options: Any) -> AsyncIterator[str]:
    """A real uvicorn (its default WebSocket protocol) whose one endpoint accepts and runs ``script`` with the
    sockets' transport (the same for ``/ws`` and ``/yjs``)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        transport = AsgiSocket(send)
        await script(transport)
        while (await receive())["type"] != "websocket.disconnect":
            pass

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_uvicorn_sockets_take_prebuilt_frames_in_order_with_ordinary_sends() -> None:
    taken: list[bool] = []

    async def script(transport: AsgiSocket) -> None:
        taken.append(transport.write_frame(websocket_frame(b"one")))
        pending = transport.write(b"two")
        if pending is not None:
            await pending
        taken.append(transport.write_frame(websocket_frame(b"three" * 30_000)))

    async with (
        uvicorn_serving(script, ws_per_message_deflate=False) as url,
        connect(url, compression=None) as client,
        asyncio.timeout(10),
    ):
        got = [await client.recv() for _ in range(3)]
    assert got == [b"one", b"two", b"three" * 30_000]
    assert taken == [True, True]


async def test_a_compressed_socket_declines_prebuilt_frames_and_ordinary_sends_carry_them() -> None:
    taken: list[bool] = []

    async def script(transport: AsgiSocket) -> None:
        frame = websocket_frame(b"one")
        taken.append(transport.write_frame(frame))
        pending = transport.write(b"one")  # what a peer does when the transport declines
        if pending is not None:
            await pending

    async with uvicorn_serving(script, ws_per_message_deflate=True) as url, connect(url) as client:
        async with asyncio.timeout(10):
            assert await client.recv() == b"one"
    assert taken == [False]


async def test_a_closed_socket_declines_prebuilt_frames() -> None:
    taken: list[bool] = []
    closed = asyncio.Event()

    async def script(transport: AsgiSocket) -> None:
        await transport.close(1000, "bye")
        taken.append(transport.write_frame(websocket_frame(b"late")))
        closed.set()

    async with (
        uvicorn_serving(script, ws_per_message_deflate=False) as url,
        connect(url, compression=None) as client,
        asyncio.timeout(10),
    ):
        with pytest.raises(websockets.ConnectionClosedOK):
            await client.recv()
        await closed.wait()
    assert taken == [False]


async def test_hub_sockets_take_prebuilt_text_frames_in_order_with_ordinary_sends() -> None:
    taken: list[bool] = []

    async def script(transport: AsgiSocket) -> None:
        taken.append(transport.write_frame(websocket_frame(b'{"type":"pong"}', TEXT)))
        await transport.send_text('{"type":"ack"}')
        taken.append(transport.write_frame(websocket_frame("é".encode(), TEXT)))

    async with (
        uvicorn_serving(script, ws_per_message_deflate=False) as url,
        connect(url, compression=None) as client,
        asyncio.timeout(10),
    ):
        got = [await client.recv() for _ in range(3)]
    assert got == ['{"type":"pong"}', '{"type":"ack"}', "é"]
    assert taken == [True, True]


# -- the fast path is on in the server Tandem ships, and says so --------------------------------------------------


def test_the_installed_versions_are_the_supported_ones() -> None:
    """pyproject.toml pins what server/live/uvicorn_socket.py reads below ASGI; an upgrade that slips past the pins (or
    a pin changed without the code) fails here rather than turning the fast path off unnoticed."""
    on, why = uvicorn_socket.fast_path_available()
    assert on, why
    pins = (ROOT / "pyproject.toml").read_text()
    for name, supported in uvicorn_socket.SUPPORTED.items():
        assert re.search(rf'"{name}>=[\d.]+,<[\d.]+"', pins), f"{name} is not pinned to a range in pyproject.toml"
        assert version(name).split(".")[: len(supported.split("."))] == supported.split(".")


async def test_tandem_serve_writes_fan_out_frames_below_asgi_and_says_so(
    database: tuple[str, Workspace], tmp_path: Path
) -> None:
    """A real `tandem serve`: its startup log says the fast path is on, and after a socket is accepted the
    ``tandem_ws_fast_path`` gauge is still 1 (a socket served through another protocol turns it to 0)."""
    url, ws = database
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TANDEM_DATABASE_URL": url,
        "TANDEM_DATA_DIR": str(tmp_path),
        "TANDEM_SECRET_KEY": "s" * 40,
        "TANDEM_AUTO_MIGRATE": "false",
        "TANDEM_BASE_URL": f"http://127.0.0.1:{port}",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: ASYNC220 (started once, then only polled)
            [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http, asyncio.timeout(60):
            while True:
                assert process.poll() is None, log_path.read_text()
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            assert "websocket fast path on" in log_path.read_text(), log_path.read_text()
            client = await TandemClient.connect(
                f"ws://127.0.0.1:{port}/ws", token=ws.token("staff"), ping_interval=None
            )
            try:
                await client.subscribe(f"project:{ws.ids['px']}:staff")
                metrics = (await http.get("/metrics")).text
            finally:
                await client.close()
        assert re.search(r"^tandem_ws_fast_path 1\.0$", metrics, re.M), [
            line for line in metrics.splitlines() if "fast_path" in line
        ]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
