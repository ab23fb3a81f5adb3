"""Task threads: comments (shared or internal), edits with history, tombstones, reactions, mentions, read state."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import delete, func
from sqlmodel import col, select

from server.accounts.people import person_out
from server.api import api
from server.api.routing import ApiError
from server.board.rules import task_for
from server.context import Context
from server.db import bump_version, utcnow
from server.discussion.rendering import excerpt, render_markdown
from server.discussion.rules import (
    comment_for,
    comment_rows_visible,
    mentionable_users,
    notify_mentions,
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
    User,
    Visibility,
)
from server.policy import Action, authorize
from server.schemas import (
    CommentIn,
    CommentOut,
    CommentPatch,
    CommentQuery,
    CommentRevisionOut,
    Out,
    Page,
    PersonOut,
    QuoteOut,
    ReactionIn,
    ReactionOut,
    ReadIn,
    ReadOut,
)
from server.waiting import rules as waiting

COMMENTS_PER_MINUTE = 20


class RevisionList(Out):
    items: list[CommentRevisionOut]


async def comments_out(ctx: Context, comments: Sequence[Comment]) -> list[CommentOut]:
    """Serialize comments with their authors, quotes, mentions and reaction counts (a few queries per page)."""
    ids = [c.id for c in comments if c.id is not None]
    quoted_ids = {c.reply_to_id for c in comments if c.reply_to_id is not None}
    quoted = (
        {
            q.id: q
            for q in (await ctx.session.exec(select(Comment).where(col(Comment.id).in_(quoted_ids)))).all()
            if q.visibility == Visibility.SHARED or ctx.actor.is_staff
        }
        if quoted_ids
        else {}
    )
    people_ids = {c.author_id for c in comments if c.author_id} | {q.author_id for q in quoted.values() if q.author_id}
    people = {u.id: u for u in (await ctx.session.exec(select(User).where(col(User.id).in_(people_ids)))).all()}
    mentions: dict[int, list[int]] = defaultdict(list)
    reactions: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    if ids:
        for comment_id, user_id in (
            await ctx.session.exec(select(Mention.comment_id, Mention.user_id).where(col(Mention.comment_id).in_(ids)))
        ).all():
            mentions[comment_id].append(user_id)
        for comment_id, emoji, user_id in (
            await ctx.session.exec(
                select(Reaction.comment_id, Reaction.emoji, Reaction.user_id)
                .where(col(Reaction.comment_id).in_(ids))
                .order_by(col(Reaction.id))
            )
        ).all():
            reactions[comment_id][emoji].append(user_id)

    def person(user_id: int | None) -> PersonOut | None:
        return person_out(people.get(user_id) if user_id else None)

    out = []
    for c in comments:
        assert c.id is not None
        quote = None
        if c.reply_to_id in quoted:
            q = quoted[c.reply_to_id]
            assert q.id is not None
            author = people.get(q.author_id) if q.author_id else None
            quote = QuoteOut(
                id=q.id,
                author_name=author.name if author else None,
                excerpt=excerpt(q.body),
                deleted=q.deleted_at is not None,
            )
        out.append(
            CommentOut(
                id=c.id,
                task_id=c.task_id,
                project_id=c.project_id,
                author=person(c.author_id),
                body=c.body,
                body_html=c.body_html,
                visibility=c.visibility,
                reply_to=quote,
                mentions=mentions.get(c.id, []),
                reactions=[
                    ReactionOut(emoji=e, count=len(u), mine=ctx.actor.user_id in u, user_ids=u)
                    for e, u in reactions.get(c.id, {}).items()
                ],
                version=c.version,
                created_at=c.created_at,
                edited_at=c.edited_at,
                deleted=c.deleted_at is not None,
            )
        )
    return out


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


async def add_comment(ctx: Context, task_id: int, body: CommentIn) -> CommentOut:
    """Comment on a task as ``ctx.actor``: the one way a comment is made (the REST route, replies by email).

    Checks the policy (internal comments are staff's), the per-person comment rate, the quoted comment and the
    mentions; notifies the mentioned and records the live and webhook events for after the commit.

    Raises:
        NotFound: no such task, or one the actor may not see.
        Forbidden: the actor may not comment there (or not internally).
        ApiError: 429 over the comment rate; 422 for a quote or mention that does not fit.
    """
    task, project, _ = await task_for(ctx.session, ctx.actor, task_id, Action.COMMENT_CREATE)
    if body.visibility == Visibility.INTERNAL:
        authorize(ctx.actor, Action.COMMENT_INTERNAL, project)
    if not await ctx.services.limiter.hit(f"comment:{ctx.actor.user_id}", COMMENTS_PER_MINUTE, 60):
        raise ApiError(429, "rate_limited", f"At most {COMMENTS_PER_MINUTE} comments a minute. Your text is kept.")
    if body.reply_to_id is not None:
        quoted = await ctx.session.get(Comment, body.reply_to_id)
        if (
            quoted is None
            or quoted.task_id != task.id
            or (quoted.visibility == Visibility.INTERNAL and not ctx.actor.is_staff)
        ):
            raise ApiError(422, "invalid", "reply_to_id names no comment of this thread.", reason="unknown_comment")
        if quoted.visibility == Visibility.INTERNAL and body.visibility == Visibility.SHARED:
            raise ApiError(
                422, "invalid", "A shared comment cannot quote an internal one.", reason="shared_under_internal"
            )
    mentioned = await mentionable_users(ctx, project, set(body.mentions), body.visibility, task)
    assert task.id is not None and project.id is not None
    comment = Comment(
        task_id=task.id,
        project_id=project.id,
        author_id=ctx.actor.user_id,
        body=body.body,
        body_html=render_markdown(body.body),
        visibility=body.visibility,
        reply_to_id=body.reply_to_id,
    )
    ctx.session.add(comment)
    await ctx.session.flush()
    assert comment.id is not None
    ctx.session.add_all(Mention(comment_id=comment.id, user_id=user.id) for user in mentioned if user.id)
    await notify_mentions(ctx, comment, task, mentioned)
    await waiting.mentions_answered(ctx, task.id, comment.id)
    await ctx.session.flush()
    out = (await comments_out(ctx, [comment]))[0]
    await ctx.services.live.comment_changed(ctx, out, task, "comment.created")
    await ctx.services.webhooks.comment_created(ctx, out, task)
    return out


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
