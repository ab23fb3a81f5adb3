"""A hand-built project whose KPIs are known exactly (tests/test_reports.py states them).

Tasks (S = shared, I = internal (INT in the code); ages relative to the moment it is built):

| # | vis | status  | milestone | other                                                    |
|---|-----|---------|-----------|----------------------------------------------------------|
| 1 | S   | done    | M1        | created -20 d, completed -10 d, high                      |
| 2 | S   | done    | M1        | created -20 d, completed -3 d                             |
| 3 | S   | active  | M1        | created -13 d, due 2 days ago (overdue)                   |
| 4 | S   | blocked | -         | assigned to the customer, last changed -5 d (waiting)     |
| 5 | S   | todo    | M1        | created -1 d, due in 10 days                              |
| 6 | I   | done    | M2        | created -20 d, completed -2 d; action item on "speed"     |
| 7 | I   | todo    | M2        | created -8 d, due yesterday (overdue); action on "speed"  |
| 8 | I   | active  | -         | assigned to staff, created -2 d                           |

Comments (task 1): customer t0, staff shared t0+2h; customer t0+5h and t0+6h, staff internal t0+6.5h, staff shared
t0+9h. Task 3: one customer comment, unanswered. -> responses 2 h, 4 h, 3 h; 1 pending.
Requests: +1 h/+10 h (accepted), +3 h/+30 h (declined), +5 h/open, no answer yet.
Feedback: round 1 (M1, -10 d): 4 "Quick replies from the team" / "Unclear scope at the start", and 2 "" / "Slow
deploys and bugs"; round 2 (on demand, -1 d): 5 "Great communication" / "".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from server.board.rules import default_statuses
from server.db import Database
from server.models import (
    Comment,
    FeedbackAction,
    FeedbackAnswer,
    FeedbackRequest,
    Membership,
    Milestone,
    Project,
    ProjectRole,
    Request,
    Task,
    Visibility,
)
from tests.workspace import Workspace

S, INT = Visibility.SHARED, Visibility.INTERNAL


@dataclass
class Fixture:
    project: int
    now: dt.datetime
    ids: dict[str, int] = field(default_factory=dict)


async def build_report_fixture(url: str, ws: Workspace) -> Fixture:
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    days = lambda n: now - dt.timedelta(days=n)  # noqa: E731
    db = Database(url)
    try:
        async with db.session() as session:

            async def add(obj: object) -> int:
                session.add(obj)
                await session.flush()
                return getattr(obj, "id")  # type: ignore[no-any-return]  # noqa: B009

            pid = await add(Project(organization_id=ws.ids["org_a"], client_id=ws.ids["client_x"], name="Report R"))
            fx = Fixture(pid, now)
            for user, role in (
                ("staff", ProjectRole.MEMBER),
                ("customer", ProjectRole.CUSTOMER),
                ("spare_customer", ProjectRole.CUSTOMER),
                ("viewer", ProjectRole.VIEWER),
            ):
                session.add(Membership(project_id=pid, user_id=ws.users[user], role=role))
            todo, active, blocked, done = [await add(s) for s in default_statuses(pid)]
            fx.ids.update(todo=todo, active=active, blocked=blocked, done=done)
            m1 = await add(
                Milestone(project_id=pid, name="R shared M1", visibility=S, due_date=today + dt.timedelta(days=30))
            )
            m2 = await add(Milestone(project_id=pid, name="R internal milestone SECRET", visibility=INT))
            fx.ids.update(m1=m1, m2=m2)
            rows = [
                (S, done, m1, None, None, 20, 10, "high"),
                (S, done, m1, None, None, 20, 3, "normal"),
                (S, active, m1, None, today - dt.timedelta(days=2), 13, None, "normal"),
                (S, blocked, None, "customer", None, 6, None, "normal"),
                (S, todo, m1, None, today + dt.timedelta(days=10), 1, None, "low"),
                (INT, done, m2, None, None, 20, 2, "normal"),
                (INT, todo, m2, None, today - dt.timedelta(days=1), 8, None, "urgent"),
                (INT, active, None, "staff", None, 2, None, "normal"),
            ]
            for n, (vis, status, ms, who, due, created, completed, priority) in enumerate(rows, start=1):
                fx.ids[f"t{n}"] = await add(
                    Task(
                        project_id=pid,
                        title=f"R task {n}" + (" SECRET" if vis == INT else ""),
                        status_id=status,
                        visibility=vis,
                        milestone_id=ms,
                        assignee_id=ws.users[who] if who else None,
                        due_date=due,
                        priority=priority,
                        created_at=days(created),
                        updated_at=days(5) if n == 4 else days(created),
                        completed_at=days(completed) if completed is not None else None,
                    )
                )
            t0 = days(4)
            hours = lambda h: t0 + dt.timedelta(hours=h)  # noqa: E731
            for task, author, vis, at in (
                ("t1", "customer", S, 0),
                ("t1", "staff", S, 2),
                ("t1", "customer", S, 5),
                ("t1", "customer", S, 6),
                ("t1", "staff", INT, 6.5),
                ("t1", "staff", S, 9),
                ("t3", "customer", S, 1),
            ):
                session.add(
                    Comment(
                        task_id=fx.ids[task],
                        project_id=pid,
                        author_id=ws.users[author],
                        body="c",
                        body_html="<p>c</p>",
                        visibility=vis,
                        created_at=hours(at),
                    )
                )
            for status, first, resolved in (
                ("accepted", 1, 10),
                ("declined", 3, 30),
                ("open", 5, None),
                ("open", None, None),
            ):
                session.add(
                    Request(
                        project_id=pid,
                        title=f"R request {status}",
                        status=status,
                        created_by_id=ws.users["customer"],
                        created_at=t0,
                        first_response_at=hours(first) if first is not None else None,
                        resolved_at=hours(resolved) if resolved is not None else None,
                    )
                )
            r1 = await add(FeedbackRequest(project_id=pid, milestone_id=m1, created_at=days(10)))
            r2 = await add(FeedbackRequest(project_id=pid, created_at=days(1)))
            fx.ids.update(r1=r1, r2=r2)
            for req, ms, user, score, helped, hindered in (
                (r1, m1, "customer", 4, "Quick replies from the team", "Unclear scope at the start"),
                (r1, m1, "spare_customer", 2, "", "Slow deploys and bugs"),
                (r2, None, "customer", 5, "Great communication", ""),
            ):
                session.add(
                    FeedbackAnswer(
                        request_id=req,
                        project_id=pid,
                        milestone_id=ms,
                        user_id=ws.users[user],
                        score=score,
                        helped=helped,
                        hindered=hindered,
                    )
                )
            for task in ("t6", "t7"):
                session.add(FeedbackAction(project_id=pid, theme="speed", task_id=fx.ids[task]))
            await session.commit()
        return fx
    finally:
        await db.close()
