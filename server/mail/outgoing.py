"""Outgoing email: through SMTP when it is configured, otherwise written to the log (development)."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage

from server.settings import SmtpSettings

log = logging.getLogger(__name__)


class Mailer:
    def __init__(self, smtp: SmtpSettings | None) -> None:
        self.smtp = smtp

    async def send(self, *, to: str, subject: str, body: str, headers: Mapping[str, str] | None = None) -> bool:
        """Send a plain-text email, with extra ``headers`` (``Reply-To``, ``Message-ID``, ``References``...).

        Returns:
            True if it went to the SMTP server; False if SMTP is not configured and the mail was only logged
            (callers then show links to the person who triggered the mail instead).
        """
        if self.smtp is None:
            log.info("mail (no SMTP configured) to=%s subject=%r\n%s", to, subject, body)
            return False
        message = EmailMessage()
        message["From"] = self.smtp.sender
        message["To"] = to
        message["Subject"] = subject
        for name, value in (headers or {}).items():
            message[name] = value
        message.set_content(body)
        await asyncio.to_thread(self._deliver, message)
        return True

    def _deliver(self, message: EmailMessage) -> None:
        assert self.smtp is not None
        with smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=30) as client:
            if self.smtp.starttls:
                client.starttls()
            if self.smtp.username and self.smtp.password:
                client.login(self.smtp.username, self.smtp.password)
            client.send_message(message)
