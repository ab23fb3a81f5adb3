"""A load generator that holds thousands of WebSocket clients in one epoll loop, in its own process.

Shared by ``bench/fanout.py`` (JSON board events) and ``bench/notes.py`` (binary y-websocket updates). A benchmark
subclasses `EpollClients` with what its clients say when they open (`on_open`) and what it records per message
(`on_message`), adds its commands, and drives the process through `LoadGenClient` from its asyncio controller.

Why not asyncio and the ``websockets`` client: its general frame parser plus a task per socket cost ~30 µs per
message on this machine, more than the servers under test spend per delivery, so with 1,000 sockets the client
would set the pace and every latency would be the load generator's. Here the ``websockets`` sans-I/O
``ClientProtocol`` does each opening handshake and encodes (masks) what clients send; incoming server frames are
unmasked, so reading one is a header and a slice. The process is pinned to the client core, the servers to the
other one (`pin`), so client work does not steal server CPU.

Two clocks per message. ``now`` is when this process read the bytes. ``arrived`` is when the kernel queued them on
the client's socket (``SO_TIMESTAMPNS``; over loopback, the moment the server's write went through). One process
reads a thousand sockets one after another, so the last socket's ``now`` includes the reading of all the others:
time a real user, with one socket on their own device, never waits. ``arrived`` leaves that out and keeps
everything the server did, including a write it had to hold because a client's socket was full. Where a read
returns bytes that arrived in several packets, ``arrived`` is the last one's, never earlier than the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import resource
import select
import socket
import struct
import time
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection as PipeEnd
from pathlib import Path
from typing import Any

SERVER_CORE, CLIENT_CORE = 0, 1
CONNECT_CONCURRENCY = 100
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; ancillary data: struct timespec, two int64
ARRIVAL_SPACE = socket.CMSG_SPACE(16)


# -- process statistics and placement ---------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` (not their children), from ``/proc/<pid>/stat``."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), counted after "pid (comm)"
    return total / tick


async def quiet(pids: list[int], timeout: float = 20.0) -> None:
    """Wait until ``pids`` spend under 2 % of a core over 0.25 s (closing sockets, background loops settling)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pids)
        await asyncio.sleep(0.25)
        if cpu_seconds(pids) - before < 0.005:
            return


def rss_kb(pids: list[int]) -> int:
    """Sum of VmRSS of ``pids`` in KB."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def pin(pid: int, core: int | None) -> None:
    """Pin every thread of ``pid`` (aiosqlite and redis-py run threads too) to ``core``, given two cores.

    ``None`` lets them run on every core again.
    """
    if (os.cpu_count() or 1) < 2:
        return
    cores = set(range(os.cpu_count() or 1)) if core is None else {core}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), cores)


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def node_settings(database_url: str, data_dir: Path) -> dict[str, str]:
    """The settings every benchmark's Tandem node runs with (each benchmark adds its own).

    The load generators put the token in the URL (they cannot set headers), which only a benchmark may allow; their
    thousands of sockets belong to a few users from one address, so the per-user and per-IP socket caps (64 and 256
    a node) are lifted.
    """
    from tests.nodes import SECRET

    return {
        "TANDEM_DATABASE_URL": database_url,
        "TANDEM_SECRET_KEY": SECRET,
        "TANDEM_DATA_DIR": str(data_dir),
        "TANDEM_AUTO_MIGRATE": "false",
        "TANDEM_REDIS_PREFIX": f"bench:{uuid.uuid4().hex}:",
        "TANDEM_WS_URL_TOKENS": "true",
        "TANDEM_WS_MAX_SOCKETS_PER_USER": "0",
        "TANDEM_WS_MAX_SOCKETS_PER_IP": "0",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# -- clients ------------------------------------------------------------------------------------------------


class Client:
    """One client socket, non-blocking, driven by `EpollClients`. ``tag`` is the benchmark's (a group name)."""

    __slots__ = ("buffer", "fragments", "last_offset", "last_ping", "opcode", "open", "sock", "state", "tag", "ws")

    def __init__(self, url: str, tag: str = "") -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        uri = parse_uri(url)
        self.ws = ClientProtocol(uri, max_size=None)  # no extensions: no compression
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setblocking(False)
        self.sock.connect_ex((uri.host, uri.port))
        self.state = "connecting"  # -> "handshake" -> "joining" -> "live" | "failed"
        self.open = False
        self.buffer = bytearray()
        self.fragments: list[bytes] = []
        self.last_ping = time.monotonic()
        self.last_offset = -1  # the benchmark's: the last event offset seen on this socket
        self.opcode = 0  # of the message being assembled from fragments
        self.tag = tag

    def send(self, frame: bytes, *, binary: bool = False) -> None:
        if binary:
            self.ws.send_binary(frame)
        else:
            self.ws.send_text(frame)
        self.flush()

    def flush(self) -> None:
        # Client frames are small: they fit the socket buffer, a short write means the peer is gone.
        data = b"".join(self.ws.data_to_send())
        if data and self.sock.send(data) != len(data):
            raise OSError("short write")


class EpollClients:
    """Holds the clients in one epoll loop and answers ``(command, args)`` from the controller's pipe.

    Subclasses implement `on_open` (the handshake completed: send the first frame), `on_message` (a complete
    text or binary message, read at wall-clock time ``now``, queued by the kernel at ``arrived``: see the module's
    docstring) and optionally `keepalive`; their commands are
    the methods named in `commands`. A client becomes live when the subclass calls `mark_live`.
    """

    commands: tuple[str, ...] = ()

    def __init__(self, pipe: PipeEnd) -> None:
        self.pipe = pipe
        self.epoll = select.epoll()
        self.epoll.register(pipe.fileno(), select.EPOLLIN)
        self.clients: dict[int, Client] = {}
        self.live = 0
        self.lost = 0
        self.next_keepalive = time.monotonic() + 1.0
        self.command_waiting = False
        self.scratch = bytearray(1 << 18)
        self.scratch_view = memoryview(self.scratch)

    # -- for subclasses -----------------------------------------------------------------------------------------

    def on_open(self, client: Client) -> None:
        raise NotImplementedError

    def on_message(self, client: Client, payload: bytes, binary: bool, now: float, arrived: float) -> None:
        raise NotImplementedError

    def keepalive(self, client: Client, now: float) -> None:
        """Called about once a second per live client (``now`` is monotonic)."""

    def mark_live(self, client: Client) -> None:
        if client.state != "live":
            client.state = "live"
            self.live += 1

    # -- the loop ---------------------------------------------------------------------------------------------

    def pump(self, timeout: float) -> None:
        """Wait up to ``timeout`` for sockets and handle what is ready."""
        pipe_fd = self.pipe.fileno()
        for fd, mask in self.epoll.poll(timeout, 1024):
            if fd == pipe_fd:
                self.command_waiting = True
                continue
            client = self.clients.get(fd)
            if client is None:
                continue
            try:
                if client.state == "connecting":
                    self._connected(client, mask)
                elif mask & (select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP):
                    self._readable(client)
            except OSError:
                self.drop(client)
        if time.monotonic() >= self.next_keepalive:
            now = time.monotonic()
            self.next_keepalive = now + 1.0
            for client in list(self.clients.values()):
                if client.state == "live":
                    try:
                        self.keepalive(client, now)
                    except OSError:
                        self.drop(client)

    def _connected(self, client: Client, mask: int) -> None:
        if client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or mask & (select.EPOLLERR | select.EPOLLHUP):
            raise OSError("connect failed")
        client.state = "handshake"
        self.epoll.modify(client.sock.fileno(), select.EPOLLIN)
        client.ws.send_request(client.ws.connect())
        client.flush()

    def _readable(self, client: Client) -> None:
        # Into one scratch buffer: ``recv(256 KiB)`` allocates (and, above malloc's mmap threshold, maps and
        # unmaps) that much per call, which was 30 % of this process's time.
        size, ancillary, _, _ = client.sock.recvmsg_into([self.scratch], ARRIVAL_SPACE)
        now = time.time()
        if not size:
            raise OSError("closed by the server")
        arrived = now
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack_from("qq", data)
                arrived = seconds + nanoseconds / 1e9
        data = self.scratch_view[:size]
        if not client.open:
            self._handshake(client, bytes(data))
            return
        pending = client.buffer
        if pending:  # the rest of a frame that arrived in pieces
            pending += data
            buffer: bytearray | memoryview = pending
        else:
            buffer = data  # the common case: whole frames, read in place
        size = len(buffer)
        pos = 0
        while size - pos >= 2:
            length = buffer[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
            end = pos + head + length
            if end > size:
                break
            self._frame(client, buffer[pos], bytes(buffer[pos + head : end]), now, arrived)
            pos = end
        if pending:
            del pending[:pos]
        elif pos < size:
            pending += buffer[pos:]

    def _frame(self, client: Client, first: int, payload: bytes, now: float, arrived: float) -> None:
        opcode, fin = first & 0x0F, first & 0x80
        if opcode in (0x0, 0x1, 0x2):  # continuation, text, binary
            if opcode:
                client.opcode = opcode
            if not fin:
                client.fragments.append(payload)
                return
            if client.fragments:
                payload = b"".join([*client.fragments, payload])
                client.fragments.clear()
            self.on_message(client, payload, client.opcode == 0x2, now, arrived)
        elif opcode == 0x9:  # ping: answer as websockets would
            client.ws.send_pong(payload)
            client.flush()
        elif opcode == 0x8:  # close
            raise OSError("close frame from the server")

    def _handshake(self, client: Client, data: bytes) -> None:
        from websockets.protocol import State

        client.ws.receive_data(data)
        client.ws.events_received()  # the handshake response; the servers send nothing before the client speaks
        if client.ws.state is not State.OPEN:
            raise OSError("handshake refused")
        client.open = True
        client.state = "joining"
        self.on_open(client)

    def drop(self, client: Client) -> None:
        fd = client.sock.fileno()
        if self.clients.pop(fd, None) is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self.epoll.unregister(fd)
        client.sock.close()
        if client.state == "live":
            self.live -= 1
            self.lost += 1
        client.state = "failed"

    # -- commands every benchmark has ---------------------------------------------------------------------------

    def open_clients(self, urls: list[str], count: int, timeout: float, tag: str = "") -> dict[str, Any]:
        """Open clients until ``count`` more are live (round robin over ``urls``), within ``timeout``."""
        started = time.monotonic()
        deadline = started + timeout
        target = self.live + count
        failures = 0
        index = 0
        while self.live < target and time.monotonic() < deadline:
            pending = [c for c in self.clients.values() if c.state != "live"]
            for _ in range(min(CONNECT_CONCURRENCY - len(pending), target - self.live - len(pending))):
                self.add_client(urls[index % len(urls)], tag)
                index += 1
            before = len(self.clients)
            self.pump(0.05)
            failures += before - len(self.clients)
        failures += self.drop_unfinished()
        return {"live": self.live, "failures": failures, "seconds": time.monotonic() - started}

    def add_client(self, url: str, tag: str = "") -> Client:
        """Start connecting one more client; `pump` takes it from there."""
        client = Client(url, tag)
        self.clients[client.sock.fileno()] = client
        self.epoll.register(client.sock.fileno(), select.EPOLLOUT | select.EPOLLIN)
        return client

    def drop_unfinished(self) -> int:
        """Drop the clients that have not become live (their time is up); how many there were."""
        unfinished = [c for c in self.clients.values() if c.state != "live"]
        for client in unfinished:
            self.drop(client)
        return len(unfinished)

    def close_all(self) -> None:
        for client in list(self.clients.values()):
            self.drop(client)
        self.live = 0

    def serve(self) -> None:
        """Answer the controller's commands, reading sockets in between, until ``exit``."""
        while True:
            self.pump(0.05)
            while self.command_waiting or self.pipe.poll(0):
                self.command_waiting = False
                if not self.pipe.poll(0):
                    break
                command, args = self.pipe.recv()
                if command == "exit":
                    self.close_all()
                    self.pipe.send(None)
                    return
                if command not in self.commands:
                    self.pipe.send(ValueError(f"unknown command {command!r}"))
                    continue
                self.pipe.send(getattr(self, command)(*args))


def _main(factory: Callable[[PipeEnd], EpollClients], pipe: PipeEnd) -> None:
    pin(os.getpid(), CLIENT_CORE)
    raise_fd_limit()
    factory(pipe).serve()


class LoadGenClient:
    """The controller's handle on a load-generator process running ``factory(pipe).serve()``.

    ``factory`` must be importable by name (a class defined at module level), since the process is spawned.
    """

    def __init__(self, factory: Callable[[PipeEnd], EpollClients], name: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.process = ctx.Process(target=_main, args=(factory, child), name=name, daemon=True)
        self.process.start()

    async def call(self, command: str, *args: Any, timeout: float = 60.0) -> Any:
        def ask() -> Any:
            self.pipe.send((command, args))
            if not self.pipe.poll(timeout):
                raise TimeoutError(f"load generator did not answer {command!r} within {timeout}s")
            return self.pipe.recv()

        reply = await asyncio.to_thread(ask)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def stop(self) -> None:
        with contextlib.suppress(OSError, TimeoutError, EOFError):
            self.pipe.send(("exit", ()))
            self.pipe.poll(5)
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
