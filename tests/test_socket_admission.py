"""`server.live.admission.SocketAdmission`, on real uvicorn nodes with real `websockets` clients: no long-lived token in
a WebSocket URL, single-use tickets that expire, and the caps on open sockets per user and per IP (4430)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection

from channels.client import TandemClient
from channels.protocol import CloseCode
from server.live.admission import MemoryTicketStore, RedisTicketStore, SocketCaps, Tickets, TicketStore
from server.settings import ConfigurationError, load_settings
from tests.conftest import REDIS
from tests.crdt.yclient import YClient
from tests.nodes import Node, bearer, cluster
from tests.workspace import PASSWORD, ROLES, Workspace


async def close_code(socket: ClientConnection, timeout: float = 5.0) -> int | None:
    """The code the server closed ``socket`` with (None: it stayed open and answered a ping)."""
    try:
        async with asyncio.timeout(timeout):
            await socket.send(json.dumps({"type": "ping", "id": 1}))
            await socket.recv()
            return None
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


async def ticket_from(node: Node, token: str) -> str:
    async with httpx.AsyncClient(base_url=node.http, timeout=10) as http:
        answer = await http.post("/api/ws-ticket", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["expires_in"] == 30
    return str(answer.json()["ticket"])


@pytest.fixture
async def sockets() -> AsyncIterator[list[ClientConnection]]:
    opened: list[ClientConnection] = []
    yield opened
    for socket in opened:
        await socket.close()


# -- credentials ----------------------------------------------------------------------------------------------


async def test_a_token_in_the_url_is_refused_and_the_header_is_let_in(
    two_nodes: list[Node], database: tuple[str, Workspace]
) -> None:
    ws = database[1]
    token = ws.token("staff")
    async with websockets.connect(f"{two_nodes[0].ws}?token={token}") as in_url:
        assert await close_code(in_url) == CloseCode.UNAUTHORIZED
        assert in_url.close_reason is not None and "URL" in in_url.close_reason
    async with websockets.connect(two_nodes[0].ws, additional_headers=bearer(token)) as in_header:
        assert await close_code(in_header) is None


async def test_a_ticket_opens_one_socket_on_any_node_once(
    two_nodes: list[Node], database: tuple[str, Workspace]
) -> None:
    ws = database[1]
    a, b = two_nodes
    ticket = await ticket_from(a, ws.token("customer"))
    # Issued by one node, redeemed on the other (Redis), by a client with no other credential.
    client = await TandemClient.connect(b.ws, ticket=ticket, ping_interval=None)
    try:
        reply = await client.subscribe(f"project:{ws.ids['px']}:shared")
        assert reply["type"] == "subscribed"
    finally:
        await client.close()
    for node in two_nodes:  # spent, on every node
        async with websockets.connect(f"{node.ws}?ticket={ticket}") as again:
            assert await close_code(again) == CloseCode.UNAUTHORIZED
    note = ws.ids["px_shared_note"]
    yjs = await YClient.connect(f"ws://127.0.0.1:{a.port}/yjs/{note}?ticket={await ticket_from(b, ws.token('staff'))}")
    try:
        await asyncio.wait_for(yjs.synced.wait(), 10)
    finally:
        await yjs.close()


async def test_a_ticket_dies_with_its_session(two_nodes: list[Node], database: tuple[str, Workspace]) -> None:
    ws = database[1]
    node = two_nodes[0]
    async with httpx.AsyncClient(base_url=node.http, timeout=10) as http:
        login = await http.post("/api/auth/login", json={"email": ws.emails["customer"], "password": PASSWORD})
        token = login.json()["token"]
        ticket = await ticket_from(node, token)
        out = await http.post("/api/auth/logout", headers={"authorization": f"Bearer {token}"})
        assert out.status_code == 204
    async with websockets.connect(f"{node.ws}?ticket={ticket}") as late:
        assert await close_code(late) == CloseCode.UNAUTHORIZED


async def test_an_anonymous_request_gets_no_ticket(two_nodes: list[Node]) -> None:
    async with httpx.AsyncClient(base_url=two_nodes[0].http, timeout=10) as http:
        answer = await http.post("/api/ws-ticket")
    assert answer.status_code == 401


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def ticket_store(request: pytest.FixtureRequest) -> AsyncIterator[TicketStore]:
    if request.param == "memory":
        yield MemoryTicketStore()
        return
    redis = Redis.from_url(REDIS)
    prefix = f"test:tickets:{id(request)}:"
    yield RedisTicketStore(redis, prefix)
    keys = [key async for key in redis.scan_iter(match=prefix + "*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def test_a_ticket_is_single_use_and_expires_by_the_clock(ticket_store: TicketStore) -> None:
    clock = Clock()
    tickets = Tickets(ticket_store, ttl_seconds=30, clock=clock)
    first = await tickets.issue(7, "a" * 64)
    assert await tickets.redeem(first) == (7, "a" * 64)
    assert await tickets.redeem(first) is None  # single use
    late = await tickets.issue(7, "a" * 64)
    clock.now += 29.9
    in_time = await tickets.issue(8, "b" * 64)
    clock.now += 0.2  # `late` is 30.1 s old, `in_time` 0.2 s
    assert await tickets.redeem(late) is None
    assert await tickets.redeem(in_time) == (8, "b" * 64)
    assert await tickets.redeem("wst_made_up") is None


async def test_many_redeem_one_ticket_at_once_and_one_wins(ticket_store: TicketStore) -> None:
    tickets = Tickets(ticket_store, ttl_seconds=30)
    ticket = await tickets.issue(1, "c" * 64)
    async with asyncio.timeout(10):
        results = await asyncio.gather(*(tickets.redeem(ticket) for _ in range(20)))
    assert [r for r in results if r is not None] == [(1, "c" * 64)]


async def test_only_the_tickets_hash_is_stored() -> None:
    store = MemoryTicketStore()
    ticket = await Tickets(store, ttl_seconds=30).issue(1, "d" * 64)
    assert ticket not in repr(store._entries)


# -- caps on open sockets -------------------------------------------------------------------------------------


def test_caps_count_per_key_and_give_back() -> None:
    caps = SocketCaps(per_user=2, per_ip=3)
    assert caps.take_user(1) and caps.take_user(1) and not caps.take_user(1)
    assert caps.take_user(2)  # another user has their own count
    caps.release_user(1)
    assert caps.take_user(1)
    assert caps.take_ip("a") and caps.take_ip("a") and caps.take_ip("a") and not caps.take_ip("a")
    for _ in range(3):
        caps.release_ip("a")
    assert caps.ips == {} and SocketCaps(0, 0).take_user(1)  # 0: no cap


@pytest.fixture
def capped_node(database: tuple[str, Workspace], tmp_path: Path) -> Iterator[Node]:
    caps = {"TANDEM_WS_MAX_SOCKETS_PER_USER": "3", "TANDEM_WS_MAX_SOCKETS_PER_IP": "5"}
    with cluster(tmp_path, database[0], None, count=1, extra_env=caps) as nodes:
        yield nodes[0]


async def test_a_users_sockets_are_capped_across_ws_and_yjs_under_a_flood(
    capped_node: Node, database: tuple[str, Workspace], sockets: list[ClientConnection]
) -> None:
    ws = database[1]
    node = capped_node
    staff = bearer(ws.token("staff"))
    note = f"ws://127.0.0.1:{node.port}/yjs/{ws.ids['px_shared_note']}"
    sockets.append(await websockets.connect(note, additional_headers=staff))
    # A flood of 20 more at once: exactly two get in (3 in all, /ws and /yjs counted together), the rest 4430.
    async with asyncio.timeout(30):
        flood = await asyncio.gather(*(websockets.connect(node.ws, additional_headers=staff) for _ in range(20)))
        sockets.extend(flood)
        codes = await asyncio.gather(*(close_code(s) for s in flood))
    assert sorted(codes, key=str) == sorted([None] * 2 + [CloseCode.TOO_MANY_SOCKETS] * 18, key=str)
    refused = next(s for s, code in zip(flood, codes, strict=True) if code is not None)
    assert refused.close_reason == "too many open sockets for this user"
    # Another user on the same address still gets in (the address holds 3 of its 5).
    owner = await websockets.connect(node.ws, additional_headers=bearer(ws.token("owner")))
    sockets.append(owner)
    assert await close_code(owner) is None
    # A closed socket gives its place back: the user gets one more.
    await sockets[0].close()
    async with asyncio.timeout(10):
        while True:
            retry = await websockets.connect(node.ws, additional_headers=staff)
            sockets.append(retry)
            if await close_code(retry) is None:
                break
            await asyncio.sleep(0.05)  # the server gives the place back once it has seen the close: try again


async def test_an_addresss_sockets_are_capped_signed_in_or_not(
    capped_node: Node, database: tuple[str, Workspace], sockets: list[ClientConnection]
) -> None:
    ws = database[1]
    node = capped_node
    for role in ("staff", "owner", "customer", "viewer", "other_customer"):
        socket = await websockets.connect(node.ws, additional_headers=bearer(ws.token(role)))
        sockets.append(socket)
        assert await close_code(socket) is None
    # The address holds 5: a sixth is refused before any credential is looked at.
    async with websockets.connect(node.ws) as anonymous:
        assert await close_code(anonymous) == CloseCode.TOO_MANY_SOCKETS
        assert anonymous.close_reason == "too many open sockets for this ip"


async def test_sockets_opening_together_share_session_reads_and_each_is_let_in_as_its_own_user(
    database: tuple[str, Workspace], tmp_path: Path
) -> None:
    """A burst of sockets of six users at once (a reconnect storm, small): their sessions are read together, in
    fewer reads than sockets (`server.live.admission_gate.JoinedReads`), none is turned away, and each socket is
    let in as its own user: it may subscribe to its own ``user:`` channel and is refused the next user's."""
    url, ws = database
    caps = {"TANDEM_WS_MAX_SOCKETS_PER_USER": "0", "TANDEM_WS_MAX_SOCKETS_PER_IP": "0"}
    roles = list(ROLES) * 25
    with cluster(tmp_path, url, None, count=1, extra_env=caps) as (node,):

        async def own_and_next(index: int, role: str) -> tuple[str, str]:
            other = roles[(index + 1) % len(ROLES)]
            async with websockets.connect(node.ws, additional_headers=bearer(ws.token(role))) as socket:
                for frame_id, user in ((1, role), (2, other)):
                    channel = f"user:{ws.users[user]}"
                    await socket.send(json.dumps({"type": "subscribe", "id": frame_id, "channel": channel}))
                replies: dict[int, str] = {}
                while len(replies) < 2:
                    for line in str(await socket.recv()).split("\n"):  # frames queued together come joined
                        reply = json.loads(line)
                        replies[reply["id"]] = reply["type"] if reply["type"] == "subscribed" else reply["code"]
                return replies[1], replies[2]

        async with asyncio.timeout(60):
            answers = await asyncio.gather(*(own_and_next(i, role) for i, role in enumerate(roles)))
        metrics = httpx.get(node.http + "/metrics", timeout=10).text
    assert answers == [("subscribed", "forbidden")] * len(roles)
    sessions_read = metric(metrics, "tandem_ws_admission_read_keys_total")
    assert sessions_read == len(roles)
    assert metric(metrics, "tandem_ws_admission_reads_total") < sessions_read  # joined
    assert metric(metrics, "tandem_ws_admissions_refused_total") == 0


def metric(text: str, name: str) -> float:
    values = [float(line.split()[1]) for line in text.splitlines() if line.startswith(name + " ")]
    assert len(values) == 1, f"{name} not exported"
    return values[0]


def test_tokens_in_urls_can_be_let_in_for_benchmarks_only(tmp_path: Path) -> None:
    env = {"TANDEM_SECRET_KEY": "k" * 40, "TANDEM_DATA_DIR": str(tmp_path), "TANDEM_WS_URL_TOKENS": "true"}
    assert load_settings(env).ws_url_tokens and not load_settings({**env, "TANDEM_WS_URL_TOKENS": ""}).ws_url_tokens
    with pytest.raises(ConfigurationError, match="benchmarks"):
        load_settings({**env, "TANDEM_ENV": "production"})
