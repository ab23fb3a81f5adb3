"""Reply addresses: ``reply+<token>@<TANDEM_MAIL_DOMAIN>``, one per (recipient, item, audience), signed.

A token names the recipient's user id, the item (a task thread or a request) and the audience the mail was about
(shared or internal), and carries an HMAC-SHA256 over exactly those, keyed from ``TANDEM_SECRET_KEY``. Changing any
part (another item, another person, internal instead of shared) breaks the signature, so a token can neither be
guessed nor moved to another item. It is lowercase letters and digits only: mail systems may lowercase local parts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum

from server.models import Visibility

_PREFIX = "reply+"
_MAC_CHARS = 20  # 100 bits of base32
_TOKEN = re.compile(r"^([tr])([si])-([0-9a-z]{1,13})-([0-9a-z]{1,13})-([a-z2-7]{20})$")


class ItemKind(StrEnum):
    TASK = "t"
    REQUEST = "r"


@dataclass(frozen=True)
class ReplyTarget:
    """What a reply address answers: whose mail it was, about which item, for which audience."""

    user_id: int
    kind: ItemKind
    item_id: int
    audience: Visibility


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


def _mac(secret_key: str, payload: str) -> str:
    key = hashlib.sha256(b"tandem/mail-reply/v1/" + secret_key.encode()).digest()
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:_MAC_CHARS]


def sign(secret_key: str, target: ReplyTarget) -> str:
    """The token for ``target``."""
    audience = "s" if target.audience == Visibility.SHARED else "i"
    payload = f"{target.kind.value}{audience}-{_base36(target.user_id)}-{_base36(target.item_id)}"
    return f"{payload}-{_mac(secret_key, payload)}"


def verify(secret_key: str, token: str) -> ReplyTarget | None:
    """The target ``token`` was signed for, or None for a malformed or tampered one (compared in constant time)."""
    match = _TOKEN.match(token.lower())
    if match is None:
        return None
    kind, audience, user, item, mac = match.groups()
    payload = f"{kind}{audience}-{user}-{item}"
    if not hmac.compare_digest(mac, _mac(secret_key, payload)):
        return None
    return ReplyTarget(
        user_id=int(user, 36),
        kind=ItemKind(kind),
        item_id=int(item, 36),
        audience=Visibility.SHARED if audience == "s" else Visibility.INTERNAL,
    )


def reply_address(secret_key: str, domain: str, target: ReplyTarget) -> str:
    return f"{_PREFIX}{sign(secret_key, target)}@{domain}"


def token_of(address: str, domain: str) -> str | None:
    """The token of a reply address at ``domain`` (``reply+<token>@domain``), or None for any other address."""
    local, at, host = address.strip().strip("<>").rpartition("@")
    if not at or host.lower() != domain.lower() or not local.lower().startswith(_PREFIX):
        return None
    return local[len(_PREFIX) :]


def thread_id(kind: ItemKind, item_id: int, domain: str) -> str:
    """The ``Message-ID`` every mail about the item refers to (``References``), so clients thread them together."""
    name = "task" if kind == ItemKind.TASK else "request"
    return f"<{name}-{item_id}@{domain}>"
