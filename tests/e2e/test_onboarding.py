"""Onboarding in a real browser: the owner creates a client and a project from a template and invites a customer
by email; the customer opens the link in a fresh browser, sets a password and lands on the project's board.

Run at a phone's and a desk's width; once with the link copied from the screen (no SMTP), once with the link read
from a real SMTP inbox (aiosmtpd). bench/onboarding.py runs the same journey and reports its clicks and seconds.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests import smtp_inbox
from tests.e2e.test_portal import choose_language
from tests.nodes import Node, cluster
from tests.workspace import PASSWORD, Workspace

LINK = re.compile(r"http://\S+/invite#[A-Za-z0-9_-]+")
CUSTOMER_PASSWORD = "rye bread every morning"


class Inbox(smtp_inbox.Inbox):
    """A real SMTP server's mailbox (aiosmtpd), finding the invitation link mailed to an address."""

    async def link_for(self, address: str, timeout: float = 10) -> str:
        async with asyncio.timeout(timeout):
            while True:
                for message in self.messages:
                    if message["To"] == address and (match := LINK.search(str(message.get_body()))):
                        return match.group(0)
                await asyncio.sleep(0.05)


@dataclass
class Journey:
    """What the customer's way in cost, from pressing "Invite" to seeing the board."""

    clicks: int = 0
    seconds: float = 0.0
    screens: list[str] = field(default_factory=list)


class Clicks:
    """Clicks, counted: every press a person makes goes through here."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, page: Page, selector: str) -> None:
        self.count += 1
        await page.click(selector)


async def onboard(
    browser: Browser,
    node: Node,
    ws: Workspace,
    *,
    width: int,
    height: int,
    locale: str,
    inbox: Inbox | None,
    names: tuple[str, str, str] = ("Nordic Bakery", "Bakery web shop", "karin@nordicbakery.se"),
) -> Journey:
    """The owner sets up a client and a project and invites its customer, who joins and sees the board."""
    client_name, project_name, address = names
    viewport = {"width": width, "height": height}
    owner_context = await browser.new_context(viewport=viewport, locale=locale)
    await owner_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=node.http)
    customer_context = await browser.new_context(viewport=viewport, locale=locale)
    errors: list[str] = []
    journey = Journey()
    try:
        owner = await owner_context.new_page()
        owner.on("pageerror", lambda e: errors.append(str(e)))
        await owner.goto(node.http + "/")
        await owner.fill("#email", ws.emails["owner"])
        await owner.fill("#password", PASSWORD)
        await owner.click("form button[type=submit]")
        swedish = locale.startswith("sv")
        if swedish:  # the owner reads Tandem in Swedish too
            await choose_language(owner, "sv")
            await expect(owner.locator("#new-project")).to_have_text("+ Nytt projekt")

        # A client and a project from the organization's template, in one dialog.
        await owner.click("#new-project")
        dialog = owner.get_by_role("dialog")
        await expect(dialog).to_be_visible()
        await owner.select_option("#project-client", value="new")
        await owner.fill("#client-name", client_name)
        await owner.fill("#project-name", project_name)
        await dialog.locator("input[name=workflow][data-template-name='Agency flow']").check()
        await dialog.locator("button[type=submit]").click()
        await owner.wait_for_url(re.compile(r"/projects/\d+/people$"))
        project_id = int(re.findall(r"/projects/(\d+)/people", owner.url)[0])
        await expect(owner.locator("h1")).to_contain_text(project_name)
        await expect(owner.locator("#invite-title")).to_have_text("Bjud in någon" if swedish else "Invite someone")
        journey.screens.append(await shot(owner, "onboarding-people"))

        # Invite: from here on, every click counts.
        clicks = Clicks()
        started = time.monotonic()
        await owner.fill("#invite-email", address)
        await owner.select_option("#invite-role", value="customer")
        await clicks(owner, "#invite-submit")
        if inbox is None:
            shown = owner.locator("#invite-link")
            await expect(shown).to_be_visible()
            await clicks(owner, "#invite-link-copy")
            await expect(owner.locator("#invite-link-copy")).to_have_attribute("data-copied", "true")
            link = str(await owner.evaluate("navigator.clipboard.readText()"))
            assert link == (await shown.input_value())
        else:
            await expect(owner.locator("#invite-result")).to_contain_text(address)
            assert await owner.locator("#invite-link").count() == 0  # mailed: no link on screen
            link = await inbox.link_for(address)
        assert LINK.fullmatch(link), link
        pending = owner.locator(".pending-invite", has_text=address)
        await expect(pending).to_be_visible()
        journey.screens.append(await shot(owner, "onboarding-invited"))

        # The customer, in a browser of their own.
        customer = await customer_context.new_page()
        customer.on("pageerror", lambda e: errors.append(str(e)))
        await customer.goto(link)
        await customer.fill("#name", "Karin Kund")
        await customer.fill("#password", CUSTOMER_PASSWORD)
        await clicks(customer, "form button[type=submit]")
        await customer.wait_for_url(f"{node.http}/projects/{project_id}")
        await expect(customer.locator(".column[aria-label='Doing']")).to_be_visible()
        journey.seconds = time.monotonic() - started
        journey.clicks = clicks.count
        journey.screens.append(await shot(customer, "onboarding-board"))

        # The owner's page: the invitation is gone from "pending" and the customer is a member.
        await owner.reload()
        await expect(owner.locator(".member", has_text="Karin Kund")).to_be_visible()
        assert await owner.locator(".pending-invite", has_text=address).count() == 0
        assert errors == []
        return journey
    finally:
        await owner_context.close()
        await customer_context.close()


async def shot(page: Page, name: str) -> str:
    artifacts = Path(__file__).resolve().parents[1] / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    assert size is not None
    path = artifacts / f"{name}-{size['width']}x{size['height']}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name} scrolls sideways"
    return path.name


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_inbox.serving(Inbox()) as served:
        yield served


def mail_env(port: int) -> dict[str, str]:
    return {"TANDEM_SMTP_HOST": "127.0.0.1", "TANDEM_SMTP_PORT": str(port), "TANDEM_SMTP_STARTTLS": "false"}


async def test_onboarding_on_a_phone_in_swedish_with_the_link_copied(
    browser: Browser,
    database: tuple[str, Workspace],
    tmp_path: Path,
) -> None:
    with cluster(tmp_path, database[0], None, count=1) as (node,):
        journey = await onboard(browser, node, database[1], width=390, height=844, locale="sv-SE", inbox=None)
    assert journey.clicks == 3  # Invite, Copy link, and the customer's Join


async def test_onboarding_on_a_desk_with_the_link_mailed(
    browser: Browser,
    database: tuple[str, Workspace],
    tmp_path: Path,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    with cluster(tmp_path, database[0], None, count=1, extra_env=mail_env(port)) as (node,):
        journey = await onboard(browser, node, database[1], width=1280, height=800, locale="en-GB", inbox=inbox)
    assert journey.clicks == 2  # Invite, and the customer's Join
    assert [m["To"] for m in inbox.messages] == ["karin@nordicbakery.se"]
