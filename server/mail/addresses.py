"""Which reply address and threading headers a notification mail carries."""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import make_msgid

from server.mail.tokens import ItemKind, ReplyTarget, reply_address, thread_id
from server.models import Notification, User, Visibility


def target_for(user: User, notification: Notification, comment_visibility: str | None) -> ReplyTarget | None:
    """What a reply to ``notification`` by ``user`` would answer, or None when it is about no thread.

    The audience is the one the mail came from: a customer's is always shared; staff's is that of the comment the
    notification is about, shared for a request (requests are shared), and internal otherwise (an assignment or a
    status change), so a quick reply by staff never reaches customers unless the mail was about a shared exchange.
    """
    assert user.id is not None
    if notification.request_id is not None:
        kind, item_id, audience = ItemKind.REQUEST, notification.request_id, Visibility.SHARED
    elif notification.task_id is not None:
        kind, item_id = ItemKind.TASK, notification.task_id
        audience = Visibility.SHARED if comment_visibility == Visibility.SHARED else Visibility.INTERNAL
    else:
        return None
    if not user.is_staff:
        audience = Visibility.SHARED
    return ReplyTarget(user_id=user.id, kind=kind, item_id=item_id, audience=Visibility(audience))


def threading_headers(
    secret_key: str, domain: str, targets: Sequence[ReplyTarget]
) -> tuple[dict[str, str], dict[ReplyTarget, str]]:
    """The headers of one mail about ``targets``, and each target's reply address.

    A mail about one item carries its reply address as ``Reply-To`` and refers to the item's thread id
    (``In-Reply-To``, ``References``), so a client shows every mail about the item as one conversation; a digest
    about several items lists each item's address in its text instead.
    """
    addresses = {target: reply_address(secret_key, domain, target) for target in targets}
    headers = {"Message-ID": make_msgid(idstring="tandem", domain=domain), "Auto-Submitted": "auto-generated"}
    items = {(t.kind, t.item_id) for t in targets}
    if len(items) == 1:
        ((kind, item_id),) = items
        # One item, both audiences (an internal and a shared mention): the reply stays internal.
        chosen = min(targets, key=lambda t: t.audience == Visibility.SHARED)
        headers["Reply-To"] = addresses[chosen]
        headers["In-Reply-To"] = headers["References"] = thread_id(kind, item_id, domain)
    return headers, addresses
