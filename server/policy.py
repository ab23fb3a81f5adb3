"""Who may do what: the one place Tandem decides it.

Every HTTP route and every WebSocket subscribe or edit asks :func:`authorize` (or one of the query scopes below,
which encode the same rules for lists). The rules:

- Nobody sees anything of another organization.
- Staff (owner, admin, staff) see every project of their organization, internal and shared items alike.
  Owners and admins manage everything (only owners change a colleague's organization role or access); staff
  write tasks and milestones, and manage a project's members and workflow where they are its manager.
- Customer users see only the projects they are members of (of their own client), and in them only ``shared``
  items. A ``customer`` member may move the shared tasks assigned to them (they are waiting on the customer);
  a ``viewer`` only reads. Per project, managers may turn off what customers may do (comment, file requests,
  upload, edit notes, move their own tasks: ``ProjectSettings``); those switches are read with the memberships.
- Webhooks: staff read a project's webhooks and its managers manage them; a ``customer`` member reads and manages
  the project's ``shared``-audience webhooks (which only ever carry shared items), never internal ones.
- An item that hangs off another (a note or file on a task, a file on a comment or request, a comment on a task, a
  feedback request on a milestone, a version of a note) is only as visible as its parents: a customer sees it when it
  and every parent it has are shared (:func:`effective_visibility`; for lists :func:`visible_items`, whose parents are
  listed once in :data:`PARENTS`).
  Nothing reads a parent's fields for a customer without asking that.
- A resource the actor may not see answers "not found", never "forbidden": existence does not leak.
  "Forbidden" is only for things the actor can see but may not change.

Memberships are read afresh for every request and checked on every WebSocket subscribe, so removing a member takes
effect at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, true
from sqlmodel import col, select

from server.models import (
    CUSTOMER_PROJECT_ROLES,
    STAFF_ROLES,
    ActivityEvent,
    Comment,
    FeedbackRequest,
    Membership,
    Milestone,
    Note,
    NoteVersion,
    OrgRole,
    Project,
    ProjectRole,
    StoredFile,
    Task,
    User,
    Visibility,
    Webhook,
)


class Action(StrEnum):
    PROJECT_READ = "project.read"
    PROJECT_CREATE = "project.create"
    PROJECT_UPDATE = "project.update"
    PROJECT_DELETE = "project.delete"
    MEMBER_READ = "member.read"
    MEMBER_MANAGE = "member.manage"
    WORKFLOW_MANAGE = "workflow.manage"
    ITEM_READ = "item.read"
    TASK_CREATE = "task.create"
    TASK_UPDATE = "task.update"
    TASK_MOVE = "task.move"
    TASK_DELETE = "task.delete"
    MILESTONE_MANAGE = "milestone.manage"
    INVITE_CREATE = "invite.create"
    CLIENT_READ = "client.read"
    CLIENT_MANAGE = "client.manage"
    STAFF_READ = "staff.read"
    STAFF_MANAGE = "staff.manage"
    # Whether staff, or customers, must sign in with a second factor: the organization's owner only.
    SECURITY_MANAGE = "security.manage"
    CHANNEL_INTERNAL = "channel.internal"
    COMMENT_CREATE = "comment.create"
    COMMENT_INTERNAL = "comment.internal"
    COMMENT_EDIT = "comment.edit"
    COMMENT_DELETE = "comment.delete"
    COMMENT_REACT = "comment.react"
    NOTE_CREATE = "note.create"
    NOTE_EDIT = "note.edit"
    NOTE_MANAGE = "note.manage"
    NOTE_VERSION = "note.version"
    REQUEST_CREATE = "request.create"
    REQUEST_TRIAGE = "request.triage"
    REQUEST_REPLY = "request.reply"
    FILE_UPLOAD = "file.upload"
    FILE_MANAGE = "file.manage"
    SETTINGS_MANAGE = "settings.manage"
    TEMPLATE_READ = "template.read"
    TEMPLATE_MANAGE = "template.manage"
    AUDIT_READ = "audit.read"
    WEBHOOK_READ = "webhook.read"
    WEBHOOK_MANAGE = "webhook.manage"
    WEBHOOK_MANAGE_SHARED = "webhook.manage_shared"


class Scope(StrEnum):
    """What a personal API token may be used for. Scopes only narrow: the policy still decides as for its owner.

    ``read``: GET routes and subscribing on sockets; ``write``: every other route; ``admin``: the routes only
    organization admins may call (audit log, clients, creating and deleting projects, workflow templates).
    """

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


class CustomerCapability(StrEnum):
    """What a project's ``customer`` members may do unless a manager turns it off (``ProjectSettings``)."""

    COMMENT = "customer_comment"
    REQUESTS = "customer_requests"
    UPLOAD = "customer_upload"
    EDIT_NOTES = "customer_edit_notes"
    MOVE_OWN = "customer_move_own"


class NotFound(Exception):
    """The actor may not know the resource exists."""


class NotVisible(NotFound):
    """The resource exists, but the actor may not see it: answered as `NotFound`, and audited as refused access."""

    def __init__(self, target_type: str, target_id: int | None) -> None:
        super().__init__(target_type, target_id)
        self.target_type = target_type
        self.target_id = target_id


class Forbidden(Exception):
    """The actor sees the resource but may not do this to it."""


@dataclass(frozen=True)
class Actor:
    """The signed-in user, with their project memberships as read at the start of this request."""

    user_id: int
    organization_id: int
    role: str
    client_id: int | None
    name: str = ""
    memberships: dict[int, str] = field(default_factory=dict)
    # Per project, the customer capabilities its managers turned off (only projects with any).
    customer_off: dict[int, frozenset[str]] = field(default_factory=dict)
    # Signed in with a personal API token: what it may be used for, and which token (for the audit log).
    # None for a browser or login session.
    scopes: frozenset[str] | None = None
    api_token_id: int | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role in (OrgRole.OWNER, OrgRole.ADMIN)

    def has_scope(self, scope: Scope) -> bool:
        """True for sessions, and for API tokens granted ``scope``."""
        return self.scopes is None or scope in self.scopes

    @classmethod
    def of(
        cls, user: User, memberships: dict[int, str], customer_off: dict[int, frozenset[str]] | None = None
    ) -> Actor:
        assert user.id is not None
        return cls(user.id, user.organization_id, user.role, user.client_id, user.name, memberships, customer_off or {})

    def customer_may(self, project: Project, capability: CustomerCapability) -> bool:
        """True if the actor is a ``customer`` member of ``project`` and its managers left ``capability`` on."""
        assert project.id is not None
        return self.memberships.get(project.id) == ProjectRole.CUSTOMER and capability not in self.customer_off.get(
            project.id, frozenset()
        )


def can_see_project(actor: Actor, project: Project) -> bool:
    if project.organization_id != actor.organization_id:
        return False
    if actor.is_staff:
        return True
    assert project.id is not None
    return actor.memberships.get(project.id) in CUSTOMER_PROJECT_ROLES and project.client_id == actor.client_id


def effective_visibility(visibility: str, parents: Iterable[str | None] = ()) -> str:
    """The audience an item really has: ``shared`` only if it and every parent it has are shared.

    Args:
        visibility: the item's own visibility.
        parents: the visibilities of the items it hangs off (its task, comment, milestone, note...), ``None`` for a
            parent it does not have (a note of no task).
    """
    if visibility != Visibility.SHARED:
        return Visibility.INTERNAL
    if any(p is not None and p != Visibility.SHARED for p in parents):
        return Visibility.INTERNAL
    return Visibility.SHARED


def can_see_item(actor: Actor, project: Project, visibility: str, parents: Iterable[str | None] = ()) -> bool:
    """True if ``actor`` may see an item of ``project`` with ``visibility`` hanging off parents with ``parents``.

    Staff see every item of a project they see; customers only items whose :func:`effective_visibility` is shared.
    """
    return can_see_project(actor, project) and (
        actor.is_staff or effective_visibility(visibility, parents) == Visibility.SHARED
    )


def _manages(actor: Actor, project: Project) -> bool:
    assert project.id is not None
    return actor.is_admin or (actor.is_staff and actor.memberships.get(project.id) == ProjectRole.MANAGER)


def authorize(
    actor: Actor,
    action: Action,
    project: Project | None = None,
    item: Any = None,
    parents: Iterable[str | None] = (),
) -> None:
    """Allow ``actor`` to do ``action`` to ``project`` (and ``item`` in it), or raise.

    Args:
        actor: who asks.
        action: what they want to do.
        project: the project the resource belongs to; None for organization-level actions.
        item: the task or milestone acted on, when there is one (anything with ``visibility``).
        parents: the visibilities of the items ``item`` hangs off (see :func:`effective_visibility`).

    Raises:
        NotVisible: the actor may not see the project or the item (a `NotFound`).
        Forbidden: the actor sees them but may not do this.
    """
    if project is not None:
        visible = (
            can_see_project(actor, project)
            if item is None
            else can_see_item(actor, project, getattr(item, "visibility", Visibility.INTERNAL), parents)
        )
        if not visible:
            target = item if item is not None else project
            raise NotVisible(getattr(target, "__tablename__", "item").removesuffix("s"), getattr(target, "id", None))
    allowed = _allowed(actor, action, project, item)
    if not allowed:
        raise Forbidden


def _allowed(actor: Actor, action: Action, project: Project | None, item: Any) -> bool:
    match action:
        case Action.PROJECT_READ | Action.ITEM_READ | Action.MEMBER_READ:
            return project is not None
        case Action.CLIENT_READ | Action.STAFF_READ:
            return actor.is_staff
        case Action.STAFF_MANAGE | Action.SECURITY_MANAGE:
            return actor.role == OrgRole.OWNER
        case Action.PROJECT_CREATE | Action.CLIENT_MANAGE | Action.PROJECT_DELETE:
            return actor.is_admin
        case (
            Action.PROJECT_UPDATE
            | Action.MEMBER_MANAGE
            | Action.WORKFLOW_MANAGE
            | Action.INVITE_CREATE
            | Action.SETTINGS_MANAGE
        ):
            return project is not None and _manages(actor, project)
        case Action.TASK_CREATE | Action.TASK_UPDATE | Action.TASK_DELETE | Action.MILESTONE_MANAGE:
            return project is not None and actor.is_staff
        case Action.TASK_MOVE:
            if actor.is_staff:
                return project is not None
            assert project is not None and project.id is not None
            return (
                actor.customer_may(project, CustomerCapability.MOVE_OWN)
                and isinstance(item, Task)
                and item.assignee_id == actor.user_id
            )
        case Action.CHANNEL_INTERNAL | Action.COMMENT_INTERNAL:
            return project is not None and actor.is_staff
        case Action.COMMENT_CREATE | Action.COMMENT_REACT:
            assert project is not None
            return actor.is_staff or actor.customer_may(project, CustomerCapability.COMMENT)
        case Action.COMMENT_EDIT:
            return getattr(item, "author_id", None) == actor.user_id
        case Action.COMMENT_DELETE:
            return getattr(item, "author_id", None) == actor.user_id or actor.is_admin
        case Action.NOTE_CREATE | Action.NOTE_MANAGE | Action.NOTE_VERSION:
            return project is not None and actor.is_staff
        case Action.NOTE_EDIT:
            # Co-editing a (shared) note: staff, and the project's ``customer`` members; viewers only read.
            assert project is not None
            return actor.is_staff or actor.customer_may(project, CustomerCapability.EDIT_NOTES)
        case Action.REQUEST_CREATE:
            assert project is not None
            return actor.is_staff or actor.customer_may(project, CustomerCapability.REQUESTS)
        case Action.REQUEST_TRIAGE:
            return project is not None and actor.is_staff
        case Action.REQUEST_REPLY:
            # Answering staff's question about a request: anyone on the project who may take part.
            assert project is not None and project.id is not None
            return actor.is_staff or actor.memberships.get(project.id) == ProjectRole.CUSTOMER
        case Action.FILE_UPLOAD:
            assert project is not None
            return actor.is_staff or actor.customer_may(project, CustomerCapability.UPLOAD)
        case Action.FILE_MANAGE:
            assert project is not None
            return actor.is_staff or (
                getattr(item, "uploaded_by_id", None) == actor.user_id
                and actor.customer_may(project, CustomerCapability.UPLOAD)
            )
        case Action.TEMPLATE_READ:
            return actor.is_staff
        case Action.TEMPLATE_MANAGE | Action.AUDIT_READ:
            return actor.is_admin
        case Action.WEBHOOK_READ:
            # Staff read every webhook of a project; a customer member reads the shared ones (the list is scoped).
            assert project is not None and project.id is not None
            return actor.is_staff or actor.memberships.get(project.id) == ProjectRole.CUSTOMER
        case Action.WEBHOOK_MANAGE:
            # An internal webhook sends internal items out of Tandem: the project's managers decide that.
            return project is not None and _manages(actor, project)
        case Action.WEBHOOK_MANAGE_SHARED:
            # A customer's own integration: it can only ever carry the shared items the customer sees anyway.
            assert project is not None and project.id is not None
            return _manages(actor, project) or actor.memberships.get(project.id) == ProjectRole.CUSTOMER
    return False


# Query scopes: the same rules as above, as SQL, for lists.


def visible_projects(actor: Actor) -> ColumnElement[bool]:
    """A WHERE clause selecting exactly the projects ``actor`` may see."""
    in_org = col(Project.organization_id) == actor.organization_id
    if actor.is_staff:
        return in_org
    member_of = select(Membership.project_id).where(
        Membership.user_id == actor.user_id, col(Membership.role).in_(list(CUSTOMER_PROJECT_ROLES))
    )
    if actor.client_id is None:
        return false()
    return in_org & (col(Project.client_id) == actor.client_id) & col(Project.id).in_(member_of)


# What each kind of item hangs off, as (foreign key, parent kind): an item is only as visible as these parents, and
# theirs in turn. Lists ask :func:`visible_items` with the kind, so a new parent is added here once, for every query.
PARENTS: dict[type[Any], tuple[tuple[Any, type[Any]], ...]] = {
    Comment: ((Comment.task_id, Task),),
    Note: ((Note.task_id, Task),),
    NoteVersion: ((NoteVersion.note_id, Note),),
    StoredFile: ((StoredFile.task_id, Task), (StoredFile.comment_id, Comment)),
    FeedbackRequest: ((FeedbackRequest.milestone_id, Milestone),),
    ActivityEvent: (
        (ActivityEvent.task_id, Task),
        (ActivityEvent.milestone_id, Milestone),
        (ActivityEvent.comment_id, Comment),
    ),
}


def _audience_column(kind: type[Any]) -> Any | None:
    """The column holding a kind's own audience; None for kinds shared by nature (a feedback request)."""
    if kind is Webhook:
        return Webhook.audience
    if kind is FeedbackRequest:
        return None
    return kind.visibility


def _shared_rows(kind: type[Any]) -> ColumnElement[bool]:
    own = _audience_column(kind)
    clauses = [col(own) == Visibility.SHARED] if own is not None else []
    for foreign_key, parent in PARENTS.get(kind, ()):
        # Never correlated with the enclosing query: a query that joins the parent table still asks about the row's
        # own parent.
        shared_parents = select(parent.id).where(_shared_rows(parent)).correlate(None)
        clauses.append(or_(col(foreign_key).is_(None), col(foreign_key).in_(shared_parents)))
    return and_(true(), *clauses)


def visible_items(actor: Actor, kind: type[Any]) -> ColumnElement[bool]:
    """A WHERE clause on the table of ``kind`` (``Task``, ``Note``, ``StoredFile``...): every row for staff; for
    customers the rows that are shared and whose parents (:data:`PARENTS`, recursively) are shared or absent.

    The project is not checked here: combine with :func:`visible_projects` or a project the actor may see.
    """
    if actor.is_staff:
        return true()
    return _shared_rows(kind)
