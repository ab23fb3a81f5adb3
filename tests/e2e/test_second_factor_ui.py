"""Second factors in a real browser: passkeys on Chromium's virtual authenticator (CDP ``WebAuthn``), registered,
renamed, and used to sign in with and without typing an address; an organization requiring a second factor walking
a staff member through enrolment (authenticator codes, computed with pyotp from the secret the page shows); a
password alone not signing in; recovery codes working once; and the credential-change mail arriving in a real
SMTP server (aiosmtpd).

The node is served as ``localhost``: WebAuthn accepts no IP address as a relying party id.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest
from playwright.async_api import Browser, BrowserContext, CDPSession, Page, expect

from tests.conftest import bearer
from tests.e2e.test_onboarding import Inbox, mail_env, smtp  # noqa: F401  (the fixture)
from tests.nodes import SECRET, Node
from tests.workspace import PASSWORD, Workspace


@pytest.fixture
def node(database: tuple[str, Workspace], tmp_path: Path, smtp: tuple[Inbox, int]) -> Iterator[Node]:  # noqa: F811
    served = Node(
        env={
            "TANDEM_DATABASE_URL": database[0],
            "TANDEM_SECRET_KEY": SECRET,
            "TANDEM_DATA_DIR": str(tmp_path),
            "TANDEM_AUTO_MIGRATE": "false",
            "TANDEM_REDIS_PREFIX": f"test:{uuid.uuid4().hex}:",
            **mail_env(smtp[1]),
        },
        log_path=tmp_path / "node.log",
    )
    served.env["TANDEM_BASE_URL"] = f"http://localhost:{served.port}"
    served.start()
    try:
        yield served
    finally:
        served.kill()


# A shared machine under load can take seconds to answer: each expectation waits this long before failing.
SLOW = 20_000


def origin(node: Node) -> str:
    return f"http://localhost:{node.port}"


async def mail_to(inbox: Inbox, address: str, subject: str) -> str:
    """The body of the first mail to ``address`` whose subject holds ``subject``."""
    async with asyncio.timeout(30):
        while True:
            for message in inbox.messages:
                body = message.get_body()
                if message["To"] == address and subject in str(message["Subject"]) and body is not None:
                    return str(body.get_content())
            await asyncio.sleep(0.05)


async def open_page(context: BrowserContext, errors: list[str]) -> Page:
    page = await context.new_page()
    # Chromium logs refused requests (the 401s and 422s this test provokes) as console errors: those may show.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 4" not in m.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


async def password_sign_in(page: Page, node: Node, email: str) -> None:
    await page.goto(origin(node) + "/")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.press("#password", "Enter")


async def sign_out(page: Page) -> None:
    await page.evaluate(
        "fetch('/api/auth/logout', {method: 'POST', headers: {'x-csrf-token':"
        " (document.cookie.match(/tandem_csrf=([^;]+)/) || [])[1] || ''}})"
    )
    await page.goto(page.url.split("/", 3)[0] + "//" + page.url.split("/", 3)[2] + "/")
    await page.wait_for_selector("#email")


async def test_passkeys_register_sign_in_and_sign_in_without_an_address(
    browser: Browser,
    node: Node,
    database: tuple[str, Workspace],
    smtp: tuple[Inbox, int],  # noqa: F811
) -> None:
    ws = database[1]
    email = ws.emails["spare_staff"]
    errors: list[str] = []
    context = await browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 800})
    try:
        page = await open_page(context, errors)
        cdp = await context.new_cdp_session(page)
        await cdp.send("WebAuthn.enable")
        await cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
        )
        await password_sign_in(page, node, email)
        await page.wait_for_selector(".projects")
        await page.goto(origin(node) + "/settings/tokens")
        await page.fill("#passkey-name", "Laptop")
        await page.press("#passkey-name", "Enter")
        await expect(page.locator(".second-factor-status")).to_contain_text('Passkey "Laptop" added.', timeout=SLOW)
        await expect(page.locator(".passkey-name")).to_have_text(["Laptop"], timeout=SLOW)
        # Renamed by keyboard.
        await page.get_by_role("button", name="Rename Laptop").click()
        await page.fill("[id^=passkey-rename-]", "Work laptop")
        await page.press("[id^=passkey-rename-]", "Enter")
        await expect(page.locator(".passkey-name")).to_have_text(["Work laptop"], timeout=SLOW)
        # The change is mailed to the person, with the link to end sessions.
        mail = await mail_to(smtp[0], email, "A passkey was added")
        assert '"Laptop"' in mail and "/settings/tokens#sessions" in mail

        # Signed out, the password alone no longer signs in: the second step asks for the passkey.
        await sign_out(page)
        await page.fill("#email", email)
        await page.fill("#password", PASSWORD)
        await page.press("#password", "Enter")
        await expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible(timeout=SLOW)
        assert (await page.request.get(origin(node) + "/api/me")).status == 401
        await page.click("#use-passkey")
        await page.wait_for_selector(".projects")

        # Without typing an address: the passkey says who it is.
        await sign_out(page)
        await page.click("#passkey-sign-in")
        await page.wait_for_selector(".projects")
        me = await (await page.request.get(origin(node) + "/api/me")).json()
        assert me["user"]["email"] == email

        # Removed behind a confirm; the removal is mailed too.
        await page.goto(origin(node) + "/settings/tokens")
        await page.get_by_role("button", name="Remove Work laptop").click()
        await page.get_by_role("dialog").get_by_role("button", name="Remove").click()
        await expect(page.locator(".second-factor-status")).to_contain_text(
            'Passkey "Work laptop" removed.', timeout=SLOW
        )
        await expect(page.locator(".passkey-name")).to_have_count(0, timeout=SLOW)
        mail = await mail_to(smtp[0], email, "A passkey was removed")
        assert '"Work laptop"' in mail
        assert errors == []
    finally:
        await context.close()


async def test_required_second_factor_enrols_staff_and_a_password_alone_fails(
    browser: Browser,
    node: Node,
    database: tuple[str, Workspace],
    smtp: tuple[Inbox, int],  # noqa: F811
) -> None:
    ws = database[1]
    errors: list[str] = []
    owner = await browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 800})
    phone = await browser.new_context(locale="sv-SE", viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        # The owner requires a second factor of staff, on the organization page.
        page = await open_page(owner, errors)
        await password_sign_in(page, node, ws.emails["owner"])
        await page.wait_for_selector(".projects")
        await page.goto(origin(node) + "/organization")
        # By keyboard: the rule's checkbox, by its label, toggled with Space.
        require_staff = page.get_by_label("Require a second factor for staff")
        await expect(require_staff).to_be_enabled(timeout=SLOW)  # once the rule has loaded
        await require_staff.focus()
        await page.keyboard.press("Space")
        await expect(page.locator(".second-factor-policy [role=status]")).to_have_text("Saved", timeout=SLOW)
        await expect(require_staff).to_be_checked()
        assert not await page.is_checked("#require-customers")

        # A staff member who reads Swedish, signing in on a phone, is walked through enrolment before anything else.
        email = ws.emails["staff"]
        async with httpx.AsyncClient(base_url=node.http, timeout=10) as api:
            swedish = await api.patch("/api/me", json={"locale": "sv"}, headers=bearer(ws, "staff"))
            assert swedish.status_code == 200, swedish.text
        staff = await open_page(phone, errors)
        await password_sign_in(staff, node, email)
        await expect(staff.get_by_role("heading", name="Lägg till ett andra sätt att logga in")).to_be_visible(
            timeout=SLOW
        )
        assert (await staff.request.get(origin(node) + "/api/projects")).status == 403
        await staff.click("#totp-start")
        secret = (await staff.locator("#totp-secret").text_content() or "").strip()
        await staff.fill("#totp-code", "000000")
        # Enter submits once the form is ready (its button is disabled while the page reloads the factors).
        await expect(staff.locator("#totp-confirm")).to_be_enabled(timeout=SLOW)
        await staff.press("#totp-code", "Enter")
        await expect(staff.get_by_role("alert")).to_contain_text("Koden är fel", timeout=SLOW)
        await staff.fill("#totp-code", pyotp.TOTP(secret).now())
        await staff.press("#totp-code", "Enter")
        await expect(staff.locator("#recovery-codes code")).to_have_count(10, timeout=SLOW)
        codes = [c.strip() for c in await staff.locator("#recovery-codes code").all_text_contents()]
        await staff.click("#enrol-continue")
        await staff.wait_for_selector(".projects")
        assert (await staff.request.get(origin(node) + "/api/projects")).status == 200
        mail = await mail_to(smtp[0], email, "Koder från autentiseringsapp har slagits på")
        assert "Hej Staff" in mail

        # A stolen password alone fails: the second step, a wrong code refused in Swedish, no session.
        await sign_out(staff)
        await staff.fill("#email", email)
        await staff.fill("#password", PASSWORD)
        await staff.press("#password", "Enter")
        await expect(staff.get_by_role("heading", name="Bekräfta att det är du")).to_be_visible(timeout=SLOW)
        await staff.fill("#second-code", "123456")
        await staff.press("#second-code", "Enter")
        await expect(staff.get_by_role("alert")).to_contain_text("Koden är fel eller har redan använts", timeout=SLOW)
        assert (await staff.request.get(origin(node) + "/api/me")).status == 401

        # A recovery code signs in once; the same code again is refused.
        await staff.click("#second-switch")
        await staff.fill("#second-code", codes[0])
        await staff.press("#second-code", "Enter")
        await staff.wait_for_selector(".projects")
        await sign_out(staff)
        await staff.fill("#email", email)
        await staff.fill("#password", PASSWORD)
        await staff.press("#password", "Enter")
        await staff.click("#second-switch")
        await staff.fill("#second-code", codes[0])
        await staff.press("#second-code", "Enter")
        await expect(staff.get_by_role("alert")).to_contain_text("Koden är fel eller har redan använts", timeout=SLOW)
        await staff.fill("#second-code", codes[1])
        await staff.press("#second-code", "Enter")
        await staff.wait_for_selector(".projects")

        # The owner signing in on this phone, a browser they never used: mailed, in their language (English). The
        # owner is staff too, so they are sent to enrolment as well.
        await sign_out(staff)
        await password_sign_in(staff, node, ws.emails["owner"])
        await expect(staff.get_by_role("heading", name="Set up a second way to sign in")).to_be_visible(timeout=SLOW)
        mail = await mail_to(smtp[0], ws.emails["owner"], "New sign-in to your Tandem account")
        assert "a device not used before" in mail and "/settings/tokens#sessions" in mail
        assert errors == []
    finally:
        await owner.close()
        await phone.close()


async def virtual_authenticator(cdp: CDPSession) -> str:
    """A platform authenticator that holds passkeys and verifies its user at once; returns its id."""
    added = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return str(added["authenticatorId"])


async def test_two_passkeys_added_renamed_and_removed_by_keyboard_on_a_phone_in_swedish(
    browser: Browser,
    node: Node,
    database: tuple[str, Workspace],
    smtp: tuple[Inbox, int],  # noqa: F811
) -> None:
    ws = database[1]
    email = ws.emails["customer"]
    async with httpx.AsyncClient(base_url=node.http, timeout=10) as api:
        swedish = await api.patch("/api/me", json={"locale": "sv"}, headers=bearer(ws, "customer"))
        assert swedish.status_code == 200, swedish.text
    errors: list[str] = []
    context = await browser.new_context(locale="sv-SE", viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = await open_page(context, errors)
        cdp = await context.new_cdp_session(page)
        await cdp.send("WebAuthn.enable")
        phone_key = await virtual_authenticator(cdp)
        await password_sign_in(page, node, email)
        await page.wait_for_selector(".projects")
        await page.goto(origin(node) + "/settings/tokens")
        status = page.locator(".second-factor-status")

        # The first passkey, typed and saved with Enter.
        await page.locator("#passkey-name").focus()
        await page.keyboard.type("Telefon")
        await page.keyboard.press("Enter")
        await expect(status).to_contain_text('Nyckeln "Telefon" har lagts till.', timeout=SLOW)
        # A second one, on another authenticator (a passkey is one per authenticator and account).
        await cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": phone_key})
        await virtual_authenticator(cdp)
        await page.locator("#passkey-name").focus()
        await page.keyboard.type("Surfplatta")
        await page.keyboard.press("Enter")
        await expect(status).to_contain_text('Nyckeln "Surfplatta" har lagts till.', timeout=SLOW)
        await expect(page.locator(".passkey-name")).to_have_text(["Telefon", "Surfplatta"], timeout=SLOW)
        async with httpx.AsyncClient(base_url=node.http, timeout=10) as api:
            mine = (await api.get("/api/me/second-factor", headers=bearer(ws, "customer"))).json()
        assert sorted(p["name"] for p in mine["passkeys"]) == ["Surfplatta", "Telefon"]
        # Each addition mailed, in Swedish.
        async with asyncio.timeout(30):
            while sum(1 for m in smtp[0].messages if "En nyckel har lagts till" in str(m["Subject"])) < 2:
                await asyncio.sleep(0.05)

        # Renamed by keyboard.
        await page.get_by_role("button", name="Byt namn på Surfplatta").focus()
        await page.keyboard.press("Enter")
        field = page.locator("[id^=passkey-rename-]")
        await expect(field).to_be_focused(timeout=SLOW)
        await field.fill("Jobbets surfplatta")
        await page.keyboard.press("Enter")
        await expect(status).to_contain_text('Nyckeln heter nu "Jobbets surfplatta".', timeout=SLOW)
        await expect(page.locator(".passkey-name")).to_have_text(["Telefon", "Jobbets surfplatta"], timeout=SLOW)

        # The first removed by keyboard, behind a confirm.
        await page.get_by_role("button", name="Ta bort Telefon").focus()
        await page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog")
        await expect(dialog).to_contain_text('Ta bort nyckeln "Telefon"?', timeout=SLOW)
        await dialog.get_by_role("button", name="Ta bort").focus()
        await page.keyboard.press("Enter")
        await expect(status).to_contain_text('Nyckeln "Telefon" har tagits bort.', timeout=SLOW)
        await expect(page.locator(".passkey-name")).to_have_text(["Jobbets surfplatta"], timeout=SLOW)
        assert '"Telefon"' in await mail_to(smtp[0], email, "En nyckel har tagits bort")
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        # The one left signs in.
        await sign_out(page)
        await page.click("#passkey-sign-in")
        await page.wait_for_selector(".projects")
        me = await (await page.request.get(origin(node) + "/api/me")).json()
        assert me["user"]["email"] == email
        assert errors == []
    finally:
        await context.close()
