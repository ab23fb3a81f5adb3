"""Customer feedback: a completed milestone asks the customers, answers reach the staff view and the metric."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from server.feedback.rules import DEFAULT_WEIGHTS, ActionFact, AnswerFact, parse_weights, summarize, themes_of
from tests.conftest import bearer
from tests.workspace import Workspace


def test_completing_a_shared_milestone_asks_the_customers_once(client: TestClient, workspace: Workspace) -> None:
    ws, px = workspace, workspace.ids["px"]
    staff, customer = bearer(ws, "staff"), bearer(ws, "customer")
    before = client.get(f"/api/projects/{px}/feedback/requests", headers=customer).json()["items"]
    for _ in range(2):  # completing again does not ask again
        done = client.patch(f"/api/milestones/{ws.ids['px_shared_milestone']}", json={"completed": True}, headers=staff)
        assert done.status_code == 200, done.text
    internal = client.patch(
        f"/api/milestones/{ws.ids['px_internal_milestone']}", json={"completed": True}, headers=staff
    )
    assert internal.status_code == 200
    after = client.get(f"/api/projects/{px}/feedback/requests", headers=customer).json()["items"]
    assert len(after) == len(before) + 1
    new = after[0]
    assert new["milestone_id"] == ws.ids["px_shared_milestone"]
    assert new["milestone_name"] == "px shared milestone"
    assert (new["answers"], new["answered_by_me"]) == (0, False)
    notes = client.get("/api/notifications", headers=customer).json()["items"]
    assert [n["kind"] for n in notes].count("feedback") == 1
    viewer_notes = client.get("/api/notifications", headers=bearer(ws, "viewer")).json()["items"]
    assert "feedback" not in [n["kind"] for n in viewer_notes]  # viewers only read


def test_answers_reach_the_staff_view_and_the_metric(client: TestClient, workspace: Workspace) -> None:
    ws, px = workspace, workspace.ids["px"]
    staff, customer = bearer(ws, "staff"), bearer(ws, "customer")
    request = ws.ids["px_feedback_request"]
    answer = {"score": 4, "helped": "Quick replies", "hindered": "Unclear scope"}
    posted = client.post(f"/api/feedback/requests/{request}/answers", json=answer, headers=customer)
    assert posted.status_code == 201, posted.text
    again = client.post(f"/api/feedback/requests/{request}/answers", json=answer, headers=customer)
    assert again.status_code == 409
    bad = client.post(f"/api/feedback/requests/{request}/answers", json={"score": 6}, headers=customer)
    assert bad.status_code == 422
    mine = client.get(f"/api/projects/{px}/feedback/requests", headers=customer).json()["items"]
    assert [(r["answers"], r["answered_by_me"]) for r in mine if r["id"] == request] == [(1, True)]

    view = client.get(f"/api/projects/{px}/feedback", headers=staff).json()
    assert (view["responses"], view["score"], view["trend"]) == (1, 4.0, None)
    themes = {t["theme"]: t for t in view["themes"]}
    assert (themes["clarity"]["hindered"], themes["communication"]["helped"], themes["speed"]["helped"]) == (1, 1, 1)
    assert themes["clarity"]["quotes"][0]["text"] == "Unclear scope"
    # A hindrance without an action item: A = 0; one round, all answers hindered: N = 0; S = 0.75.
    assert view["components"] == {"A": 0.0, "N": 0.0, "S": 0.75}
    assert view["metric"] == 15.0
    kpis = client.get(f"/api/projects/{px}/reports/kpis", headers=staff).json()
    assert kpis["feedback"] == {"responses": 1, "score": 4.0, "trend": None, "metric": 15.0}

    action = client.post(
        f"/api/projects/{px}/feedback/actions", json={"theme": "clarity", "title": "Agree the scope"}, headers=staff
    )
    assert action.status_code == 201, action.text
    task_id = action.json()["task_id"]
    assert client.get(f"/api/projects/{px}/feedback", headers=staff).json()["metric"] == 15.0
    moved = client.patch(f"/api/tasks/{task_id}", json={"status_id": ws.ids["px_done"]}, headers=staff)
    assert moved.status_code == 200
    view = client.get(f"/api/projects/{px}/feedback", headers=staff).json()
    assert [a["done"] for a in {t["theme"]: t for t in view["themes"]}["clarity"]["actions"]] == [True]
    assert view["metric"] == 65.0  # 100 * (0.5 * 1 + 0.3 * 0 + 0.2 * 0.75)
    # Customers see the score in their KPIs, not the staff metric nor the themes.
    theirs = client.get(f"/api/projects/{px}/reports/kpis", headers=customer).json()["feedback"]
    assert theirs == {"responses": 1, "score": 4.0, "trend": None, "metric": None}
    assert client.get(f"/api/projects/{px}/feedback", headers=customer).status_code == 403


def test_asking_on_demand_only_about_shared_milestones(client: TestClient, workspace: Workspace) -> None:
    ws, px = workspace, workspace.ids["px"]
    staff = bearer(ws, "staff")
    internal = client.post(
        f"/api/projects/{px}/feedback/requests", json={"milestone_id": ws.ids["px_internal_milestone"]}, headers=staff
    )
    assert internal.status_code == 422
    general = client.post(f"/api/projects/{px}/feedback/requests", json={}, headers=staff)
    assert general.status_code == 201 and general.json()["milestone_id"] is None


def test_themes_are_keyword_prefixes_without_diacritics() -> None:
    assert themes_of("Quick replies from the team") == ["communication", "speed", "people"]
    assert themes_of("Snabba svar från teamet") == ["communication", "speed", "people"]
    assert themes_of("Otydliga krav") == ["clarity"]
    assert themes_of("Nothing in particular") == ["other"]
    assert themes_of("  ") == []


def answer(i: int, request: int, score: int, hindered: str = "") -> AnswerFact:
    import datetime as dt

    at = dt.datetime(2026, 1, request, tzinfo=dt.UTC)
    return AnswerFact(i, request, at, None, score, "", hindered, at)


def test_metric_weights_actions_over_negative_trend_over_score() -> None:
    answers = [answer(1, 1, 2, "Slow"), answer(2, 1, 3, "Bugs"), answer(3, 2, 3, "")]
    actions = [ActionFact(1, "speed", 10, "Faster deploys", True), ActionFact(2, "quality", 11, "Tests", False)]
    s = summarize(answers, actions, DEFAULT_WEIGHTS)
    # A = 1/2; neg: round 1 = 1.0, round 2 = 0.0 -> N = clamp(1 + 0.5) = 1; S = (8/3 - 1) / 4.
    assert s.components == {"A": 0.5, "N": 1.0, "S": pytest.approx(0.4167, abs=1e-4)}
    assert s.metric == round(100 * (0.5 * 0.5 + 0.3 * 1.0 + 0.2 * (5 / 12)), 1)
    assert s.trend == 0.5 and s.score == 2.67
    assert summarize([], [], DEFAULT_WEIGHTS).metric is None
    assert parse_weights("3,2,1") == (3.0, 2.0, 1.0)
    for wrong in ("0.2,0.3,0.5", "1,1", "-1,0,0", "0,0,0"):
        with pytest.raises(ValueError):
            parse_weights(wrong)
