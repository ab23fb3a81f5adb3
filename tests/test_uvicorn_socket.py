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
from collections.abc import AsyncIterator, Awaitable, Callable
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


Endpoint = Callable[[Any, Any], Awaitable[None]]  # run with ASGI's (receive, send) once the socket is accepted


@asynccontextmanager
async def uvicorn_endpoint(endpoint: Endpoint, **options: Any) -> AsyncIterator[str]:
    """A real uvicorn (its default WebSocket protocol) whose one endpoint accepts the socket and runs ``endpoint``;
    yields its URL."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await endpoint(receive, send)

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


async def until_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "websocket.disconnect":
        pass


@asynccontextmanager
async def uvicorn_serving(script: Script, **options: Any) -> AsyncIterator[str]:
    """`uvicorn_endpoint` running ``script`` with the socket's transport (the same for ``/ws`` and ``/yjs``)."""

    async def endpoint(receive: Any, send: Any) -> None:
        await script(AsgiSocket(send))
        await until_disconnect(receive)

    async with uvicorn_endpoint(endpoint, **options) as url:
        yield url


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


# -- receiving: messages handed from uvicorn's protocol to a function ----------------------------------------------

Handled = list[tuple[bytes | str, bool]]  # each message, and whether it was handed over outside any task


@asynccontextmanager
async def pumping(on_message: Callable[[bytes | str], bool], after: Callable[[Any], Any]) -> AsyncIterator[Any]:
    """A real uvicorn whose one endpoint waits until the client's first message is queued, says "pumping" and pumps
    the socket's messages into ``on_message`` (`AsgiSocket.pump`), then hands ASGI's ``receive`` to ``after`` (which
    returns "gone" if the pump ended with the client). Yields the client and a dict with what the endpoint saw:
    ``raised`` (the pump's exception), ``later`` (what ``after`` returned), ``done`` (set once ``after`` returned)."""
    seen: dict[str, Any] = {"done": asyncio.Event()}

    async def endpoint(receive: Any, send: Any) -> None:
        transport = AsgiSocket(send)
        assert transport._raw is not None, "uvicorn's default protocol is the one the fast path reads"
        queue = transport._raw._protocol.queue
        async with asyncio.timeout(5):
            while queue.empty():  # the client's first message, queued by ASGI before the pump starts
                await asyncio.sleep(0.005)
        await transport.send_text("pumping")  # nothing suspends from here until the pump waits for messages
        try:
            await transport.pump(receive, on_message)
        except Exception as exc:
            seen["raised"] = exc
        seen["later"] = await after(receive)
        seen["done"].set()
        if seen["later"] != "gone":  # the client is still there
            await until_disconnect(receive)

    async with (
        uvicorn_endpoint(endpoint, ws_per_message_deflate=False) as url,
        connect(url, compression=None) as client,
    ):
        yield client, seen


def collect(into: Handled, until: bytes | str) -> Callable[[bytes | str], bool]:
    def on_message(message: bytes | str) -> bool:
        into.append((message, _outside_any_task()))
        return message != until

    return on_message


def _outside_any_task() -> bool:
    try:
        return asyncio.current_task() is None
    except RuntimeError:
        return True


async def next_message(receive: Any) -> Any:
    event = await receive()
    return event.get("bytes", event.get("text"))


async def test_a_pump_hands_each_message_over_in_order_as_it_is_parsed() -> None:
    """What ASGI queued before the pump comes first; then binary messages are handed over from uvicorn's protocol
    (outside any task: no receive, no loop turn), a text message in between keeps its place, and once the handler
    says stop, ASGI's ``receive`` has the socket's next message."""
    handled: Handled = []
    async with pumping(collect(handled, b"stop"), next_message) as (client, seen), asyncio.timeout(10):
        await client.send(b"queued")
        assert await client.recv() == "pumping"
        for message in (b"one", "two", b"three", b"x" * 200_000, b"stop", b"after"):
            await client.send(message)
        await seen["done"].wait()
    assert [m for m, _ in handled] == [b"queued", b"one", "two", b"three", b"x" * 200_000, b"stop"]
    by_message = dict(handled)
    assert by_message[b"queued"] is False  # taken from ASGI's queue, in the endpoint's task
    assert by_message[b"one"] is True and by_message[b"stop"] is True
    assert seen["later"] == b"after"
    assert "raised" not in seen


async def test_a_pump_ends_when_the_client_disconnects() -> None:
    handled: Handled = []

    async def after(receive: Any) -> str:
        return "gone"

    async with pumping(collect(handled, b"never"), after) as (client, seen), asyncio.timeout(10):
        await client.send(b"queued")
        assert await client.recv() == "pumping"
        await client.send(b"one")
        await client.close()
        await seen["done"].wait()
    assert handled == [(b"queued", False), (b"one", True)]
    assert "raised" not in seen


async def test_a_handler_that_raises_stops_the_pump_with_its_exception_and_the_socket_stays_usable() -> None:
    handled: Handled = []

    def on_message(message: bytes | str) -> bool:
        handled.append((message, _outside_any_task()))
        if message == b"boom":
            raise ValueError("bad message")
        return True

    async with pumping(on_message, next_message) as (client, seen), asyncio.timeout(10):
        await client.send(b"queued")
        assert await client.recv() == "pumping"
        for message in (b"one", b"boom", b"after"):
            await client.send(message)
        await seen["done"].wait()
    assert handled == [(b"queued", False), (b"one", True), (b"boom", True)]
    assert isinstance(seen["raised"], ValueError)
    assert seen["later"] == b"after"


async def test_off_uvicorn_a_pump_reads_asgi_receive_in_order_until_told_to_stop_or_the_disconnect() -> None:
    """Another server, or a wrapped ``send``: no fast path, the same pump over ASGI's ``receive``."""
    events: list[dict[str, Any]] = [
        {"type": "websocket.receive", "bytes": b"one"},
        {"type": "websocket.receive", "text": "two"},
        {"type": "websocket.receive", "bytes": b"stop"},
        {"type": "websocket.receive", "bytes": b"left for later"},
        {"type": "websocket.disconnect", "code": 1000},
    ]

    async def receive() -> dict[str, Any]:
        return events.pop(0)

    async def send(message: Any) -> None:
        pass

    transport = AsgiSocket(send)
    assert transport._raw is None
    handled: Handled = []
    await transport.pump(receive, collect(handled, b"stop"))
    assert [m for m, _ in handled] == [b"one", "two", b"stop"]
    assert len(events) == 2  # the next message is ASGI's again
    await transport.pump(receive, collect(handled, b"never"))
    assert handled[-1][0] == b"left for later" and not events


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
