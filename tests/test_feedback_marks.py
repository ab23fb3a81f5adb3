"""Informal feedback: staff mark a customer's comment as feedback; it moves the feedback view and metric as
docs/REPORTS.md says, becomes an action item like a survey theme, and never reaches a customer by any path."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.testclient import TestClient

from channels.client import TandemClient
from server.feedback.rules import DEFAULT_WEIGHTS, AnswerFact, MarkFact, summarize
from tests.conftest import bearer
from tests.nodes import Api, Node, connect, next_data
from tests.workspace import Workspace


def test_marking_a_comment_moves_the_feedback_metric_as_documented(client: TestClient, workspace: Workspace) -> None:
    ws, px = workspace, workspace.ids["px"]
    staff, customer = bearer(ws, "staff"), bearer(ws, "customer")
    comment = ws.ids["px_customer_comment"]
    answer = {"score": 4, "helped": "Quick replies", "hindered": ""}
    assert (
        client.post(
            f"/api/feedback/requests/{ws.ids['px_feedback_request']}/answers", json=answer, headers=customer
        ).status_code
        == 201
    )
    view = client.get(f"/api/projects/{px}/feedback", headers=staff).json()
    # No hindrance: A = 1, N = 1, S = 0.75.
    assert (view["metric"], view["informal"]) == (95.0, 0)
    customer_kpis = client.get(f"/api/projects/{px}/reports/kpis", headers=customer).json()["feedback"]

    marked = client.put(f"/api/comments/{comment}/feedback", json={"kind": "concern", "theme": "speed"}, headers=staff)
    assert marked.status_code == 200, marked.text
    assert marked.json() | {"created_at": None} == {
        "comment_id": comment,
        "task_id": ws.ids["px_shared_task"],
        "request_event_id": None,
        "request_id": None,
        "kind": "concern",
        "theme": "speed",
        "by_email": False,
        "marked_by_id": ws.users["staff"],
        "created_at": None,
    }
    view = client.get(f"/api/projects/{px}/feedback", headers=staff).json()
    # A concern is a named hindrance without an action item: A = 0. One round of two items (the answer and the
    # comment), one hindrance: neg = 1/2, N = 0.5. S stays 0.75: 100 * (0.5*0 + 0.3*0.5 + 0.2*0.75) = 30.
    assert view["components"] == {"A": 0.0, "N": 0.5, "S": 0.75}
    assert (view["metric"], view["informal"], view["responses"], view["score"]) == (30.0, 1, 1, 4.0)
    speed = {t["theme"]: t for t in view["themes"]}["speed"]
    assert (speed["helped"], speed["hindered"]) == (1, 1)
    (quote,) = [q for q in speed["quotes"] if q["comment_id"] == comment]
    assert (quote["kind"], quote["text"], quote["score"], quote["answer_id"]) == (
        "concern",
        "px customer comment",
        None,
        None,
    )
    assert client.get(f"/api/projects/{px}/reports/kpis", headers=staff).json()["feedback"]["metric"] == 30.0

    # The theme becomes an action item as survey themes do; completing it brings A to 1.
    action = client.post(f"/api/projects/{px}/feedback/actions", json={"theme": "speed"}, headers=staff).json()
    client.patch(f"/api/tasks/{action['task_id']}", json={"status_id": ws.ids["px_done"]}, headers=staff)
    assert client.get(f"/api/projects/{px}/feedback", headers=staff).json()["metric"] == 80.0
    # Praise instead: no hindrance left, N = 1.
    client.put(f"/api/comments/{comment}/feedback", json={"kind": "praise", "theme": "people"}, headers=staff)
    assert client.get(f"/api/projects/{px}/feedback", headers=staff).json()["metric"] == 95.0
    listed = client.get(f"/api/tasks/{ws.ids['px_shared_task']}/feedback-marks", headers=staff).json()["items"]
    assert [(m["comment_id"], m["kind"], m["theme"]) for m in listed] == [(comment, "praise", "people")]
    assert client.delete(f"/api/comments/{comment}/feedback", headers=staff).status_code == 204
    assert client.get(f"/api/projects/{px}/feedback", headers=staff).json()["informal"] == 0
    # The customer's KPIs never moved.
    assert client.get(f"/api/projects/{px}/reports/kpis", headers=customer).json()["feedback"] == customer_kpis


def test_only_staff_mark_and_only_customer_comments(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    comment, staff_comment = ws.ids["px_customer_comment"], ws.ids["px_shared_comment"]
    body = {"kind": "change", "theme": "clarity"}
    for role, status in (("customer", 403), ("viewer", 403), ("other_customer", 404), ("stranger", 404)):
        assert (
            client.put(f"/api/comments/{comment}/feedback", json=body, headers=bearer(ws, role)).status_code == status
        )
        assert client.delete(f"/api/comments/{comment}/feedback", headers=bearer(ws, role)).status_code == status
        marks = client.get(f"/api/tasks/{ws.ids['px_shared_task']}/feedback-marks", headers=bearer(ws, role))
        assert marks.status_code == status
    staff = bearer(ws, "staff")
    refused = client.put(f"/api/comments/{staff_comment}/feedback", json=body, headers=staff)
    assert (refused.status_code, refused.json()["error"]) == (409, "not_customer_comment")
    unknown = client.put(f"/api/comments/{comment}/feedback", json={"kind": "change", "theme": "x"}, headers=staff)
    assert unknown.status_code == 422
    assert (
        client.put(
            f"/api/comments/{comment}/feedback", json={"kind": "rant", "theme": "speed"}, headers=staff
        ).status_code
        == 422
    )


def _customer_reply(client: TestClient, ws: Workspace, text: str) -> int:
    request = ws.ids["px_request"]
    replied = client.post(f"/api/requests/{request}/reply", json={"message": text}, headers=bearer(ws, "customer"))
    assert replied.status_code == 200, replied.text
    event = replied.json()["history"][-1]
    assert (event["kind"], event["text"]) == ("replied", text)
    return int(event["id"])


def test_marking_a_request_reply_moves_the_feedback_metric_as_documented(
    client: TestClient, workspace: Workspace
) -> None:
    ws, px, request = workspace, workspace.ids["px"], workspace.ids["px_request"]
    staff, customer = bearer(ws, "staff"), bearer(ws, "customer")
    event = _customer_reply(client, ws, "Still waiting for the new logo, it is slow going")
    answer = {"score": 4, "helped": "Quick replies", "hindered": ""}
    path = f"/api/feedback/requests/{ws.ids['px_feedback_request']}/answers"
    assert client.post(path, json=answer, headers=customer).status_code == 201
    assert client.get(f"/api/projects/{px}/feedback", headers=staff).json()["metric"] == 95.0
    customer_request = client.get(f"/api/requests/{request}", headers=customer).text
    customer_kpis = client.get(f"/api/projects/{px}/reports/kpis", headers=customer).json()["feedback"]

    marked = client.put(
        f"/api/request-events/{event}/feedback", json={"kind": "concern", "theme": "speed"}, headers=staff
    )
    assert marked.status_code == 200, marked.text
    assert marked.json() | {"created_at": None} == {
        "comment_id": None,
        "task_id": None,
        "request_event_id": event,
        "request_id": request,
        "kind": "concern",
        "theme": "speed",
        "by_email": False,
        "marked_by_id": ws.users["staff"],
        "created_at": None,
    }
    view = client.get(f"/api/projects/{px}/feedback", headers=staff).json()
    # As a marked comment: one round of two items, one hindrance (N = 0.5), a hindrance without action item (A = 0),
    # S = 0.75: 100 * (0.5*0 + 0.3*0.5 + 0.2*0.75) = 30.
    assert view["components"] == {"A": 0.0, "N": 0.5, "S": 0.75}
    assert (view["metric"], view["informal"], view["responses"]) == (30.0, 1, 1)
    (quote,) = [q for q in {t["theme"]: t for t in view["themes"]}["speed"]["quotes"] if q["request_event_id"]]
    assert (quote["request_event_id"], quote["request_id"], quote["comment_id"], quote["kind"], quote["text"]) == (
        event,
        request,
        None,
        "concern",
        "Still waiting for the new logo, it is slow going",
    )
    assert client.get(f"/api/projects/{px}/reports/kpis", headers=staff).json()["feedback"]["metric"] == 30.0
    # The theme becomes an action item; completing it brings A to 1.
    action = client.post(f"/api/projects/{px}/feedback/actions", json={"theme": "speed"}, headers=staff).json()
    client.patch(f"/api/tasks/{action['task_id']}", json={"status_id": ws.ids["px_done"]}, headers=staff)
    assert client.get(f"/api/projects/{px}/feedback", headers=staff).json()["metric"] == 80.0
    # Changed to praise, then listed, then removed.
    client.put(f"/api/request-events/{event}/feedback", json={"kind": "praise", "theme": "people"}, headers=staff)
    assert client.get(f"/api/projects/{px}/feedback", headers=staff).json()["metric"] == 95.0
    listed = client.get(f"/api/requests/{request}/feedback-marks", headers=staff).json()["items"]
    assert [(m["request_event_id"], m["kind"], m["theme"]) for m in listed] == [(event, "praise", "people")]
    # The customer's request and KPIs read exactly as before.
    assert client.get(f"/api/requests/{request}", headers=customer).text == customer_request
    assert client.get(f"/api/projects/{px}/reports/kpis", headers=customer).json()["feedback"] == customer_kpis
    assert client.delete(f"/api/request-events/{event}/feedback", headers=staff).status_code == 204
    view = client.get(f"/api/projects/{px}/feedback", headers=staff).json()
    assert (view["informal"], view["metric"]) == (0, 95.0)


def test_only_staff_who_see_the_project_mark_a_request_reply(client: TestClient, workspace: Workspace) -> None:
    ws, request = workspace, workspace.ids["px_request"]
    event = _customer_reply(client, ws, "The colours are unclear")
    body = {"kind": "change", "theme": "clarity"}
    missing = client.put("/api/request-events/999999/feedback", json=body, headers=bearer(ws, "customer"))
    assert missing.status_code == 404
    for role in ("customer", "viewer", "other_customer", "stranger"):
        headers = bearer(ws, role)
        refused = client.put(f"/api/request-events/{event}/feedback", json=body, headers=headers)
        # The same answer as for a missing id: customers learn nothing of marking.
        assert (refused.status_code, refused.json()) == (404, missing.json()), role
        assert client.delete(f"/api/request-events/{event}/feedback", headers=headers).status_code == 404
        assert client.get(f"/api/requests/{request}/feedback-marks", headers=headers).status_code == 404
    staff = bearer(ws, "staff")
    assert client.get(f"/api/requests/{request}/feedback-marks", headers=staff).json()["items"] == []
    asked = client.post(f"/api/requests/{request}/triage", json={"action": "ask", "message": "Which?"}, headers=staff)
    staff_event = asked.json()["history"][-1]["id"]
    refused = client.put(f"/api/request-events/{staff_event}/feedback", json=body, headers=staff)
    assert (refused.status_code, refused.json()["error"]) == (409, "not_customer_reply")
    bad = client.put(f"/api/request-events/{event}/feedback", json={"kind": "change", "theme": "x"}, headers=staff)
    assert bad.status_code == 422


def test_marks_join_the_round_they_were_written_in() -> None:
    def at(day: int) -> dt.datetime:
        return dt.datetime(2026, 1, day, tzinfo=dt.UTC)

    answers = [AnswerFact(1, 1, at(1), None, 3, "", "", at(2)), AnswerFact(2, 2, at(10), None, 3, "", "", at(11))]
    concern = MarkFact(1, 5, 9, "concern", "speed", "Too slow", at(5))  # in round 1
    s = summarize(answers, [], DEFAULT_WEIGHTS, [concern])
    # Round 1: 1 hindrance / 2 items = 0.5; round 2: 0. N = clamp(1 - 0 + (0.5 - 0) / 2) = 1; A = 0 (a hindrance).
    assert s.components == {"A": 0.0, "N": 1.0, "S": 0.5}
    # Without answers, S is left out and the marks make the one round: N = 1 - 1/2; A = 0.
    only = summarize([], [], DEFAULT_WEIGHTS, [concern, MarkFact(2, 6, 9, "praise", "people", "Great", at(6))])
    assert only.components == {"A": 0.0, "N": 0.5} and only.metric == round(100 * 0.3 * 0.5 / 0.8, 1)
    assert only.responses == 0 and only.score is None and only.informal == 2


async def test_a_customer_never_receives_a_marking(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    task, px = ws.ids["px_shared_task"], ws.ids["px"]
    comment = ws.ids["px_customer_comment"]
    customer = await connect(clients, b, ws, "customer")
    staff = await connect(clients, a, ws, "staff")
    for channel in (f"task:{task}:shared", f"project:{px}:shared"):
        await customer.subscribe(channel)
    await staff.subscribe(f"task:{task}:staff")
    staff_api, customer_api = Api(a, ws, "staff"), Api(b, ws, "customer")
    customer_views = (
        f"/api/tasks/{task}/comments",
        f"/api/tasks/{task}",
        f"/api/projects/{px}/activity",
        "/api/notifications",
        f"/api/projects/{px}/unread",
        "/api/me/waiting",
        "/api/search?q=customer",
        f"/api/projects/{px}/tasks.csv",
    )

    async def seen_by_customer() -> list[Any]:
        out = []
        for path in customer_views:
            response = await customer_api.client.get(path)
            out.append((path, response.status_code, response.text))
        kpis = (await customer_api.client.get(f"/api/projects/{px}/reports/kpis")).json()
        out.append(("kpis", kpis["feedback"], kpis["total"]))
        return out

    try:
        before = await seen_by_customer()
        marked = await staff_api.client.put(
            f"/api/comments/{comment}/feedback", json={"kind": "concern", "theme": "quality"}
        )
        assert marked.status_code == 200, marked.text
        event = await next_data(staff)
        assert (event["type"], event["comment_id"], event["mark"]["theme"]) == ("feedback.marked", comment, "quality")
        # Every customer view reads exactly as before: the comment, its counts, the KPIs, the exports.
        assert await seen_by_customer() == before
        # Then a shared comment: the customer's next thread event is that comment, nothing about the marking before.
        after_mark = await staff_api.client.post(
            f"/api/tasks/{task}/comments", json={"body": "Noted, thanks", "visibility": "shared"}
        )
        got = await next_data(customer)
        while got["type"] != "comment.created":
            assert "feedback" not in str(got) and "quality" not in str(got), got
            got = await next_data(customer)
        assert got["comment"]["id"] == after_mark.json()["id"]
    finally:
        await staff_api.aclose()
        await customer_api.aclose()


async def test_a_customer_never_receives_the_marking_of_a_request_reply(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    px, request = ws.ids["px"], ws.ids["px_request"]
    staff_api, customer_api = Api(a, ws, "staff"), Api(b, ws, "customer")
    try:
        replied = await customer_api.client.post(f"/api/requests/{request}/reply", json={"message": "Too slow"})
        event = replied.json()["history"][-1]["id"]
        customer = await connect(clients, b, ws, "customer")
        staff = await connect(clients, a, ws, "staff")
        await customer.subscribe(f"project:{px}:shared")
        await staff.subscribe(f"project:{px}:staff")
        customer_views = (
            f"/api/requests/{request}",
            f"/api/projects/{px}/requests",
            f"/api/projects/{px}/activity",
            "/api/notifications",
            "/api/me/waiting",
        )

        async def seen_by_customer() -> list[Any]:
            out: list[Any] = [(p, (r := await customer_api.client.get(p)).status_code, r.text) for p in customer_views]
            kpis = (await customer_api.client.get(f"/api/projects/{px}/reports/kpis")).json()
            return [*out, ("kpis", kpis["feedback"], kpis["total"])]

        before = await seen_by_customer()
        marked = await staff_api.client.put(
            f"/api/request-events/{event}/feedback", json={"kind": "concern", "theme": "quality"}
        )
        assert marked.status_code == 200, marked.text
        got = await next_data(staff)
        while got["type"] != "feedback.marked":
            got = await next_data(staff)
        assert (got["request_id"], got["request_event_id"], got["mark"]["theme"]) == (request, event, "quality")
        assert await seen_by_customer() == before
        # A shared step next: the customer's next request event is that step, nothing about the marking before it.
        asked = await staff_api.client.post(
            f"/api/requests/{request}/triage", json={"action": "ask", "message": "Which page?"}
        )
        assert asked.status_code == 200, asked.text
        seen = await next_data(customer)
        while seen["type"] != "request.updated":
            assert "feedback" not in str(seen) and "quality" not in str(seen), seen
            seen = await next_data(customer)
        assert "feedback" not in str(seen) and seen["request"]["status"] == "needs_info"
    finally:
        await staff_api.aclose()
        await customer_api.aclose()
