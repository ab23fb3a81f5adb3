"""Outgoing webhooks against a real HTTP receiver: signed deliveries of committed changes, retries with a log,
automatic disabling, the audience rule (a customer's webhook never carries an internal item), SSRF checks, two
workers on one database, and the separate ``tandem worker`` process."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event
from sqlmodel import select
from starlette.testclient import TestClient

from server.app import create_app
from server.context import Context
from server.db import Database, utcnow
from server.models import DeliveryStatus, Visibility, Webhook, WebhookDelivery, WebhookEvent
from server.settings import Settings, WebhookSettings
from server.webhooks import WebhookEvents, WebhookWorker
from server.webhooks.delivery import Claimed, Outcome, cancel_pending
from server.webhooks.targets import TargetRefused, check_url, resolve
from tests.conftest import SECRET, bearer, make_settings
from tests.workspace import Workspace

FAST = WebhookSettings(
    timeout_seconds=5.0,
    max_attempts=3,
    retry_base_seconds=0.05,
    retry_max_seconds=0.2,
    disable_after=2,
    poll_seconds=0.05,
)
DEADLINE = 15.0


# -- a real HTTP receiver -------------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP server on 127.0.0.1, port 0, in a thread: records every request and answers scripted statuses."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []  # answered in order, then ``default_status``
        self.default_status = 200
        self.delay = 0.0  # seconds before each answer
        # When set to an unset event, requests that arrive from then on wait for it before answering (an attempt
        # held in flight for as long as a test needs, whatever the machine's load).
        self.hold: threading.Event | None = None
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._cond:
                    receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
                    delay, hold = receiver.delay, receiver.hold  # as they were when this request arrived
                    receiver._cond.notify_all()
                if hold is not None:
                    hold.wait(DEADLINE)
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("content-length", "7")
                    self.end_headers()
                    self.wfile.write(b"thanks!" if status < 300 else b"broken!")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (the timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default backlog (5) refuses connections when many attempts overlap

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def at(self, path: str) -> list[Received]:
        with self._cond:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = DEADLINE) -> list[Received]:
        with self._cond:
            assert self._cond.wait_for(lambda: predicate(self.requests), timeout), self.requests
            return list(self.requests)

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def verify(secret: str, request: Received, tolerance: int = 300) -> bool:
    """The receiver's check, as docs/API.md shows it (written independently of the server's code)."""
    timestamp = request.headers["x-tandem-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("sha256=" + expected, request.headers["x-tandem-signature"])


@pytest.fixture
def fast_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, webhooks=FAST)


@pytest.fixture
def app(fast_settings: Settings, workspace: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(fast_settings), base_url="http://testserver") as test_client:
        yield test_client


def add_webhook(client: TestClient, ws: Workspace, url: str, role: str = "owner", **fields: Any) -> dict[str, Any]:
    body = {"url": url, "events": [e.value for e in WebhookEvent], **fields}
    response = client.post(f"/api/projects/{ws.ids['px']}/webhooks", json=body, headers=bearer(ws, role))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def move(client: TestClient, ws: Workspace, task: str, status: str, role: str = "staff") -> None:
    response = client.patch(f"/api/tasks/{ws.ids[task]}", json={"status_id": ws.ids[status]}, headers=bearer(ws, role))
    assert response.status_code == 200, response.text


def deliveries(client: TestClient, ws: Workspace, webhook_id: int, role: str = "owner") -> list[dict[str, Any]]:
    response = client.get(f"/api/webhooks/{webhook_id}/deliveries", headers=bearer(ws, role))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def poll(check: Callable[[], Any], timeout: float = DEADLINE) -> Any:
    """Call ``check`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


# -- delivery ---------------------------------------------------------------------------------------------------


def test_task_status_change_is_delivered_signed(app: TestClient, workspace: Workspace, receiver: Receiver) -> None:
    hook = add_webhook(app, workspace, receiver.url(), events=["task.status_changed"])
    secret = hook["secret"]
    assert secret.startswith("whsec_") and hook["secret_hint"] == secret[-4:]
    # Shown once: never again.
    again = app.get(f"/api/webhooks/{hook['id']}", headers=bearer(workspace, "owner"))
    assert again.json()["secret"] is None and secret not in again.text

    move(app, workspace, "px_shared_task", "px_active")
    [request] = receiver.wait_for(lambda rs: len(rs) == 1)
    assert verify(secret, request)
    assert not verify("whsec_another-secret-entirely", request)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-tandem-event"] == "task.status_changed"
    event = request.json()
    assert event["type"] == "task.status_changed" and event["project_id"] == workspace.ids["px"]
    assert event["actor"]["id"] == workspace.users["staff"]
    assert event["data"]["task"]["id"] == workspace.ids["px_shared_task"]
    assert event["data"]["from_status"]["id"] == workspace.ids["px_todo"]
    assert event["data"]["to_status"] == {"id": workspace.ids["px_active"], "name": "In progress", "category": "active"}

    [logged] = poll(lambda: [d for d in deliveries(app, workspace, hook["id"]) if d["status"] == "delivered"])
    assert str(logged["id"]) == request.headers["x-tandem-delivery"]
    assert logged["attempts"] == 1 and logged["response_status"] == 200 and logged["last_error"] is None
    assert logged["delivered_at"] is not None and logged["next_attempt_at"] is None
    assert logged["payload"] == event

    # A change that moves no task queues nothing: a delivery is queued in the change's own transaction, so the
    # log says it at once (nothing is sent that was not queued).
    title = app.patch(
        f"/api/tasks/{workspace.ids['px_shared_task']}", json={"title": "Renamed"}, headers=bearer(workspace, "staff")
    )
    assert title.status_code == 200
    assert len(deliveries(app, workspace, hook["id"])) == 1


def test_a_failed_attempt_is_retried_and_logged(app: TestClient, workspace: Workspace, receiver: Receiver) -> None:
    receiver.statuses = [500, 200]
    hook = add_webhook(app, workspace, receiver.url(), events=["comment.created"])
    comment = app.post(
        f"/api/tasks/{workspace.ids['px_shared_task']}/comments",
        json={"body": "Ready for review", "visibility": "shared"},
        headers=bearer(workspace, "customer"),
    )
    assert comment.status_code == 201
    first, second = receiver.wait_for(lambda rs: len(rs) == 2)
    assert first.headers["x-tandem-delivery"] == second.headers["x-tandem-delivery"]
    assert (first.headers["x-tandem-attempt"], second.headers["x-tandem-attempt"]) == ("1", "2")
    assert first.body == second.body and verify(hook["secret"], second)
    assert second.json()["data"]["comment"]["id"] == comment.json()["id"]

    [logged] = poll(lambda: [d for d in deliveries(app, workspace, hook["id"]) if d["status"] == "delivered"])
    assert logged["attempts"] == 2 and logged["response_status"] == 200
    assert logged["last_attempt_at"] >= logged["created_at"]


def test_what_a_private_address_answers_stays_out_of_a_shared_webhooks_log(
    app: TestClient, workspace: Workspace, receiver: Receiver
) -> None:
    """Outside production a webhook may point at a private address (the receiver is on 127.0.0.1): a customer's
    shared webhook must not become a way to read what services behind Tandem answer."""
    receiver.default_status = 500
    shared = add_webhook(app, workspace, receiver.url("/customer"), role="customer", events=["comment.created"])
    internal = add_webhook(app, workspace, receiver.url("/staff"), events=["comment.created"])
    assert shared["audience"] == "shared" and internal["audience"] == "internal"
    comment = app.post(
        f"/api/tasks/{workspace.ids['px_shared_task']}/comments",
        json={"body": "Ready for review", "visibility": "shared"},
        headers=bearer(workspace, "customer"),
    )
    assert comment.status_code == 201
    for role, hook in (("customer", shared), ("owner", internal)):
        poll(lambda hook=hook, role=role: [d for d in deliveries(app, workspace, hook["id"], role) if d["attempts"]])
    [customer_log] = [d for d in deliveries(app, workspace, shared["id"], "customer") if d["last_error"]] or [None]
    assert customer_log is not None and customer_log["response_status"] == 500
    assert "broken!" not in str(deliveries(app, workspace, shared["id"], "customer"))
    assert "not shown" in customer_log["last_error"]
    # Staff's internal webhook keeps the answer, for debugging their own services.
    poll(lambda: any("broken!" in (d["last_error"] or "") for d in deliveries(app, workspace, internal["id"])))


def test_repeated_failures_disable_the_webhook(app: TestClient, workspace: Workspace, receiver: Receiver) -> None:
    receiver.default_status = 500
    hook = add_webhook(app, workspace, receiver.url(), events=["task.status_changed"])
    owner = bearer(workspace, "owner")
    move(app, workspace, "px_shared_task", "px_active")
    move(app, workspace, "px_internal_task", "px_active")
    # FAST: 3 attempts per delivery, disabled after 2 deliveries in a row failed.
    disabled = poll(
        lambda: (h := app.get(f"/api/webhooks/{hook['id']}", headers=owner).json())["enabled"] is False and h
    )
    assert "2 failed deliveries in a row" in disabled["disabled_reason"]
    assert "HTTP 500" in disabled["disabled_reason"]
    logged = deliveries(app, workspace, hook["id"])
    assert [d["status"] for d in logged] == ["failed", "failed"]
    assert all(d["attempts"] == 3 and d["response_status"] == 500 for d in logged)
    assert all(d["last_error"] == "HTTP 500: broken!" for d in logged)
    assert len(receiver.requests) == 6

    # Disabled: the next change is not even queued (queued in the change's own transaction, so known at once).
    move(app, workspace, "px_shared_task", "px_done")
    assert len(deliveries(app, workspace, hook["id"])) == 2

    # Turned on again: the reason and the count are cleared, and deliveries flow.
    receiver.default_status = 200
    on = app.patch(f"/api/webhooks/{hook['id']}", json={"enabled": True}, headers=owner).json()
    assert on["enabled"] and on["disabled_reason"] is None and on["consecutive_failures"] == 0
    move(app, workspace, "px_shared_task", "px_todo")
    receiver.wait_for(lambda rs: len(rs) == 7)


def test_shared_webhook_never_carries_internal_items(app: TestClient, workspace: Workspace, receiver: Receiver) -> None:
    ids = workspace.ids
    internal = add_webhook(app, workspace, receiver.url("/internal"), audience="internal")
    # The customer's own integration: customers may only make shared ones, and that is the default for them.
    shared = add_webhook(app, workspace, receiver.url("/shared"), role="customer")
    assert shared["audience"] == "shared"
    staff = bearer(workspace, "staff")

    # Internal items: a task moved, an internal comment on a shared task, a shared comment on an internal task,
    # an internal milestone completed.
    move(app, workspace, "px_internal_task", "px_done")
    for task, visibility in (("px_shared_task", "internal"), ("px_internal_task", "shared")):
        posted = app.post(
            f"/api/tasks/{ids[task]}/comments", json={"body": "SECRET plans", "visibility": visibility}, headers=staff
        )
        assert posted.status_code == 201
    done = app.patch(f"/api/milestones/{ids['px_internal_milestone']}", json={"completed": True}, headers=staff)
    assert done.status_code == 200
    # Shared items: a task moved, a request filed and triaged, a shared milestone completed.
    move(app, workspace, "px_shared_task", "px_active")
    filed = app.post(
        f"/api/projects/{ids['px']}/requests",
        json={"title": "A new logo", "fields": {"browser": "Firefox"}},
        headers=bearer(workspace, "customer"),
    )
    assert filed.status_code == 201
    triaged = app.post(
        f"/api/requests/{filed.json()['id']}/triage", json={"action": "ask", "message": "Which size?"}, headers=staff
    )
    assert triaged.status_code == 200
    done = app.patch(f"/api/milestones/{ids['px_shared_milestone']}", json={"completed": True}, headers=staff)
    assert done.status_code == 200

    receiver.wait_for(lambda rs: len([r for r in rs if r.path == "/internal"]) == 8)
    receiver.wait_for(lambda rs: len([r for r in rs if r.path == "/shared"]) == 4)
    time.sleep(0.3)  # nothing else arrives late
    to_shared = receiver.at("/shared")
    assert sorted(r.json()["type"] for r in to_shared) == [
        "milestone.completed",
        "request.filed",
        "request.triaged",
        "task.status_changed",
    ]
    for request in to_shared:
        assert "SECRET" not in request.body.decode() and "internal" not in request.body.decode()
        assert verify(shared["secret"], request)
    assert sorted(r.json()["type"] for r in receiver.at("/internal")) == [
        "comment.created",
        "comment.created",
        "milestone.completed",
        "milestone.completed",
        "request.filed",
        "request.triaged",
        "task.status_changed",
        "task.status_changed",
    ]
    # The log the customer reads holds only what was sent to them, and no internal webhook is visible to them.
    customer_log = deliveries(app, workspace, shared["id"], role="customer")
    assert len(customer_log) == 4 and "SECRET" not in json.dumps(customer_log)
    listed = app.get(f"/api/projects/{ids['px']}/webhooks", headers=bearer(workspace, "customer")).json()["items"]
    assert {h["audience"] for h in listed} == {"shared"} and internal["id"] not in {h["id"] for h in listed}


def test_turning_a_webhook_shared_cancels_what_was_queued_for_staff(
    app: TestClient, workspace: Workspace, receiver: Receiver
) -> None:
    """Events queued for an internal webhook must not go out once it is made shared (a customer's URL)."""
    receiver.default_status = 500  # keep the internal event pending
    hook = add_webhook(app, workspace, receiver.url(), audience="internal", events=["task.status_changed"])
    move(app, workspace, "px_internal_task", "px_active")
    receiver.wait_for(lambda rs: len(rs) >= 1)
    owner = bearer(workspace, "owner")
    changed = app.patch(f"/api/webhooks/{hook['id']}", json={"audience": "shared"}, headers=owner)
    assert changed.status_code == 200 and changed.json()["audience"] == "shared"
    receiver.default_status = 200
    [logged] = deliveries(app, workspace, hook["id"])
    assert logged["status"] == "cancelled" and "audience" in logged["last_error"]
    sent = len(receiver.requests)
    time.sleep(0.3)
    assert len(receiver.requests) == sent


# -- who may ------------------------------------------------------------------------------------------------------


def test_who_may_manage_webhooks(app: TestClient, workspace: Workspace, receiver: Receiver) -> None:
    px = workspace.ids["px"]
    body = {"url": receiver.url(), "events": ["comment.created"]}
    for role, status in (
        ("other_customer", 404),
        ("stranger", 404),
        ("viewer", 403),
        ("staff", 403),
        ("anonymous", 401),
    ):
        response = app.post(f"/api/projects/{px}/webhooks", json=body, headers=bearer(workspace, role))
        assert response.status_code == status, (role, response.text)
        assert set(response.json()) >= {"error", "message"}
    customer = bearer(workspace, "customer")
    internal = app.post(f"/api/projects/{px}/webhooks", json={**body, "audience": "internal"}, headers=customer)
    assert internal.status_code == 403
    mine = add_webhook(app, workspace, receiver.url(), role="customer")
    for role, status in (("other_customer", 404), ("viewer", 403), ("anonymous", 401), ("staff", 200)):
        response = app.get(f"/api/webhooks/{mine['id']}/deliveries", headers=bearer(workspace, role))
        assert response.status_code == status, (role, response.text)
    # The customer may change and rotate their webhook's secret, but not make it internal.
    rotated = app.patch(f"/api/webhooks/{mine['id']}", json={"rotate_secret": True}, headers=customer).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != mine["secret"]
    escalate = app.patch(f"/api/webhooks/{mine['id']}", json={"audience": "internal"}, headers=customer)
    assert escalate.status_code == 403
    internal_hook = workspace.ids["px_internal_webhook"]
    assert app.get(f"/api/webhooks/{internal_hook}", headers=customer).status_code == 404
    assert app.delete(f"/api/webhooks/{internal_hook}", headers=customer).status_code == 404


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/hook", "file:///etc/passwd", "javascript:alert(1)", "http://user:pw@example.com/", "http:///x"],
)
def test_only_http_targets_are_accepted(app: TestClient, workspace: Workspace, url: str) -> None:
    response = app.post(
        f"/api/projects/{workspace.ids['px']}/webhooks",
        json={"url": url, "events": ["comment.created"]},
        headers=bearer(workspace, "owner"),
    )
    assert response.status_code == 422 and response.json()["error"] == "invalid"


# -- SSRF ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/",
        "http://localhost/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
async def test_production_refuses_private_targets(tmp_path: Path, url: str) -> None:
    production = make_settings(tmp_path, env="production")
    with pytest.raises(TargetRefused, match="private or local"):
        await resolve(url, production)
    allowed = replace(production, webhooks=WebhookSettings(allow_private_targets=True))
    await resolve(url, allowed)
    await resolve(url, make_settings(tmp_path))  # not production: local receivers are fine


async def test_a_checked_target_is_pinned_to_its_address(tmp_path: Path) -> None:
    production = make_settings(tmp_path, env="production")
    target = await resolve("https://93.184.215.14:8443/hooks?x=1", production)
    assert (target.url, target.host, target.sni_hostname) == (
        "https://93.184.215.14:8443/hooks?x=1",
        "93.184.215.14:8443",
        "93.184.215.14",
    )
    local = await resolve("http://localhost:9/p", make_settings(tmp_path))
    assert local.url in ("http://127.0.0.1:9/p", "http://[::1]:9/p") and local.host == "localhost:9"
    with pytest.raises(TargetRefused):
        check_url("gopher://example.com/")


async def test_production_worker_refuses_a_private_target_at_delivery(
    tmp_path: Path, database: tuple[str, Workspace], receiver: Receiver
) -> None:
    """The check runs at every attempt too: a webhook saved before (or a host that resolves elsewhere now)."""
    url, ws = database
    settings = make_settings(tmp_path, database_url=url, env="production", webhooks=replace(FAST, max_attempts=1))
    db = Database(url)
    try:
        delivery_ids = await seed_deliveries(db, ws, receiver.url(), count=1)
        worker = WebhookWorker(settings, db)
        assert await worker.run_once() == 1
        await worker.stop()
        async with db.session() as session:
            delivery = await session.get(WebhookDelivery, delivery_ids[0])
        assert delivery is not None and delivery.status == DeliveryStatus.FAILED
        assert delivery.last_error is not None and "private or local" in delivery.last_error
        assert receiver.requests == []
    finally:
        await db.close()


async def test_an_attempt_that_gets_no_answer_in_time_fails(
    tmp_path: Path, database: tuple[str, Workspace], receiver: Receiver
) -> None:
    url, ws = database
    receiver.delay = 2.0
    settings = make_settings(tmp_path, database_url=url, webhooks=replace(FAST, timeout_seconds=0.3))
    db = Database(url)
    try:
        [delivery_id] = await seed_deliveries(db, ws, receiver.url(), count=1)
        worker = WebhookWorker(settings, db)
        started = time.monotonic()
        assert await worker.run_once() == 1
        assert time.monotonic() - started < 1.5
        await worker.stop()
        async with db.session() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
        assert delivery is not None and delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
        assert delivery.last_error is not None and ("0.3" in delivery.last_error or "Timeout" in delivery.last_error)
        # A retry is scheduled after the attempt timed out (measured from the claim, not from when this line runs: on
        # a loaded machine the short test backoff may already have passed).
        assert delivery.last_attempt_at is not None
        assert delivery.next_attempt_at - delivery.last_attempt_at >= dt.timedelta(seconds=0.3)
    finally:
        await db.close()


# -- transactions and several workers ----------------------------------------------------------------------------


async def seed_deliveries(db: Database, ws: Workspace, url: str, count: int) -> list[int]:
    async with db.session() as session:
        hook = Webhook(
            project_id=ws.ids["px"], url=url, secret="whsec_" + "t" * 30, events="comment.created", audience="internal"
        )
        session.add(hook)
        await session.flush()
        assert hook.id is not None
        rows = [
            WebhookDelivery(
                webhook_id=hook.id,
                event_id=f"{i:032x}",
                event_type="comment.created",
                payload=json.dumps({"n": i}),
                next_attempt_at=utcnow(),
            )
            for i in range(count)
        ]
        session.add_all(rows)
        await session.commit()
        return [r.id for r in rows if r.id is not None]


async def test_nothing_is_recorded_for_a_rolled_back_change(tmp_path: Path, database: tuple[str, Workspace]) -> None:
    url, ws = database
    db = Database(url)
    kicked: list[bool] = []
    events = WebhookEvents(lambda: kicked.append(True))
    try:
        async with db.session() as session:
            session.add(
                Webhook(
                    project_id=ws.ids["px"],
                    url="http://127.0.0.1:9/",
                    secret="whsec_" + "r" * 30,
                    events="comment.created",
                    audience=Visibility.INTERNAL,
                )
            )
            await session.commit()
        async with db.session() as session:
            ctx = Context(request=None, services=None, session=session, actor_or_none=None)  # type: ignore[arg-type]
            recorded = await events.emit(ctx, ws.ids["px"], WebhookEvent.COMMENT_CREATED, {"x": 1}, shared=False)
            assert recorded == 1 and len(ctx.after_commit) == 1
            await session.rollback()  # the change failed: the request's after_commit hooks never run
        async with db.session() as session:
            assert (await session.exec(select(WebhookDelivery))).all() == []
        assert kicked == []
    finally:
        await db.close()


CANCELLED_BECAUSE = "the webhook's audience changed"


async def claimed_delivery(db: Database, ws: Workspace, worker: WebhookWorker) -> Claimed:
    """One pending delivery of a new internal webhook, claimed by ``worker``: its attempt is in flight."""
    async with db.session() as session:
        hook = Webhook(
            project_id=ws.ids["px"],
            url="http://127.0.0.1:9/",
            secret="whsec_" + "c" * 30,
            events="comment.created",
            audience=Visibility.INTERNAL,
        )
        session.add(hook)
        await session.flush()
        assert hook.id is not None
        session.add(
            WebhookDelivery(webhook_id=hook.id, event_id="evt_inflight", event_type="comment.created", payload="{}")
        )
        await session.commit()
    [claimed] = await worker._claim()
    return claimed


async def the_delivery(db: Database) -> WebhookDelivery:
    async with db.session() as session:
        [delivery] = (await session.exec(select(WebhookDelivery))).all()
    return delivery


async def test_an_attempt_in_flight_when_its_delivery_is_cancelled_leaves_the_cancellation_as_it_is(
    tmp_path: Path, database: tuple[str, Workspace]
) -> None:
    """The webhook is made shared (or disabled, or deleted) while an attempt is out: what the attempt brings back is
    not recorded over the cancellation, whose reason stays in the log."""
    url, ws = database
    db = Database(url)
    worker = WebhookWorker(make_settings(tmp_path), db)
    try:
        claimed = await claimed_delivery(db, ws, worker)
        async with db.session() as session:
            await cancel_pending(session, claimed.webhook_id, CANCELLED_BECAUSE)
            await session.commit()
        await worker._record(claimed, Outcome(False, status=500, error="HTTP 500: broken!"))
        delivery = await the_delivery(db)
        assert delivery.status == DeliveryStatus.CANCELLED
        assert delivery.last_error == CANCELLED_BECAUSE and delivery.response_status is None
    finally:
        await db.close()


@pytest.mark.postgres
async def test_a_cancellation_committed_while_an_outcome_is_being_recorded_keeps_its_reason_postgresql(
    tmp_path: Path, pg_database: tuple[str, Workspace]
) -> None:
    """The race CI once caught: another request cancels the delivery right after the worker's first statement about
    it. Whichever order the database lets them commit in, the delivery ends cancelled with the cancellation's reason
    (recording an outcome over a cancellation once wrote the attempt's error over it)."""
    url, ws = pg_database
    db = Database(url)
    worker = WebhookWorker(make_settings(tmp_path, database_url=url), db)
    cancelled: list[bool] = []

    def cancel() -> bool:
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("SET lock_timeout = '300ms'")  # a row the worker locked: cancel once it committed
            try:
                other.execute(
                    "UPDATE webhook_deliveries SET status = 'cancelled', last_error = %s WHERE status = 'pending'",
                    (CANCELLED_BECAUSE,),
                )
            except psycopg.errors.LockNotAvailable:
                return False
        return True

    def between_statements(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not cancelled and "webhook_deliveries" in statement:
            cancelled.append(cancel())

    try:
        claimed = await claimed_delivery(db, ws, worker)
        event.listen(db.engine.sync_engine, "after_cursor_execute", between_statements)
        try:
            await worker._record(claimed, Outcome(False, status=500, error="HTTP 500: broken!"))
        finally:
            event.remove(db.engine.sync_engine, "after_cursor_execute", between_statements)
        assert cancelled, "the worker's record never touched the delivery"
        if not cancelled[0]:
            assert cancel()
        delivery = await the_delivery(db)
        assert (delivery.status, delivery.last_error) == (DeliveryStatus.CANCELLED, CANCELLED_BECAUSE)
    finally:
        await db.close()


async def test_an_attempt_cut_off_by_a_dying_node_is_retried_by_another(
    tmp_path: Path, database: tuple[str, Workspace], receiver: Receiver
) -> None:
    url, ws = database
    settings = make_settings(tmp_path, database_url=url, webhooks=FAST)
    nodes = [Database(url), Database(url)]
    try:
        [delivery_id] = await seed_deliveries(nodes[0], ws, receiver.url(), count=1)
        receiver.hold = threading.Event()  # the first attempt stays in flight until its node has died
        dying = WebhookWorker(settings, nodes[0], lease_margin_seconds=0.2)
        attempt = asyncio.create_task(dying.run_once())
        await asyncio.to_thread(receiver.wait_for, lambda rs: len(rs) == 1)
        attempt.cancel()  # the node is gone: nothing records the attempt
        await asyncio.gather(attempt, return_exceptions=True)
        await dying.stop()
        receiver.hold.set()  # the receiver answers into a closed connection
        receiver.hold = None
        async with nodes[1].session() as session:
            claimed = await session.get(WebhookDelivery, delivery_id)
        assert claimed is not None and (claimed.status, claimed.attempts) == (DeliveryStatus.PENDING, 1)
        lease = claimed.next_attempt_at
        # Time is stepped, not waited for: just before the lease runs out no node retries, and once it has one does.
        # (Real waits here failed on a loaded machine: the lease could run out before the first check.)
        early = WebhookWorker(settings, nodes[1], clock=lambda: lease - dt.timedelta(milliseconds=1))
        assert await early.run_once() == 0, "retried before the lease ran out"
        await early.stop()
        survivor = WebhookWorker(settings, nodes[1], clock=lambda: lease)
        assert await survivor.run_once() == 1
        await survivor.stop()
        # The survivor's run_once counts attempts made, not answered: wait for the receiver to have the second one.
        first, second = await asyncio.to_thread(receiver.wait_for, lambda rs: len(rs) >= 2)
        assert first.headers["x-tandem-delivery"] == second.headers["x-tandem-delivery"] == str(delivery_id)
        assert (first.headers["x-tandem-attempt"], second.headers["x-tandem-attempt"]) == ("1", "2")
        async with nodes[1].session() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
        assert delivery is not None and (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)
    finally:
        for db in nodes:
            await db.close()


async def two_workers_deliver_each_once(settings: Settings, url: str, ws: Workspace, receiver: Receiver) -> None:
    nodes = [Database(url), Database(url)]
    receiver.delay = 0.02  # attempts overlap, so both workers find work while the other's are in flight
    try:
        for db in nodes:  # both connected before the first delivery is due
            async with db.session() as session:
                await session.exec(select(WebhookDelivery.id).limit(1))
        ids = await seed_deliveries(nodes[0], ws, receiver.url(), count=40)
        workers = [WebhookWorker(settings, db, batch_size=5) for db in nodes]

        async def drain(worker: WebhookWorker) -> int:
            made = 0
            while len(receiver.requests) < len(ids):
                made += await worker.run_once()
                await asyncio.sleep(0)
            return made

        async with asyncio.timeout(DEADLINE):
            made = await asyncio.gather(*(drain(w) for w in workers))
        for worker in workers:
            await worker.stop()
        seen = [r.headers["x-tandem-delivery"] for r in receiver.requests]
        assert sorted(seen, key=int) == [str(i) for i in ids], "a delivery was attempted twice or not at all"
        assert sum(made) == len(ids) and all(made), made  # both took part, and no attempt was made twice
        async with nodes[0].session() as session:
            rows = (await session.exec(select(WebhookDelivery))).all()
        assert {(r.status, r.attempts) for r in rows} == {(DeliveryStatus.DELIVERED, 1)}
    finally:
        for db in nodes:
            await db.close()


async def test_two_workers_never_make_the_same_attempt_sqlite(
    tmp_path: Path, database: tuple[str, Workspace], receiver: Receiver
) -> None:
    url, ws = database
    await two_workers_deliver_each_once(make_settings(tmp_path, database_url=url, webhooks=FAST), url, ws, receiver)


@pytest.mark.postgres
async def test_two_workers_never_make_the_same_attempt_postgresql(
    tmp_path: Path, pg_database: tuple[str, Workspace], receiver: Receiver
) -> None:
    url, ws = pg_database
    await two_workers_deliver_each_once(make_settings(tmp_path, database_url=url, webhooks=FAST), url, ws, receiver)


# -- the separate worker process ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_tandem_worker_process_delivers_for_a_web_process_without_one(
    tmp_path: Path, workspace: Workspace, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path, webhooks=replace(FAST, worker=False))
    env = {
        **os.environ,
        "TANDEM_DATABASE_URL": settings.database_url,
        "TANDEM_SECRET_KEY": SECRET,
        "TANDEM_DATA_DIR": str(tmp_path),
        "TANDEM_AUTO_MIGRATE": "0",
        "TANDEM_WEBHOOK_POLL_SECONDS": "0.1",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        with TestClient(create_app(settings), base_url="http://testserver") as web:
            hook = add_webhook(web, workspace, receiver.url(), events=["task.status_changed"])
            move(web, workspace, "px_shared_task", "px_active")
            [request] = receiver.wait_for(lambda rs: len(rs) == 1)
            assert verify(hook["secret"], request)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            output, _ = worker.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise
    assert worker.returncode == 0, output.decode()


def test_webhook_settings_come_from_the_environment(tmp_path: Path) -> None:
    from server.settings import ConfigurationError, load_settings

    base = {"TANDEM_DATA_DIR": str(tmp_path), "TANDEM_SECRET_KEY": SECRET}
    assert load_settings(base).webhooks == WebhookSettings()
    loaded = load_settings(
        {
            **base,
            "TANDEM_WEBHOOK_WORKER": "off",
            "TANDEM_WEBHOOK_TIMEOUT_SECONDS": "2.5",
            "TANDEM_WEBHOOK_MAX_ATTEMPTS": "4",
            "TANDEM_WEBHOOK_RETRY_BASE_SECONDS": "0.5",
            "TANDEM_WEBHOOK_RETRY_MAX_SECONDS": "60",
            "TANDEM_WEBHOOK_DISABLE_AFTER": "3",
            "TANDEM_WEBHOOK_ALLOW_PRIVATE_TARGETS": "yes",
            "TANDEM_WEBHOOK_POLL_SECONDS": "0.5",
        }
    ).webhooks
    assert loaded == WebhookSettings(
        worker=False,
        timeout_seconds=2.5,
        max_attempts=4,
        retry_base_seconds=0.5,
        retry_max_seconds=60.0,
        disable_after=3,
        allow_private_targets=True,
        poll_seconds=0.5,
    )
    with pytest.raises(ConfigurationError, match="TANDEM_WEBHOOK_TIMEOUT_SECONDS"):
        load_settings({**base, "TANDEM_WEBHOOK_TIMEOUT_SECONDS": "soon"})


def test_retry_delays_grow_exponentially_with_jitter_and_a_cap(tmp_path: Path) -> None:
    from server.webhooks.delivery import retry_delay

    settings = make_settings(tmp_path, webhooks=WebhookSettings(retry_base_seconds=30, retry_max_seconds=600))
    for attempt, ceiling in ((1, 30), (2, 60), (3, 120), (5, 480), (6, 600), (40, 600)):
        delays = [retry_delay(settings, attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert max(delays) - min(delays) > ceiling / 10, "no jitter"


def test_answers_match_the_openapi_schemas(app: TestClient, workspace: Workspace, receiver: Receiver) -> None:
    from tests.test_openapi import _validate

    doc = app.get("/api/openapi.json").json()
    owner = bearer(workspace, "owner")
    created = app.post(
        f"/api/projects/{workspace.ids['px']}/webhooks",
        json={"url": receiver.url(), "events": ["task.status_changed"], "description": "CI"},
        headers=owner,
    )
    _validate(doc, "/api/projects/{project_id}/webhooks", "post", 201, created.json())
    hook_id = created.json()["id"]
    move(app, workspace, "px_shared_task", "px_active")
    receiver.wait_for(lambda rs: len(rs) == 1)
    poll(lambda: deliveries(app, workspace, hook_id)[0]["status"] == "delivered")
    for url, path in (
        (f"/api/projects/{workspace.ids['px']}/webhooks", "/api/projects/{project_id}/webhooks"),
        (f"/api/webhooks/{hook_id}", "/api/webhooks/{webhook_id}"),
        (f"/api/webhooks/{hook_id}/deliveries", "/api/webhooks/{webhook_id}/deliveries"),
    ):
        response = app.get(url, headers=owner)
        assert response.status_code == 200
        _validate(doc, path, "get", 200, response.json())
    patched = app.patch(f"/api/webhooks/{hook_id}", json={"rotate_secret": True}, headers=owner)
    _validate(doc, "/api/webhooks/{webhook_id}", "patch", 200, patched.json())
    refused = app.post(
        f"/api/projects/{workspace.ids['px']}/webhooks", json={"url": "ftp://x", "events": []}, headers=owner
    )
    assert refused.status_code == 422
    _validate(doc, "/api/projects/{project_id}/webhooks", "post", 422, refused.json())
