"""Email digests: a user's new notifications, batched into one mail, never one mail per comment.

Every ``digest_interval_seconds`` (when SMTP is configured) the worker gathers, per user, notifications not yet
mailed and older than ``digest_delay_seconds`` (so a burst of comments lands in one mail), keeps those the user's
preferences (``server/inbox/notify.py``) say are due (an hourly digest at most once an hour, a daily one once a day;
``off`` ones are dropped unmailed), checks each item is still visible to the recipient (an item may have become
internal since), and sends one mail in the user's language. Mentions a user wants ``immediately`` are mailed right
after the change commits (:meth:`DigestWorker.send_soon`). Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several nodes never mail twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.loops import Loop
from server.accounts.auth import load_actor
from server.db import Database, utcnow
from server.i18n import message, notification_text
from server.inbox.notify import DIGEST_PERIODS, cadence_for
from server.inbox.progress_digest import ProgressDigests
from server.inbox.rules import notifications_visible
from server.mail.addresses import target_for, threading_headers
from server.mail.outgoing import Mailer
from server.models import Comment, EmailCadence, Notification, NotificationPreference, Project, User
from server.settings import Settings

log = logging.getLogger(__name__)


class DigestWorker:
    def __init__(self, settings: Settings, db: Database, mailer: Mailer) -> None:
        self.settings = settings
        self.db = db
        self.mailer = mailer
        # The weekly (or daily) progress digest runs on the same interval (server/inbox/progress_digest.py).
        self.progress = ProgressDigests(settings, db, mailer)
        self._soon: set[asyncio.Task[int]] = set()
        self.loop = Loop("digest-worker", self._pass, interval=settings.digest_interval_seconds)

    def start(self) -> None:
        if self.mailer.smtp is not None:
            self.loop.start()

    def send_soon(self, user_id: int) -> None:
        """Mail ``user_id``'s pending immediate notifications now, in the background (with SMTP only)."""
        if self.mailer.smtp is None:
            return
        task = asyncio.create_task(self._send_immediately(user_id), name=f"mail-now-{user_id}")
        self._soon.add(task)
        task.add_done_callback(self._soon.discard)

    async def _send_immediately(self, user_id: int) -> int:
        try:
            return await self._send_digest(user_id, utcnow(), immediate_only=True)
        except Exception:
            log.exception("immediate mail to user %s failed; the next digest run retries", user_id)
            return 0

    async def stop(self) -> None:
        for pending in list(self._soon):
            pending.cancel()
        await asyncio.gather(*self._soon, return_exceptions=True)
        await self.loop.stop()

    async def _pass(self) -> None:
        # A failed run is logged by the loop and retried after a backoff.
        await self.run_once()
        await self.progress.run_once()

    async def run_once(self) -> int:
        """Send every digest that is due.

        Returns:
            How many mails were sent.
        """
        cutoff = utcnow() - dt.timedelta(seconds=self.settings.digest_delay_seconds)
        async with self.db.session() as session:
            due = (
                select(Notification.user_id)
                .where(col(Notification.emailed_at).is_(None), col(Notification.created_at) <= cutoff)
                .distinct()
            )
            user_ids = list((await session.exec(due)).all())
        sent = 0
        for user_id in user_ids:
            sent += await self._send_digest(user_id, cutoff)
        return sent

    async def _send_digest(self, user_id: int, cutoff: dt.datetime, immediate_only: bool = False) -> int:
        async with self.db.session() as session:
            user = await session.get(User, user_id)
            if user is None:
                return 0
            preference = await session.get(NotificationPreference, user_id)
            claim = (
                select(Notification)
                .where(
                    Notification.user_id == user_id,
                    col(Notification.emailed_at).is_(None),
                    col(Notification.created_at) <= cutoff,
                )
                .order_by(col(Notification.id))
            )
            if self.db.dialect == "postgresql":
                claim = claim.with_for_update(skip_locked=True)
            claimed = list((await session.exec(claim)).all())
            now = utcnow()
            pending: list[Notification] = []
            for notification in claimed:
                cadence = cadence_for(preference, notification.kind)
                if cadence == EmailCadence.OFF or cadence == EmailCadence.IMMEDIATELY:
                    pending.append(notification)  # mailed now, or marked mailed without a mail (off)
                elif not immediate_only and (
                    preference is None
                    or preference.last_digest_at is None
                    or now - preference.last_digest_at >= DIGEST_PERIODS[cadence]
                ):
                    pending.append(notification)
            if not pending:
                return 0
            actor = await load_actor(session, user)
            ids = [n.id for n in pending]
            mailable = [
                n.id
                for n in pending
                if cadence_for(preference, n.kind) != EmailCadence.OFF and (not immediate_only or n.kind == "mention")
            ]
            visible = list(
                (
                    await session.exec(
                        select(Notification, Project.name)
                        .outerjoin(Project, col(Project.id) == Notification.project_id)
                        .where(col(Notification.id).in_(mailable), notifications_visible(actor))
                        .order_by(col(Notification.id))
                    )
                ).all()
            )
            # Claimed rows are marked whether or not they are still visible: nothing is mailed twice or late.
            await session.exec(update(Notification).where(col(Notification.id).in_(ids)).values(emailed_at=utcnow()))
            if any(cadence_for(preference, n.kind) in DIGEST_PERIODS for n in pending):
                preference = preference or NotificationPreference(user_id=user_id)
                preference.last_digest_at = now
                session.add(preference)
            if visible:
                headers, addresses = await self._reply_addresses(session, user, [n for n, _ in visible])
                await self.mailer.send(
                    to=user.email,
                    subject=message(user.locale, "digest.subject", count=str(len(visible))),
                    body=self._body(user, visible, addresses),
                    headers=headers,
                )
            await session.commit()
            return 1 if visible else 0

    async def _reply_addresses(
        self, session: AsyncSession, user: User, notifications: Sequence[Notification]
    ) -> tuple[dict[str, str], dict[int, str]]:
        """The mail's threading headers, and each notification's reply address (none without TANDEM_MAIL_DOMAIN)."""
        domain = self.settings.mail_in.domain
        if not domain:
            return {}, {}
        comment_ids = [n.comment_id for n in notifications if n.comment_id is not None]
        visibility = (
            dict(
                (
                    await session.exec(select(Comment.id, Comment.visibility).where(col(Comment.id).in_(comment_ids)))
                ).all()
            )
            if comment_ids
            else {}
        )
        targets = {
            n.id: target_for(user, n, visibility.get(n.comment_id) if n.comment_id else None) for n in notifications
        }
        headers, addresses = threading_headers(
            self.settings.secret_key, domain, [t for t in targets.values() if t is not None]
        )
        by_notification = {nid: addresses[t] for nid, t in targets.items() if t is not None and nid is not None}
        return headers, by_notification

    def _body(
        self, user: User, rows: Sequence[tuple[Notification, str | None]], addresses: dict[int, str] | None = None
    ) -> str:
        by_project: dict[str, list[str]] = defaultdict(list)
        for notification, project_name in rows:
            link = f"{self.settings.base_url}/projects/{notification.project_id}"
            if notification.request_id:
                link += f"/requests/{notification.request_id}"
            elif notification.task_id:
                link += f"/tasks/{notification.task_id}"
            if notification.comment_id:
                link += f"#comment-{notification.comment_id}"
            kind = message(user.locale, f"digest.kind.{notification.kind}")
            # Worded now, in the reader's language, from what the notification is made of (its stored text is the
            # sentence in the language they had when it was made).
            text = notification_text(user.locale, notification.kind, json.loads(notification.params or "{}"))
            line = f"- {kind}: {text or notification.text}\n  {link}"
            address = (addresses or {}).get(notification.id or 0)
            if address and len(set((addresses or {}).values())) > 1:
                line += "\n  " + message(user.locale, "digest.reply_to_item", address=address)
            by_project[project_name or ""].append(line)
        lines = [message(user.locale, "digest.greeting", name=user.name), ""]
        for project, items in by_project.items():
            lines += [project, *items, ""]
        if addresses and len(set(addresses.values())) == 1:
            lines += [message(user.locale, "digest.reply_hint"), ""]
        lines.append(message(user.locale, "digest.footer"))
        return "\n".join(lines)
