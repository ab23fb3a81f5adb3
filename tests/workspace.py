"""A small two-tenant workspace for tests, with known session tokens for every role.

Organization A has two clients, X and Y. Project PX belongs to X, PY to Y. Organization B is a stranger.
Roles: ``owner`` (admin of A), ``staff`` (staff of A, member of PX), ``customer`` (of X, customer on PX),
``viewer`` (of X, viewer on PX), ``other_customer`` (of Y, customer on PY), ``stranger`` (owner of B).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel.ext.asyncio.session import AsyncSession

from server import migrate
from server.board.rules import default_statuses
from server.db import Database, utcnow
from server.models import (
    ActivityEvent,
    AuthSession,
    Client,
    Comment,
    FeedbackRequest,
    FileVersion,
    Invite,
    Membership,
    Milestone,
    Note,
    NoteUpdate,
    NoteVersion,
    Organization,
    OrgRole,
    Project,
    ProjectRole,
    Request,
    RequestEvent,
    RequestField,
    StoredFile,
    Task,
    User,
    Visibility,
    Webhook,
    WorkflowTemplate,
)
from server.security import hash_password, token_hash

PASSWORD = "correct horse battery"
INVITE_TOKEN = "invite-token-" + "i" * 30
ROLES = ("owner", "staff", "customer", "viewer", "other_customer", "stranger")


@dataclass
class Workspace:
    users: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def token(self, role: str) -> str:
        return self.tokens[role]


def seed_database(url: str) -> Workspace:
    """Migrate the empty database at ``url`` to head and build the workspace in it (outside any event loop)."""
    migrate.upgrade(url)

    async def seed() -> Workspace:
        db = Database(url)
        try:
            return await build_workspace(db)
        finally:
            await db.close()

    return asyncio.run(seed())


async def build_workspace(db: Database) -> Workspace:
    ws = Workspace()
    async with db.session() as session:
        await _build(session, ws)
        await session.commit()
    return ws


async def _add(session: AsyncSession, obj: object) -> int:
    session.add(obj)
    await session.flush()
    obj_id = getattr(obj, "id")  # noqa: B009
    assert isinstance(obj_id, int)
    return obj_id


async def _build(session: AsyncSession, ws: Workspace) -> None:
    org_a = await _add(session, Organization(name="Agency A", slug="agency-a"))
    org_b = await _add(session, Organization(name="Agency B", slug="agency-b"))
    client_x = await _add(session, Client(organization_id=org_a, name="Client X"))
    client_y = await _add(session, Client(organization_id=org_a, name="Client Y"))
    client_b = await _add(session, Client(organization_id=org_b, name="Client of B"))
    hashed = hash_password(PASSWORD)
    people = {
        "owner": (org_a, None, OrgRole.OWNER),
        "staff": (org_a, None, OrgRole.STAFF),
        "customer": (org_a, client_x, OrgRole.CUSTOMER),
        "viewer": (org_a, client_x, OrgRole.CUSTOMER),
        "other_customer": (org_a, client_y, OrgRole.CUSTOMER),
        "stranger": (org_b, None, OrgRole.OWNER),
        "spare_staff": (org_a, None, OrgRole.STAFF),
        "spare_customer": (org_a, client_x, OrgRole.CUSTOMER),
    }
    now = utcnow()
    for role, (org, client, org_role) in people.items():
        email = f"{role}@example.test"
        user_id = await _add(
            session,
            User(
                organization_id=org,
                client_id=client,
                email=email,
                name=role.replace("_", " ").title(),
                role=org_role,
                password_hash=hashed,
            ),
        )
        ws.users[role] = user_id
        ws.emails[role] = email
        token = f"token-{role}-" + "x" * 24
        ws.tokens[role] = token
        session.add(
            AuthSession(
                user_id=user_id,
                token_hash=token_hash(token),
                created_at=now,
                last_seen_at=now,
                expires_at=now + dt.timedelta(days=1),
            )
        )
    px = await _project(session, org_a, client_x, "PX")
    py = await _project(session, org_a, client_y, "PY")
    pb = await _project(session, org_b, client_b, "PB")
    ws.ids.update(org_a=org_a, org_b=org_b, client_x=client_x, client_y=client_y, px=px, py=py, pb=pb)
    for project, user, role in (
        (px, "staff", ProjectRole.MEMBER),
        (px, "customer", ProjectRole.CUSTOMER),
        (px, "viewer", ProjectRole.VIEWER),
        (py, "other_customer", ProjectRole.CUSTOMER),
    ):
        session.add(Membership(project_id=project, user_id=ws.users[user], role=role))
    for key, project in (("px", px), ("py", py), ("pb", pb)):
        statuses = [await _add(session, s) for s in default_statuses(project)]
        ws.ids[f"{key}_todo"], ws.ids[f"{key}_active"], ws.ids[f"{key}_blocked"], ws.ids[f"{key}_done"] = statuses
        shared_ms = await _add(
            session, Milestone(project_id=project, name=f"{key} shared milestone", visibility=Visibility.SHARED)
        )
        internal_ms = await _add(
            session, Milestone(project_id=project, name=f"{key} internal milestone", visibility=Visibility.INTERNAL)
        )
        ws.ids[f"{key}_shared_milestone"], ws.ids[f"{key}_internal_milestone"] = shared_ms, internal_ms
        ws.ids[f"{key}_shared_task"] = await _add(
            session,
            Task(
                project_id=project,
                title=f"{key} shared task",
                status_id=statuses[0],
                visibility=Visibility.SHARED,
                milestone_id=shared_ms,
            ),
        )
        ws.ids[f"{key}_internal_task"] = await _add(
            session,
            Task(
                project_id=project,
                title=f"{key} internal task SECRET",
                status_id=statuses[0],
                visibility=Visibility.INTERNAL,
            ),
        )
    ws.ids["px_invite"] = await _add(
        session,
        Invite(
            organization_id=org_a,
            project_id=px,
            email="invited@example.test",
            role=ProjectRole.CUSTOMER,
            token_hash=token_hash(INVITE_TOKEN),
            created_at=now,
            expires_at=now + dt.timedelta(hours=1),
        ),
    )
    px_task = ws.ids["px_shared_task"]
    ws.ids["px_shared_comment"] = await _add(
        session,
        Comment(
            task_id=px_task,
            project_id=px,
            author_id=ws.users["staff"],
            body="px shared comment",
            body_html="<p>px shared comment</p>",
            visibility=Visibility.SHARED,
        ),
    )
    ws.ids["px_internal_comment"] = await _add(
        session,
        Comment(
            task_id=px_task,
            project_id=px,
            author_id=ws.users["staff"],
            body="px internal comment SECRET",
            body_html="<p>px internal comment SECRET</p>",
            visibility=Visibility.INTERNAL,
        ),
    )
    ws.ids["px_customer_comment"] = await _add(
        session,
        Comment(
            task_id=px_task,
            project_id=px,
            author_id=ws.users["customer"],
            body="px customer comment",
            body_html="<p>px customer comment</p>",
            visibility=Visibility.SHARED,
        ),
    )
    ws.ids["px_customer_task"] = await _add(
        session,
        Task(
            project_id=px,
            title="px waiting on customer",
            status_id=ws.ids["px_blocked"],
            visibility=Visibility.SHARED,
            assignee_id=ws.users["customer"],
            due_date=dt.date.today() - dt.timedelta(days=2),
        ),
    )
    await _notes(session, ws, px)
    await _requests_and_files(session, ws, px, org_a)
    # Feedback (tests/test_feedback.py): one open request on PX, asked on demand, not answered yet.
    ws.ids["px_feedback_request"] = await _add(session, FeedbackRequest(project_id=px))
    # Webhooks (tests/test_webhooks.py): turned off, so no other test sends anything anywhere.
    for audience in (Visibility.INTERNAL, Visibility.SHARED):
        ws.ids[f"px_{audience}_webhook"] = await _add(
            session,
            Webhook(
                project_id=px,
                url=f"http://127.0.0.1:9/{audience}",
                description=f"px {audience} webhook" + (" SECRET" if audience == Visibility.INTERNAL else ""),
                secret="whsec_seeded-" + "s" * 20,
                events="task.status_changed,comment.created",
                audience=audience,
                enabled=False,
                created_by_id=ws.users["owner"],
            ),
        )


async def _notes(session: AsyncSession, ws: Workspace, px: int) -> None:
    from crdt.document import content_update

    for key, visibility, text in (
        ("px_shared_note", Visibility.SHARED, "px shared note text"),
        ("px_internal_note", Visibility.INTERNAL, "px internal note SECRET"),
    ):
        title = text.replace(" text", "")
        note_id = await _add(
            session, Note(project_id=px, title=title, visibility=visibility, created_by_id=ws.users["staff"])
        )
        ws.ids[key] = note_id
        session.add(NoteUpdate(note_id=note_id, data=content_update(text)))
    ws.ids["px_shared_note_version"] = await _add(
        session,
        NoteVersion(
            note_id=ws.ids["px_shared_note"],
            name="after the review",
            data=content_update("px shared note text"),
            visibility=Visibility.SHARED,
            created_by_id=ws.users["staff"],
        ),
    )


async def _project(session: AsyncSession, org: int, client: int, name: str) -> int:
    return await _add(session, Project(organization_id=org, client_id=client, name=name))


# Contents of the seeded files' blobs, by storage key: tests/conftest.py writes them into each test's storage.
SEED_BLOBS: dict[str, bytes] = {
    "seed/px-shared-file": b"px shared file contents\n",
    "seed/px-internal-file": b"px internal file SECRET contents\n",
    "seed/px-customer-file": b"px customer file contents\n",
}


def write_seed_blobs(root: Path) -> None:
    for key, data in SEED_BLOBS.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)


async def _requests_and_files(session: AsyncSession, ws: Workspace, px: int, org_a: int) -> None:
    import json

    ws.ids["px_request_field"] = await _add(
        session,
        RequestField(
            project_id=px, key="browser", label="Browser", kind="choice", options=json.dumps(["Firefox", "Chrome"])
        ),
    )
    ws.ids["px_request"] = await _add(
        session,
        Request(
            project_id=px,
            title="px request: the logo is blurry",
            description="On the start page.",
            fields=json.dumps({"browser": "Firefox"}),
            created_by_id=ws.users["customer"],
        ),
    )
    # A customer's reply in the request's history (tests/test_feedback_marks.py marks such replies).
    ws.ids["px_customer_request_reply"] = await _add(
        session,
        RequestEvent(
            request_id=ws.ids["px_request"], kind="replied", actor_id=ws.users["customer"], text="px customer reply"
        ),
    )
    for key, visibility, name, uploader in (
        ("px_shared_file", Visibility.SHARED, "brief.txt", "staff"),
        ("px_internal_file", Visibility.INTERNAL, "margins SECRET.txt", "staff"),
        ("px_customer_file", Visibility.SHARED, "from the customer.txt", "customer"),
    ):
        data = SEED_BLOBS["seed/" + key.replace("_", "-")]
        file_id = await _add(
            session,
            StoredFile(
                project_id=px,
                visibility=visibility,
                name=name,
                content_type="text/plain",
                size=len(data),
                uploaded_by_id=ws.users[uploader],
            ),
        )
        ws.ids[key] = file_id
        session.add(
            FileVersion(
                file_id=file_id,
                number=1,
                storage_key="seed/" + key.replace("_", "-"),
                name=name,
                content_type="text/plain",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                uploaded_by_id=ws.users[uploader],
            )
        )
    # Activity (server/activity/rules.py): a shared event, an internal one, and one that was shared when it happened on
    # a
    # task internal now: customers' feeds hold only the first.
    for task_key, visibility in (
        ("px_shared_task", Visibility.SHARED),
        ("px_internal_task", Visibility.INTERNAL),
        ("px_internal_task", Visibility.SHARED),
    ):
        session.add(
            ActivityEvent(
                project_id=px,
                kind="task.created",
                visibility=visibility,
                task_id=ws.ids[task_key],
                actor_id=ws.users["staff"],
                title="px shared task" if task_key == "px_shared_task" else "px internal task SECRET",
            )
        )
    ws.ids["org_a_template"] = await _add(
        session,
        WorkflowTemplate(
            organization_id=org_a,
            name="Agency flow",
            statuses=json.dumps(
                [
                    {"name": "To do", "category": "todo", "colour": "#8b949e", "wip_limit": None},
                    {"name": "Doing", "category": "active", "colour": "#1f6feb", "wip_limit": 3},
                    {"name": "Done", "category": "done", "colour": "#2da44e", "wip_limit": None},
                ]
            ),
        ),
    )
