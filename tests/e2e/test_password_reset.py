"""Password reset in a real browser: from the sign-in page's link to signing in with the new password."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.nodes import Node, cluster
from tests.workspace import Workspace

LINK = re.compile(r"http://\S+/reset-password#[A-Za-z0-9_-]+")


@pytest.fixture
def node(database: tuple[str, Workspace], tmp_path: Path) -> Iterator[Node]:
    with cluster(tmp_path, database[0], None, count=1) as (one,):
        yield one


async def test_forgotten_password_reset_in_the_browser(
    browser: Browser,
    node: Node,
    database: tuple[str, Workspace],
) -> None:
    ws = database[1]
    email = ws.emails["customer"]
    context = await browser.new_context(locale="sv-SE")
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        await page.goto(node.http + "/")
        await page.click("a[href='/reset-password']")
        await page.fill("#email", email)
        await page.click("form button[type=submit]")
        await expect(page.get_by_role("status")).to_contain_text("Om ett konto använder den här adressen")
        async with asyncio.timeout(10):
            while not (match := LINK.search(node.log())):
                await asyncio.sleep(0.05)

        await page.goto(match.group(0))
        await page.fill("#password", "password12345")  # breached: refused with the server's reason
        await page.click("form button[type=submit]")
        await expect(page.locator("#password-error")).to_contain_text("läckta lösenord")  # beside the field, in Swedish
        await expect(page.locator("#password")).to_have_attribute("aria-invalid", "true")
        await page.fill("#password", "plum orchard at dusk")
        await page.click("form button[type=submit]")
        await expect(page.get_by_role("status")).to_contain_text("Logga in med det nya lösenordet")
        assert "#" not in page.url  # the used token leaves the address bar

        await page.click("a[href='/']")
        await page.fill("#email", email)
        await page.fill("#password", "plum orchard at dusk")
        await page.click("form button[type=submit]")
        await page.wait_for_selector(".projects")
        # The refused password's 422 is the one error the console may show (Chromium logs failed requests).
        assert [e for e in errors if "422" not in e] == []
    finally:
        await context.close()
