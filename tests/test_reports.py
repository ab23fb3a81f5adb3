"""Reports against a hand-built project (tests/report_fixture.py): exact KPIs per audience, pivots, CSV."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.reports.kpis import TaskFact, burnup, percentile
from server.reports.pivot import flatten
from server.settings import Settings
from tests.conftest import bearer
from tests.report_fixture import Fixture, build_report_fixture
from tests.workspace import Workspace


@pytest.fixture
def fixture(settings: Settings, workspace: Workspace) -> Fixture:
    return asyncio.run(build_report_fixture(settings.database_url, workspace))


def kpis(client: TestClient, ws: Workspace, fx: Fixture, role: str, query: str = "") -> dict[str, Any]:
    response = client.get(f"/api/projects/{fx.project}/reports/kpis{query}", headers=bearer(ws, role))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_staff_kpis_are_exact(client: TestClient, workspace: Workspace, fixture: Fixture) -> None:
    k = kpis(client, workspace, fixture, "staff")
    assert k["audience"] == "staff"
    assert (k["total"], k["done"], k["progress"]) == (8, 3, 0.375)
    assert k["by_category"] == {"todo": 2, "active": 2, "blocked": 1, "done": 3}
    assert [(m["name"], m["done"], m["total"]) for m in k["by_milestone"]] == [
        ("R shared M1", 2, 4),
        ("R internal milestone SECRET", 1, 2),
        ("", 0, 2),
    ]
    assert k["overdue"] == 2
    assert (k["waiting_on_customer"], k["waiting_median_days"], k["waiting_oldest_days"]) == (1, 5.0, 5.0)
    assert k["first_response_comments"] == {"count": 3, "pending": 1, "median_hours": 3.0, "p90_hours": 4.0}
    assert k["first_response_requests"] == {"count": 3, "pending": 1, "median_hours": 3.0, "p90_hours": 5.0}
    assert k["first_response"] == {"count": 6, "pending": 2, "median_hours": 3.0, "p90_hours": 5.0}
    assert k["request_turnaround"] == {"count": 2, "pending": 2, "median_hours": 20.0, "p90_hours": 30.0}
    assert k["feedback"] == {"responses": 3, "score": 3.67, "trend": 2.0, "metric": 68.3}
    assert (k["burnup"][-1]["scope"], k["burnup"][-1]["done"]) == (8, 3)
    assert k["burnup"][0]["scope"] == 3  # the week of the three oldest tasks
    assert (k["health"], k["health_reasons"]) == ("late", ["many_tasks_overdue", "tasks_overdue"])


@pytest.mark.parametrize("role", ["customer", "viewer", "staff-preview"])
def test_customer_kpis_leave_internal_items_out(
    client: TestClient, workspace: Workspace, fixture: Fixture, role: str
) -> None:
    k = (
        kpis(client, workspace, fixture, "staff", "?audience=shared")
        if role == "staff-preview"
        else kpis(client, workspace, fixture, role)
    )
    assert k["audience"] == "shared"
    assert (k["total"], k["done"], k["progress"]) == (5, 2, 0.4)
    assert k["by_category"] == {"todo": 1, "active": 1, "blocked": 1, "done": 2}
    assert [(m["name"], m["done"], m["total"]) for m in k["by_milestone"]] == [("R shared M1", 2, 4), ("", 0, 1)]
    assert k["overdue"] == 1
    assert k["waiting_on_customer"] == 1
    assert k["first_response"] == {"count": 6, "pending": 2, "median_hours": 3.0, "p90_hours": 5.0}
    assert k["feedback"] == {"responses": 3, "score": 3.67, "trend": 2.0, "metric": None}
    assert (k["burnup"][-1]["scope"], k["burnup"][-1]["done"]) == (5, 2)
    assert k["health"] == "late"
    assert "SECRET" not in str(k)


def test_customers_cannot_ask_for_the_staff_view(client: TestClient, workspace: Workspace, fixture: Fixture) -> None:
    response = client.get(
        f"/api/projects/{fixture.project}/reports/kpis?audience=staff", headers=bearer(workspace, "customer")
    )
    assert response.status_code == 403
    other = client.get(f"/api/projects/{fixture.project}/reports/kpis", headers=bearer(workspace, "other_customer"))
    assert other.status_code == 404


def test_milestone_burnup(client: TestClient, workspace: Workspace, fixture: Fixture) -> None:
    k = kpis(client, workspace, fixture, "customer", f"?milestone_id={fixture.ids['m1']}")
    assert (k["burnup"][-1]["scope"], k["burnup"][-1]["done"]) == (4, 2)
    hidden = client.get(
        f"/api/projects/{fixture.project}/reports/kpis?milestone_id={fixture.ids['m2']}",
        headers=bearer(workspace, "customer"),
    )
    assert hidden.status_code == 422


def test_burnup_weeks_and_percentiles() -> None:
    now = dt.datetime(2026, 3, 12, 12, tzinfo=dt.UTC)  # a Thursday, ISO week 11

    def task(created: int, completed: int | None) -> TaskFact:
        at = now - dt.timedelta(days=created)
        done_at = now - dt.timedelta(days=completed) if completed is not None else None
        category = "done" if done_at else "todo"
        return TaskFact(1, 1, 1, "s", category, None, None, None, None, "normal", None, "shared", at, done_at, at)

    points = burnup([task(15, 9), task(15, None), task(3, 1), task(1, None)], now)
    assert [(p.week, p.scope, p.done) for p in points] == [
        ("2026-W09", 2, 0),
        ("2026-W10", 2, 1),
        ("2026-W11", 4, 2),
    ]
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == 9
    assert percentile([5], 90) == 5
    assert percentile([], 90) is None


def test_portfolio_health_and_csv(client: TestClient, workspace: Workspace, fixture: Fixture) -> None:
    staff = bearer(workspace, "staff")
    body = client.get("/api/reports/portfolio", headers=staff).json()
    items = {i["project_id"]: i for i in body["items"]}
    assert set(items) == {workspace.ids["px"], workspace.ids["py"], fixture.project}
    mine = items[fixture.project]
    assert (mine["total"], mine["done"], mine["overdue"], mine["health"]) == (8, 3, 2, "late")
    assert mine["feedback_metric"] == 68.3
    assert sum(body["by_health"].values()) == 3
    assert client.get("/api/reports/portfolio", headers=bearer(workspace, "customer")).status_code == 403
    exported = client.get("/api/reports/portfolio?format=csv", headers=staff)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    by_id = {int(r["project_id"]): r for r in rows}
    assert by_id[fixture.project]["health"] == "late"
    assert by_id[fixture.project]["health_reasons"] == "many_tasks_overdue;tasks_overdue"
    assert int(by_id[fixture.project]["total"]) == 8


def test_kpi_csv_round_trip(client: TestClient, workspace: Workspace, fixture: Fixture) -> None:
    headers = bearer(workspace, "customer")
    as_json = client.get(f"/api/projects/{fixture.project}/reports/kpis", headers=headers).json()
    as_csv = client.get(f"/api/projects/{fixture.project}/reports/kpis?format=csv", headers=headers)
    assert as_csv.status_code == 200
    parsed = {row["metric"]: row["value"] for row in csv.DictReader(io.StringIO(as_csv.text))}
    expected = {k: ("" if v is None else str(v)) for k, v in flatten(as_json)}
    expected.pop("computed_at")
    parsed.pop("computed_at")
    assert parsed == expected
    assert parsed["total"] == "5" and "SECRET" not in as_csv.text


def pivot(client: TestClient, ws: Workspace, path: str, role: str = "staff") -> Any:
    response = client.get(path, headers=bearer(ws, role))
    assert response.status_code == 200, response.text
    return response.json() if "format=csv" not in path else response.text


def test_pivot_counts_sums_and_averages(client: TestClient, workspace: Workspace, fixture: Fixture) -> None:
    base = f"/api/projects/{fixture.project}/reports/pivot"
    p = pivot(client, workspace, f"{base}?group_by=visibility,category&measures=cycle_days")
    rows = {(r["key"]["visibility"], r["key"]["category"]): r for r in p["rows"]}
    assert {k: r["count"] for k, r in rows.items()} == {
        ("internal", "active"): 1,
        ("internal", "done"): 1,
        ("internal", "todo"): 1,
        ("shared", "active"): 1,
        ("shared", "blocked"): 1,
        ("shared", "done"): 2,
        ("shared", "todo"): 1,
    }
    assert rows[("shared", "done")]["sums"]["cycle_days"] == pytest.approx(27.0)
    assert rows[("shared", "done")]["averages"]["cycle_days"] == pytest.approx(13.5)
    assert rows[("shared", "todo")]["averages"]["cycle_days"] is None
    assert p["total"]["count"] == 8
    by_ms = pivot(client, workspace, f"{base}?group_by=milestone,assignee")
    assert {(r["key"]["milestone"], r["key"]["assignee"]): r["count"] for r in by_ms["rows"]} == {
        ("(none)", "Customer"): 1,
        ("(none)", "Staff"): 1,
        ("R internal milestone SECRET", "(none)"): 2,
        ("R shared M1", "(none)"): 4,
    }
    requests = pivot(client, workspace, f"{base}?source=requests&group_by=status&measures=turnaround_hours")
    assert {r["key"]["status"]: (r["count"], r["sums"]["turnaround_hours"]) for r in requests["rows"]} == {
        "accepted": (1, 10.0),
        "declined": (1, 30.0),
        "open": (2, 0.0),
    }
    bad = client.get(f"{base}?source=requests&group_by=assignee", headers=bearer(workspace, "staff"))
    assert bad.status_code == 422


@pytest.mark.parametrize("role", ["customer", "viewer"])
def test_customer_pivot_never_includes_internal_items(
    client: TestClient, workspace: Workspace, fixture: Fixture, role: str
) -> None:
    base = f"/api/projects/{fixture.project}/reports/pivot"
    for dims in ("visibility", "milestone", "priority,week", "status,assignee,client"):
        p = pivot(client, workspace, f"{base}?group_by={dims}&measures=age_days,cycle_days", role)
        assert p["total"]["count"] == 5
        assert "SECRET" not in str(p) and "internal" not in str(p)
        text = pivot(client, workspace, f"{base}?group_by={dims}&format=csv", role)
        assert "SECRET" not in text
    asked = client.get(f"{base}?audience=staff", headers=bearer(workspace, role))
    assert asked.status_code == 403
    assert client.get("/api/reports/pivot", headers=bearer(workspace, role)).status_code == 403


def test_pivot_csv_round_trip(client: TestClient, workspace: Workspace, fixture: Fixture) -> None:
    query = "group_by=priority,category&measures=age_days,cycle_days"
    base = f"/api/projects/{fixture.project}/reports/pivot?{query}"
    as_json = pivot(client, workspace, base)
    text = pivot(client, workspace, base + "&format=csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(as_json["rows"])
    for row, expected in zip(rows, as_json["rows"], strict=True):
        assert {"priority": row["priority"], "category": row["category"]} == expected["key"]
        assert int(row["count"]) == expected["count"]
        for m in ("age_days", "cycle_days"):
            assert float(row[f"sum_{m}"]) == pytest.approx(expected["sums"][m])
            avg = expected["averages"][m]
            assert (row[f"avg_{m}"] == "") if avg is None else float(row[f"avg_{m}"]) == pytest.approx(avg)


def test_portfolio_pivot_by_client(client: TestClient, workspace: Workspace, fixture: Fixture) -> None:
    p = pivot(client, workspace, "/api/reports/pivot?group_by=client,visibility")
    counts = {(r["key"]["client"], r["key"]["visibility"]): r["count"] for r in p["rows"]}
    # Client X: PX (2 shared + 1 internal... as seeded) and the fixture; Client Y: PY.
    assert counts[("Client X", "internal")] == 1 + 3
    assert counts[("Client Y", "shared")] == 1
    shared = pivot(client, workspace, "/api/reports/pivot?group_by=client&audience=shared")
    assert "internal" not in str(shared)
