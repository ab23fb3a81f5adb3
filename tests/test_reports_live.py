"""Live KPIs through real nodes: a task moves on one node, the dashboards on the other see the new KPIs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from channels.broker import BrokerUnavailable
from channels.client import ClientError, TandemClient
from server.db import Database
from server.live.report_live import KpiPublisher
from tests.nodes import Api, Node, connect, next_data
from tests.workspace import Workspace


async def kpi_event(client: TandemClient, timeout: float = 5.0) -> dict[str, Any]:
    data = await next_data(client, timeout)
    assert data["type"] == "kpi.changed", data
    return data["kpis"]  # type: ignore[no-any-return]


async def test_a_moved_task_reaches_subscribed_dashboards(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    px = ws.ids["px"]
    staff_board = await connect(clients, b, ws, "staff")
    customer_board = await connect(clients, b, ws, "customer")
    await staff_board.subscribe(f"report:project:{px}:staff")
    await customer_board.subscribe(f"report:project:{px}:shared")
    with pytest.raises(ClientError):  # a customer never receives the staff snapshot
        await customer_board.subscribe(f"report:project:{px}:staff")
    staff_api = Api(a, ws, "staff")
    try:
        before = (await staff_api.client.get(f"/api/projects/{px}/reports/kpis")).json()
        started = time.monotonic()
        await staff_api.patch_task(ws.ids["px_shared_task"], status_id=ws.ids["px_done"])
        staff_kpis = await kpi_event(staff_board)
        elapsed = time.monotonic() - started
        customer_kpis = await kpi_event(customer_board)
        assert elapsed < 1.0, f"KPIs arrived after {elapsed:.2f}s"
        assert staff_kpis["audience"] == "staff" and customer_kpis["audience"] == "shared"
        assert staff_kpis["done"] == before["done"] + 1
        assert staff_kpis["by_category"]["done"] == before["by_category"]["done"] + 1
        # The customer's snapshot counts shared tasks only: PX has 2 shared, 1 internal (seeded).
        assert (customer_kpis["total"], customer_kpis["done"]) == (staff_kpis["total"] - 1, 1)
        assert "SECRET" not in str(customer_kpis) and "internal milestone" not in str(customer_kpis)

        # A burst of changes is debounced: the dashboards get fewer snapshots than there were changes.
        for status in ("px_todo", "px_active", "px_done", "px_todo", "px_active"):
            await staff_api.patch_task(ws.ids["px_internal_task"], status_id=ws.ids[status])
        snapshots = [await kpi_event(staff_board)]
        with_more = True
        while with_more:
            try:
                snapshots.append(await kpi_event(staff_board, 0.6))
            except TimeoutError:
                with_more = False
        assert len(snapshots) < 5
        assert snapshots[-1]["by_category"]["active"] == 1
    finally:
        await staff_api.aclose()


async def test_an_answered_survey_updates_the_dashboard(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, _ = two_nodes
    ws = database[1]
    px = ws.ids["px"]
    board = await connect(clients, a, ws, "owner")
    await board.subscribe(f"report:project:{px}:staff")
    customer = Api(a, ws, "customer")
    try:
        answered = await customer.client.post(
            f"/api/feedback/requests/{ws.ids['px_feedback_request']}/answers",
            json={"score": 4, "helped": "Quick answers", "hindered": ""},
        )
        assert answered.status_code == 201, answered.text
        async with asyncio.timeout(5):
            kpis = await kpi_event(board)
        assert kpis["feedback"]["responses"] == 1 and kpis["feedback"]["score"] == 4.0
    finally:
        await customer.aclose()


async def test_a_completed_milestone_asks_the_customer_live(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    customer = await connect(clients, b, ws, "customer")
    await customer.subscribe(f"user:{ws.users['customer']}")
    staff = Api(a, ws, "staff")
    try:
        done = await staff.client.patch(f"/api/milestones/{ws.ids['px_shared_milestone']}", json={"completed": True})
        assert done.status_code == 200, done.text
        kinds: dict[str, dict[str, Any]] = {}
        async with asyncio.timeout(5):
            while "feedback.requested" not in kinds:
                data = await next_data(customer)
                kinds[data["type"]] = data
        request = kinds["feedback.requested"]["request"]
        assert request["milestone_id"] == ws.ids["px_shared_milestone"]
        assert kinds["notification.created"]["notification"]["kind"] == "feedback"
    finally:
        await staff.aclose()


@pytest.mark.parametrize(
    ("answer", "computed"),
    [(False, False), (True, True), (None, True)],  # None: the broker cannot tell (raises)
    ids=["nobody listens", "a dashboard listens", "cannot tell"],
)
async def test_kpis_are_computed_only_when_a_dashboard_listens(
    database: tuple[str, Workspace], answer: bool | None, computed: bool
) -> None:
    url, ws = database
    asked: list[str] = []
    published: list[str] = []

    async def listening(channel: str) -> bool:
        asked.append(channel)
        if answer is None:
            raise BrokerUnavailable("redis away")
        return answer

    async def publish(channel: str, data: bytes) -> None:
        published.append(channel)

    db = Database(url)
    try:
        publisher = KpiPublisher(db, publish, "0.5,0.3,0.2", listening=listening)
        await publisher.publish_now(ws.ids["px"])
    finally:
        await db.close()
    px = ws.ids["px"]
    assert asked[0] == f"report:project:{px}:staff"
    assert (publisher.computations, publisher.skipped) == ((1, 0) if computed else (0, 1))
    assert published == ([f"report:project:{px}:staff", f"report:project:{px}:shared"] if computed else [])


async def test_the_shared_kpi_stream_is_silent_when_staff_touch_only_internal_items(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    px = ws.ids["px"]
    staff_board = await connect(clients, b, ws, "staff")
    customer_board = await connect(clients, b, ws, "customer")
    await staff_board.subscribe(f"report:project:{px}:staff")
    await customer_board.subscribe(f"report:project:{px}:shared")
    staff_api = Api(a, ws, "staff")
    try:
        # Internal-only work: an internal task moves, an internal comment on a shared task. Each is computed for
        # staff ...
        await staff_api.patch_task(ws.ids["px_internal_task"], status_id=ws.ids["px_active"])
        await kpi_event(staff_board)
        posted = await staff_api.client.post(
            f"/api/tasks/{ws.ids['px_shared_task']}/comments", json={"body": "note to self", "visibility": "internal"}
        )
        assert posted.status_code == 201, posted.text
        await kpi_event(staff_board)
        # ... and the customer's next snapshot is the one of the first change they can see: nothing came before it.
        await staff_api.patch_task(ws.ids["px_shared_task"], status_id=ws.ids["px_done"])
        staff_kpis = await kpi_event(staff_board)
        customer_kpis = await kpi_event(customer_board)
        assert customer_kpis["done"] == 1, customer_kpis
        assert staff_kpis["by_category"]["active"] == 1
        # A shared change that leaves the shared numbers as they are (a rename) publishes no shared snapshot either.
        await staff_api.patch_task(ws.ids["px_shared_task"], title="px shared task, renamed")
        await kpi_event(staff_board)
        await staff_api.patch_task(ws.ids["px_shared_task"], status_id=ws.ids["px_todo"])
        await kpi_event(staff_board)
        customer_kpis = await kpi_event(customer_board)
        assert customer_kpis["done"] == 0, customer_kpis
    finally:
        await staff_api.aclose()
