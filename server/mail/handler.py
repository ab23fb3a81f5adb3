"""The inbound SMTP handler: a reply to a reply address becomes a comment by its recipient on its thread.

Each mail is checked in this order, and refused (SMTP 5xx, plus a bounce in the sender's language when the sender
is a Tandem user, and nothing stored) at the first check it fails:

1. size (``TANDEM_MAIL_IN_MAX_BYTES``); automatic mail (``Auto-Submitted``, ``Precedence: bulk``, list mail,
   delivery reports, a null sender) is accepted and dropped, never answered, so no two robots talk forever;
2. the sender's rate (``TANDEM_MAIL_IN_PER_SENDER_PER_HOUR``): over it, 451 (try later);
3. the token's signature (`server.mail.tokens`): unknown or tampered addresses are refused;
4. the sender: the envelope sender and the single ``From`` address must both be the token's recipient, and no
   ``Authentication-Results`` header may report a failed SPF, DKIM or DMARC check;
5. the recipient's access, now: the comment is made by `server.discussion.routes.add_comment` as that person, in the
   audience the token names, so the policy, mentions, notifications and live events are those of the REST route;
   attachments go through `server.files.routes.add_file` (upload limit, sniffing, visibility rules).

A ``Message-ID`` already stored is accepted and ignored: a relay's retry makes one comment.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from starlette.requests import Request as HttpRequest

from server.accounts.auth import load_actor
from server.accounts.second_factor import factors_of, required_of
from server.api.routing import ApiError
from server.context import Context
from server.discussion.comments import add_comment
from server.errors import DomainError, RateLimited
from server.files.rules import safe_filename
from server.files.storage import Upload, UploadTooLarge, spool_upload
from server.files.uploads import FileUploadQuery, add_file
from server.i18n import message as translate
from server.mail.reply import body_text, reply_text
from server.mail.tokens import ItemKind, ReplyTarget, token_of, verify
from server.models import InboundMail, Organization, Request, User
from server.policy import Forbidden, NotFound
from server.requests.routes import ReplyIn, reply_to_request
from server.schemas import MAX_COMMENT_LENGTH, CommentIn

if TYPE_CHECKING:
    from server.services import Services

log = logging.getLogger(__name__)

_FAILED_CHECK = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*(fail|permerror)\b", re.IGNORECASE)
_BULK = {"bulk", "junk", "list", "auto_reply"}


class Refused(Exception):
    """The mail is refused: ``reply`` is the SMTP answer, ``reason`` the i18n key of the bounce's explanation."""

    def __init__(self, reply: str, reason: str, **params: str) -> None:
        super().__init__(reason)
        self.reply = reply
        self.reason = reason
        self.params = params


def is_automatic(message: Message, sender: str) -> bool:
    """Whether the mail was sent by a program (auto-reply, bounce, list, our own notifications looping back)."""
    if not sender or sender == "<>":
        return True
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    return (
        auto != "no"
        or precedence in _BULK
        or message.get("List-Id") is not None
        or message.get("X-Autoreply") is not None
        or message.get("X-Autorespond") is not None
        or message.get_content_type() == "multipart/report"
    )


def _failed_authentication(message: Message) -> bool:
    # A forger can add a passing result but gains nothing by it: only failures are read, so trusting any relay's
    # header is safe in this direction.
    return any(_FAILED_CHECK.search(str(value)) for value in message.get_all("Authentication-Results", []))


def _message_key(message: Message, content: bytes) -> str:
    message_id = str(message.get("Message-ID", "")).strip()
    return hashlib.sha256(message_id.encode() if message_id else content).hexdigest()


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 64 * 1024):
        yield data[start : start + 64 * 1024]


def _reply_of(message: Message) -> tuple[str, list[EmailMessage], list[str]]:
    """A reply's new text (quoted history and signature cut), its attachments and their safe file names.

    Raises:
        Refused: when it has neither text nor attachments.
    """
    assert isinstance(message, EmailMessage)
    attachments = [part for part in message.iter_attachments() if isinstance(part, EmailMessage)]
    text = reply_text(body_text(message))
    names = [safe_filename(part.get_filename() or "attachment") for part in attachments]
    if not text and not names:
        raise Refused("550 5.6.0 No reply text found", "bounce.empty")
    return text, attachments, names


class ReplyHandler:
    """The aiosmtpd handler `tandem mail-in` runs (and the tests start): one reply address per mail."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if token_of(address, self.settings.mail_in.domain) is None:
            return "550 5.1.1 No such reply address"
        if envelope.rcpt_tos:
            return "452 4.5.3 One reply address per mail"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content or b""
        sender = (envelope.mail_from or "").strip().strip("<>").lower()
        message = BytesParser(policy=policy.default).parsebytes(content)
        try:
            return await self._receive(content, message, sender, envelope.rcpt_tos[0], session.peer)
        except Refused as refusal:
            log.info("reply by mail from %s refused: %s", sender, refusal.reason)
            await self._bounce(sender, message, refusal)
            return refusal.reply
        except Exception:
            log.exception("reply by mail from %s failed; the sender's server retries", sender)
            return "451 4.3.0 Temporary failure, try again later"

    async def _receive(self, content: bytes, message: Message, sender: str, rcpt: str, peer: Any) -> str:
        limits = self.settings.mail_in
        if len(content) > limits.max_bytes:
            raise Refused("552 5.3.4 Message too big", "bounce.too_large", limit=str(limits.max_bytes))
        if is_automatic(message, sender):
            log.info("automatic mail from %r dropped", sender)
            return "250 2.0.0 Automatic mail dropped"
        if not await self.services.limiter.hit(f"mail-in:{sender}", limits.per_sender_per_hour, 3600):
            return "451 4.7.1 Too many mails from this sender, try later"
        target = verify(self.settings.secret_key, token_of(rcpt, limits.domain) or "")
        if target is None:
            raise Refused("550 5.7.1 Unknown reply address", "bounce.invalid_token")
        async with self.services.db.session() as session:
            user = await session.get(User, target.user_id)
            if user is None:
                raise Refused("550 5.7.1 Unknown reply address", "bounce.invalid_token")
            senders = [address.lower() for _, address in getaddresses(message.get_all("From", []))]
            if sender != user.email.lower() or senders != [user.email.lower()]:
                raise Refused("550 5.7.1 Sender is not the recipient of this reply address", "bounce.not_recipient")
            if _failed_authentication(message):
                raise Refused("550 5.7.1 Sender authentication failed", "bounce.unauthenticated")
            if not user.is_active:
                raise Refused("550 5.7.1 No access", "bounce.no_access")
            if await _must_enrol(session, user):
                raise Refused("550 5.7.1 Second factor required", "bounce.enrol_first")
            key = _message_key(message, content)
            if await session.get(InboundMail, key) is not None:
                return "250 2.0.0 Already received"
            task_id = await self._task_of(session, target)
            actor = await load_actor(session, user)
            scope = {"type": "http", "method": "POST", "path": "/mail-in", "headers": [], "client": peer}
            ctx = Context(HttpRequest(scope), self.services, session, actor)
            comment_id: int | None = None
            event_id: int | None = None
            try:
                if task_id is None:  # a request without a task: the reply is an answer on the request
                    event_id = await self._answer_request(ctx, target.item_id, message)
                else:
                    comment_id = await self._post(ctx, task_id, target, message)
                assert user.id is not None
                session.add(
                    InboundMail(message_key=key, user_id=user.id, comment_id=comment_id, request_event_id=event_id)
                )
                await session.commit()
            except BaseException as exc:
                for undo in ctx.after_rollback:
                    await undo()
                if isinstance(exc, IntegrityError):  # the same mail, delivered twice at once
                    return "250 2.0.0 Already received"
                raise
        for hook in ctx.after_commit:
            await hook()
        return "250 2.0.0 Reply posted"

    async def _task_of(self, session: Any, target: ReplyTarget) -> int | None:
        """The task whose thread the reply goes to; None for a request without a task (answered on the request)."""
        if target.kind == ItemKind.TASK:
            return target.item_id
        request = await session.get(Request, target.item_id)
        if request is None:
            raise Refused("550 5.7.1 No access", "bounce.no_access")
        return None if request.task_id is None else int(request.task_id)

    async def _answer_request(self, ctx: Context, request_id: int, message: Message) -> int:
        """Answer on a request that has no task yet, as the API's reply does (the customer giving the information
        staff asked for reopens it); attachments become files of the request. Returns the request event's id."""
        text, attachments, names = _reply_of(message)
        try:
            out = await reply_to_request(ctx, request_id, ReplyIn(message=(text or ", ".join(names))[:5000]))
            for part, name in zip(attachments, names, strict=True):
                await self._attach(ctx, out.project_id, FileUploadQuery(name=name, request_id=request_id), part)
            # The history is oldest first: this reply is the newest "replied" step.
            return max(e.id for e in out.history if e.kind == "replied")
        except (NotFound, Forbidden):
            raise Refused("550 5.7.1 No access", "bounce.no_access") from None
        except UploadTooLarge:
            raise Refused(
                "552 5.3.4 Attachment too big", "bounce.too_large", limit=str(self.settings.upload_max_bytes)
            ) from None
        except ApiError as exc:
            if exc.status == 429:
                raise Refused("451 4.7.1 Too many replies, try later", "") from None
            raise Refused(f"550 5.6.0 {exc.code}", "bounce.invalid", detail=exc.message) from None
        except ValidationError:
            raise Refused("550 5.6.0 Invalid reply", "bounce.invalid", detail="") from None

    async def _post(self, ctx: Context, task_id: int, target: ReplyTarget, message: Message) -> int:
        """Create the comment and its files as the token's recipient; returns the comment's id."""
        text, attachments, names = _reply_of(message)
        try:
            body = CommentIn(body=(text or ", ".join(names))[:MAX_COMMENT_LENGTH], visibility=target.audience)
            comment = await add_comment(ctx, task_id, body)
            for part, name in zip(attachments, names, strict=True):
                await self._attach(ctx, comment.project_id, FileUploadQuery(name=name, comment_id=comment.id), part)
        except (NotFound, Forbidden):
            raise Refused("550 5.7.1 No access", "bounce.no_access") from None
        except UploadTooLarge:
            raise Refused(
                "552 5.3.4 Attachment too big", "bounce.too_large", limit=str(self.settings.upload_max_bytes)
            ) from None
        except DomainError as exc:
            if isinstance(exc, RateLimited):
                raise Refused("451 4.7.1 Too many comments, try later", "") from None
            raise Refused(f"550 5.6.0 {exc.code}", "bounce.invalid", detail=exc.message) from None
        except ValidationError:
            raise Refused("550 5.6.0 Invalid reply", "bounce.invalid", detail="") from None
        return comment.id

    async def _attach(self, ctx: Context, project_id: int, query: FileUploadQuery, part: EmailMessage) -> None:
        """Store one attachment as a file of the project, as an upload through the API would be (same limit)."""
        data = part.get_payload(decode=True)
        payload = data if isinstance(data, bytes) else b""

        async def receive() -> Upload:
            return await spool_upload(
                _chunks(payload), self.settings.data_dir / "uploads", self.settings.upload_max_bytes
            )

        await add_file(ctx, project_id, query, receive)

    async def _bounce(self, sender: str, original: Message, refusal: Refused) -> None:
        """Tell a sender who is a Tandem user why, in their language. Strangers get only the SMTP answer: bouncing
        to an address anyone can forge would make this server a source of backscatter. A deactivated person is told
        only that they no longer have access, which is refused after their own reply address and sender matched."""
        if not refusal.reason or not sender:
            return
        async with self.services.db.session() as session:
            user = (await session.exec(select(User).where(col(User.email) == sender))).first()
        if user is None or (not user.is_active and refusal.reason != "bounce.no_access"):
            return
        locale = user.locale
        reason = translate(locale, refusal.reason, **refusal.params)
        subject = str(original.get("Subject", "")).strip()[:200]
        headers = {"Auto-Submitted": "auto-replied"}
        original_id = str(original.get("Message-ID", "")).strip()
        if original_id:
            headers["In-Reply-To"] = headers["References"] = original_id
        await self.services.mailer.send(
            to=user.email,
            subject=translate(locale, "bounce.subject", subject=subject),
            body=translate(locale, "bounce.body", reason=reason, link=self.settings.base_url),
            headers=headers,
        )


async def _must_enrol(session: Any, user: User) -> bool:
    """Whether ``user``'s organization requires a second factor they have not set up. Signing in, such a person gets
    a session that may only enrol; a reply by email would post as them without it, so it is refused until they
    have one (docs/SECURITY.md, "Replies by email")."""
    organization = await session.get(Organization, user.organization_id)
    if organization is None or not required_of(user, organization):
        return False
    assert user.id is not None
    return not (await factors_of(session, user.id)).any
