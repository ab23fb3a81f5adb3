"""The inbound SMTP server of ``tandem mail-in``: aiosmtpd with the `ReplyHandler`, in the running event loop."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiosmtpd.smtp import SMTP

from server.mail.handler import ReplyHandler
from server.services import Services, build_services
from server.settings import Settings

log = logging.getLogger(__name__)


class MailInServer:
    """Accepts replies on ``host:port`` for ``reply+<token>@TANDEM_MAIL_DOMAIN`` and turns them into comments.

    Mail is held in memory while it arrives: aiosmtpd cuts a mail off at twice ``max_bytes`` (its own 552 answer);
    between the two the handler refuses it with a bounce that says why.
    """

    def __init__(self, services: Services) -> None:
        self.services = services
        self.handler = ReplyHandler(services)
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: a free port). Returns the port listened on."""
        settings = self.services.settings.mail_in
        if not settings.domain:
            raise RuntimeError("TANDEM_MAIL_DOMAIN is not set: there are no reply addresses to receive mail for")
        tls = _tls_context(settings.tls_cert, settings.tls_key)
        if settings.require_tls and tls is None:
            raise RuntimeError("TANDEM_MAIL_IN_REQUIRE_TLS needs TANDEM_MAIL_IN_TLS_CERT and TANDEM_MAIL_IN_TLS_KEY")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(
                self.handler,
                data_size_limit=2 * settings.max_bytes,
                enable_SMTPUTF8=True,
                hostname=settings.domain,
                ident="Tandem mail-in",
                timeout=60,
                tls_context=tls,
                require_starttls=settings.require_tls,
            ),
            host,
            port,
        )
        bound = int(self._server.sockets[0].getsockname()[1])
        log.info(
            "mail-in listening on %s:%s for reply+...@%s%s",
            host,
            bound,
            settings.domain,
            " (STARTTLS required)" if settings.require_tls else " (STARTTLS offered)" if tls else "",
        )
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


def _tls_context(cert: str, key: str) -> ssl.SSLContext | None:
    """The server's TLS context for STARTTLS (TLS 1.2 at least), or None without a certificate."""
    if not cert and not key:
        return None
    if not (cert and key):
        raise RuntimeError("STARTTLS needs both TANDEM_MAIL_IN_TLS_CERT and TANDEM_MAIL_IN_TLS_KEY")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


@asynccontextmanager
async def mail_in(settings: Settings, host: str, port: int) -> AsyncIterator[int]:
    """The ``tandem mail-in`` process's work: its services (the outbox relay publishes the replies' live events, so
    comments appear in open browsers at once) and the SMTP server on ``host:port``. Yields the port listened on."""
    services = build_services(settings)
    await services.realtime.start()
    await services.live_sockets.start()  # access changes made here reach every node's sockets (the control bus)
    server = MailInServer(services)
    try:
        yield await server.start(host, port)
    finally:
        await server.stop()
        await services.digests.stop()
        if services.live.reports is not None:
            await services.live.reports.stop()
        await services.live_sockets.stop()
        await services.realtime.stop()
        await services.limiter.close()
        await services.db.close()
