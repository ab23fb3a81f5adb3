"""Tandem's domain, as stored.

Organization (the service provider, the tenant) -> Clients (customer companies) -> Users (staff, or customer users of
one client) -> Projects (one client each) with Memberships -> per-project workflow Statuses -> Tasks and Milestones.

Every item a customer could see has a ``visibility``: ``internal`` items are for staff only, ``shared`` items are
for everyone on the project. Enumerations are stored as short strings, not native database enums, so adding a
value never needs an ``ALTER TYPE``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from server.db import UTCDateTime, utcnow

# Named constraints, so migrations can refer to them on SQLite (batch mode) and PostgreSQL alike.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class OrgRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    STAFF = "staff"
    CUSTOMER = "customer"


STAFF_ROLES = frozenset({OrgRole.OWNER, OrgRole.ADMIN, OrgRole.STAFF})


class ProjectRole(StrEnum):
    MANAGER = "manager"
    MEMBER = "member"
    CUSTOMER = "customer"
    VIEWER = "viewer"


STAFF_PROJECT_ROLES = frozenset({ProjectRole.MANAGER, ProjectRole.MEMBER})
CUSTOMER_PROJECT_ROLES = frozenset({ProjectRole.CUSTOMER, ProjectRole.VIEWER})


class Visibility(StrEnum):
    INTERNAL = "internal"
    SHARED = "shared"


class StatusCategory(StrEnum):
    TODO = "todo"
    ACTIVE = "active"
    BLOCKED = "blocked"
    DONE = "done"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class ColourClass(StrEnum):
    """How urgent a task looks on a board, computed by the server so every client shows the same."""

    OVERDUE = "overdue"
    DUE_SOON = "due_soon"
    ON_TRACK = "on_track"
    DONE = "done"


def _ts() -> dt.datetime:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)  # type: ignore[no-any-return]


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    slug: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = _ts()
    # Customers may always ask for a sign-in link by email; staff only where the organization allows it.
    allow_staff_link_sign_in: bool = Field(default=False)
    # Whether staff, and separately customers, must sign in with a second factor (a passkey or authenticator
    # codes); a person without one is walked through enrolment at their next sign-in.
    require_second_factor_staff: bool = Field(default=False)
    require_second_factor_customers: bool = Field(default=False)


class Client(SQLModel, table=True):
    __tablename__ = "clients"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organizations.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    created_at: dt.datetime = _ts()


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organizations.id", index=True, ondelete="CASCADE")
    # Set for customer users only: the client company they belong to.
    client_id: int | None = Field(default=None, foreign_key="clients.id", index=True, ondelete="CASCADE")
    email: str = Field(max_length=254, unique=True)
    name: str = Field(max_length=200)
    role: str = Field(sa_type=String(16))
    password_hash: str = Field(max_length=200)
    locale: str = Field(default="en", max_length=8)
    is_active: bool = Field(default=True)
    created_at: dt.datetime = _ts()
    last_login_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


class Project(SQLModel, table=True):
    __tablename__ = "projects"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organizations.id", index=True, ondelete="CASCADE")
    client_id: int = Field(foreign_key="clients.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=10_000)
    archived: bool = Field(default=False)
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_id", "user_id", name="uq_membership_project_user"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    role: str = Field(sa_type=String(16))
    created_at: dt.datetime = _ts()


class Status(SQLModel, table=True):
    """One column of a project's workflow."""

    __tablename__ = "statuses"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=80)
    category: str = Field(sa_type=String(16))
    colour: str = Field(max_length=16)
    position: int = Field(default=0)
    # At most this many tasks may stand in the status; None: no limit.
    wip_limit: int | None = Field(default=None)
    # Open shared tasks in this status wait on the project's customers (server/waiting/rules.py).
    waits_on_customer: bool = Field(default=False)


class Milestone(SQLModel, table=True):
    __tablename__ = "milestones"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    due_date: dt.date | None = Field(default=None)
    visibility: str = Field(sa_type=String(16))
    completed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = _ts()


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_project_status", "project_id", "status_id"),
        Index("ix_tasks_assignee_due", "assignee_id", "due_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True, ondelete="CASCADE")
    title: str = Field(max_length=300)
    description: str = Field(default="", max_length=20_000)
    status_id: int = Field(foreign_key="statuses.id")  # NO ACTION: checked at statement end
    # A staff member, or a customer user: then the task is waiting on the customer.
    assignee_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    due_date: dt.date | None = Field(default=None)
    priority: str = Field(default=Priority.NORMAL, sa_type=String(16))
    milestone_id: int | None = Field(default=None, foreign_key="milestones.id", index=True, ondelete="SET NULL")
    visibility: str = Field(sa_type=String(16))
    position: int = Field(default=0)
    # Bumped on every change: clients drop events older than the state they hold.
    version: int = Field(default=1)
    created_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()
    completed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuthSession(SQLModel, table=True):
    """A signed-in session. Only the SHA-256 of its token is stored."""

    __tablename__ = "auth_sessions"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    created_at: dt.datetime = _ts()
    expires_at: dt.datetime = _ts()
    last_seen_at: dt.datetime = _ts()
    user_agent: str = Field(default="", max_length=300)
    # The address the session signed in from, as the server saw it (behind a proxy, what it forwarded).
    ip: str = Field(default="", max_length=64)
    # Signed in with a password only, where the organization requires a second factor the person has not set up
    # yet: such a session may do nothing but enrol (server/accounts/second_factor.py) or sign out.
    needs_enrolment: bool = Field(default=False)


class TotpFactor(SQLModel, table=True):
    """A person's authenticator-app secret (TOTP, RFC 6238). Unconfirmed until a first code proves the app has it;
    ``last_step`` is the last time step accepted, so a code cannot be used twice."""

    __tablename__ = "totp_factors"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", unique=True, ondelete="CASCADE")
    secret: str = Field(max_length=64)
    created_at: dt.datetime = _ts()
    confirmed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_step: int = Field(default=0, sa_type=BigInteger)


class RecoveryCode(SQLModel, table=True):
    """A one-time recovery code, stored as its SHA-256 only; spent when ``used_at`` is set."""

    __tablename__ = "recovery_codes"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    code_hash: str = Field(sa_type=String(64))
    created_at: dt.datetime = _ts()
    used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class Passkey(SQLModel, table=True):
    """A WebAuthn credential (a passkey): its id and public key as the authenticator gave them at registration."""

    __tablename__ = "passkeys"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    # base64url, as browsers name credentials.
    credential_id: str = Field(sa_column=Column(String(1400), unique=True, nullable=False))
    public_key: bytes = Field(sa_type=LargeBinary)
    sign_count: int = Field(default=0, sa_type=BigInteger)
    transports: str = Field(default="", max_length=200)
    created_at: dt.datetime = _ts()
    last_used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class KnownDevice(SQLModel, table=True):
    """A browser a person has signed in from (the SHA-256 of a random long-lived cookie): a sign-in from any
    other is a new device, and mailed."""

    __tablename__ = "known_devices"
    __table_args__ = (UniqueConstraint("user_id", "device_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    device_hash: str = Field(sa_type=String(64))
    created_at: dt.datetime = _ts()


class ApiToken(SQLModel, table=True):
    """A personal API token for scripts (``tnd_...``). Only the SHA-256 of the token is stored; it acts as its
    owner, narrowed to its ``scopes``, until it expires or is revoked (the row is deleted)."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    # Space-separated, as in OAuth: "read write".
    scopes: str = Field(max_length=100)
    created_at: dt.datetime = _ts()
    expires_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditEvent(SQLModel, table=True):
    """A security-relevant event: who did what to which target, from where. Written in the transaction of the
    change it records; never holds a password, token or other secret."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_created", "organization_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    # Null only for failed sign-ins with an unknown email: no organization to show them to.
    organization_id: int | None = Field(default=None, foreign_key="organizations.id", ondelete="CASCADE")
    actor_id: int | None = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")
    action: str = Field(max_length=64, index=True)
    target_type: str = Field(default="", max_length=32)
    target_id: int | None = Field(default=None)
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)
    # JSON object with what else matters (old and new role, visibility, export format...).
    details: str = Field(default="{}", sa_type=Text)
    created_at: dt.datetime = _ts()
    # The hash chain (server/audit/chain.py): the previous row's hash, and SHA-256 over this row's fields and it.
    prev_hash: str = Field(default="", max_length=64)
    hash: str = Field(default="", max_length=64)


class AuditChain(SQLModel, table=True):
    """The audit log's hash chain (server/audit/chain.py): one row, id 1, holding the hash of the newest row (appends
    lock it) and the anchor a retention purge leaves (the last deleted row's id and hash)."""

    __tablename__ = "audit_chain"

    id: int | None = Field(default=None, primary_key=True)
    head_hash: str = Field(max_length=64)
    anchor_id: int
    anchor_hash: str = Field(max_length=64)


class PasswordReset(SQLModel, table=True):
    """A password-reset link sent by email. Only the SHA-256 of its token is stored; it works once (the row is
    deleted when used), until it expires."""

    __tablename__ = "password_resets"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    created_at: dt.datetime = _ts()
    expires_at: dt.datetime = _ts()


class SignInLink(SQLModel, table=True):
    """A one-time sign-in link sent by email. Only the SHA-256 of its token is stored, with the SHA-256 of the
    random cookie given to the browser that asked: the link signs in that browser only, once, until it expires."""

    __tablename__ = "sign_in_links"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    browser_hash: str = Field(sa_type=String(64))
    created_at: dt.datetime = _ts()
    expires_at: dt.datetime = _ts()
    used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class Invite(SQLModel, table=True):
    """An invitation to a project. Only the SHA-256 of its token is stored; it works once, until it expires."""

    __tablename__ = "invites"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organizations.id", index=True, ondelete="CASCADE")
    project_id: int = Field(foreign_key="projects.id", index=True, ondelete="CASCADE")
    email: str = Field(max_length=254)
    name: str = Field(default="", max_length=200)
    role: str = Field(sa_type=String(16))
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    invited_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: dt.datetime = _ts()
    expires_at: dt.datetime = _ts()
    accepted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    accepted_user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")


class OutboxEvent(SQLModel, table=True):
    """An event written in the same transaction as the change it describes, published to the hub after commit.

    A change that commits is therefore never lost to live clients, even if the node dies before publishing:
    another node's relay picks up rows left behind (see ``server/live/outbox.py``).
    """

    __tablename__ = "outbox_events"

    id: int | None = Field(default=None, primary_key=True)
    # The channels the event goes to, in this order, separated by spaces: one row per event, not per audience.
    channels: str = Field(sa_type=Text)
    payload: str = Field(sa_type=Text)
    node_id: str = Field(max_length=64, index=True)
    # The event's own id, the same whichever node publishes the row: the broker publishes one event id once per
    # channel, so a row published again (its node died before deleting it, and another node adopted it) is dropped.
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex, max_length=36)
    created_at: dt.datetime = _ts()


class OutboxNode(SQLModel, table=True):
    """A node whose outbox relay is running: it publishes its own rows, so no other node adopts them.

    The relay stamps ``seen_at`` about once a second and deletes its row when it stops; rows of a node not seen
    for ``OutboxRelay.node_ttl`` seconds are another node's to publish (``server/live/outbox.py``).
    """

    __tablename__ = "outbox_nodes"

    node_id: str = Field(max_length=64, primary_key=True)
    seen_at: dt.datetime = _ts()


class Comment(SQLModel, table=True):
    """A message in a task's thread. ``internal`` comments are for staff only, even on a shared task.

    Deleting leaves a tombstone (``deleted_at`` set, body emptied) so everyone who saw it sees it was removed.
    """

    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_task_id_id", "task_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", ondelete="CASCADE")
    project_id: int = Field(foreign_key="projects.id", index=True, ondelete="CASCADE")
    author_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    body: str = Field(sa_type=Text)
    body_html: str = Field(sa_type=Text)
    visibility: str = Field(sa_type=String(16))
    reply_to_id: int | None = Field(default=None, foreign_key="comments.id", ondelete="SET NULL")
    version: int = Field(default=1)
    created_at: dt.datetime = _ts()
    edited_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class CommentRevision(SQLModel, table=True):
    """A comment's earlier text, kept on every edit."""

    __tablename__ = "comment_revisions"

    id: int | None = Field(default=None, primary_key=True)
    comment_id: int = Field(foreign_key="comments.id", index=True, ondelete="CASCADE")
    body: str = Field(sa_type=Text)
    created_at: dt.datetime = _ts()


class Reaction(SQLModel, table=True):
    __tablename__ = "reactions"
    __table_args__ = (UniqueConstraint("comment_id", "user_id", "emoji"),)

    id: int | None = Field(default=None, primary_key=True)
    comment_id: int = Field(foreign_key="comments.id", index=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    emoji: str = Field(max_length=16)
    created_at: dt.datetime = _ts()


class Mention(SQLModel, table=True):
    __tablename__ = "mentions"
    __table_args__ = (UniqueConstraint("comment_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    comment_id: int = Field(foreign_key="comments.id", index=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")


class ReadPosition(SQLModel, table=True):
    """How far a user has read a task's thread: comments with a larger id are unread."""

    __tablename__ = "read_positions"

    user_id: int = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    task_id: int = Field(foreign_key="tasks.id", primary_key=True, ondelete="CASCADE")
    last_read_comment_id: int = Field(default=0)
    updated_at: dt.datetime = _ts()


class Notification(SQLModel, table=True):
    """Something a user should know about (a mention, an assignment...), shown in-app and mailed in digests."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_id", "user_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    kind: str = Field(max_length=32)
    project_id: int | None = Field(default=None, foreign_key="projects.id", ondelete="CASCADE")
    task_id: int | None = Field(default=None, foreign_key="tasks.id", ondelete="CASCADE")
    comment_id: int | None = Field(default=None, foreign_key="comments.id", ondelete="CASCADE")
    request_id: int | None = Field(default=None, foreign_key="requests.id", ondelete="CASCADE")
    actor_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    # The sentence in the recipient's language when it was made (API clients that show it as it is).
    text: str = Field(default="", max_length=500)
    # JSON object: the names and titles the sentence is made of (server/inbox/notify.py says which, per kind).
    params: str = Field(default="{}", sa_type=Text)
    created_at: dt.datetime = _ts()
    read_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    emailed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class Note(SQLModel, table=True):
    """A co-edited note of a project (optionally of one task). Its content lives in the CRDT store (``crdt/``)."""

    __tablename__ = "notes"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True, ondelete="CASCADE")
    task_id: int | None = Field(default=None, foreign_key="tasks.id", index=True, ondelete="SET NULL")
    title: str = Field(max_length=200)
    visibility: str = Field(sa_type=String(16))
    created_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


class NoteUpdate(SQLModel, table=True):
    """One batch of CRDT updates (a Yjs v1 update) appended to a note's log before anyone else received it.

    Compaction folds rows into the note's `NoteSnapshot` and deletes them in the same transaction.
    """

    __tablename__ = "note_updates"
    __table_args__ = (Index("ix_note_updates_note_id_id", "note_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    note_id: int = Field(foreign_key="notes.id", ondelete="CASCADE")
    data: bytes = Field(sa_type=LargeBinary)
    created_at: dt.datetime = _ts()


class NoteSnapshot(SQLModel, table=True):
    """A note's compacted CRDT state: the merge of every log row compaction has folded in.

    ``version`` increases with every compaction, so two nodes compacting at once cannot overwrite each other.
    """

    __tablename__ = "note_snapshots"

    note_id: int = Field(foreign_key="notes.id", primary_key=True, ondelete="CASCADE")
    data: bytes = Field(sa_type=LargeBinary)
    version: int = Field(default=1)
    updated_at: dt.datetime = _ts()


class NoteVersion(SQLModel, table=True):
    """A named, frozen copy of a note's CRDT state ("after the 12 May review").

    ``visibility`` is the audience the note had when the version was saved (it and its task shared: ``shared``):
    customers only ever see versions saved while the note was shared, never its internal drafts.
    """

    __tablename__ = "note_versions"

    id: int | None = Field(default=None, primary_key=True)
    note_id: int = Field(foreign_key="notes.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    data: bytes = Field(sa_type=LargeBinary)
    visibility: str = Field(default=Visibility.INTERNAL, sa_type=String(16))
    created_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: dt.datetime = _ts()


class ProjectSettings(SQLModel, table=True):
    """What a project's customers may do. No row means the defaults: everything on."""

    __tablename__ = "project_settings"

    project_id: int = Field(foreign_key="projects.id", primary_key=True, ondelete="CASCADE")
    customer_comment: bool = Field(default=True)
    customer_requests: bool = Field(default=True)
    customer_upload: bool = Field(default=True)
    customer_edit_notes: bool = Field(default=True)
    customer_move_own: bool = Field(default=True)
    updated_at: dt.datetime = _ts()


class RequestStatus(StrEnum):
    OPEN = "open"
    NEEDS_INFO = "needs_info"
    ACCEPTED = "accepted"
    MERGED = "merged"
    DECLINED = "declined"


RESOLVED_REQUEST_STATUSES = frozenset({RequestStatus.ACCEPTED, RequestStatus.MERGED, RequestStatus.DECLINED})


class FieldKind(StrEnum):
    TEXT = "text"
    CHOICE = "choice"
    DATE = "date"
    NUMBER = "number"


class RequestField(SQLModel, table=True):
    """A custom field staff define for a project's requests (budget, deadline, browser...)."""

    __tablename__ = "request_fields"
    __table_args__ = (UniqueConstraint("project_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True, ondelete="CASCADE")
    key: str = Field(max_length=40)
    label: str = Field(max_length=120)
    kind: str = Field(sa_type=String(16))
    required: bool = Field(default=False)
    # JSON list of the allowed values of a ``choice`` field.
    options: str = Field(default="[]", sa_type=Text)
    position: int = Field(default=0)
    created_at: dt.datetime = _ts()


class Request(SQLModel, table=True):
    """A customer's request on a project, triaged by staff into a task, a merge, a question or a refusal.

    Requests are shared by nature: everyone on the project sees them and their history.
    """

    __tablename__ = "requests"
    __table_args__ = (Index("ix_requests_project_id_status", "project_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    title: str = Field(max_length=300)
    description: str = Field(default="", sa_type=Text)
    priority: str = Field(default=Priority.NORMAL, sa_type=String(16))
    status: str = Field(default=RequestStatus.OPEN, sa_type=String(16))
    # JSON object: custom field key -> value, validated against the project's RequestFields.
    fields: str = Field(default="{}", sa_type=Text)
    created_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    task_id: int | None = Field(default=None, foreign_key="tasks.id", index=True, ondelete="SET NULL")
    decline_reason: str = Field(default="", max_length=2000)
    version: int = Field(default=1)
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()
    # For reports: when staff first answered (any triage step), and when the request was settled.
    first_response_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class RequestEvent(SQLModel, table=True):
    """One step in a request's history (filed, asked, answered, accepted, merged, declined)."""

    __tablename__ = "request_events"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="requests.id", index=True, ondelete="CASCADE")
    kind: str = Field(sa_type=String(16))
    actor_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    text: str = Field(default="", sa_type=Text)
    task_id: int | None = Field(default=None, foreign_key="tasks.id", ondelete="SET NULL")
    created_at: dt.datetime = _ts()


class StoredFile(SQLModel, table=True):
    """A file of a project, optionally attached to a task, a comment or a request. Its bytes live in the
    storage (``server/files/storage.py``), one blob per version; the row points at the newest."""

    __tablename__ = "files"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True, ondelete="CASCADE")
    task_id: int | None = Field(default=None, foreign_key="tasks.id", index=True, ondelete="CASCADE")
    comment_id: int | None = Field(default=None, foreign_key="comments.id", index=True, ondelete="CASCADE")
    request_id: int | None = Field(default=None, foreign_key="requests.id", index=True, ondelete="CASCADE")
    visibility: str = Field(sa_type=String(16))
    name: str = Field(max_length=255)
    content_type: str = Field(max_length=128)
    size: int = Field(default=0, sa_type=BigInteger)
    version: int = Field(default=1)
    uploaded_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


class FileVersion(SQLModel, table=True):
    """One uploaded version of a file; earlier versions are kept when a new one arrives."""

    __tablename__ = "file_versions"
    __table_args__ = (UniqueConstraint("file_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    file_id: int = Field(foreign_key="files.id", index=True, ondelete="CASCADE")
    number: int
    storage_key: str = Field(sa_column=Column(String(300), unique=True, nullable=False))
    name: str = Field(max_length=255)
    content_type: str = Field(max_length=128)
    size: int = Field(sa_type=BigInteger)
    sha256: str = Field(max_length=64)
    uploaded_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: dt.datetime = _ts()


class WorkflowTemplate(SQLModel, table=True):
    """An organization's reusable workflow: statuses to start a project from."""

    __tablename__ = "workflow_templates"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organizations.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    # JSON list of {"name", "category", "colour", "wip_limit"} in board order.
    statuses: str = Field(sa_type=Text)
    created_at: dt.datetime = _ts()


class EmailCadence(StrEnum):
    IMMEDIATELY = "immediately"
    HOURLY = "hourly"
    DAILY = "daily"
    OFF = "off"


class NotificationPreference(SQLModel, table=True):
    """How a user wants notifications mailed. No row means the defaults (mentions and the rest hourly)."""

    __tablename__ = "notification_preferences"

    user_id: int = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    # immediately, hourly, daily or off
    mentions: str = Field(default=EmailCadence.HOURLY, sa_type=String(16))
    # hourly, daily or off: assignments, request updates, status changes
    others: str = Field(default=EmailCadence.HOURLY, sa_type=String(16))
    last_digest_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The progress digest (server/inbox/progress_digest.py): daily, weekly or off, and when the last one went out.
    progress: str = Field(default="weekly", sa_type=String(16))
    last_progress_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class FeedbackRequest(SQLModel, table=True):
    """A question to a project's customers: "How well were your goals supported?" (at a milestone's completion,
    or on demand). Closed requests take no more answers."""

    __tablename__ = "feedback_requests"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True, ondelete="CASCADE")
    milestone_id: int | None = Field(default=None, foreign_key="milestones.id", index=True, ondelete="SET NULL")
    requested_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: dt.datetime = _ts()
    closed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def visibility(self) -> str:
        """Shared by nature (it asks customers); its milestone, if any, can still hide it (policy parents)."""
        return Visibility.SHARED


class FeedbackAnswer(SQLModel, table=True):
    """One customer's answer to a feedback request: a score of 1-5 and what helped and hindered most."""

    __tablename__ = "feedback_answers"
    __table_args__ = (UniqueConstraint("request_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="feedback_requests.id", index=True, ondelete="CASCADE")
    project_id: int = Field(foreign_key="projects.id", index=True, ondelete="CASCADE")
    milestone_id: int | None = Field(default=None, foreign_key="milestones.id", ondelete="SET NULL")
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    score: int
    helped: str = Field(default="", sa_type=Text)
    hindered: str = Field(default="", sa_type=Text)
    created_at: dt.datetime = _ts()


class FeedbackAction(SQLModel, table=True):
    """An action item (a task) staff made from a feedback theme; its completion is the task's."""

    __tablename__ = "feedback_actions"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True, ondelete="CASCADE")
    theme: str = Field(max_length=40)
    task_id: int = Field(foreign_key="tasks.id", index=True, ondelete="CASCADE")
    created_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: dt.datetime = _ts()


class WebhookEvent(StrEnum):
    """What a webhook may subscribe to (docs/API.md, "Webhooks")."""

    TASK_STATUS_CHANGED = "task.status_changed"
    COMMENT_CREATED = "comment.created"
    REQUEST_FILED = "request.filed"
    REQUEST_TRIAGED = "request.triaged"
    MILESTONE_COMPLETED = "milestone.completed"


class Webhook(SQLModel, table=True):
    """An outgoing webhook of a project: events are POSTed, signed with ``secret``, to ``url``.

    ``audience`` uses the values of ``Visibility``: an ``internal`` webhook (a staff integration) receives events
    about internal and shared items, a ``shared`` one (a customer's integration) only events about shared items.
    """

    __tablename__ = "webhooks"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True, ondelete="CASCADE")
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=200)
    # Needed in clear to sign each delivery; never returned by the API after the answer that set it.
    secret: str = Field(max_length=200)
    # The subscribed ``WebhookEvent`` values, comma separated.
    events: str = Field(max_length=500)
    audience: str = Field(default=Visibility.INTERNAL, sa_type=String(16))
    enabled: bool = Field(default=True)
    disabled_reason: str | None = Field(default=None, max_length=300)
    consecutive_failures: int = Field(default=0)
    created_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()

    @property
    def visibility(self) -> str:
        """The audience, under the name the policy reads items' visibility by."""
        return self.audience

    @property
    def event_types(self) -> list[str]:
        return [e for e in self.events.split(",") if e]


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # every attempt failed
    CANCELLED = "cancelled"  # the webhook was disabled before it went out


class WebhookDelivery(SQLModel, table=True):
    """One event for one webhook, written in the transaction of the change it describes (so it exists exactly when
    the change committed), then delivered and retried by the worker (``server/webhooks/delivery.py``)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhooks.id", index=True, ondelete="CASCADE")
    # The event's id: the same for every webhook that receives this event.
    event_id: str = Field(max_length=32)
    event_type: str = Field(max_length=40)
    # The JSON body, fixed when the event happened; each attempt signs it afresh with its own timestamp.
    payload: str = Field(sa_type=Text)
    status: str = Field(default=DeliveryStatus.PENDING, sa_type=String(16))
    attempts: int = Field(default=0)
    next_attempt_at: dt.datetime = _ts()
    response_status: int | None = Field(default=None)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: dt.datetime = _ts()
    last_attempt_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class InboundMail(SQLModel, table=True):
    """A reply by email already turned into a comment, by its ``Message-ID``: a mail delivered twice (a relay's
    retry, a resend) is stored once (``server/mail/``)."""

    __tablename__ = "inbound_mails"

    # SHA-256 of the Message-ID as received: fixed length, whatever the sender put there.
    message_key: str = Field(max_length=64, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    comment_id: int | None = Field(default=None, foreign_key="comments.id", ondelete="SET NULL")
    # A reply to a request without a task becomes a request event instead (server/mail/handler.py).
    request_event_id: int | None = Field(default=None, foreign_key="request_events.id", ondelete="SET NULL")
    received_at: dt.datetime = _ts()


class ActivityEvent(SQLModel, table=True):
    """One change on a project worth telling people about (a task or milestone added, moved, rescheduled, re-scoped
    or completed; a comment; a request step), written in the transaction of the change (``server/activity/rules.py``).

    ``visibility`` is the audience the change had when it happened (the item and every parent shared: ``shared``);
    a customer is shown an event only when it was shared then *and* its item is still visible to them now.
    ``changes`` holds ``{"field": [old, new]}`` for the fields a customer can see.
    """

    __tablename__ = "activity_events"
    __table_args__ = (Index("ix_activity_events_project_id_id", "project_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    kind: str = Field(max_length=32)
    visibility: str = Field(sa_type=String(16))
    task_id: int | None = Field(default=None, foreign_key="tasks.id", index=True, ondelete="CASCADE")
    milestone_id: int | None = Field(default=None, foreign_key="milestones.id", index=True, ondelete="CASCADE")
    comment_id: int | None = Field(default=None, foreign_key="comments.id", index=True, ondelete="CASCADE")
    request_id: int | None = Field(default=None, foreign_key="requests.id", index=True, ondelete="CASCADE")
    actor_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    # The item's title or name when it happened, so a feed reads without a join per row.
    title: str = Field(default="", max_length=300)
    changes: str = Field(default="{}", sa_type=Text)
    created_at: dt.datetime = _ts()


class ProjectVisit(SQLModel, table=True):
    """When a person last looked at a project's page: what happened since is "new since your last visit"."""

    __tablename__ = "project_visits"

    user_id: int = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    project_id: int = Field(foreign_key="projects.id", primary_key=True, ondelete="CASCADE")
    visited_at: dt.datetime = _ts()


class FeedbackKind(StrEnum):
    PRAISE = "praise"
    CONCERN = "concern"
    CHANGE = "change"  # a request for change


class FeedbackMark(SQLModel, table=True):
    """Staff marked a customer's comment (or emailed reply), or a customer's answer in a request's history, as
    informal feedback, with a theme: exactly one of ``comment_id`` and ``request_event_id`` is set. Staff only: never
    serialized, published or counted for customers (server/feedback/marks.py)."""

    __tablename__ = "feedback_marks"
    __table_args__ = (CheckConstraint("(comment_id IS NULL) <> (request_event_id IS NULL)", name="one_item"),)

    id: int | None = Field(default=None, primary_key=True)
    comment_id: int | None = Field(default=None, foreign_key="comments.id", unique=True, ondelete="CASCADE")
    request_event_id: int | None = Field(default=None, foreign_key="request_events.id", unique=True, ondelete="CASCADE")
    project_id: int = Field(foreign_key="projects.id", index=True, ondelete="CASCADE")
    kind: str = Field(sa_type=String(16))
    theme: str = Field(max_length=40)
    marked_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: dt.datetime = _ts()
