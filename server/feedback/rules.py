"""Customer feedback: "How well were your goals supported?" (1-5), what helped most, what hindered most.

A :class:`~server.models.FeedbackRequest` is opened when a shared milestone is completed (or by staff on demand);
the project's ``customer`` members are notified and answer once each. Staff see scores, the trend, and comments
grouped into themes; a theme can become an action item (a task) whose completion counts in the feedback metric.

Theme grouping (explainable on purpose): each answer text is lower-cased, stripped of diacritics and split into
words; a theme matches when one of its keywords is the *start* of a word (``respon`` matches "responsive",
"response"). No stemming, no model. Text matching no theme counts under ``other``. The lexicon is :data:`THEMES`.

The feedback metric (0-100; docs/REPORTS.md) weights, highest first: action items completed on feedback themes
(``A``), the trend of negative themes (``N``), the survey score (``S``)::

    A = completed action items / action items        (none: 1 if no answer names a hindrance, else 0)
    N = clamp((1 - neg_last) + (neg_before - neg_last) / 2, 0, 1)
        neg_r = hindrance theme mentions per answer in round r, capped at 1; round = one feedback request;
        neg_before = mean over earlier rounds (= neg_last when there is only one round)
    S = (mean score - 1) / 4
    metric = 100 * (wA*A + wN*N + wS*S) / (wA + wN + wS)

The weights come from ``TANDEM_FEEDBACK_WEIGHTS`` (default ``0.5,0.3,0.2``) and must keep wA >= wN >= wS.

Informal feedback (``server/feedback/marks.py``): a customer comment (or a customer's reply in a request's history)
staff marked as praise, a concern or a request for change, with a theme, counts beside the answers: praise as the
theme helping, a concern or a change request as the theme hindering. In the metric a marked comment or reply is one
more item of the round it was written in (the latest feedback request opened before it; the first round if none was;
one round of its own without any answers), so
``neg_r = (hindrance mentions of the answers + concerns and change requests) / (answers + marked comments)``, capped
at 1, and A counts a concern or change request as a named hindrance. Without answers S is left out:
``metric = 100 * (wA*A + wN*N) / (wA + wN)``. Responses, score and trend stay the survey's.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import Field
from sqlalchemy import select as sa_select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from server.models import FeedbackAction, FeedbackAnswer, FeedbackRequest, Status, StatusCategory, Task
from server.schemas import Out

THEMES: dict[str, tuple[str, ...]] = {
    "communication": (
        "communicat", "respon", "repl", "answer", "update", "inform", "meeting", "call", "email", "contact",
        "kommunik", "svar", "mote", "uppdater",
    ),
    "speed": ("slow", "fast", "quick", "delay", "late", "wait", "deadline", "speed", "snabb", "forsen", "vant"),
    "quality": ("bug", "error", "broken", "quality", "crash", "defect", "polish", "fel", "kvalitet", "trasig"),
    "clarity": (
        "clear", "unclear", "confus", "understand", "scope", "requirement", "expect", "plan", "tydlig", "otydlig",
        "krav",
    ),
    "people": ("team", "helpful", "friendly", "expert", "knowledge", "support", "hjalp", "kunnig", "trevlig"),
    "tools": ("tool", "portal", "board", "dashboard", "tandem", "app", "system", "verktyg"),
}  # fmt: skip
OTHER = "other"
DEFAULT_WEIGHTS = (0.5, 0.3, 0.2)

_WORD = re.compile(r"[a-z0-9]+")


def parse_weights(raw: str) -> tuple[float, float, float]:
    """``"wA,wN,wS"`` as three non-negative floats, highest first.

    Raises:
        ValueError: not three numbers, a negative one, all zero, or not in the order wA >= wN >= wS.
    """
    parts = [float(p) for p in raw.split(",")]
    if len(parts) != 3 or min(parts) < 0 or sum(parts) <= 0:
        raise ValueError("TANDEM_FEEDBACK_WEIGHTS needs three non-negative numbers: actions,negative_trend,score")
    a, n, s = parts
    if not a >= n >= s:
        raise ValueError("TANDEM_FEEDBACK_WEIGHTS must weight actions >= negative trend >= score")
    return a, n, s


def themes_of(text: str) -> list[str]:
    """The themes ``text`` mentions, in lexicon order; ``["other"]`` for text matching none, ``[]`` for none."""
    folded = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    words = _WORD.findall(folded)
    if not words:
        return []
    found = [theme for theme, keys in THEMES.items() if any(w.startswith(k) for w in words for k in keys)]
    return found or [OTHER]


@dataclass(frozen=True)
class AnswerFact:
    id: int
    request_id: int
    request_created_at: dt.datetime
    milestone_id: int | None
    score: int
    helped: str
    hindered: str
    created_at: dt.datetime


@dataclass(frozen=True)
class ActionFact:
    id: int
    theme: str
    task_id: int
    title: str
    done: bool


@dataclass(frozen=True)
class MarkFact:
    """A customer comment, or a customer's answer in a request's history, marked as informal feedback
    (``server/feedback/marks.py``): ``comment_id`` and ``task_id`` for a comment, ``request_event_id`` and
    ``request_id`` for a request's history entry."""

    id: int
    comment_id: int | None
    task_id: int | None
    kind: str  # praise, concern or change
    theme: str
    text: str
    created_at: dt.datetime  # when the customer wrote it
    by_email: bool = False
    request_event_id: int | None = None
    request_id: int | None = None


class Quote(Out):
    answer_id: int | None = Field(None, description="The survey answer quoted; null for a marked comment.")
    comment_id: int | None = Field(None, description="The marked comment quoted; null otherwise.")
    task_id: int | None = None
    request_event_id: int | None = Field(
        None, description="The marked entry of a request's history (a customer's reply) quoted; null otherwise."
    )
    request_id: int | None = Field(None, description="The request of a marked history entry.")
    kind: str = Field(description="helped or hindered (a survey answer); praise, concern or change (a comment)")
    text: str
    score: int | None = Field(description="The survey score; null for a marked comment.")
    milestone_id: int | None
    by_email: bool = Field(False, description="The marked comment came in as a reply by email.")


class ActionOut(Out):
    id: int
    theme: str
    task_id: int
    title: str
    done: bool


class ThemeOut(Out):
    theme: str
    helped: int = Field(description="Answers naming it as what helped most.")
    hindered: int = Field(description="Answers naming it as what hindered most.")
    hindered_trend: float | None = Field(description="Hindrance share in the latest round minus the rounds before.")
    quotes: list[Quote]
    actions: list[ActionOut]


class RoundOut(Out):
    request_id: int
    milestone_id: int | None
    created_at: dt.datetime
    answers: int
    mean_score: float


class FeedbackSummary(Out):
    responses: int
    informal: int = Field(0, description="Customer comments and request replies staff marked as feedback (staff only).")
    score: float | None = Field(description="Mean survey score, 1-5.")
    trend: float | None = Field(description="Mean score of the latest round minus the round before it.")
    metric: float | None = Field(description="0-100, see docs/REPORTS.md; null without answers.")
    components: dict[str, float] = Field(description="A (actions), N (negative trend), S (score), each 0-1.")
    weights: dict[str, float]
    rounds: list[RoundOut]
    themes: list[ThemeOut]


def _rounds(answers: Sequence[AnswerFact]) -> list[list[AnswerFact]]:
    by_request: dict[int, list[AnswerFact]] = defaultdict(list)
    for answer in answers:
        by_request[answer.request_id].append(answer)
    return sorted(by_request.values(), key=lambda r: (r[0].request_created_at, r[0].request_id))


@dataclass(frozen=True)
class _Item:
    """One piece of feedback in a round: a survey answer or a marked comment, as the themes it names."""

    hindering: tuple[str, ...]
    helping: tuple[str, ...]


def _item(fact: AnswerFact | MarkFact) -> _Item:
    if isinstance(fact, AnswerFact):
        return _Item(tuple(themes_of(fact.hindered)), tuple(themes_of(fact.helped)))
    if fact.kind == "praise":
        return _Item((), (fact.theme,))
    return _Item((fact.theme,), ())


def _metric_rounds(rounds: list[list[AnswerFact]], marks: Sequence[MarkFact]) -> list[list[_Item]]:
    """The rounds with each marked comment added to the round it was written in (see the module's docstring)."""
    if not rounds:
        return [[_item(m) for m in marks]] if marks else []
    out = [[_item(a) for a in r] for r in rounds]
    starts = [r[0].request_created_at for r in rounds]
    for mark in marks:
        index = max((i for i, start in enumerate(starts) if start <= mark.created_at), default=0)
        out[index].append(_item(mark))
    return out


def _negative_rate(round_: Sequence[_Item]) -> float:
    mentions = sum(len(item.hindering) for item in round_)
    return min(1.0, mentions / len(round_))


def summarize(
    answers: Sequence[AnswerFact],
    actions: Sequence[ActionFact],
    weights: tuple[float, float, float],
    marks: Sequence[MarkFact] = (),
) -> FeedbackSummary:
    """Scores, trend, themes and the feedback metric of one project's answers, marked comments and action items."""
    rounds = _rounds(answers)
    items = _metric_rounds(rounds, marks)
    round_out = [
        RoundOut(
            request_id=r[0].request_id,
            milestone_id=r[0].milestone_id,
            created_at=r[0].request_created_at,
            answers=len(r),
            mean_score=round(statistics.fmean(a.score for a in r), 2),
        )
        for r in rounds
    ]
    themes = _themes(answers, actions, items, marks)
    wa, wn, ws = weights
    weight_map = {"A": wa, "N": wn, "S": ws}
    if not items:
        return FeedbackSummary(
            responses=0, score=None, trend=None, metric=None, components={}, weights=weight_map,
            rounds=[], themes=themes,
        )  # fmt: skip
    score = statistics.fmean(a.score for a in answers) if answers else None
    trend = round(round_out[-1].mean_score - round_out[-2].mean_score, 2) if len(round_out) > 1 else None
    if actions:
        a_part = sum(1 for x in actions if x.done) / len(actions)
    else:
        a_part = 0.0 if any(item.hindering for r in items for item in r) else 1.0
    neg_last = _negative_rate(items[-1])
    neg_before = statistics.fmean(_negative_rate(r) for r in items[:-1]) if len(items) > 1 else neg_last
    n_part = min(1.0, max(0.0, (1 - neg_last) + (neg_before - neg_last) / 2))
    components = {"A": round(a_part, 4), "N": round(n_part, 4)}
    if score is None:
        metric = 100 * (wa * a_part + wn * n_part) / (wa + wn)
    else:
        s_part = (score - 1) / 4
        components["S"] = round(s_part, 4)
        metric = 100 * (wa * a_part + wn * n_part + ws * s_part) / (wa + wn + ws)
    return FeedbackSummary(
        responses=len(answers),
        informal=len(marks),
        score=round(score, 2) if score is not None else None,
        trend=trend,
        metric=round(metric, 1),
        components=components,
        weights=weight_map,
        rounds=round_out,
        themes=themes,
    )


def _themes(
    answers: Sequence[AnswerFact],
    actions: Sequence[ActionFact],
    rounds: list[list[_Item]],
    marks: Sequence[MarkFact] = (),
) -> list[ThemeOut]:
    helped: dict[str, int] = defaultdict(int)
    hindered: dict[str, int] = defaultdict(int)
    quotes: dict[str, list[Quote]] = defaultdict(list)
    for answer in answers:
        for kind, text in (("helped", answer.helped), ("hindered", answer.hindered)):
            for theme in themes_of(text):
                (helped if kind == "helped" else hindered)[theme] += 1
                quotes[theme].append(
                    Quote(
                        answer_id=answer.id, kind=kind, text=text, score=answer.score, milestone_id=answer.milestone_id
                    )
                )
    for mark in marks:
        (helped if mark.kind == "praise" else hindered)[mark.theme] += 1
        quotes[mark.theme].append(
            Quote(
                comment_id=mark.comment_id, task_id=mark.task_id, kind=mark.kind, text=mark.text, score=None,
                milestone_id=None, by_email=mark.by_email, request_event_id=mark.request_event_id,
                request_id=mark.request_id,
            )
        )  # fmt: skip
    by_theme: dict[str, list[ActionOut]] = defaultdict(list)
    for action in actions:
        by_theme[action.theme].append(ActionOut(**action.__dict__))
    names = [t for t in (*THEMES, OTHER) if helped[t] or hindered[t] or by_theme[t]]

    def share(round_: Sequence[_Item], theme: str) -> float:
        return sum(1 for item in round_ if theme in item.hindering) / len(round_)

    out = []
    for theme in names:
        trend = None
        if len(rounds) > 1:
            before = statistics.fmean(share(r, theme) for r in rounds[:-1])
            trend = round(share(rounds[-1], theme) - before, 4)
        out.append(
            ThemeOut(
                theme=theme,
                helped=helped[theme],
                hindered=hindered[theme],
                hindered_trend=trend,
                quotes=quotes[theme],
                actions=by_theme[theme],
            )
        )
    # Most hindering first: that is where an action item pays.
    out.sort(key=lambda t: (-t.hindered, -t.helped, t.theme))
    return out


async def load_feedback(
    session: AsyncSession, project_ids: Sequence[int]
) -> tuple[dict[int, list[AnswerFact]], dict[int, list[ActionFact]]]:
    """Every answer and action item of ``project_ids``, by project (two queries)."""
    answers: dict[int, list[AnswerFact]] = defaultdict(list)
    actions: dict[int, list[ActionFact]] = defaultdict(list)
    if not project_ids:
        return answers, actions
    rows = (
        await session.exec(  # type: ignore[call-overload]
            sa_select(
                col(FeedbackAnswer.project_id),
                col(FeedbackAnswer.id),
                col(FeedbackAnswer.request_id),
                col(FeedbackRequest.created_at),
                col(FeedbackAnswer.milestone_id),
                col(FeedbackAnswer.score),
                col(FeedbackAnswer.helped),
                col(FeedbackAnswer.hindered),
                col(FeedbackAnswer.created_at),
            )
            .join(FeedbackRequest, col(FeedbackRequest.id) == FeedbackAnswer.request_id)
            .where(col(FeedbackAnswer.project_id).in_(project_ids))
            .order_by(col(FeedbackAnswer.id))
        )
    ).all()
    for project_id, *fields in rows:
        answers[project_id].append(AnswerFact(*fields))
    action_rows = (
        await session.exec(  # type: ignore[call-overload]
            sa_select(
                col(FeedbackAction.project_id),
                col(FeedbackAction.id),
                col(FeedbackAction.theme),
                col(FeedbackAction.task_id),
                col(Task.title),
                col(Status.category),
            )
            .join(Task, col(Task.id) == FeedbackAction.task_id)
            .join(Status, col(Status.id) == Task.status_id)
            .where(col(FeedbackAction.project_id).in_(project_ids))
            .order_by(col(FeedbackAction.id))
        )
    ).all()
    for project_id, action_id, theme, task_id, title, category in action_rows:
        actions[project_id].append(ActionFact(action_id, theme, task_id, title, category == StatusCategory.DONE))
    return answers, actions
