"""Search across everything a person may see: tasks, comments, requests, files and notes (by name or text).

Every kind is scoped by the policy's rules for its lists (``visible_projects``, ``visible_items`` with parents,
``thread_rows_visible``, ``files_visible``), so a hit is exactly an item the asker could open.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_
from sqlmodel import col, select

from server.api import api
from server.context import Context
from server.discussion.rendering import excerpt
from server.discussion.rules import thread_rows_visible
from server.files.rules import files_visible
from server.models import Comment, Note, Project, Request, StoredFile, Task
from server.policy import visible_items, visible_projects
from server.schemas import Out, SearchHit, SearchQuery

HITS_PER_KIND = 25


class SearchResults(Out):
    items: list[SearchHit]


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _matches(pattern: str, *columns: Any) -> ColumnElement[bool]:
    return or_(*(col(c).ilike(pattern, escape="\\") for c in columns))


@api.route(
    "GET",
    "/api/search",
    summary="Search tasks, comments, requests, files and notes I can see",
    tag="discussion",
    query=SearchQuery,
    response=SearchResults,
    errors=(401, 422),
)
async def search(ctx: Context, query: SearchQuery) -> SearchResults:
    pattern = _like(query.q)
    scope = [visible_projects(ctx.actor)]
    if query.project_id is not None:
        scope.append(col(Project.id) == query.project_id)
    hits = [
        *await _tasks(ctx, scope, pattern),
        *await _comments(ctx, scope, pattern),
        *await _requests(ctx, scope, pattern),
        *await _files(ctx, scope, pattern),
        *await _notes(ctx, scope, pattern),
    ]
    return SearchResults(items=hits)


async def _tasks(ctx: Context, scope: list[ColumnElement[bool]], pattern: str) -> list[SearchHit]:
    rows = await ctx.session.exec(
        select(Task)
        .join(Project, col(Project.id) == Task.project_id)
        .where(*scope, visible_items(ctx.actor, Task), _matches(pattern, Task.title, Task.description))
        .order_by(col(Task.id).desc())
        .limit(HITS_PER_KIND)
    )
    return [
        SearchHit(
            kind="task",
            project_id=t.project_id,
            task_id=t.id,
            comment_id=None,
            title=t.title,
            excerpt=excerpt(t.description),
            link=f"/projects/{t.project_id}/tasks/{t.id}",
        )
        for t in rows.all()
        if t.id is not None
    ]


async def _comments(ctx: Context, scope: list[ColumnElement[bool]], pattern: str) -> list[SearchHit]:
    rows = await ctx.session.exec(
        select(Comment, Task.title)
        .join(Task, col(Task.id) == Comment.task_id)
        .join(Project, col(Project.id) == Task.project_id)
        .where(
            *scope,
            thread_rows_visible(ctx.actor),
            col(Comment.deleted_at).is_(None),
            _matches(pattern, Comment.body),
        )
        .order_by(col(Comment.id).desc())
        .limit(HITS_PER_KIND)
    )
    return [
        SearchHit(
            kind="comment",
            project_id=c.project_id,
            task_id=c.task_id,
            comment_id=c.id,
            title=title,
            excerpt=excerpt(c.body),
            link=f"/projects/{c.project_id}/tasks/{c.task_id}#comment-{c.id}",
        )
        for c, title in rows.all()
        if c.id is not None
    ]


async def _requests(ctx: Context, scope: list[ColumnElement[bool]], pattern: str) -> list[SearchHit]:
    # Requests are shared by nature: everyone on a project they may see reads them.
    rows = await ctx.session.exec(
        select(Request)
        .join(Project, col(Project.id) == Request.project_id)
        .where(*scope, _matches(pattern, Request.title, Request.description))
        .order_by(col(Request.id).desc())
        .limit(HITS_PER_KIND)
    )
    return [
        SearchHit(
            kind="request",
            project_id=r.project_id,
            task_id=None,
            comment_id=None,
            request_id=r.id,
            title=r.title,
            excerpt=excerpt(r.description),
            link=f"/projects/{r.project_id}/requests/{r.id}",
        )
        for r in rows.all()
        if r.id is not None
    ]


async def _files(ctx: Context, scope: list[ColumnElement[bool]], pattern: str) -> list[SearchHit]:
    rows = await ctx.session.exec(
        select(StoredFile)
        .join(Project, col(Project.id) == StoredFile.project_id)
        .where(*scope, files_visible(ctx.actor), _matches(pattern, StoredFile.name))
        .order_by(col(StoredFile.id).desc())
        .limit(HITS_PER_KIND)
    )
    return [
        SearchHit(
            kind="file",
            project_id=f.project_id,
            task_id=f.task_id,
            comment_id=f.comment_id,
            request_id=f.request_id,
            file_id=f.id,
            title=f.name,
            excerpt="",
            link=f"/projects/{f.project_id}/files",
        )
        for f in rows.all()
        if f.id is not None
    ]


async def _notes(ctx: Context, scope: list[ColumnElement[bool]], pattern: str) -> list[SearchHit]:
    # A note's text lives in its CRDT document; its title is what is searched.
    rows = await ctx.session.exec(
        select(Note)
        .join(Project, col(Project.id) == Note.project_id)
        .where(
            *scope,
            visible_items(ctx.actor, Note),
            _matches(pattern, Note.title),
        )
        .order_by(col(Note.id).desc())
        .limit(HITS_PER_KIND)
    )
    return [
        SearchHit(
            kind="note",
            project_id=n.project_id,
            task_id=n.task_id,
            comment_id=None,
            note_id=n.id,
            title=n.title,
            excerpt="",
            link=f"/projects/{n.project_id}/notes/{n.id}",
        )
        for n in rows.all()
        if n.id is not None
    ]
