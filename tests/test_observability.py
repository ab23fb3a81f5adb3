"""Metrics, readiness and logs of a real node."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import websockets

from channels.client import TandemClient
from tests.nodes import Node, RedisServer, cluster
from tests.workspace import Workspace


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    total = 0.0
    for line in metrics.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        match = re.match(r"^([a-z_]+)(\{.*\})? ([0-9.e+-]+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


async def test_metrics_move_under_load(database: tuple[str, Workspace], tmp_path: Path) -> None:
    url, ws = database
    with cluster(tmp_path, url, None, count=1) as (node,):
        before = httpx.get(node.http + "/metrics", timeout=5).text
        headers = {"authorization": f"Bearer {ws.token('staff')}"}
        client = await TandemClient.connect(node.ws, token=ws.token("customer"), ping_interval=None)
        try:
            await client.subscribe(f"project:{ws.ids['px']}:shared")
            async with httpx.AsyncClient(base_url=node.http, headers=headers, timeout=10) as http:
                for i in range(5):
                    response = await http.patch(f"/api/tasks/{ws.ids['px_shared_task']}", json={"title": f"m{i}"})
                    assert response.status_code == 200
                    assert re.fullmatch(r"[0-9a-f]{16}", response.headers["x-request-id"])
            for _ in range(5):
                await client.next_event(5)
            during = httpx.get(node.http + "/metrics", timeout=5).text
        finally:
            await client.close()
    route = "/api/tasks/{task_id:int}"
    assert sample(during, "tandem_http_request_seconds_count", method="PATCH", route=route, status="200") == 5
    assert sample(during, "tandem_events_published_total") - sample(before, "tandem_events_published_total") >= 5
    assert sample(during, "tandem_events_delivered_total") - sample(before, "tandem_events_delivered_total") >= 5
    assert sample(during, "tandem_outbox_published_total") >= 5
    assert sample(during, "tandem_ws_connections") == 1
    assert sample(during, "tandem_ws_subscriptions") == 1
    assert sample(during, "tandem_db_query_seconds_count") > sample(before, "tandem_db_query_seconds_count")
    assert sample(during, "tandem_fanout_seconds_count") >= 5


def test_readiness_fails_while_redis_is_down(database: tuple[str, Workspace], tmp_path: Path) -> None:
    redis = RedisServer(tmp_path).start()
    try:
        with cluster(tmp_path, database[0], redis.url, count=1) as (node,):
            ready = httpx.get(node.http + "/readyz", timeout=10)
            assert ready.status_code == 200 and ready.json() == {"status": "ready"}
            redis.stop()
            down = httpx.get(node.http + "/readyz", timeout=10)
            assert down.status_code == 503 and "redis" in down.json()["problems"]
            assert httpx.get(node.http + "/healthz", timeout=5).status_code == 200  # alive, just not ready
            redis.start()
            assert httpx.get(node.http + "/readyz", timeout=10).status_code == 200
    finally:
        redis.stop()


def test_readiness_fails_when_migrations_are_behind(tmp_path: Path) -> None:
    from server import migrate

    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0002")
    with cluster(tmp_path, url, None, count=1) as (node,):
        answer = httpx.get(node.http + "/readyz", timeout=10)
        assert answer.status_code == 503 and "migrations" in answer.json()["problems"]


async def test_logs_are_json_and_never_carry_tokens(database: tuple[str, Workspace], tmp_path: Path) -> None:
    url, ws = database
    node = Node(
        env={
            "TANDEM_DATABASE_URL": url,
            "TANDEM_DATA_DIR": str(tmp_path),
            "TANDEM_SECRET_KEY": "l" * 40,
            "TANDEM_AUTO_MIGRATE": "false",
            "TANDEM_LOG_FORMAT": "json",
        },
        log_path=tmp_path / "json.log",
        log_level="info",
    ).start()
    try:
        token = ws.token("customer")
        made = httpx.post(node.http + "/api/ws-ticket", headers={"authorization": f"Bearer {token}"}, timeout=5)
        ticket = made.json()["ticket"]
        async with websockets.connect(f"{node.ws}?ticket={ticket}") as socket:
            await socket.send(json.dumps({"type": "ping", "id": 1}))
            await socket.recv()
        httpx.get(node.http + "/api/me", headers={"authorization": f"Bearer {token}"}, timeout=5)
        httpx.post(
            node.http + "/api/auth/login", json={"email": "customer@example.test", "password": "hunter2 x"}, timeout=5
        )
    finally:
        node.stop()
    log = node.log()
    assert token not in log and ticket not in log and "hunter2" not in log
    assert "ticket=[redacted]" in log  # the WebSocket URL was logged, without its ticket
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert entries and all({"ts", "level", "logger", "message"} <= set(e) for e in entries)


def test_metrics_can_require_a_token(database: tuple[str, Workspace], tmp_path: Path) -> None:
    node = Node(
        env={
            "TANDEM_DATABASE_URL": database[0],
            "TANDEM_DATA_DIR": str(tmp_path),
            "TANDEM_SECRET_KEY": "m" * 40,
            "TANDEM_AUTO_MIGRATE": "false",
            "TANDEM_METRICS_TOKEN": "scrape-me-please",
        },
        log_path=tmp_path / "m.log",
    ).start()
    try:
        assert httpx.get(node.http + "/metrics", timeout=5).status_code == 401
        allowed = httpx.get(node.http + "/metrics", headers={"authorization": "Bearer scrape-me-please"}, timeout=5)
        assert allowed.status_code == 200 and "tandem_ws_connections" in allowed.text
    finally:
        node.kill()
