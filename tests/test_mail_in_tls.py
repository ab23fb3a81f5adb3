"""STARTTLS on ``tandem mail-in``: with a certificate (self-signed, made by the test with openssl) the server offers
STARTTLS; a reply sent over TLS lands in the thread; with TLS required, mail before STARTTLS is refused (530)."""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import smtplib
import ssl
import subprocess
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from server.mail.server import mail_in
from tests.conftest import REDIS
from tests.nodes import cluster
from tests.test_mail_in import DOMAIN, MailWorld, Sink, _mail_settings, sink  # noqa: F401  (the fixture)
from tests.workspace import Workspace


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "mail-in.crt", folder / "mail-in.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={DOMAIN}",
            "-addext", f"subjectAltName=DNS:{DOMAIN},IP:127.0.0.1", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def tls_world(
    database: tuple[str, Workspace],
    tmp_path: Path,
    sink: tuple[Sink, int],  # noqa: F811
) -> AsyncIterator[tuple[MailWorld, Path]]:
    url, ws = database
    cert, key = self_signed(tmp_path)
    with cluster(tmp_path, url, REDIS, count=1, extra_env={"TANDEM_MAIL_DOMAIN": DOMAIN}) as (node,):
        settings = _mail_settings(tmp_path, url, node, sink[1], tls_cert=str(cert), tls_key=str(key), require_tls=True)
        async with mail_in(settings, "127.0.0.1", 0) as port:
            world = MailWorld(node=node, ws=ws, port=port, sink=sink[0], settings=settings)
            try:
                yield world, cert
            finally:
                for api in world.apis.values():
                    await api.aclose()


async def test_replies_over_starttls_and_none_without_it(tls_world: tuple[MailWorld, Path]) -> None:
    world, cert = tls_world
    task = world.ws.ids["px_shared_task"]
    to = world.address("customer", task)
    message = EmailMessage()
    message["From"] = "customer@example.test"
    message["To"] = to
    message["Subject"] = "Re: Tandem"
    message["Message-ID"] = email.utils.make_msgid(domain="client.test")
    message.set_content("Sent over TLS.\n")
    trusted = ssl.create_default_context(cafile=str(cert))

    def deliver(use_tls: bool) -> tuple[int, str, str | None]:
        with smtplib.SMTP("127.0.0.1", world.port, timeout=10) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            cipher = None
            if use_tls:
                client.starttls(context=trusted)
                client.ehlo()
                cipher = client.sock.version()  # type: ignore[union-attr]
            code, answer = client.mail("customer@example.test")
            if code != 250:
                return code, answer.decode(), cipher
            code, answer = client.rcpt(to)
            assert code == 250, answer
            code, answer = client.data(message.as_bytes(policy=email.policy.SMTP))
            return code, answer.decode(), cipher

    code, answer, _ = await asyncio.to_thread(deliver, False)
    assert code == 530, answer  # TLS required: nothing before STARTTLS
    assert "Sent over TLS." not in [c["body"] for c in await world.thread(task)]
    code, answer, cipher = await asyncio.to_thread(deliver, True)
    assert code == 250, answer
    assert cipher in ("TLSv1.2", "TLSv1.3")
    assert (await world.thread(task))[0]["body"] == "Sent over TLS."
