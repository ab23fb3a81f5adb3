"""Informal feedback: staff mark a customer's comment (or emailed reply) as praise, a concern or a request for change,
with a theme (``server/feedback/rules.py``'s lexicon). A customer's reply in a request's history (a ``RequestEvent``,
written in the portal or by email to a request without a task) can be marked the same way. Marked items join the
project's feedback view and metric beside survey answers (how: ``server/feedback/rules.py``), and a theme can become
an action item as survey themes do.

Customers never learn of a marking by any path: marks are read only by staff routes (a customer is refused, or told
"not found" when the comment is hidden from them; for a request's history always "not found"), neither the comment
nor the request serializer knows of them, their live event goes to staff streams only (``task:{id}:staff``,
``project:{id}:staff``), they touch only the staff KPIs, and the customers' reports load no marks
(``server/reports/kpis.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import exists
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.discussion.rendering import excerpt
from server.feedback.rules import MarkFact
from server.models import Comment, FeedbackKind, FeedbackMark, InboundMail, RequestEvent

MARK_KINDS = tuple(k.value for k in FeedbackKind)


def _by_email() -> object:
    return exists().where(col(InboundMail.comment_id) == FeedbackMark.comment_id)


def _event_by_email() -> object:
    return exists().where(col(InboundMail.request_event_id) == FeedbackMark.request_event_id)


async def load_marks(session: AsyncSession, project_ids: Sequence[int]) -> dict[int, list[MarkFact]]:
    """Every marked (not deleted) comment of ``project_ids``, by project, oldest first. Staff only."""
    marks: dict[int, list[MarkFact]] = defaultdict(list)
    if not project_ids:
        return marks
    rows = (
        await session.exec(
            select(FeedbackMark, Comment, _by_email())  # type: ignore[call-overload]
            .join(Comment, col(Comment.id) == FeedbackMark.comment_id)
            .where(col(FeedbackMark.project_id).in_(project_ids), col(Comment.deleted_at).is_(None))
            .order_by(col(Comment.created_at), col(Comment.id))
        )
    ).all()
    for mark, comment, by_email in rows:
        marks[mark.project_id].append(
            MarkFact(
                id=mark.id,
                comment_id=comment.id,
                task_id=comment.task_id,
                kind=mark.kind,
                theme=mark.theme,
                text=excerpt(comment.body, 500),
                created_at=comment.created_at,
                by_email=bool(by_email),
            )
        )
    events = (
        await session.exec(
            select(FeedbackMark, RequestEvent, _event_by_email())  # type: ignore[call-overload]
            .join(RequestEvent, col(RequestEvent.id) == FeedbackMark.request_event_id)
            .where(col(FeedbackMark.project_id).in_(project_ids))
        )
    ).all()
    for mark, event, by_email in events:
        marks[mark.project_id].append(
            MarkFact(
                id=mark.id,
                comment_id=None,
                task_id=None,
                kind=mark.kind,
                theme=mark.theme,
                text=excerpt(event.text, 500),
                created_at=event.created_at,
                by_email=bool(by_email),
                request_event_id=event.id,
                request_id=event.request_id,
            )
        )
    for facts in marks.values():
        facts.sort(key=lambda f: (f.created_at, f.id))
    return marks


async def marks_of_request(session: AsyncSession, request_id: int) -> list[tuple[FeedbackMark, RequestEvent, bool]]:
    """The marks on ``request_id``'s history, with the entry and whether it came by email. Staff only."""
    rows = await session.exec(
        select(FeedbackMark, RequestEvent, _event_by_email())  # type: ignore[call-overload]
        .join(RequestEvent, col(RequestEvent.id) == FeedbackMark.request_event_id)
        .where(RequestEvent.request_id == request_id)
        .order_by(col(FeedbackMark.request_event_id))
    )
    return [(mark, event, bool(by_email)) for mark, event, by_email in rows.all()]


async def marks_of_task(session: AsyncSession, task_id: int) -> list[tuple[FeedbackMark, bool]]:
    """The marks on ``task_id``'s comments, with whether each comment came by email. Staff only."""
    rows = await session.exec(
        select(FeedbackMark, _by_email())  # type: ignore[call-overload]
        .join(Comment, col(Comment.id) == FeedbackMark.comment_id)
        .where(Comment.task_id == task_id)
        .order_by(col(FeedbackMark.comment_id))
    )
    return [(mark, bool(by_email)) for mark, by_email in rows.all()]
