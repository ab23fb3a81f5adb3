"""Task threads: comments (shared or internal), edits with history, tombstones, reactions, mentions, read state."""

from __future__ import annotations

from sqlalchemy import delete, func
from sqlmodel import col, select

from server.api import api
from server.api.routing import ApiError
from server.board.rules import task_for
from server.context import Context
from server.db import bump_version, utcnow
from server.discussion.comments import add_comment, comments_out
from server.discussion.rendering import render_markdown
from server.discussion.rules import (
    comment_for,
    comment_rows_visible,
    unread_counts,
)
from server.files.rules import purge_blobs_after_commit
from server.models import (
    Comment,
    CommentRevision,
    Mention,
    Reaction,
    ReadPosition,
    StoredFile,
)
from server.policy import Action
from server.schemas import (
    CommentIn,
    CommentOut,
    CommentPatch,
    CommentQuery,
    CommentRevisionOut,
    Out,
    Page,
    ReactionIn,
    ReadIn,
    ReadOut,
)
from server.waiting import rules as waiting


class RevisionList(Out):
    items: list[CommentRevisionOut]


@api.route(
    "GET",
    "/api/tasks/{task_id:int}/comments",
    summary="A task's thread, newest first",
    tag="discussion",
    query=CommentQuery,
    response=Page[CommentOut],
    errors=(401, 404, 422),
)
async def list_comments(ctx: Context, query: CommentQuery) -> Page[CommentOut]:
    task, _, _ = await task_for(ctx.session, ctx.actor, ctx.path_int("task_id"), Action.ITEM_READ)
    stmt = select(Comment).where(Comment.task_id == task.id, comment_rows_visible(ctx.actor))
    if query.cursor:
        stmt = stmt.where(col(Comment.id) < int(query.cursor))
    rows = list((await ctx.session.exec(stmt.order_by(col(Comment.id).desc()).limit(query.limit + 1))).all())
    items = await comments_out(ctx, rows[: query.limit])
    return Page[CommentOut](items=items, next_cursor=str(items[-1].id) if len(rows) > query.limit else None)


@api.route(
    "POST",
    "/api/tasks/{task_id:int}/comments",
    summary="Comment on a task (staff may post internal ones)",
    tag="discussion",
    body=CommentIn,
    response=CommentOut,
    status=201,
    errors=(401, 403, 404, 422, 429),
)
async def create_comment(ctx: Context, body: CommentIn) -> CommentOut:
    return await add_comment(ctx, ctx.path_int("task_id"), body)


@api.route(
    "PATCH",
    "/api/comments/{comment_id:int}",
    summary="Edit my comment (the old text is kept)",
    tag="discussion",
    body=CommentPatch,
    response=CommentOut,
    errors=(401, 403, 404, 409, 422),
)
async def edit_comment(ctx: Context, body: CommentPatch) -> CommentOut:
    comment, task, _ = await comment_for(ctx, ctx.path_int("comment_id"), Action.COMMENT_EDIT)
    if comment.deleted_at is not None:
        raise ApiError(409, "deleted", "A deleted comment cannot be edited.")
    if body.version is not None and body.version != comment.version:
        # Edited meanwhile (another device, another tab): this edit would silently replace that text.
        raise ApiError(
            409,
            "version_conflict",
            "The comment changed since you started editing: look at the new text.",
            params={"version": comment.version},
        )
    assert comment.id is not None
    ctx.session.add(
        CommentRevision(comment_id=comment.id, body=comment.body, created_at=comment.edited_at or comment.created_at)
    )
    comment.body = body.body
    comment.body_html = render_markdown(body.body)
    comment.edited_at = utcnow()
    await bump_version(ctx.session, comment)
    out = (await comments_out(ctx, [comment]))[0]
    await ctx.services.live.comment_changed(ctx, out, task, "comment.updated")
    return out


@api.route(
    "DELETE",
    "/api/comments/{comment_id:int}",
    summary="Delete a comment, leaving a tombstone",
    tag="discussion",
    status=204,
    errors=(401, 403, 404),
)
async def delete_comment(ctx: Context) -> None:
    comment, task, _ = await comment_for(ctx, ctx.path_int("comment_id"), Action.COMMENT_DELETE)
    if comment.deleted_at is not None:
        return
    await purge_blobs_after_commit(ctx, col(StoredFile.comment_id) == comment.id)
    await ctx.session.exec(delete(StoredFile).where(col(StoredFile.comment_id) == comment.id))
    comment.body = ""
    comment.body_html = ""
    comment.deleted_at = utcnow()
    await bump_version(ctx.session, comment)
    await ctx.session.exec(delete(CommentRevision).where(col(CommentRevision.comment_id) == comment.id))
    await ctx.session.exec(delete(Reaction).where(col(Reaction.comment_id) == comment.id))
    mentioned = await ctx.session.exec(select(Mention.user_id).where(Mention.comment_id == comment.id))
    waiting.hint(ctx, mentioned.all())  # a mention of them, now deleted, no longer waits on them
    await ctx.session.flush()
    out = (await comments_out(ctx, [comment]))[0]
    await ctx.services.live.comment_changed(ctx, out, task, "comment.deleted")


@api.route(
    "GET",
    "/api/comments/{comment_id:int}/revisions",
    summary="A comment's earlier texts, oldest first",
    tag="discussion",
    response=RevisionList,
    errors=(401, 404),
)
async def comment_revisions(ctx: Context) -> RevisionList:
    comment, _, _ = await comment_for(ctx, ctx.path_int("comment_id"), Action.ITEM_READ)
    rows = await ctx.session.exec(
        select(CommentRevision).where(CommentRevision.comment_id == comment.id).order_by(col(CommentRevision.id))
    )
    return RevisionList(items=[CommentRevisionOut.model_validate(r) for r in rows.all()])


@api.route(
    "POST",
    "/api/comments/{comment_id:int}/reactions",
    summary="React to a comment",
    tag="discussion",
    body=ReactionIn,
    response=CommentOut,
    errors=(401, 403, 404, 409, 422),
)
async def add_reaction(ctx: Context, body: ReactionIn) -> CommentOut:
    comment, task, _ = await comment_for(ctx, ctx.path_int("comment_id"), Action.COMMENT_REACT)
    if comment.deleted_at is not None:
        raise ApiError(409, "deleted", "A deleted comment takes no reactions.")
    exists = (
        await ctx.session.exec(
            select(Reaction).where(
                Reaction.comment_id == comment.id, Reaction.user_id == ctx.actor.user_id, Reaction.emoji == body.emoji
            )
        )
    ).first()
    if exists is None:
        assert comment.id is not None
        ctx.session.add(Reaction(comment_id=comment.id, user_id=ctx.actor.user_id, emoji=body.emoji))
        await ctx.session.flush()
    out = (await comments_out(ctx, [comment]))[0]
    await ctx.services.live.comment_changed(ctx, out, task, "comment.reactions")
    return out


@api.route(
    "DELETE",
    "/api/comments/{comment_id:int}/reactions/{emoji}",
    summary="Take my reaction back",
    tag="discussion",
    response=CommentOut,
    errors=(401, 403, 404),
)
async def remove_reaction(ctx: Context) -> CommentOut:
    comment, task, _ = await comment_for(ctx, ctx.path_int("comment_id"), Action.COMMENT_REACT)
    await ctx.session.exec(
        delete(Reaction).where(
            col(Reaction.comment_id) == comment.id,
            col(Reaction.user_id) == ctx.actor.user_id,
            col(Reaction.emoji) == ctx.request.path_params["emoji"],
        )
    )
    await ctx.session.flush()
    out = (await comments_out(ctx, [comment]))[0]
    await ctx.services.live.comment_changed(ctx, out, task, "comment.reactions")
    return out


@api.route(
    "POST",
    "/api/tasks/{task_id:int}/read",
    summary="Mark a task's thread read up to a comment",
    tag="discussion",
    body=ReadIn,
    response=ReadOut,
    errors=(401, 404, 422),
)
async def mark_read(ctx: Context, body: ReadIn) -> ReadOut:
    task, _, _ = await task_for(ctx.session, ctx.actor, ctx.path_int("task_id"), Action.ITEM_READ)
    assert task.id is not None
    # Clamped to the newest comment the reader may see: the answer (and the push) never tells a customer that an
    # internal comment was written.
    top = (
        await ctx.session.exec(
            select(func.max(Comment.id)).where(Comment.task_id == task.id, comment_rows_visible(ctx.actor))
        )
    ).one() or 0
    target = min(body.comment_id, top)
    position = await ctx.session.get(ReadPosition, (ctx.actor.user_id, task.id))
    if position is None:
        position = ReadPosition(user_id=ctx.actor.user_id, task_id=task.id, last_read_comment_id=target)
    elif target > position.last_read_comment_id:  # read positions only move forward
        position.last_read_comment_id = target
        position.updated_at = utcnow()
    ctx.session.add(position)
    await ctx.session.flush()
    unread = (await unread_counts(ctx, task.project_id, task_ids=[task.id])).get(task.id, 0)
    shown = min(position.last_read_comment_id, top)
    await ctx.services.live.read_changed(ctx, task, shown, unread)
    return ReadOut(task_id=task.id, last_read_comment_id=shown, unread=unread)
