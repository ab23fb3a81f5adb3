"""The editors of ``bench/notes.py`` that live in a load-generator process (``bench/wsload.py``): the receivers
of the one-note scenario (`Receivers`) and every editor of the many-notes scenario (`ManyRooms`), plus the bits of
the y-websocket wire format both sides of the benchmark use."""

from __future__ import annotations

import re
import time
from array import array
from multiprocessing.connection import Connection as PipeEnd
from typing import Any

import pycrdt

from bench.wsload import CONNECT_CONCURRENCY, Client, EpollClients

MARKER = re.compile(rb"#(\d{6});")  # typed into every update, so a delivery is matched to its send
KEEPALIVE_EVERY = 20.0  # seconds between a silent editor's messages (see `Receivers.keepalive`)


def varuint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def varbytes(data: bytes) -> bytes:
    return varuint(len(data)) + data


class Receivers(EpollClients):
    """The receiving editors of one server, in the load-generator process (``bench/wsload.py``).

    Each sends (Hocuspocus: its auth message, then) sync step 1 with an empty state when it opens, answers the
    server's step 1 with an empty step 2, is live once it has the server's step 2, and records the wall-clock time
    at which each typed marker first reaches it. A client's ``tag`` is the index of its note in ``prefixes``
    (Hocuspocus names the document in every message; the y-websocket servers in the URL, so their prefix is empty).
    """

    commands = ("join", "begin", "collect", "close_all")

    def __init__(self, pipe: PipeEnd) -> None:
        super().__init__(pipe)
        self.prefixes: list[bytes] = [b""]
        self.hocuspocus = False
        self.arrivals: list[tuple[int, float, float]] = []  # (marker, read at, queued by the kernel at)
        self.seen: dict[int, int] = {}  # socket -> markers received in this phase
        self.writer_of: dict[int, int] = {}  # marker -> the socket that typed it, when it is one of these
        self.echoes = 0  # markers a server sent back to the socket that typed them
        self.messages = 0
        self.phase_cpu = 0.0
        self.phase_wall = 0.0

    def on_open(self, client: Client) -> None:
        prefix = self.prefixes[int(client.tag or 0)]
        if self.hocuspocus:
            client.ws.send_binary(prefix + b"\x02\x00" + varbytes(b""))  # auth with token ""
        client.send(prefix + b"\x00\x00" + varbytes(b"\x00"), binary=True)  # sync step 1, empty state

    def keepalive(self, client: Client, now: float) -> None:
        """Ask for the room's awareness every `KEEPALIVE_EVERY` seconds, as a live client says something at least
        that often (Hocuspocus closes a socket silent for 30 s with 4408; y-websocket clients renew their
        awareness every 15 s). A query is answered to the asker alone, so it adds no fan-out."""
        if now - client.last_ping >= KEEPALIVE_EVERY:
            client.last_ping = now
            client.send(self.prefixes[int(client.tag or 0)] + b"\x03", binary=True)

    def on_message(self, client: Client, payload: bytes, binary: bool, now: float, arrived: float) -> None:
        prefix = self.prefixes[int(client.tag or 0)]
        skip = len(prefix)
        if not binary or len(payload) < skip + 2 or payload[skip] != 0:
            return  # awareness, auth answers, text
        kind = payload[skip + 1]
        if kind == 0:  # the server's step 1: answer with our (empty) state
            client.send(prefix + b"\x00\x01" + varbytes(b"\x00\x00"), binary=True)
            return
        if kind == 1:
            self.mark_live(client)
        self.messages += 1
        found = 0
        fd = client.sock.fileno()
        for match in MARKER.finditer(payload):
            marker = int(match.group(1))
            if self.writer_of.get(marker) == fd:
                self.echoes += 1
                continue
            self.arrivals.append((marker, now, arrived))
            found += 1
        if found:
            self.seen[fd] = self.seen.get(fd, 0) + found

    # -- commands -----------------------------------------------------------------------------------------------

    def join(self, url: str, count: int, prefix: bytes, hocuspocus: bool, timeout: float) -> dict[str, Any]:
        self.prefixes, self.hocuspocus = [prefix], hocuspocus
        return self.open_clients([url], count, timeout, tag="0")

    def begin(self) -> None:
        self.arrivals.clear()
        self.seen.clear()
        self.echoes = 0
        self.messages = 0
        self.phase_cpu = time.process_time()
        self.phase_wall = time.monotonic()

    def collect(self, sent: dict[int, float], timeout: float) -> dict[str, Any]:
        """Read (bounded) until every live editor has every marker of ``sent``; the phase's deliveries."""
        deadline = time.monotonic() + timeout
        want = len(sent)
        while time.monotonic() < deadline and (len(self.seen) < self.live or min(self.seen.values(), default=0) < want):
            self.pump(0.02)
        latencies = array("d", (now - sent[seq] for seq, now, _ in self.arrivals if seq in sent))
        first: dict[int, float] = {}
        last: dict[int, float] = {}
        for seq, _, arrived in self.arrivals:
            if seq in sent:
                first[seq] = min(first.get(seq, arrived), arrived)
                last[seq] = max(last.get(seq, arrived), arrived)
        return {
            "latencies": latencies,
            "arrival_latencies": array("d", (arrived - sent[seq] for seq, _, arrived in self.arrivals if seq in sent)),
            # Per update: from its send to the first socket it reached, and from there to the last one.
            "to_first": array("d", (first[seq] - sent[seq] for seq in first)),
            "spread": array("d", (last[seq] - first[seq] for seq in first)),
            "expected": want * self.live,
            "messages": self.messages,
            "client_cpu": (time.process_time() - self.phase_cpu) / max(1e-9, time.monotonic() - self.phase_wall),
            "lost": self.lost,
            "live": self.live,
        }


class ManyRooms(Receivers):
    """Every editor of the many-notes scenario on one server, in the load-generator process: each note's first
    ``writers`` editors type (each with its own pycrdt document) and every editor receives the others' updates.

    Updates are made before a round starts and sent on a schedule (each writer at ``rate`` per second, writers
    spread evenly over the period), so what a round times is the server, not pycrdt.
    """

    commands = ("join_rooms", "type_round", "close_all")

    def __init__(self, pipe: PipeEnd) -> None:
        super().__init__(pipe)
        self.rooms: list[list[Client]] = []
        self.docs: dict[int, pycrdt.Doc] = {}  # type: ignore[type-arg]  # a writer's socket -> its document
        self.next_marker = 0

    def join_rooms(
        self, urls: list[str], prefixes: list[bytes], per_note: int, hocuspocus: bool, timeout: float
    ) -> dict[str, Any]:
        """``per_note`` editors on each note (``urls[i]``), until all are synced or ``timeout``; a socket the server
        closes before it synced is replaced on the same note."""
        self.prefixes, self.hocuspocus = prefixes, hocuspocus
        started = time.monotonic()
        deadline = started + timeout
        failures = 0
        while time.monotonic() < deadline:
            members: list[int] = [0] * len(urls)
            for client in self.clients.values():
                members[int(client.tag)] += 1
            missing = [(i, per_note - n) for i, n in enumerate(members) if n < per_note]
            pending = sum(1 for c in self.clients.values() if c.state != "live")
            if not missing and not pending:
                break
            room = CONNECT_CONCURRENCY - pending
            for index, count in missing:
                for _ in range(min(count, room)):
                    self.add_client(urls[index], str(index))
                room -= min(count, room)
                if room <= 0:
                    break
            before = len(self.clients)
            self.pump(0.02)
            failures += before - len(self.clients)
        failures += self.drop_unfinished()
        self.rooms = [[] for _ in urls]
        for client in self.clients.values():
            self.rooms[int(client.tag)].append(client)
        return {"live": self.live, "failures": failures, "seconds": time.monotonic() - started}

    def type_round(self, updates: int, rate: float | None, writers: int, timeout: float) -> dict[str, Any]:
        """Each note's first ``writers`` editors type ``updates`` updates each, at ``rate`` per second (``None``:
        back to back, the writers taking turns); read until every other editor of the note has each (bounded by
        ``timeout`` after the last send)."""
        plan: list[tuple[float, int, int, Client, bytes]] = []  # (due, order, marker, writer, message)
        typing = [c for room in self.rooms for c in room[:writers] if c.state == "live"]
        start = time.monotonic() + 0.5
        self.writer_of.clear()
        for index, client in enumerate(typing):
            doc = self.docs.setdefault(client.sock.fileno(), pycrdt.Doc())
            text = doc.get("content", type=pycrdt.Text)
            prefix = self.prefixes[int(client.tag)]
            for seq in range(updates):
                made: list[bytes] = []
                subscription = doc.observe(lambda e, into=made: into.append(e.update))
                marker = self.next_marker % 1_000_000
                self.next_marker += 1
                text.insert(len(text), f"#{marker:06d};")
                doc.unobserve(subscription)
                self.writer_of[marker] = client.sock.fileno()
                due = start + (index / len(typing) + seq) / rate if rate else start
                order = seq * len(typing) + index
                plan.append((due, order, marker, client, prefix + b"\x00\x02" + varbytes(made[0])))
        plan.sort(key=lambda item: item[:2])
        self.begin()
        sent: dict[int, float] = {}
        receivers: dict[int, int] = {}  # marker -> editors of its note other than its writer, at send time
        at = 0
        while at < len(plan):
            now = time.monotonic()
            while at < len(plan) and plan[at][0] <= now:
                _, _, marker, client, message = plan[at]
                at += 1
                if client.state != "live":
                    continue
                sent[marker] = time.time()
                receivers[marker] = sum(1 for c in self.rooms[int(client.tag)] if c.state == "live") - 1
                try:
                    client.send(message, binary=True)
                except OSError:
                    self.drop(client)
            if at < len(plan):
                self.pump(min(0.05, max(0.0, plan[at][0] - time.monotonic())))
        expected = sum(receivers.values())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.arrivals) < expected:
            self.pump(0.02)
        delivered = [(seq, now, arrived) for seq, now, arrived in self.arrivals if seq in sent]
        return {
            "latencies": array("d", (now - sent[seq] for seq, now, _ in delivered)),
            "arrival_latencies": array("d", (arrived - sent[seq] for seq, _, arrived in delivered)),
            "sent": len(sent),
            "expected": expected,
            "echoes": self.echoes,
            "messages": self.messages,
            "client_cpu": (time.process_time() - self.phase_cpu) / max(1e-9, time.monotonic() - self.phase_wall),
            "lost": self.lost,
            "live": self.live,
        }
