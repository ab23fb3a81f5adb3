"""Replies by email: a real aiosmtpd inbound server (the handler ``tandem mail-in`` runs) next to a real node, mail
sent with smtplib, comments seen over REST and on live sockets, bounces caught by a real outgoing SMTP sink."""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import smtplib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pyotp
import pytest
from starlette.testclient import TestClient

from channels.client import TandemClient
from server.app import create_app
from server.mail.reply import body_text, reply_text
from server.mail.server import mail_in
from server.mail.tokens import ItemKind, ReplyTarget, reply_address, sign, token_of, verify
from server.models import Visibility
from server.settings import MailInSettings, Settings, SmtpSettings
from tests.conftest import REDIS, bearer, make_settings
from tests.nodes import SECRET, Api, Node, cluster, connect, next_data
from tests.smtp_inbox import Inbox, serving
from tests.workspace import Workspace

DOMAIN = "reply.test"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64


class Sink(Inbox):
    """The outgoing SMTP server: bounces land here."""


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    with serving(Sink()) as served:
        yield served


@dataclass
class MailWorld:
    node: Node
    ws: Workspace
    port: int
    sink: Sink
    settings: Settings
    apis: dict[str, Api] = field(default_factory=dict)

    def api(self, role: str) -> Api:
        if role not in self.apis:
            self.apis[role] = Api(self.node, self.ws, role)
        return self.apis[role]

    def address(
        self, role: str, item_id: int, audience: str = Visibility.SHARED, kind: ItemKind = ItemKind.TASK
    ) -> str:
        target = ReplyTarget(self.ws.users[role], kind, item_id, Visibility(audience))
        return reply_address(SECRET, DOMAIN, target)

    async def send(
        self,
        to: str,
        text: str,
        *,
        sender: str | None = None,
        from_header: str | None = None,
        headers: dict[str, str] | None = None,
        attachments: list[tuple[str, bytes, str]] = (),  # type: ignore[assignment]
        message_id: str | None = None,
    ) -> tuple[int, str]:
        """Send one mail over SMTP; the server's answer to DATA (or to RCPT, when it refused the address)."""
        message = EmailMessage()
        message["From"] = from_header or sender or ""
        message["To"] = to
        message["Subject"] = "Re: Tandem: 1 new for you"
        message["Message-ID"] = message_id or email.utils.make_msgid(domain="client.test")
        for name, value in (headers or {}).items():
            message[name] = value
        message.set_content(text)
        for name, data, kind in attachments:
            maintype, subtype = kind.split("/")
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)

        def deliver() -> tuple[int, str]:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
                client.ehlo()
                client.mail(sender or "")
                code, answer = client.rcpt(to)
                if code != 250:
                    return code, answer.decode()
                code, answer = client.data(message.as_bytes(policy=email.policy.SMTP))
                return code, answer.decode()

        return await asyncio.to_thread(deliver)

    async def thread(self, task_id: int, role: str = "staff") -> list[dict[str, Any]]:
        response = await self.api(role).client.get(f"/api/tasks/{task_id}/comments?limit=100")
        assert response.status_code == 200, response.text
        return response.json()["items"]  # type: ignore[no-any-return]

    async def bounce_to(self, address: str, timeout: float = 5.0) -> EmailMessage:
        async with asyncio.timeout(timeout):
            while True:
                for message in self.sink.messages:
                    if message["To"] == address:
                        self.sink.messages.remove(message)
                        assert isinstance(message, EmailMessage)
                        return message
                await asyncio.sleep(0.02)


def _mail_settings(tmp_path: Path, database_url: str, node: Node, smtp_port: int, **mail: Any) -> Settings:
    return make_settings(
        tmp_path,
        database_url=database_url,
        secret_key=SECRET,
        redis_url=REDIS,
        redis_prefix=node.env["TANDEM_REDIS_PREFIX"],
        smtp=SmtpSettings(host="127.0.0.1", port=smtp_port, starttls=False),
        upload_max_bytes=50_000,
        mail_in=MailInSettings(domain=DOMAIN, **{"max_bytes": 200_000, "per_sender_per_hour": 100, **mail}),
    )


@pytest.fixture
async def world(database: tuple[str, Workspace], tmp_path: Path, sink: tuple[Sink, int]) -> AsyncIterator[MailWorld]:
    url, ws = database
    with cluster(tmp_path, url, REDIS, count=1, extra_env={"TANDEM_MAIL_DOMAIN": DOMAIN}) as (node,):
        settings = _mail_settings(tmp_path, url, node, sink[1])
        async with mail_in(settings, "127.0.0.1", 0) as port:
            world = MailWorld(node=node, ws=ws, port=port, sink=sink[0], settings=settings)
            try:
                yield world
            finally:
                for api in world.apis.values():
                    await api.aclose()


GMAIL_EN = """Yes, the new logo works for us.

Thanks,
Cecilia

On Mon, 7 Dec 2026 at 10:02, Tandem <reply+x@reply.test> wrote:
> Staff: Please check the logo
> http://127.0.0.1/projects/1/tasks/1
"""
GMAIL_SV = """Ja, det fungerar.

Den mån 7 dec. 2026 kl 10:02 skrev Tandem <reply+x@reply.test>:
> Kolla loggan
"""
OUTLOOK_EN = """Approved from my side.

-----Original Message-----
From: Tandem <tandem@localhost>
Sent: Monday, December 7, 2026 10:02 AM
To: Customer <customer@example.test>
Subject: Tandem: 1 new for you

Staff: Please check the logo
"""
OUTLOOK_SV = """Godkänt från min sida.

Från: Tandem <tandem@localhost>
Skickat: den 7 december 2026 10:02
Till: Customer <customer@example.test>
Ämne: Tandem: 1 nya för dig

Kolla loggan
"""
SIGNATURE = "Send the invoice to finance, please.\n\n-- \nCecilia Customer\nACME AB | +46 8 123 45 67\n"


def test_reply_text_strips_quotes_and_signatures_of_english_and_swedish_clients() -> None:
    assert reply_text(GMAIL_EN) == "Yes, the new logo works for us.\n\nThanks,\nCecilia"
    assert reply_text(GMAIL_SV) == "Ja, det fungerar."
    assert reply_text(OUTLOOK_EN) == "Approved from my side."
    assert reply_text(OUTLOOK_SV) == "Godkänt från min sida."
    assert reply_text(SIGNATURE) == "Send the invoice to finance, please."
    assert reply_text("> only a quote\n") == ""


def test_tokens_bind_person_item_and_audience() -> None:
    target = ReplyTarget(7, ItemKind.TASK, 42, Visibility.SHARED)
    token = sign(SECRET, target)
    assert token == token.lower() and verify(SECRET, token) == target
    assert verify(SECRET, token.upper()) == target  # a mail system that upper-cases the local part
    assert token_of(reply_address(SECRET, DOMAIN, target), DOMAIN) == token
    assert verify("another-secret-" + "z" * 32, token) is None
    kind_audience, user, item, mac = token.split("-")
    for forged in (
        f"{kind_audience}-{user}-{int(item, 36) + 1:x}-{mac}",  # another item, same signature
        f"ti-{user}-{item}-{mac}",  # the internal audience
        f"{kind_audience}-8-{item}-{mac}",  # another person
        f"{kind_audience}-{user}-{item}-{'a' * len(mac)}",
        "",
        "garbage",
    ):
        assert verify(SECRET, forged) is None, forged


async def test_customer_reply_lands_shared_and_reaches_sockets_live(
    world: MailWorld, clients: list[TandemClient]
) -> None:
    ws, task = world.ws, world.ws.ids["px_shared_task"]
    staff = await connect(clients, world.node, ws, "staff")
    customer = await connect(clients, world.node, ws, "customer")
    await staff.subscribe(f"task:{task}:staff")
    await customer.subscribe(f"task:{task}:shared")
    notifications_before = (await world.api("customer").client.get("/api/notifications")).json()["items"]
    code, answer = await world.send(world.address("customer", task), GMAIL_EN, sender="customer@example.test")
    assert code == 250, answer
    event = await next_data(staff)
    assert event["type"] == "comment.created"
    posted = event["comment"]
    assert posted["body"] == "Yes, the new logo works for us.\n\nThanks,\nCecilia"
    assert posted["visibility"] == "shared" and posted["author"]["id"] == ws.users["customer"]
    assert (await next_data(customer))["comment"]["id"] == posted["id"]
    assert (await world.thread(task, "customer"))[0]["id"] == posted["id"]
    # The mail's own notifications are not sent back to its author; nothing bounced.
    assert (await world.api("customer").client.get("/api/notifications")).json()["items"] == notifications_before
    assert world.sink.messages == []

    # Staff answering an internal notification write an internal comment: the customer's socket hears nothing.
    code, _ = await world.send(
        world.address("staff", task, Visibility.INTERNAL), OUTLOOK_SV, sender="staff@example.test"
    )
    assert code == 250
    internal = (await next_data(staff))["comment"]
    assert internal["visibility"] == "internal" and internal["body"] == "Godkänt från min sida."
    with pytest.raises(TimeoutError):
        await customer.next_event(0.5)
    assert internal["id"] not in [c["id"] for c in await world.thread(task, "customer")]


async def test_quote_styles_of_english_and_swedish_clients_are_stripped(world: MailWorld) -> None:
    task = world.ws.ids["px_shared_task"]
    for text in (GMAIL_SV, OUTLOOK_EN, OUTLOOK_SV, SIGNATURE):
        code, answer = await world.send(world.address("customer", task), text, sender="customer@example.test")
        assert code == 250, answer
    bodies = [c["body"] for c in (await world.thread(task))[:4]]
    assert bodies == [
        "Send the invoice to finance, please.",
        "Godkänt från min sida.",
        "Approved from my side.",
        "Ja, det fungerar.",
    ]


async def test_forged_reused_cross_item_and_foreign_replies_are_bounced_and_store_nothing(world: MailWorld) -> None:
    ws = world.ws
    task = ws.ids["px_shared_task"]
    created = await world.api("staff").client.post(
        f"/api/projects/{ws.ids['px']}/tasks", json={"title": "Other thread", "visibility": "shared"}
    )
    other = created.json()["id"]
    assert (await world.api("customer").client.patch("/api/me", json={"locale": "sv"})).status_code == 200
    before = {t: await world.thread(t) for t in (task, other)}
    files_before = (await world.api("staff").client.get(f"/api/projects/{ws.ids['px']}/files")).json()["items"]
    customer = "customer@example.test"
    valid = world.address("customer", task)
    token = token_of(valid, DOMAIN)
    assert token is not None
    kind_audience, user, item, mac = token.split("-")
    cross_item = f"reply+{kind_audience}-{user}-{other:x}-{mac}@{DOMAIN}"
    tampered = f"reply+{kind_audience}-{user}-{item}-{mac[:-1]}{'b' if mac[-1] != 'b' else 'c'}@{DOMAIN}"

    # A forged or tampered token, and a token for task A moved to task B: refused, bounced in Swedish.
    for address in (tampered, cross_item, f"reply+nothing@{DOMAIN}"):
        code, answer = await world.send(address, "Hej", sender=customer)
        assert code == 550 and "Unknown reply address" in answer, (address, answer)
        bounce = await world.bounce_to(customer)
        assert bounce["Subject"].startswith("Ditt svar kunde inte publiceras")
        assert "ingen giltig svarsadress" in str(bounce.get_content())
        assert bounce["Auto-Submitted"] == "auto-replied"
    # An address outside the reply domain is refused at RCPT (no relaying).
    code, _ = await world.send("someone@elsewhere.test", "Hi", sender=customer)
    assert code == 550

    # Someone else's valid address, used by another Tandem user: refused, the sender told in English.
    code, answer = await world.send(valid, "I am the customer", sender="viewer@example.test")
    assert code == 550 and "not the recipient" in answer
    assert "reply from that mailbox" in str((await world.bounce_to("viewer@example.test")).get_content())
    # A stranger, and a stranger writing the customer's address into From: refused, and no bounce to anyone.
    for from_header in ("stranger@evil.test", customer):
        code, _ = await world.send(valid, "Hi", sender="stranger@evil.test", from_header=from_header)
        assert code == 550
    # The right envelope and From, but the relay found SPF and DKIM failing.
    code, answer = await world.send(
        valid,
        "Forged",
        sender=customer,
        headers={"Authentication-Results": "mx.reply.test; spf=fail smtp.mailfrom=example.test; dkim=fail"},
    )
    assert code == 550 and "authentication" in answer
    assert "SPF/DKIM" in str((await world.bounce_to(customer)).get_content())
    # A person who lost access since the mail went out: the task turned internal.
    hidden = await world.api("staff").patch_task(other, visibility="internal")
    code, answer = await world.send(world.address("customer", other), "Still there?", sender=customer)
    assert code == 550 and "No access" in answer
    assert "inte längre tillgång" in str((await world.bounce_to(customer)).get_content())
    assert hidden["visibility"] == "internal"

    assert {t: await world.thread(t) for t in (task, other)} == before
    assert (await world.api("staff").client.get(f"/api/projects/{ws.ids['px']}/files")).json()["items"] == files_before
    assert [m["To"] for m in world.sink.messages] == []  # the strangers got no bounce

    # A valid reply, delivered twice with one Message-ID, and a second reply to the same thread: two comments.
    for message_id in ("<once@client.test>", "<once@client.test>", "<twice@client.test>"):
        code, _ = await world.send(valid, f"Reply {message_id}", sender=customer, message_id=message_id)
        assert code == 250
    added = (await world.thread(task))[:3]
    assert [c["body"] for c in added[:2]] == ["Reply <twice@client.test>", "Reply <once@client.test>"]
    assert added[2]["id"] == before[task][0]["id"]


async def test_auto_replies_are_dropped_without_a_bounce(world: MailWorld) -> None:
    task = world.ws.ids["px_shared_task"]
    before = await world.thread(task)
    valid = world.address("customer", task)
    for headers in (
        {"Auto-Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"X-Autoreply": "yes"},
        {"List-Id": "<team.lists.example.test>"},
    ):
        code, _ = await world.send(valid, "I am out of office", sender="customer@example.test", headers=headers)
        assert code == 250
    assert await world.thread(task) == before
    assert world.sink.messages == []


async def test_attachments_become_files_within_the_upload_limit(world: MailWorld) -> None:
    ws, task = world.ws, world.ws.ids["px_shared_task"]
    customer = "customer@example.test"
    code, answer = await world.send(
        world.address("customer", task),
        "Here are the files.\n\nOn Mon, 7 Dec 2026, Tandem wrote:\n> send them",
        sender=customer,
        attachments=[("logo.png", PNG, "application/octet-stream"), ("../../notes.txt", b"plain words", "text/plain")],
    )
    assert code == 250, answer
    posted = (await world.thread(task))[0]
    assert posted["body"] == "Here are the files."
    files = (
        await world.api("customer").client.get(f"/api/projects/{ws.ids['px']}/files?comment_id={posted['id']}")
    ).json()["items"]
    by_name = {f["name"]: f for f in files}
    assert set(by_name) == {"logo.png", "notes.txt"}
    assert by_name["logo.png"]["content_type"] == "image/png"  # sniffed, not the declared octet-stream
    assert by_name["logo.png"]["visibility"] == "shared" and by_name["logo.png"]["task_id"] == task
    download = await world.api("customer").client.get(by_name["notes.txt"]["download_url"])
    assert download.content == b"plain words"

    # An attachment over the upload limit, and a mail over the mail limit: refused whole, nothing stored.
    before = await world.thread(task)
    code, answer = await world.send(
        world.address("customer", task),
        "Big one",
        sender=customer,
        attachments=[("big.bin", b"\x00" * 60_000, "application/octet-stream")],
    )
    assert code == 552, answer
    assert "50000" in str((await world.bounce_to(customer)).get_content())
    code, _ = await world.send(world.address("customer", task), "x" * 250_000, sender=customer)
    assert code == 552
    assert "200000" in str((await world.bounce_to(customer)).get_content())
    assert await world.thread(task) == before
    files_after = (await world.api("staff").client.get(f"/api/projects/{ws.ids['px']}/files")).json()["items"]
    assert "big.bin" not in {f["name"] for f in files_after}


async def test_a_sender_is_rate_limited(
    database: tuple[str, Workspace], tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    url, ws = database
    with cluster(tmp_path, url, REDIS, count=1) as (node,):
        settings = _mail_settings(tmp_path, url, node, sink[1], per_sender_per_hour=2)
        async with mail_in(settings, "127.0.0.1", 0) as port:
            world = MailWorld(node=node, ws=ws, port=port, sink=sink[0], settings=settings)
            task = ws.ids["px_shared_task"]
            codes = [
                (await world.send(world.address("customer", task), f"n{i}", sender="customer@example.test"))[0]
                for i in range(3)
            ]
            assert codes == [250, 250, 451]
            # Another sender is not held back by the customer's rate.
            code, _ = await world.send(world.address("staff", task), "mine", sender="staff@example.test")
            assert code == 250
            assert [c["body"] for c in (await world.thread(task))[:3]] == ["mine", "n1", "n0"]
            await world.api("staff").aclose()


@pytest.fixture
def digest_settings(tmp_path: Path, workspace_template: tuple[Path, Workspace], sink: tuple[Sink, int]) -> Settings:
    shutil.copy(workspace_template[0], tmp_path / "tandem.db")
    return make_settings(
        tmp_path,
        smtp=SmtpSettings(host="127.0.0.1", port=sink[1], starttls=False),
        digest_delay_seconds=0,
        digest_interval_seconds=3600,
        secret_key=SECRET,
        mail_in=MailInSettings(domain=DOMAIN),
    )


def test_notification_mail_carries_reply_address_and_threading_headers(
    digest_settings: Settings, sink: tuple[Sink, int], workspace_template: tuple[Path, Workspace]
) -> None:
    ws = workspace_template[1]
    shared_task, internal_task = ws.ids["px_shared_task"], ws.ids["px_internal_task"]
    app = create_app(digest_settings)
    with TestClient(app) as client:
        staff = bearer(ws, "staff")
        client.patch(
            "/api/me/notification-preferences", headers=bearer(ws, "customer"), json={"mentions": "immediately"}
        )
        for count, body in enumerate(("One", "Two"), 1):  # two mails about one thread: one conversation
            client.post(
                f"/api/tasks/{shared_task}/comments",
                headers=staff,
                json={"body": body, "visibility": "shared", "mentions": [ws.users["customer"]]},
            )
            deadline = time.monotonic() + 5
            while len(sink[0].messages) < count and time.monotonic() < deadline:
                client.portal.call(asyncio.sleep, 0.02)
            assert len(sink[0].messages) == count
        client.post(
            f"/api/tasks/{internal_task}/comments",
            headers=staff,
            json={"body": "fyi", "visibility": "internal", "mentions": [ws.users["owner"]]},
        )
        client.post(
            f"/api/tasks/{shared_task}/comments",
            headers=staff,
            json={"body": "Also here", "visibility": "shared", "mentions": [ws.users["owner"]]},
        )
        client.portal.call(app.state.services.digests.run_once)
    inbox = sink[0].messages
    first, second = [m for m in inbox if m["To"] == "customer@example.test"]
    for mail in (first, second):
        target = verify(SECRET, token_of(mail["Reply-To"], DOMAIN) or "")
        assert target == ReplyTarget(ws.users["customer"], ItemKind.TASK, shared_task, Visibility.SHARED)
        assert mail["In-Reply-To"] == mail["References"] == f"<task-{shared_task}@{DOMAIN}>"
        assert mail["Message-ID"].endswith(f"@{DOMAIN}>") and mail["Auto-Submitted"] == "auto-generated"
        assert "Reply to this mail" in str(mail.get_content())
    assert first["Message-ID"] != second["Message-ID"]
    # A digest about two threads has no single Reply-To: each item carries its own address, with its audience.
    (owner_mail,) = [m for m in inbox if m["To"] == "owner@example.test"]
    assert owner_mail["Reply-To"] is None and owner_mail["References"] is None
    addresses = [
        line.split(": ", 1)[1] for line in str(owner_mail.get_content()).splitlines() if "Reply by email" in line
    ]
    targets = {verify(SECRET, token_of(a, DOMAIN) or "") for a in addresses}
    owner = ws.users["owner"]
    assert targets == {
        ReplyTarget(owner, ItemKind.TASK, internal_task, Visibility.INTERNAL),
        ReplyTarget(owner, ItemKind.TASK, shared_task, Visibility.SHARED),
    }


def test_without_a_mail_domain_mail_goes_out_as_before(
    digest_settings: Settings, sink: tuple[Sink, int], workspace_template: tuple[Path, Workspace]
) -> None:
    ws = workspace_template[1]
    app = create_app(replace(digest_settings, mail_in=MailInSettings()))
    with TestClient(app) as client:
        client.post(
            f"/api/tasks/{ws.ids['px_shared_task']}/comments",
            headers=bearer(ws, "staff"),
            json={"body": "Hi", "visibility": "shared", "mentions": [ws.users["customer"]]},
        )
        client.portal.call(app.state.services.digests.run_once)
    (mail,) = sink[0].messages
    assert mail["Reply-To"] is None and mail["References"] is None and "reply+" not in str(mail.get_content())


async def test_a_reply_about_a_request_answers_it_then_goes_to_its_task_thread(world: MailWorld) -> None:
    request = world.ws.ids["px_request"]
    customer = "customer@example.test"
    address = world.address("customer", request, kind=ItemKind.REQUEST)
    # Staff asked for information: the customer's reply by email answers it, with its attachment, and reopens it.
    asked = await world.api("staff").client.post(
        f"/api/requests/{request}/triage", json={"action": "ask", "message": "Which pages?"}
    )
    assert asked.status_code == 200, asked.text
    code, answer = await world.send(
        address,
        "The start page and the shop.\n\nOn Mon, Tandem wrote:\n> Which pages?",
        sender=customer,
        attachments=[("pages.png", PNG, "image/png")],
    )
    assert code == 250, answer
    answered = (await world.api("customer").client.get(f"/api/requests/{request}")).json()
    assert answered["status"] == "open"
    assert answered["history"][-1]["kind"] == "replied"
    assert answered["history"][-1]["text"] == "The start page and the shop."
    files = (await world.api("customer").client.get(f"/api/projects/{world.ws.ids['px']}/files")).json()["items"]
    assert [f["name"] for f in files if f.get("request_id") == request] == ["pages.png"]
    assert world.sink.messages == []
    accepted = await world.api("staff").client.post(
        f"/api/requests/{request}/triage", json={"action": "accept", "message": "On it"}
    )
    assert accepted.status_code == 200, accepted.text
    task = accepted.json()["task_id"]
    code, _ = await world.send(address, "Thanks!\n\nOn Mon, Tandem wrote:\n> On it", sender=customer)
    assert code == 250
    posted = (await world.thread(task, "customer"))[0]
    assert posted["body"] == "Thanks!" and posted["visibility"] == "shared"


async def test_staff_mark_an_emailed_request_reply_as_feedback_and_the_customer_never_sees_it(world: MailWorld) -> None:
    request, px = world.ws.ids["px_request"], world.ws.ids["px"]
    staff, customer = world.api("staff").client, world.api("customer").client
    code, answer = await world.send(
        world.address("customer", request, kind=ItemKind.REQUEST),
        "The logo still looks blurry on phones.\n\nOn Mon, Tandem wrote:\n> Hello",
        sender="customer@example.test",
    )
    assert code == 250, answer
    event = (await staff.get(f"/api/requests/{request}")).json()["history"][-1]
    assert (event["kind"], event["text"]) == ("replied", "The logo still looks blurry on phones.")
    before = (await customer.get(f"/api/requests/{request}")).text
    refused = await customer.put(
        f"/api/request-events/{event['id']}/feedback", json={"kind": "concern", "theme": "quality"}
    )
    assert refused.status_code == 404
    marked = await staff.put(
        f"/api/request-events/{event['id']}/feedback", json={"kind": "concern", "theme": "quality"}
    )
    assert marked.status_code == 200, marked.text
    assert (marked.json()["by_email"], marked.json()["request_id"]) == (True, request)
    quality = {t["theme"]: t for t in (await staff.get(f"/api/projects/{px}/feedback")).json()["themes"]}["quality"]
    (quote,) = [q for q in quality["quotes"] if q["request_event_id"] == event["id"]]
    assert (quote["by_email"], quote["request_id"], quote["kind"]) == (True, request, "concern")
    assert (await customer.get(f"/api/requests/{request}")).text == before
    assert (await customer.get(f"/api/requests/{request}/feedback-marks")).status_code == 404


def test_an_html_only_reply_is_read_without_its_quoted_block() -> None:
    message = EmailMessage()
    message.set_content(
        "<div>Looks <b>great</b> &amp; ready.<br>Anna</div>"
        "<div class=gmail_quote>On Mon, Tandem wrote:<blockquote>Please check the logo</blockquote></div>",
        subtype="html",
    )
    assert reply_text(body_text(message)) == "Looks great & ready.\nAnna"


async def test_a_deactivated_person_replying_is_bounced_and_nothing_is_stored(world: MailWorld) -> None:
    ws, task = world.ws, world.ws.ids["px_shared_task"]
    staff_address = world.address("staff", task, Visibility.INTERNAL)
    assert (await world.api("staff").client.patch("/api/me", json={"locale": "sv"})).status_code == 200
    owner = world.api("owner").client
    off = await owner.patch(f"/api/staff/{ws.users['staff']}", json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    before = await world.thread(task, "owner")
    files_before = (await owner.get(f"/api/projects/{ws.ids['px']}/files")).json()["items"]

    code, answer = await world.send(
        staff_address,
        "Sent after I left",
        sender="staff@example.test",
        attachments=[("notes.txt", b"words", "text/plain")],
        message_id="<after-leaving@client.test>",
    )
    assert code == 550 and "No access" in answer
    # Told why, in their language: the address is a real Tandem user's, not a forged stranger's.
    bounce = await world.bounce_to("staff@example.test")
    assert "inte längre tillgång" in str(bounce.get_content())
    assert await world.thread(task, "owner") == before
    assert (await owner.get(f"/api/projects/{ws.ids['px']}/files")).json()["items"] == files_before

    # Not even the Message-ID was kept: reactivated, the same mail posts.
    on = await owner.patch(f"/api/staff/{ws.users['staff']}", json={"active": True})
    assert on.status_code == 200
    code, _ = await world.send(
        staff_address, "Sent after I left", sender="staff@example.test", message_id="<after-leaving@client.test>"
    )
    assert code == 250
    assert (await world.thread(task, "owner"))[0]["body"] == "Sent after I left"


async def test_a_reply_waits_for_the_second_factor_the_organization_requires(world: MailWorld) -> None:
    task = world.ws.ids["px_shared_task"]
    customer = world.api("customer").client
    assert (await customer.patch("/api/me", json={"locale": "sv"})).status_code == 200
    rule = await world.api("owner").client.patch(
        "/api/organization/security", json={"require_second_factor_customers": True}
    )
    assert rule.status_code == 200, rule.text
    before = await world.thread(task)
    address = world.address("customer", task)

    # Signing in, the customer could only enrol: a reply by email does not post as them either.
    code, answer = await world.send(
        address, "Looks good", sender="customer@example.test", message_id="<before-enrolling@client.test>"
    )
    assert code == 550 and "Second factor required" in answer
    bounce = await world.bounce_to("customer@example.test")
    assert "andra sätt att logga in" in str(bounce.get_content())
    assert await world.thread(task) == before

    # Enrolled (authenticator codes on the node's real clock), the same mail posts.
    secret = (await customer.post("/api/me/totp")).json()["secret"]
    confirmed = await customer.post("/api/me/totp/confirm", json={"code": pyotp.TOTP(secret).now()})
    assert confirmed.status_code == 200, confirmed.text
    code, _ = await world.send(
        address, "Looks good", sender="customer@example.test", message_id="<before-enrolling@client.test>"
    )
    assert code == 250
    assert (await world.thread(task))[0]["body"] == "Looks good"
    # Staff are not bound by the customers' rule.
    code, _ = await world.send(world.address("staff", task, Visibility.INTERNAL), "Noted", sender="staff@example.test")
    assert code == 250
