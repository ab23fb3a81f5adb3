"""Personal API tokens and the audit log in a real browser: a token made on the page works for a script until it
is revoked on the page, and the organization's admin reads both events in the audit log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.e2e.test_portal import Person, serious_violations, shoot
from tests.nodes import Node, cluster
from tests.workspace import PASSWORD, Workspace


@pytest.fixture
def node(database: tuple[str, Workspace], tmp_path: Path) -> Iterator[Node]:
    with cluster(tmp_path, database[0], None, count=1) as nodes:
        yield nodes[0]


async def test_make_use_and_revoke_a_token_then_audit_it(browser: Browser, node: Node) -> None:
    staff = await Person.sign_in(browser, node, "staff@example.test", width=390, height=844)
    page = staff.page
    await page.click("a:has-text('API tokens')")
    await page.fill("#token-name", "board export")
    assert await page.locator("#scope-admin").count() == 0  # staff may not make admin tokens
    await page.check("#scope-write")
    await page.click(".token-form button[type=submit]")
    token = (await page.locator("#new-token").text_content() or "").strip()
    assert token.startswith("tnd_")
    await expect(page.locator("table.tokens tbody tr")).to_have_count(1)
    await expect(page.locator("table.tokens tbody tr")).to_contain_text("read, write")
    await shoot(staff, "tokens")

    async with httpx.AsyncClient(base_url=node.http, timeout=10) as http:
        me = await http.get("/api/me", headers={"authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["user"]["name"] == "Staff"
        await page.click("table.tokens button:has-text('Revoke')")
        dialog = page.locator("dialog.confirm")  # the app's own confirm, not the browser's
        await expect(dialog).to_contain_text("board export")
        await dialog.locator("button.danger").click()
        await expect(page.locator("#tokens-status")).to_contain_text("board export is revoked")
        await expect(page.locator("table.tokens tbody tr")).to_have_count(0)
        assert (await http.get("/api/me", headers={"authorization": f"Bearer {token}"})).status_code == 401
    assert staff.errors == []
    assert await page.locator("a:has-text('Audit log')").count() == 0  # staff are not admins

    owner = await Person.sign_in(browser, node, "owner@example.test", width=1280, height=800)
    await owner.page.click("a:has-text('Audit log')")
    await owner.page.fill("#audit-action", "api_token.")
    await owner.page.click(".audit-filter button[type=submit]")
    rows = owner.page.locator("table.audit tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("api_token.revoked")
    await expect(rows.nth(1)).to_contain_text("api_token.created")
    await expect(rows.nth(1)).to_contain_text("Staff")
    await shoot(owner, "audit")


async def test_token_and_audit_pages_meet_wcag_aa(browser: Browser, node: Node) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    page = await context.new_page()
    await page.goto(node.http + "/")
    await page.fill("#email", "owner@example.test")
    await page.fill("#password", PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector(".projects")
    problems: dict[str, list[str]] = {}
    for path, ready in (("/settings/tokens", ".token-form"), ("/audit", "table.audit")):
        await page.goto(node.http + path)
        await page.wait_for_selector(ready)
        problems[path] = await serious_violations(page)
    await context.close()
    assert {name: found for name, found in problems.items() if found} == {}


async def test_a_failed_revoke_says_why_and_shows_the_list_as_it_is(browser: Browser, node: Node) -> None:
    owner = await Person.sign_in(browser, node, "owner@example.test", width=1280, height=800)
    page = owner.page
    await page.goto(node.http + "/settings/tokens")
    await page.fill("#token-name", "nightly export")
    await page.keyboard.press("Enter")  # the form sends from the keyboard
    await expect(page.locator("table.tokens tbody tr")).to_have_count(1)
    await expect(page.locator("#tokens-status")).to_contain_text("The token nightly export is made")
    # The same token revoked meanwhile in another tab: this page's revoke is refused, visibly, and the row goes.
    other = await owner.context.new_page()
    await other.goto(node.http + "/settings/tokens")
    await other.click("table.tokens button:has-text('Revoke')")
    await other.locator("dialog.confirm button.danger").click()
    await expect(other.locator("table.tokens tbody tr")).to_have_count(0)
    await page.click("table.tokens button:has-text('Revoke')")
    await expect(page.locator("dialog.confirm")).to_be_visible()
    await page.keyboard.press("Escape")  # cancelling asks nothing of the server
    await expect(page.locator("dialog.confirm")).to_have_count(0)
    await expect(page.locator("table.tokens tbody tr")).to_have_count(1)
    await page.click("table.tokens button:has-text('Revoke')")
    await page.locator("dialog.confirm button.danger").click()
    await expect(page.locator("#tokens-error")).to_contain_text("That did not work: It no longer exists")
    await expect(page.locator("table.tokens tbody tr")).to_have_count(0)
    # The audit log's dates are in the reader's language (English here: a day, a month's name, a year).
    await page.goto(node.http + "/audit")
    await expect(page.locator("table.audit tbody tr").first).to_be_visible()
    when = await page.locator("table.audit tbody tr td").first.inner_text()
    assert re.search(r"\d{1,2} [A-Za-z]+ \d{4}", when), when  # e.g. "6 Dec 2026, 18:40"
    assert [e for e in owner.errors if "404" not in e] == []  # the refused revoke is the only failed request
