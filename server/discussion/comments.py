"""Comments as the API shows them, and making one: the one way a comment is made (the REST route, replies by email)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlmodel import col, select

from server.accounts.people import person_out
from server.activity import rules as activity
from server.board.rules import task_for
from server.context import Context
from server.discussion.rendering import excerpt, render_markdown
from server.discussion.rules import mentionable_users, notify_mentions
from server.errors import Invalid, RateLimited
from server.models import Comment, Mention, Reaction, User, Visibility
from server.policy import Action, authorize
from server.schemas import CommentIn, CommentOut, PersonOut, QuoteOut, ReactionOut
from server.waiting import rules as waiting

# Comments one person may post a minute (the REST route and replies by email alike).
COMMENTS_PER_MINUTE = 20


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


async def add_comment(ctx: Context, task_id: int, body: CommentIn) -> CommentOut:
    """Comment on a task as ``ctx.actor``: the one way a comment is made (the REST route, replies by email).

    Checks the policy (internal comments are staff's), the per-person comment rate, the quoted comment and the
    mentions; notifies the mentioned and records the live and webhook events for after the commit.

    Raises:
        NotFound: no such task, or one the actor may not see.
        Forbidden: the actor may not comment there (or not internally).
        RateLimited: over the comment rate. Invalid: a quote or mention that does not fit.
    """
    task, project, _ = await task_for(ctx.session, ctx.actor, task_id, Action.COMMENT_CREATE)
    if body.visibility == Visibility.INTERNAL:
        authorize(ctx.actor, Action.COMMENT_INTERNAL, project)
    if not await ctx.services.limiter.hit(f"comment:{ctx.actor.user_id}", COMMENTS_PER_MINUTE, 60):
        raise RateLimited(f"At most {COMMENTS_PER_MINUTE} comments a minute. Your text is kept.")
    if body.reply_to_id is not None:
        quoted = await ctx.session.get(Comment, body.reply_to_id)
        if (
            quoted is None
            or quoted.task_id != task.id
            or (quoted.visibility == Visibility.INTERNAL and not ctx.actor.is_staff)
        ):
            raise Invalid("reply_to_id names no comment of this thread.", reason="unknown_comment")
        if quoted.visibility == Visibility.INTERNAL and body.visibility == Visibility.SHARED:
            raise Invalid("A shared comment cannot quote an internal one.", reason="shared_under_internal")
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
    activity.comment_created(ctx, comment, task)
    await ctx.services.webhooks.comment_created(ctx, out, task)
    return out
