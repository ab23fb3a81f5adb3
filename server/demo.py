"""A demo workspace a newcomer can sign into: two clients, their projects, tasks of every colour class,
shared and internal items, milestones, co-edited notes, a request waiting on the customer and a workflow template.
Seeding is idempotent: an existing demo organization is left as it is."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crdt.document import content_update
from server.board.rules import default_statuses, today_utc
from server.db import Database
from server.models import (
    Client,
    Membership,
    Milestone,
    Note,
    NoteUpdate,
    Organization,
    OrgRole,
    Priority,
    Project,
    ProjectRole,
    Request,
    RequestEvent,
    RequestStatus,
    Status,
    StatusCategory,
    Task,
    User,
    Visibility,
    WorkflowTemplate,
)
from server.security import hash_password

DEMO_SLUG = "demo"
DEMO_PASSWORD = "northwind-demo-2026"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    name: str
    role: str
    note: str


DEMO_LOGINS = (
    DemoLogin("owner@demo.tandem.test", "Olivia Owner", OrgRole.OWNER, "owner of Northwind Studio"),
    DemoLogin("staff@demo.tandem.test", "Sam Staff", OrgRole.STAFF, "staff, manages the Acme projects"),
    DemoLogin("anna@acme.test", "Anna Andersson", OrgRole.CUSTOMER, "customer at Acme (Swedish)"),
    DemoLogin("gary@globex.test", "Gary Globex", OrgRole.CUSTOMER, "customer at Globex"),
)


async def seed_demo(db: Database) -> bool:
    """Create the demo organization unless it exists.

    Returns:
        True if it was created now.
    """
    async with db.session() as session:
        exists = (await session.exec(select(Organization).where(Organization.slug == DEMO_SLUG))).first()
        if exists is not None:
            return False
        await _seed(session)
        await session.commit()
    return True


async def _seed(session: AsyncSession) -> None:
    org = Organization(name="Northwind Studio", slug=DEMO_SLUG)
    session.add(org)
    await session.flush()
    assert org.id is not None
    acme = Client(organization_id=org.id, name="Acme AB")
    globex = Client(organization_id=org.id, name="Globex Inc.")
    session.add_all([acme, globex])
    await session.flush()
    password = hash_password(DEMO_PASSWORD)
    client_of = {"anna@acme.test": acme.id, "gary@globex.test": globex.id}
    users: dict[str, User] = {}
    for login in DEMO_LOGINS:
        user = User(
            organization_id=org.id,
            client_id=client_of.get(login.email),
            email=login.email,
            name=login.name,
            role=login.role,
            password_hash=password,
            locale="sv" if login.email.endswith("acme.test") else "en",
        )
        session.add(user)
        users[login.email] = user
    await session.flush()
    staff, anna, gary = users["staff@demo.tandem.test"], users["anna@acme.test"], users["gary@globex.test"]

    web = await _project(
        session,
        org.id,
        acme,
        "Website relaunch",
        "New acme.se with a shop and a blog.",
        [(staff, ProjectRole.MANAGER), (anna, ProjectRole.CUSTOMER)],
    )
    app = await _project(
        session,
        org.id,
        acme,
        "Mobile app",
        "Field-service app for Acme's technicians.",
        [(staff, ProjectRole.MEMBER), (anna, ProjectRole.VIEWER)],
    )
    portal = await _project(
        session,
        org.id,
        globex,
        "Partner portal",
        "Self-service portal for Globex partners.",
        [(gary, ProjectRole.CUSTOMER)],
    )
    today = today_utc()

    def day(offset: int) -> dt.date:
        return today + dt.timedelta(days=offset)

    await _tasks(
        session,
        web,
        staff,
        anna,
        [
            ("Approve the visual design", StatusCategory.BLOCKED, anna, day(-3), Visibility.SHARED, Priority.HIGH),
            ("Send product texts and photos", StatusCategory.TODO, anna, day(2), Visibility.SHARED, Priority.NORMAL),
            ("Confirm shipping zones", StatusCategory.TODO, anna, day(20), Visibility.SHARED, Priority.LOW),
            ("Build the product catalogue", StatusCategory.ACTIVE, staff, day(10), Visibility.SHARED, Priority.NORMAL),
            ("Set up staging server", StatusCategory.DONE, staff, day(-10), Visibility.SHARED, Priority.NORMAL),
            (
                "Check margin on the fixed-price deal",
                StatusCategory.TODO,
                staff,
                day(1),
                Visibility.INTERNAL,
                Priority.URGENT,
            ),
            ("Load-test checkout", StatusCategory.TODO, staff, day(14), Visibility.INTERNAL, Priority.NORMAL),
        ],
        milestone=("Launch", day(30)),
    )
    await _tasks(
        session,
        app,
        staff,
        None,
        [
            ("Offline job list", StatusCategory.ACTIVE, staff, day(5), Visibility.SHARED, Priority.HIGH),
            ("Push notifications", StatusCategory.TODO, staff, None, Visibility.SHARED, Priority.NORMAL),
            ("Spike: map SDK licence", StatusCategory.TODO, staff, day(-1), Visibility.INTERNAL, Priority.NORMAL),
        ],
        milestone=("Beta", day(45)),
    )
    await _tasks(
        session,
        portal,
        staff,
        gary,
        [
            ("Provide SSO metadata", StatusCategory.BLOCKED, gary, day(-5), Visibility.SHARED, Priority.HIGH),
            ("Partner sign-up flow", StatusCategory.ACTIVE, staff, day(3), Visibility.SHARED, Priority.NORMAL),
            ("Kick-off workshop", StatusCategory.DONE, staff, day(-20), Visibility.SHARED, Priority.NORMAL),
            ("Decide on hosting region", StatusCategory.TODO, staff, day(12), Visibility.INTERNAL, Priority.NORMAL),
        ],
        milestone=("Pilot", day(21)),
    )
    await _notes_and_requests(session, web, staff, anna)
    session.add(
        WorkflowTemplate(
            organization_id=org.id,
            name="Website project",
            statuses=json.dumps(
                [
                    {"name": "Backlog", "category": "todo", "colour": "#8b949e", "wip_limit": None},
                    {"name": "Design", "category": "active", "colour": "#8250df", "wip_limit": None},
                    {"name": "Build", "category": "active", "colour": "#1f6feb", "wip_limit": 4},
                    {"name": "Waiting on client", "category": "blocked", "colour": "#bf8700", "wip_limit": None},
                    {"name": "Live", "category": "done", "colour": "#2da44e", "wip_limit": None},
                ]
            ),
        )
    )


LAUNCH_PLAN = """# Launch plan

We go live when the **Launch** milestone is reached.

## Before launch
- Product texts and photos from Acme
- Shipping zones confirmed
- Checkout tested with real cards

## Launch day
1. Freeze content at 09:00
2. Switch DNS
3. Watch orders for the first hour
"""


async def _notes_and_requests(session: AsyncSession, project: Project, staff: User, customer: User) -> None:
    """A shared note with content, an internal one, and a request staff asked the customer about."""
    assert project.id is not None and staff.id is not None and customer.id is not None
    for title, visibility, text in (
        ("Launch plan", Visibility.SHARED, LAUNCH_PLAN),
        ("Pricing notes", Visibility.INTERNAL, "# Pricing notes\n\nFixed price; keep change requests separate.\n"),
    ):
        note = Note(project_id=project.id, title=title, visibility=visibility, created_by_id=staff.id)
        session.add(note)
        await session.flush()
        assert note.id is not None
        session.add(NoteUpdate(note_id=note.id, data=content_update(text)))
    now = dt.datetime.now(dt.UTC)
    request = Request(
        project_id=project.id,
        title="Add gift cards to the shop",
        description="Customers ask for gift cards before Christmas.",
        status=RequestStatus.NEEDS_INFO,
        created_by_id=customer.id,
        first_response_at=now,
    )
    session.add(request)
    await session.flush()
    assert request.id is not None
    session.add_all(
        [
            RequestEvent(request_id=request.id, kind="filed", actor_id=customer.id, created_at=now),
            RequestEvent(
                request_id=request.id,
                kind="asked",
                actor_id=staff.id,
                text="Which amounts should the gift cards have, and may they be used in the physical stores?",
                created_at=now,
            ),
        ]
    )


async def _project(
    session: AsyncSession, org_id: int, client: Client, name: str, description: str, members: list[tuple[User, str]]
) -> Project:
    assert client.id is not None
    project = Project(organization_id=org_id, client_id=client.id, name=name, description=description)
    session.add(project)
    await session.flush()
    assert project.id is not None
    session.add_all(default_statuses(project.id))
    for user, role in members:
        assert user.id is not None
        session.add(Membership(project_id=project.id, user_id=user.id, role=role))
    await session.flush()
    return project


Row = tuple[str, StatusCategory, User | None, dt.date | None, Visibility, Priority]


async def _tasks(
    session: AsyncSession,
    project: Project,
    creator: User,
    customer: User | None,
    rows: list[Row],
    milestone: tuple[str, dt.date],
) -> None:
    assert project.id is not None
    statuses = (
        await session.exec(select(Status).where(Status.project_id == project.id).order_by(col(Status.position)))
    ).all()
    by_category = {s.category: s for s in statuses}
    stone = Milestone(project_id=project.id, name=milestone[0], due_date=milestone[1], visibility=Visibility.SHARED)
    session.add(stone)
    await session.flush()
    for position, (title, category, assignee, due, visibility, priority) in enumerate(rows, start=1):
        status = by_category[category]
        assert status.id is not None
        session.add(
            Task(
                project_id=project.id,
                title=title,
                status_id=status.id,
                assignee_id=assignee.id if assignee else None,
                due_date=due,
                priority=priority,
                milestone_id=stone.id if visibility == Visibility.SHARED else None,
                visibility=visibility,
                position=position,
                created_by_id=creator.id,
                completed_at=dt.datetime.now(dt.UTC) if category == StatusCategory.DONE else None,
            )
        )
    await session.flush()
