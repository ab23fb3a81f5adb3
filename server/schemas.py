"""The JSON shapes of the REST API: what clients send (``*In``, ``*Patch``) and receive (``*Out``)."""

from __future__ import annotations

import datetime as dt
import functools
import json
import types
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from server.models import ColourClass, OrgRole, Priority, ProjectRole, StatusCategory, Visibility

# The validation context `server.api.routing.read_json` passes: the input is a JSON body, held to JSON types.
JSON_BODY = {"json_body": True}


@functools.cache
def _boolean_fields(model: type[BaseModel]) -> frozenset[str]:
    def boolean(annotation: Any) -> bool:
        if annotation is bool:
            return True
        return get_origin(annotation) in (Union, types.UnionType) and set(get_args(annotation)) <= {bool, type(None)}

    return frozenset(name for name, field in model.model_fields.items() if boolean(field.annotation))


def _not_null(schema: dict[str, Any]) -> None:
    branches = [b for b in schema.pop("anyOf", []) if b != {"type": "null"}]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches
    if schema.get("default", ...) is None:
        del schema["default"]


def omittable(description: str | None = None, **constraints: Any) -> Any:
    """A PATCH field that may be left out but not sent as null (``name: Name | None = omittable()``). Its schema has
    no null and ``In`` refuses one (422, reason ``required``, ``params.field``), so the document and the route say
    the same; ``constraints`` are ``Field``'s (``ge``, ``max_length``, ...)."""
    return Field(None, description=description, json_schema_extra=_not_null, **constraints)


# The error type `In` raises for a null sent to an omittable field; `server.api.routing.read_json` answers it as
# reason ``required``.
NULL_REFUSED = "null_refused"


@functools.cache
def _omittable_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for name, field in model.model_fields.items() if field.json_schema_extra is _not_null)


def exactly_one_of(first: str, second: str) -> dict[str, Any]:
    """JSON Schema for "give ``first`` or ``second``, not both": a body's model validator that refuses anything else
    states the rule in its schema too (``model_config = ConfigDict(extra="forbid", json_schema_extra=...)``), so the
    document is the contract a generated client can rely on."""

    def only(given: str, absent: str) -> dict[str, Any]:
        return {"required": [given], "properties": {given: {"not": {"type": "null"}}, absent: {"type": "null"}}}

    return {"oneOf": [only(first, second), only(second, first)]}


class In(BaseModel):
    """A request body (or query): unknown fields are refused, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _json_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        """In a JSON body a boolean is true or false, as the OpenAPI document says; pydantic alone would also take
        0, 1 or "yes". (Query strings stay lax: ``?dry_run=true`` is text.)"""
        if (
            info.context
            and info.context.get("json_body")
            and info.field_name in _boolean_fields(cls)
            and not (value is None or isinstance(value, bool))
        ):
            raise ValueError("must be true or false")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        """An omittable field sent as null (a field left out is never validated, so it passes)."""
        if value is None and info.field_name in _omittable_fields(cls):
            raise PydanticCustomError(NULL_REFUSED, "{field} cannot be null.", {"field": info.field_name})
        return value


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _lower(value: str) -> str:
    return value.lower()


def not_blank(min_length: int = 1) -> str:
    """The pattern of a string at least ``min_length`` long once stripped (bodies are stripped before their lengths
    are checked, ``In``), so the schema refuses what validation refuses: " " for a name, " ab " for an email."""
    return r"\S" if min_length <= 1 else r"\S[\s\S]{" + str(min_length - 2) + r",}\S"


NOT_BLANK = not_blank()
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=NOT_BLANK)]
Text = Annotated[str, StringConstraints(max_length=20_000)]
# The pattern is in the schema (a generated client can check it); stored lower-case.
Colour = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$"), AfterValidator(_lower)]
Locale = Literal["en", "sv"]
Id = Annotated[int, Field(ge=1, le=2**53)]

T = TypeVar("T")


class Page(Out, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class PageQuery(In):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, pattern=r"^\d{1,16}$")


class ErrorOut(BaseModel):
    error: str = Field(description="A stable, machine-readable code.")
    message: str = Field(description="A human-readable explanation.")
    details: list[dict[str, str]] | None = None


# Accounts


class LoginIn(In):
    email: Annotated[str, StringConstraints(min_length=3, max_length=254, pattern=not_blank(3))]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=False)]


class UserOut(Out):
    id: int
    name: str
    email: str | None = Field(description="Hidden from customers looking at other people.")
    role: OrgRole
    client_id: int | None
    locale: str


class SecondFactorStepOut(Out):
    ticket: str = Field(description="Redeem within 5 minutes at POST /api/auth/second-factor or /api/auth/passkey.")
    methods: list[str] = Field(description='What the person may use: "passkey", "totp", "recovery".')


class LoginOut(Out):
    token: str | None = Field(
        default=None, description="Bearer token for scripts and ?token= on WebSocket URLs (null: a second step is due)."
    )
    csrf_token: str | None = Field(default=None, description="Echo in X-CSRF-Token on cookie-authenticated writes.")
    user: UserOut | None = Field(default=None, description="Null until every step is done.")
    second_factor: SecondFactorStepOut | None = Field(
        default=None, description="Set when the password (or link) was right but a second factor is due."
    )
    enrolment_required: bool = Field(
        default=False, description="The session may only set up a second factor: the organization requires one."
    )


class SessionOut(Out):
    user: UserOut | None = Field(description="Null when not signed in.")
    enrolment_required: bool = Field(default=False, description="Set up a second factor before anything else.")


class MembershipOut(Out):
    project_id: int
    role: ProjectRole


class MePatch(In):
    name: Name | None = None
    locale: Locale | None = None


class PasswordIn(In):
    current_password: Annotated[str, StringConstraints(max_length=256, strip_whitespace=False)]
    new_password: Annotated[str, StringConstraints(max_length=256, strip_whitespace=False)]


# Clients and projects


class ClientIn(In):
    name: Name


class ClientPatch(In):
    name: Name


class ClientOut(Out):
    id: int
    name: str
    created_at: dt.datetime


class ProjectIn(In):
    name: Name
    client_id: Id
    description: Text = ""
    template_id: Id | None = Field(
        None, description="Start with this workflow template's statuses (default workflow without)."
    )


class ProjectPatch(In):
    name: Name | None = omittable()
    description: Text | None = omittable()
    archived: bool | None = omittable()


class ProjectSummary(Out):
    """Task counts of a project as the caller sees it (customers: shared tasks only)."""

    total: int
    done: int
    overdue: int
    due_soon: int
    waiting_on_customer: int


class ProjectOut(Out):
    id: int
    name: str
    description: str
    client_id: int
    client_name: str
    archived: bool
    my_role: ProjectRole | None = Field(description="The caller's membership role, if any.")
    created_at: dt.datetime
    updated_at: dt.datetime
    summary: ProjectSummary | None = Field(None, description="Task counts, in project lists.")


class ProjectQuery(PageQuery):
    client_id: Id | None = None
    archived: bool | None = None


# Workflow


class StatusIn(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    category: StatusCategory
    colour: Colour
    position: int | None = Field(None, ge=0, le=1000)
    wip_limit: int | None = Field(None, ge=1, le=10_000)
    waits_on_customer: bool = Field(False, description="Its open shared tasks wait on the project's customers.")


class StatusPatch(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=80, pattern=NOT_BLANK)] | None = omittable()
    category: StatusCategory | None = omittable()
    colour: Colour | None = omittable()
    position: int | None = omittable(ge=0, le=1000)
    wip_limit: int | None = Field(None, ge=1, le=10_000, description="null removes the limit")
    waits_on_customer: bool | None = omittable()


class StatusOut(Out):
    id: int
    project_id: int
    name: str
    category: StatusCategory
    colour: str
    position: int
    wip_limit: int | None = Field(None, description="At most this many tasks may stand in the status.")
    waits_on_customer: bool = Field(description="Its open shared tasks wait on the project's customers.")


class StatusDeleteQuery(In):
    move_to: Id | None = Field(None, description="Status that receives the removed status's tasks.")


# Milestones


class MilestoneIn(In):
    name: Name
    due_date: dt.date | None = None
    visibility: Visibility = Visibility.INTERNAL


class MilestonePatch(In):
    name: Name | None = omittable()
    due_date: dt.date | None = None
    visibility: Visibility | None = omittable()
    completed: bool | None = omittable()


class MilestoneOut(Out):
    id: int
    project_id: int
    name: str
    due_date: dt.date | None
    visibility: Visibility
    completed_at: dt.datetime | None


# Tasks


class TaskIn(In):
    title: Title
    description: Text = ""
    status_id: Id | None = Field(None, description="Defaults to the workflow's first status.")
    assignee_id: Id | None = None
    due_date: dt.date | None = None
    priority: Priority = Priority.NORMAL
    milestone_id: Id | None = None
    visibility: Visibility = Visibility.INTERNAL


class TaskPatch(In):
    title: Title | None = omittable()
    description: Text | None = None
    status_id: Id | None = omittable()
    assignee_id: Id | None = None
    due_date: dt.date | None = None
    priority: Priority | None = omittable()
    milestone_id: Id | None = None
    visibility: Visibility | None = omittable()
    position: int | None = omittable(ge=0, le=2**31)
    version: int | None = Field(
        None, ge=1, description="The version the change is based on; 409 version_conflict when the task changed since."
    )


class PersonOut(Out):
    id: int
    name: str
    is_customer: bool


class TaskOut(Out):
    id: int
    project_id: int
    title: str
    description: str
    status_id: int
    status_category: StatusCategory
    assignee: PersonOut | None
    waiting_on_customer: bool = Field(
        description="Shared, not done, and assigned to a customer user or in a waits_on_customer status."
    )
    colour_class: ColourClass = Field(description="overdue, due_soon, on_track or done, computed by the server.")
    due_date: dt.date | None
    priority: Priority
    milestone_id: int | None
    visibility: Visibility
    position: int
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    completed_at: dt.datetime | None


class TaskQuery(PageQuery):
    status_id: Id | None = None
    assignee_id: Id | None = None
    visibility: Visibility | None = None
    milestone_id: Id | None = None
    due_before: dt.date | None = None
    due_after: dt.date | None = None
    waiting_on_customer: bool | None = None


class ActionItemOut(TaskOut):
    project_name: str


class MeOut(Out):
    user: UserOut
    memberships: list[MembershipOut]
    action_items: list[ActionItemOut] = Field(description="Open tasks assigned to me, soonest due first.")
    csrf_token: str | None = Field(description="For cookie sessions: echo in X-CSRF-Token.")


# Members and invitations


class MemberIn(In):
    user_id: Id
    role: ProjectRole


class MemberPatch(In):
    role: ProjectRole


class MemberOut(Out):
    user_id: int
    name: str
    email: str | None
    role: ProjectRole
    is_customer: bool


class InviteIn(In):
    project_id: Id
    email: EmailStr
    role: ProjectRole
    name: Annotated[str, StringConstraints(max_length=200)] = ""


class InviteOut(Out):
    id: int
    project_id: int
    email: str
    role: ProjectRole
    created_at: dt.datetime
    expires_at: dt.datetime
    accepted_at: dt.datetime | None


class InviteCreatedOut(Out):
    status: Literal["invited", "added"]
    invite: InviteOut | None
    member: MemberOut | None
    link: str | None = Field(description="The invite link, shown to the inviter when no email can be sent.")


class InviteQuery(In):
    project_id: Id


class InviteTokenIn(In):
    token: Annotated[str, StringConstraints(min_length=10, max_length=200, pattern=not_blank(10))]


class InvitePreviewOut(Out):
    email: str
    project_name: str
    organization_name: str
    role: ProjectRole
    name: str
    # Whether "join without a password" is offered: customers always, staff where the organization allows links.
    passwordless: bool = False


class InviteAcceptIn(In):
    token: Annotated[str, StringConstraints(min_length=10, max_length=200, pattern=not_blank(10))]
    name: Name
    # None: join without a password, and sign in by link later (customers; staff where the organization allows).
    password: Annotated[str, StringConstraints(max_length=256, strip_whitespace=False)] | None = None
    locale: Locale = "en"


class InviteAcceptOut(LoginOut):
    project_id: int


# Discussion

REACTIONS = ("👍", "👎", "❤️", "🎉", "😄", "😕", "👀", "🚀", "✅")
MAX_COMMENT_LENGTH = 10_000


class CommentIn(In):
    body: Annotated[str, StringConstraints(min_length=1, max_length=MAX_COMMENT_LENGTH)]
    visibility: Visibility = Field(description="internal comments are for staff only (customers cannot post them)")
    mentions: list[Id] = Field(default_factory=list, max_length=20, description="user ids mentioned in the text")
    reply_to_id: Id | None = Field(None, description="the comment this one quotes")


class CommentPatch(In):
    body: Annotated[str, StringConstraints(min_length=1, max_length=MAX_COMMENT_LENGTH)]
    version: int | None = Field(
        None,
        ge=1,
        description="The version the edit is based on; 409 version_conflict when the comment changed since.",
    )


class ReactionIn(In):
    emoji: Literal["👍", "👎", "❤️", "🎉", "😄", "😕", "👀", "🚀", "✅"]


class ReactionOut(Out):
    emoji: str
    count: int
    mine: bool = Field(description="Whether the caller reacted so (absent in live events: use user_ids).")
    user_ids: list[int]


class QuoteOut(Out):
    id: int
    author_name: str | None
    excerpt: str
    deleted: bool


class CommentOut(Out):
    id: int
    task_id: int
    project_id: int
    author: PersonOut | None
    body: str = Field(description="The markdown source; empty once deleted.")
    body_html: str = Field(description="Safe HTML rendered by the server.")
    visibility: Visibility
    reply_to: QuoteOut | None
    mentions: list[int]
    reactions: list[ReactionOut]
    version: int
    created_at: dt.datetime
    edited_at: dt.datetime | None
    deleted: bool


class CommentRevisionOut(Out):
    body: str
    created_at: dt.datetime


class CommentQuery(PageQuery):
    """Newest first; ``cursor`` is the id to page below."""


class ReadIn(In):
    comment_id: Annotated[int, Field(ge=0, le=2**53)]


class ReadOut(Out):
    task_id: int
    last_read_comment_id: int
    unread: int


class UnreadOut(Out):
    project_id: int
    total: int
    tasks: dict[str, int] = Field(description="Unread comments per task id (only tasks with any).")


class SearchQuery(In):
    q: Annotated[str, StringConstraints(min_length=2, max_length=100, pattern=not_blank(2))]
    project_id: Id | None = None


class SearchHit(Out):
    kind: Literal["task", "comment", "request", "file", "note"]
    project_id: int
    task_id: int | None = Field(description="The task (for a task or comment, and a file or note on a task).")
    comment_id: int | None
    request_id: int | None = None
    file_id: int | None = None
    note_id: int | None = None
    title: str = Field(description="The task's, request's, file's or note's name (for a comment: its task's).")
    excerpt: str
    link: str = Field(description="Where the web client shows the item.")


def _json_object(value: object) -> object:
    """A JSON object stored as text (a model's column) as the dict it holds."""
    return json.loads(value or "{}") if isinstance(value, str) else value


class NotificationOut(Out):
    id: int
    kind: str = Field(description="mention, assignment, request, status or feedback (docs/API.md).")
    project_id: int | None
    task_id: int | None
    comment_id: int | None
    request_id: int | None = None
    params: Annotated[dict[str, str], BeforeValidator(_json_object)] = Field(
        default_factory=dict,
        description="What the sentence is made of, per kind (docs/API.md); clients word it in their own language.",
    )
    text: str = Field(description="The sentence in the recipient's language when it was made (kept for display as is).")
    created_at: dt.datetime
    read_at: dt.datetime | None
