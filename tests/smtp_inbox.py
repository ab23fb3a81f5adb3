"""A real SMTP server (aiosmtpd) on a free port that keeps what it receives: where outgoing mail lands in tests."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from typing import Any, TypeVar

from aiosmtpd.controller import Controller

from tests.nodes import free_port


class Inbox:
    """The messages received, in order, parsed with the modern email policy."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


_I = TypeVar("_I", bound=Inbox)


@contextmanager
def serving(inbox: _I) -> Iterator[tuple[_I, int]]:
    """``inbox`` behind an SMTP server on 127.0.0.1, with its port; stopped on leaving."""
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
