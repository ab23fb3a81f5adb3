"""Sign in by link in a real browser, with the mail read from a real SMTP inbox (aiosmtpd): asked for and opened in
the same browser it signs in, once; opened in a fresh browser it is refused; an invitation is accepted without a
password."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.e2e.test_onboarding import Inbox, mail_env, smtp  # noqa: F401  (the fixture)
from tests.nodes import cluster
from tests.workspace import INVITE_TOKEN, Workspace

LINK = re.compile(r"http://\S+/sign-in-link#[A-Za-z0-9_-]+")


async def mailed_link(inbox: Inbox, address: str) -> str:
    async with asyncio.timeout(10):
        while True:
            for message in inbox.messages:
                body = message.get_body()
                # Decoded: a line as long as the link's goes out quoted-printable, with soft line breaks in it.
                if message["To"] == address and body is not None and (match := LINK.search(body.get_content())):
                    return match.group(0)
            await asyncio.sleep(0.05)


async def open_page(context: BrowserContext, errors: list[str]) -> Page:
    page = await context.new_page()
    # Chromium logs refused requests (the 403 and 404 answers this test provokes) as console errors: those may show.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 40" not in m.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


async def test_sign_in_by_link_in_the_browser_that_asked(
    browser: Browser,
    database: tuple[str, Workspace],
    tmp_path: Path,
    smtp: tuple[Inbox, int],  # noqa: F811
) -> None:
    inbox, port = smtp
    ws = database[1]
    email = ws.emails["customer"]
    errors: list[str] = []
    with cluster(tmp_path, database[0], None, count=1, extra_env=mail_env(port)) as (node,):
        asking = await browser.new_context(locale="en-GB")
        elsewhere = await browser.new_context(locale="sv-SE")
        joining = await browser.new_context(locale="en-GB")
        try:
            page = await open_page(asking, errors)
            await page.goto(node.http + "/")
            # Asking without an address says what is missing.
            await page.click("#email-link")
            await expect(page.get_by_role("alert")).to_contain_text("Enter your email address first")
            # By keyboard: the address, then Tab from the password field past "Sign in" to the link button.
            await page.fill("#email", email)
            await page.focus("#password")
            await page.keyboard.press("Tab")
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.id") == "email-link"
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("status")).to_contain_text("a link is on its way. Open it in this browser")
            link = await mailed_link(inbox, email)

            # A fresh browser (another person, a mail scanner) is refused, and says where to open the link.
            other = await open_page(elsewhere, errors)
            await other.goto(link)
            await expect(other.get_by_role("alert")).to_contain_text("fungerar bara i webbläsaren där du bad om den")
            await other.goto(node.http + "/")
            await expect(other.locator("#password")).to_be_visible()  # still signed out there

            # The browser that asked: signed in, on the home page, the token gone from the address bar.
            await page.goto(link)
            await page.wait_for_url(node.http + "/")
            await expect(page.locator("#projects-title")).to_be_visible()
            assert "#" not in page.url
            # Once only.
            again = await open_page(asking, errors)
            await again.goto(link)
            await expect(again.get_by_role("alert")).to_contain_text("invalid, used or expired")

            # An invitation accepted without a password lands on the project's board, signed in.
            invited = await open_page(joining, errors)
            await invited.goto(f"{node.http}/invite#{INVITE_TOKEN}")
            await invited.fill("#name", "Ingrid Inbjuden")
            await invited.click("#join-passwordless")
            await invited.wait_for_url(f"{node.http}/projects/{ws.ids['px']}")
            assert [m["To"] for m in inbox.messages] == [email]
            assert errors == []
        finally:
            for context in (asking, elsewhere, joining):
                await context.close()
