"""Co-edited notes: metadata over REST, content over ``/yjs/{note_id}`` (see ``server/live/notes_ws.py``).

A note's text is read from the durable CRDT state (``server/notes/store.py``), never from a plain-text column, so
exports and versions show exactly what editors saw and stored, and nothing is ever re-seeded over the CRDT state.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ConfigDict, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.responses import Response

from crdt.document import content_update, document_from, json_of, markdown_of, text_of
from server.api import api
from server.api.routing import ApiError
from server.audit import log as audit
from server.board.rules import project_for
from server.context import Context
from server.db import utcnow
from server.live.control import AccessChanged, Subject
from server.models import Note, NoteUpdate, NoteVersion, Task, Visibility
from server.notes.rules import note_audience, note_for
from server.policy import Action, can_see_item, visible_items
from server.schemas import Id, In, Out, omittable

# At most this many characters of initial text: small enough that a body holding one more, however it is escaped
# (up to 12 bytes a character as a \\u surrogate pair), stays under the JSON body limit, so too long a text is
# answered 422 (the schema's maxLength), never 413.
MAX_INITIAL_CONTENT = 80_000


class NoteIn(In):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)  # the content's whitespace matters

    title: str = Field(min_length=1, max_length=200)
    visibility: Visibility = Visibility.INTERNAL
    task_id: Id | None = None
    content: str = Field(default="", max_length=MAX_INITIAL_CONTENT)


class NotePatch(In):
    title: str | None = omittable(min_length=1, max_length=200)
    visibility: Visibility | None = omittable()
    task_id: Id | None = None


class NoteOut(Out):
    id: int
    project_id: int
    task_id: int | None
    title: str
    visibility: Visibility
    created_by_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class NoteList(Out):
    items: list[NoteOut]


class NoteListQuery(In):
    task_id: Id | None = None


class ExportQuery(In):
    format: str = Field(default="text", pattern="^(text|markdown)$")


class VersionIn(In):
    name: str = Field(min_length=1, max_length=200)


class VersionOut(Out):
    id: int
    note_id: int
    name: str
    visibility: Visibility = Field(
        description="The note's audience when the version was saved; customers only see shared versions."
    )
    created_by_id: int | None
    created_at: dt.datetime


class VersionList(Out):
    items: list[VersionOut]


class VersionText(VersionOut):
    text: str = Field(description="The version as markdown.")
    doc: dict[str, Any] = Field(
        description="The version as ProseMirror JSON (the editor's schema, docs/PROTOCOL.md): what a restore writes."
    )


async def _check_task(session: AsyncSession, project_id: int, task_id: int | None, visibility: str) -> None:
    if task_id is None:
        return
    task = await session.get(Task, task_id)
    if task is None or task.project_id != project_id:
        raise ApiError(422, "invalid", "task_id names no task of this project.", reason="unknown_task")
    if visibility == Visibility.SHARED and task.visibility != Visibility.SHARED:
        raise ApiError(
            422, "invalid", "A shared note cannot belong to an internal task.", reason="shared_under_internal"
        )


def _recheck_sockets(ctx: Context, note_id: int) -> None:
    ctx.services.live.access_changed(ctx, AccessChanged(Subject.NOTE, note_id))


@api.route(
    "GET",
    "/api/projects/{project_id:int}/notes",
    summary="The project's notes (optionally of one task), most recently changed first",
    tag="notes",
    query=NoteListQuery,
    response=NoteList,
    errors=(401, 404, 422),
)
async def list_notes(ctx: Context, query: NoteListQuery) -> NoteList:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    statement = select(Note).where(Note.project_id == project.id, visible_items(ctx.actor, Note))
    if query.task_id is not None:
        # An internal task's id filters a customer's list to nothing, exactly as an id that names no task does.
        statement = statement.where(Note.task_id == query.task_id)
    rows = await ctx.session.exec(statement.order_by(col(Note.updated_at).desc(), col(Note.id).desc()).limit(500))
    return NoteList(items=[NoteOut.model_validate(n) for n in rows.all()])


@api.route(
    "POST",
    "/api/projects/{project_id:int}/notes",
    summary="Create a note; `content` (markdown) seeds its text once, here",
    tag="notes",
    body=NoteIn,
    response=NoteOut,
    status=201,
    errors=(401, 403, 404, 422),
)
async def create_note(ctx: Context, body: NoteIn) -> NoteOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.NOTE_CREATE)
    assert project.id is not None
    await _check_task(ctx.session, project.id, body.task_id, body.visibility)
    note = Note(
        project_id=project.id,
        task_id=body.task_id,
        title=body.title,
        visibility=body.visibility,
        created_by_id=ctx.actor.user_id,
    )
    ctx.session.add(note)
    await ctx.session.flush()
    assert note.id is not None
    if body.content:
        ctx.session.add(NoteUpdate(note_id=note.id, data=content_update(body.content)))
    out = NoteOut.model_validate(note)
    shared = await note_audience(ctx.session, note) == Visibility.SHARED
    ctx.services.live.note_changed(ctx, project.id, out, shared=shared, was_shared=False)
    return out


@api.route("GET", "/api/notes/{note_id:int}", summary="A note", tag="notes", response=NoteOut, errors=(401, 404))
async def get_note(ctx: Context) -> NoteOut:
    note, _ = await note_for(ctx.session, ctx.actor, ctx.path_int("note_id"), Action.ITEM_READ)
    return NoteOut.model_validate(note)


@api.route(
    "PATCH",
    "/api/notes/{note_id:int}",
    summary="Rename a note, share it or make it internal, attach it to a task",
    tag="notes",
    body=NotePatch,
    response=NoteOut,
    errors=(401, 403, 404, 422),
)
async def update_note(ctx: Context, body: NotePatch) -> NoteOut:
    note, project = await note_for(ctx.session, ctx.actor, ctx.path_int("note_id"), Action.NOTE_MANAGE)
    assert note.id is not None and project.id is not None
    changes = body.model_dump(exclude_unset=True)
    if "task_id" in changes or "visibility" in changes:
        # Only what this change touches: a shared note whose task was made internal since stays renameable (it is
        # internal in effect while its task is, see policy.effective_visibility). Checked before the note changes,
        # so the look-up never flushes a task id that names nothing (a foreign-key failure, not a 422).
        task_id = changes.get("task_id", note.task_id)
        await _check_task(ctx.session, project.id, task_id, changes.get("visibility", note.visibility))
    before = note.visibility
    was_shared = await note_audience(ctx.session, note) == Visibility.SHARED
    for field, value in changes.items():
        setattr(note, field, value)
    note.updated_at = utcnow()
    ctx.session.add(note)
    if "visibility" in changes:
        _recheck_sockets(ctx, note.id)
        audit.visibility_changed(ctx, "note", note.id, before, note.visibility)
    out = NoteOut.model_validate(note)
    shared = await note_audience(ctx.session, note) == Visibility.SHARED
    ctx.services.live.note_changed(ctx, project.id, out, shared=shared, was_shared=was_shared)
    return out


@api.route(
    "DELETE", "/api/notes/{note_id:int}", summary="Delete a note", tag="notes", status=204, errors=(401, 403, 404)
)
async def delete_note(ctx: Context) -> None:
    note, project = await note_for(ctx.session, ctx.actor, ctx.path_int("note_id"), Action.NOTE_MANAGE)
    assert note.id is not None and project.id is not None
    _recheck_sockets(ctx, note.id)
    shared = await note_audience(ctx.session, note) == Visibility.SHARED
    await ctx.session.delete(note)
    ctx.services.live.note_removed(ctx, project.id, note.id, shared=shared)


async def _note_document(ctx: Context, note_id: int) -> Any:
    stored = await ctx.services.notes.store.load(note_id)
    return document_from(stored.merged())


@api.route(
    "GET",
    "/api/notes/{note_id:int}/export",
    summary="The note: ?format=text (plain text) or ?format=markdown (with its title as a heading)",
    tag="notes",
    query=ExportQuery,
    errors=(401, 404, 422),
    produces={200: {"text/plain": {"type": "string"}, "text/markdown": {"type": "string"}}},
)
async def export_note(ctx: Context, query: ExportQuery) -> Response:
    note, _ = await note_for(ctx.session, ctx.actor, ctx.path_int("note_id"), Action.ITEM_READ)
    assert note.id is not None
    doc = await _note_document(ctx, note.id)
    audit.exported(ctx, "note", query.format, "note", note.id)
    if query.format == "markdown":
        body = markdown_of(doc)
        return Response(
            f"# {note.title}\n\n{body}" if body else f"# {note.title}\n", media_type="text/markdown; charset=utf-8"
        )
    return Response(text_of(doc), media_type="text/plain; charset=utf-8")


@api.route(
    "POST",
    "/api/notes/{note_id:int}/versions",
    summary="Save the note as it is now under a name",
    tag="notes",
    body=VersionIn,
    response=VersionOut,
    status=201,
    errors=(401, 403, 404, 422),
)
async def save_version(ctx: Context, body: VersionIn) -> VersionOut:
    note, _ = await note_for(ctx.session, ctx.actor, ctx.path_int("note_id"), Action.NOTE_VERSION)
    assert note.id is not None
    stored = await ctx.services.notes.store.load(note.id)
    version = NoteVersion(
        note_id=note.id,
        name=body.name,
        data=stored.merged(),
        created_by_id=ctx.actor.user_id,
        visibility=await note_audience(ctx.session, note),
    )
    ctx.session.add(version)
    await ctx.session.flush()
    return VersionOut.model_validate(version)


@api.route(
    "GET",
    "/api/notes/{note_id:int}/versions",
    summary="The note's named versions, newest first (customers: those saved while the note was shared)",
    tag="notes",
    response=VersionList,
    errors=(401, 404),
)
async def list_versions(ctx: Context) -> VersionList:
    note, _ = await note_for(ctx.session, ctx.actor, ctx.path_int("note_id"), Action.ITEM_READ)
    rows = await ctx.session.exec(
        select(NoteVersion)
        .where(NoteVersion.note_id == note.id, visible_items(ctx.actor, NoteVersion))
        .order_by(col(NoteVersion.id).desc())
    )
    return VersionList(items=[VersionOut.model_validate(v) for v in rows.all()])


@api.route(
    "GET",
    "/api/notes/{note_id:int}/versions/{version_id:int}",
    summary="One named version, with its text",
    tag="notes",
    response=VersionText,
    errors=(401, 404),
)
async def get_version(ctx: Context) -> VersionText:
    note, project = await note_for(ctx.session, ctx.actor, ctx.path_int("note_id"), Action.ITEM_READ)
    version = await ctx.session.get(NoteVersion, ctx.path_int("version_id"))
    # A version saved while the note was internal is a staff draft: for customers it does not exist.
    if version is None or version.note_id != note.id or not can_see_item(ctx.actor, project, version.visibility):
        raise ApiError(404, "not_found", "No such version.")
    out = VersionOut.model_validate(version)
    doc = document_from(version.data)
    return VersionText(**out.model_dump(), text=markdown_of(doc), doc=json_of(doc))
