"""The progress digest: one mail per customer, weekly by default, showing how their projects moved.

Per project the customer takes part in (not archived), since the last digest (or one period back for the first):

- **What moved**: tasks and milestones added, shared with them, moved to another status or completed; requests
  filed or answered; new comments (counted per task);
- **What changed**: scope and dates of shared tasks and milestones, ``old -> new`` (title, description, due date,
  milestone, name);
- **What is next**: the open shared tasks and milestones due soonest (within :data:`LOOKAHEAD`);
- **Waiting on you**: what ``server/waiting/rules.py`` says waits on the person in that project;

each with a link, and a link to the project's activity feed. With ``TANDEM_MAIL_DOMAIN`` set, each item whose
thread a reply can land in (a task's thread; a request, which a reply answers) carries its reply address
(``server/mail/``), shared audience, and the mail its ``Message-ID``; a digest about one such item carries it as
``Reply-To`` with ``In-Reply-To``/``References`` to the item's thread, as notification mail does.

Everything comes through the policy: the events through ``server/activity/rules.py``'s ``visible_events`` (shared
when it happened and still visible now), the rest through ``visible_items``; nothing internal is ever read for the
mail. A digest with nothing moved, changed or waiting is not
sent. The cadence is the person's (``NotificationPreference.progress``: ``daily``, ``weekly`` or ``off``) and the
mail is in their language. The digest worker (``server/inbox/digest.py``) runs it on its interval.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.accounts.auth import load_actor
from server.activity.rules import SCOPE_AND_DATE_FIELDS, ActivityKind, ActivityOut, events_for
from server.db import Database, utcnow
from server.mail.addresses import threading_headers
from server.mail.outgoing import Mailer
from server.mail.tokens import ItemKind, ReplyTarget
from server.models import (
    Milestone,
    NotificationPreference,
    OrgRole,
    Project,
    Status,
    StatusCategory,
    Task,
    User,
    Visibility,
)
from server.policy import Actor, visible_items, visible_projects
from server.settings import Settings
from server.waiting.queries import WaitingItemOut, WaitingKind, waiting_on

log = logging.getLogger(__name__)

PERIODS = {"daily": dt.timedelta(days=1), "weekly": dt.timedelta(days=7)}
DEFAULT_CADENCE = "weekly"
LOOKAHEAD = dt.timedelta(days=14)
MAX_EVENTS = 500
MAX_NEXT = 5

# The digest's own phrases, English and Swedish (kept with the digest so it reads as one piece).
CATALOG: dict[str, dict[str, str]] = {
    "en": {
        "subject": "Tandem: how your projects moved this {period}",
        "period.daily": "day",
        "period.weekly": "week",
        "greeting": "Hello {name}, here is how your projects moved since {since}.",
        "moved": "What moved",
        "changed": "What changed",
        "next": "What is next",
        "waiting": "Waiting on you",
        "feed": "All activity: {link}",
        "task.created": "New task: {title}",
        "task.shared": "Shared with you: {title}",
        "task.completed": "Done: {title}",
        "task.moved": "{title}: {old} -> {new}",
        "milestone.created": "New milestone: {title}",
        "milestone.shared": "Shared with you: milestone {title}",
        "milestone.completed": "Milestone reached: {title}",
        "request.filed": "Request filed: {title}",
        "request.updated": "Request {title}: {new}",
        "comments": "{title}: {count} new comment(s)",
        "field.title": "title",
        "field.name": "name",
        "field.description": "description",
        "field.due_date": "due date",
        "field.milestone": "milestone",
        "change": "{title}: {field} {old} -> {new}",
        "none": "(none)",
        "due": "{title} (due {date})",
        "footer": "You get this digest {period_adverb}. Change how often: {link}",
        "adverb.daily": "daily",
        "adverb.weekly": "weekly",
        "reply": "Reply by email: {address}",
        "reply_hint": "Reply to this mail to answer in its thread.",
    },
    "sv": {
        "subject": "Tandem: så gick dina projekt framåt {period}",
        "period.daily": "i dag",
        "period.weekly": "den här veckan",
        "greeting": "Hej {name}, så här har dina projekt rört sig sedan {since}.",
        "moved": "Det här hände",
        "changed": "Det här ändrades",
        "next": "Det här kommer härnäst",
        "waiting": "Väntar på dig",
        "feed": "All aktivitet: {link}",
        "task.created": "Ny uppgift: {title}",
        "task.shared": "Delad med dig: {title}",
        "task.completed": "Klar: {title}",
        "task.moved": "{title}: {old} -> {new}",
        "milestone.created": "Ny milstolpe: {title}",
        "milestone.shared": "Delad med dig: milstolpen {title}",
        "milestone.completed": "Milstolpe nådd: {title}",
        "request.filed": "Önskemål inskickat: {title}",
        "request.updated": "Önskemål {title}: {new}",
        "comments": "{title}: {count} nya kommentarer",
        "field.title": "titel",
        "field.name": "namn",
        "field.description": "beskrivning",
        "field.due_date": "förfallodatum",
        "field.milestone": "milstolpe",
        "change": "{title}: {field} {old} -> {new}",
        "none": "(inget)",
        "due": "{title} (förfaller {date})",
        "footer": "Du får den här sammanfattningen {period_adverb}. Ändra hur ofta: {link}",
        "adverb.daily": "varje dag",
        "adverb.weekly": "varje vecka",
        "reply": "Svara via e-post: {address}",
        "reply_hint": "Svara på det här mejlet för att svara i dess tråd.",
    },
}


def _t(locale: str, key: str, **params: object) -> str:
    catalog = CATALOG.get(locale, CATALOG["en"])
    return catalog.get(key, CATALOG["en"][key]).format(**params)


@dataclass
class Line:
    text: str
    link: str
    thread: tuple[ItemKind, int] | None = None  # where a reply by email about this item lands


def _task_thread(task_id: int | None) -> tuple[ItemKind, int] | None:
    return (ItemKind.TASK, task_id) if task_id is not None else None


def _event_thread(event: ActivityOut) -> tuple[ItemKind, int] | None:
    """A task's events reply in its thread; a request's answer the request (or its task's thread, once it has one:
    server/mail/handler.py decides at delivery)."""
    if event.task_id is not None:
        return (ItemKind.TASK, event.task_id)
    return (ItemKind.REQUEST, event.request_id) if event.request_id is not None else None


def _waiting_thread(item: WaitingItemOut) -> tuple[ItemKind, int] | None:
    """A request asking for information is answered by a reply; a task or a mention is replied to in its thread; a
    feedback survey is answered in Tandem."""
    if item.kind == WaitingKind.REQUEST:
        return (ItemKind.REQUEST, item.id)
    if item.kind in (WaitingKind.TASK, WaitingKind.MENTION):
        return _task_thread(item.task_id)
    return None


@dataclass
class ProjectProgress:
    project_id: int
    name: str
    moved: list[Line] = field(default_factory=list)
    changed: list[Line] = field(default_factory=list)
    next: list[Line] = field(default_factory=list)
    waiting: list[Line] = field(default_factory=list)

    @property
    def has_news(self) -> bool:
        return bool(self.moved or self.changed or self.waiting)


def _moved(locale: str, event: ActivityOut) -> str | None:
    kind = event.kind
    if kind in (ActivityKind.TASK_CREATED, ActivityKind.TASK_SHARED, ActivityKind.TASK_COMPLETED,
                ActivityKind.MILESTONE_CREATED, ActivityKind.MILESTONE_SHARED, ActivityKind.MILESTONE_COMPLETED,
                ActivityKind.REQUEST_FILED):  # fmt: skip
        return _t(locale, kind, title=event.title)
    if kind == ActivityKind.REQUEST_UPDATED:
        return _t(locale, kind, title=event.title, new=(event.changes.get("status") or [None, ""])[1])
    if kind == ActivityKind.TASK_UPDATED and "status" in event.changes:
        old, new = event.changes["status"]
        return _t(locale, "task.moved", title=event.title, old=old, new=new)
    return None


def _changes(locale: str, event: ActivityOut) -> list[str]:
    if event.kind not in (ActivityKind.TASK_UPDATED, ActivityKind.TASK_COMPLETED, ActivityKind.MILESTONE_UPDATED,
                          ActivityKind.MILESTONE_COMPLETED):  # fmt: skip
        return []
    none = _t(locale, "none")
    return [
        _t(locale, "change", title=event.title, field=_t(locale, f"field.{name}"), old=old or none, new=new or none)
        for name, (old, new) in sorted(event.changes.items())
        if name in SCOPE_AND_DATE_FIELDS
    ]


class ProgressDigests:
    """Composes and sends the progress digests that are due."""

    def __init__(self, settings: Settings, db: Database, mailer: Mailer) -> None:
        self.settings = settings
        self.db = db
        self.mailer = mailer

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """Send every progress digest that is due at ``now``.

        Returns:
            How many mails were sent.
        """
        now = now or utcnow()
        async with self.db.session() as session:
            users = (
                await session.exec(select(User.id).where(User.role == OrgRole.CUSTOMER, col(User.is_active).is_(True)))
            ).all()
        sent = 0
        for user_id in users:
            if user_id is None:
                continue
            try:
                sent += await self._send(user_id, now)
            except Exception:
                log.exception("progress digest for user %s failed; retried at the next run", user_id)
        return sent

    async def _send(self, user_id: int, now: dt.datetime) -> int:
        async with self.db.session() as session:
            user = await session.get(User, user_id)
            if user is None:
                return 0
            claim = select(NotificationPreference).where(NotificationPreference.user_id == user_id)
            if self.db.dialect == "postgresql":
                claim = claim.with_for_update(skip_locked=True)
            preference = (await session.exec(claim)).first()
            cadence = preference.progress if preference else DEFAULT_CADENCE
            period = PERIODS.get(cadence)
            if period is None:
                return 0  # off
            last = preference.last_progress_at if preference else None
            if last is not None and now - last < period:
                return 0
            since = last or now - period
            projects = await self.compose(session, user, since, now)
            preference = preference or NotificationPreference(user_id=user_id)
            preference.last_progress_at = now
            session.add(preference)
            sent = 0
            if any(p.has_news for p in projects):
                subject, body, headers = self.render(user, cadence, since, projects)
                await self.mailer.send(to=user.email, subject=subject, body=body, headers=headers)
                sent = 1
            await session.commit()
            return sent

    async def compose(
        self, session: AsyncSession, user: User, since: dt.datetime, now: dt.datetime
    ) -> list[ProjectProgress]:
        """What the digest of ``user`` holds for the time from ``since``, per project; nothing ``user`` may not see."""
        actor = await load_actor(session, user)
        projects = (
            await session.exec(
                select(Project)
                .where(visible_projects(actor), col(Project.archived).is_(False))
                .order_by(col(Project.name), col(Project.id))
            )
        ).all()
        by_id = {p.id: ProjectProgress(p.id, p.name) for p in projects if p.id is not None}
        if not by_id:
            return []
        base = self.settings.base_url
        events = await events_for(session, actor, list(by_id), since=since, limit=MAX_EVENTS)
        comments: dict[tuple[int, int], list[ActivityOut]] = defaultdict(list)
        for event in reversed(events):  # oldest first
            progress = by_id[event.project_id]
            if event.kind == ActivityKind.COMMENT_CREATED and event.task_id is not None:
                comments[(event.project_id, event.task_id)].append(event)
                continue
            moved = _moved(user.locale, event)
            thread = _event_thread(event)
            if moved:
                progress.moved.append(Line(moved, base + event.link, thread))
            progress.changed.extend(Line(text, base + event.link, thread) for text in _changes(user.locale, event))
        for (project_id, task_id), items in comments.items():
            first = items[0]
            text = _t(user.locale, "comments", title=items[-1].title, count=len(items))
            by_id[project_id].moved.append(Line(text, base + first.link, _task_thread(task_id)))
        await self._next(session, actor, by_id, now)
        for item in await waiting_on(session, actor, self.settings.due_soon_days):
            if item.project_id in by_id:
                line = Line(_waiting_text(user.locale, item), base + item.link, _waiting_thread(item))
                by_id[item.project_id].waiting.append(line)
        return list(by_id.values())

    async def _next(
        self, session: AsyncSession, actor: Actor, by_id: dict[int, ProjectProgress], now: dt.datetime
    ) -> None:
        today, until = now.date(), (now + LOOKAHEAD).date()
        tasks = (
            await session.exec(
                select(Task)
                .join(Status, col(Status.id) == Task.status_id)
                .where(
                    col(Task.project_id).in_(list(by_id)),
                    visible_items(actor, Task),
                    col(Status.category) != StatusCategory.DONE,
                    col(Task.due_date).is_not(None),
                    col(Task.due_date) >= today,
                    col(Task.due_date) <= until,
                )
                .order_by(col(Task.due_date), col(Task.id))
            )
        ).all()
        milestones = (
            await session.exec(
                select(Milestone)
                .where(
                    col(Milestone.project_id).in_(list(by_id)),
                    visible_items(actor, Milestone),
                    col(Milestone.completed_at).is_(None),
                    col(Milestone.due_date).is_not(None),
                    col(Milestone.due_date) >= today,
                    col(Milestone.due_date) <= until,
                )
                .order_by(col(Milestone.due_date), col(Milestone.id))
            )
        ).all()
        base = self.settings.base_url
        upcoming: list[tuple[dt.date, int, Line]] = []
        for task in tasks:
            assert task.due_date is not None
            link = f"{base}/projects/{task.project_id}/tasks/{task.id}"
            line = Line(f"{task.title}|{task.due_date}", link, _task_thread(task.id))
            upcoming.append((task.due_date, task.project_id, line))
        for milestone in milestones:
            assert milestone.due_date is not None
            link = f"{base}/projects/{milestone.project_id}/milestones"
            upcoming.append(
                (milestone.due_date, milestone.project_id, Line(f"{milestone.name}|{milestone.due_date}", link))
            )
        upcoming.sort(key=lambda u: u[0])
        for _, project_id, line in upcoming:
            if len(by_id[project_id].next) < MAX_NEXT:
                by_id[project_id].next.append(line)

    def render(
        self, user: User, cadence: str, since: dt.datetime, projects: list[ProjectProgress]
    ) -> tuple[str, str, dict[str, str]]:
        """The mail's subject, plain-text body in ``user``'s language, and headers (threading, reply address)."""
        locale = user.locale
        subject = _t(locale, "subject", period=_t(locale, f"period.{cadence}"))
        shown = [p for p in projects if p.has_news]
        headers, addresses = self._reply_addresses(user, shown)
        per_item = len(set(addresses.values())) > 1
        lines = [_t(locale, "greeting", name=user.name, since=since.date().isoformat()), ""]
        for project in shown:
            lines += [project.name, "=" * len(project.name)]
            sections = (
                ("moved", project.moved),
                ("changed", project.changed),
                ("next", [_due_line(locale, line) for line in project.next]),
                ("waiting", project.waiting),
            )
            for key, items in sections:
                if not items:
                    continue
                lines.append(_t(locale, key) + ":")
                for item in items:
                    lines += [f"- {item.text}", f"  {item.link}"]
                    if per_item and item.thread in addresses:
                        lines.append("  " + _t(locale, "reply", address=addresses[item.thread]))
            lines += [_t(locale, "feed", link=f"{self.settings.base_url}/projects/{project.project_id}/activity"), ""]
        if "Reply-To" in headers:  # every item with a thread is about one task or request: reply to the mail
            lines += [_t(locale, "reply_hint"), ""]
        preferences = f"{self.settings.base_url}/settings/tokens#notification-preferences"
        lines.append(_t(locale, "footer", period_adverb=_t(locale, f"adverb.{cadence}"), link=preferences))
        return subject, "\n".join(lines), headers

    def _reply_addresses(
        self, user: User, projects: list[ProjectProgress]
    ) -> tuple[dict[str, str], dict[tuple[ItemKind, int], str]]:
        """The mail's threading headers and each item's reply address (shared: the digest goes to customers);
        nothing without ``TANDEM_MAIL_DOMAIN``."""
        domain = self.settings.mail_in.domain
        if not domain or user.id is None:
            return {}, {}
        threads = {line.thread for p in projects for line in _lines(p) if line.thread is not None}
        targets = {thread: ReplyTarget(user.id, thread[0], thread[1], Visibility.SHARED) for thread in threads}
        headers, addresses = threading_headers(self.settings.secret_key, domain, list(targets.values()))
        return headers, {thread: addresses[target] for thread, target in targets.items()}


def _lines(project: ProjectProgress) -> list[Line]:
    return [*project.moved, *project.changed, *project.next, *project.waiting]


def _due_line(locale: str, line: Line) -> Line:
    title, _, date = line.text.rpartition("|")
    return Line(_t(locale, "due", title=title, date=date), line.link)


def _waiting_text(locale: str, item: WaitingItemOut) -> str:
    if item.due_date is not None:
        return _t(locale, "due", title=item.title, date=item.due_date.isoformat())
    return item.title
