"""The portal in a real browser (Debian's chromium driven by Playwright): staff and a customer, on two nodes that
share Redis, working on the same project at once.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.nodes import Node
from tests.workspace import PASSWORD, Workspace

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture
async def staff_http(two_nodes: list[Node], database: tuple[str, Workspace]) -> AsyncIterator[httpx.AsyncClient]:
    """Staff's REST client on the first node; staff act while others watch."""
    headers = {"authorization": f"Bearer {database[1].token('staff')}"}
    async with httpx.AsyncClient(base_url=two_nodes[0].http, headers=headers, timeout=10) as client:
        yield client


class Person:
    """One browser context, signed in, collecting console errors."""

    def __init__(self, context: BrowserContext, page: Page, node: Node) -> None:
        self.context, self.page, self.node = context, page, node
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    @classmethod
    async def sign_in(
        cls, browser: Browser, node: Node, email: str, *, width: int, height: int, locale: str = "en-GB"
    ) -> Person:
        context = await browser.new_context(viewport={"width": width, "height": height}, locale=locale)
        person = cls(context, await context.new_page(), node)
        await person.page.goto(node.http + "/")
        await person.page.fill("#email", email)
        await person.page.fill("#password", PASSWORD)
        await person.page.click("form button[type=submit]")
        await person.page.wait_for_selector(".projects")
        return person

    async def open_board(self, project_name: str) -> None:
        await self.page.click(f".projects a:has-text('{project_name}')")
        await self.page.wait_for_selector(".board")
        await expect(self.page.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=5000)

    async def no_horizontal_overflow(self) -> bool:
        return bool(await self.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


async def choose_language(page: Page, code: str) -> None:
    """Pick the app's language in the header and wait until the account has stored it (PATCH /api/me), so a page
    load that follows reads the new choice (the header stores every choice, the one already shown too)."""
    async with page.expect_response(lambda r: r.url.endswith("/api/me") and r.request.method == "PATCH"):
        await page.select_option("#language", code)


def column(page: Page, status_name: str) -> str:
    return f".column[aria-label='{status_name}']"


async def shoot(person: Person, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    size = person.page.viewport_size
    assert size is not None
    await person.page.screenshot(path=str(ARTIFACTS / f"{name}-{size['width']}x{size['height']}.png"), full_page=True)
    assert await person.no_horizontal_overflow(), f"{name} scrolls sideways at {size['width']}px"


async def test_staff_and_customer_work_live_across_nodes(
    browser: Browser, two_nodes: list[Node], database: tuple[str, Workspace]
) -> None:
    a, b = two_nodes
    ws = database[1]
    staff = await Person.sign_in(browser, a, "staff@example.test", width=1280, height=800)
    customer = await Person.sign_in(browser, b, "customer@example.test", width=390, height=844)
    await shoot(staff, "home")
    await shoot(customer, "home")
    for person in (staff, customer):
        await person.open_board("PX")
    await shoot(staff, "board")
    await shoot(customer, "board")

    # Staff moves a shared card; the customer's board shows it within a second, without a reload.
    card = f"[data-task-id='{ws.ids['px_shared_task']}']"
    await expect(customer.page.locator(f"{column(customer.page, 'To do')} {card}")).to_be_visible()
    started = time.monotonic()
    await staff.page.select_option(f"{card} select.move", label="In progress")
    await staff.page.click(f"{card} .move-confirm")  # choose, then confirm
    await expect(customer.page.locator(f"{column(customer.page, 'In progress')} {card}")).to_be_visible(timeout=1000)
    assert time.monotonic() - started < 1.5
    # The internal task is on the staff board and nowhere on the customer's.
    assert await staff.page.locator(f"[data-task-id='{ws.ids['px_internal_task']}']").count() == 1
    assert await customer.page.locator(f"[data-task-id='{ws.ids['px_internal_task']}']").count() == 0

    # Both open the task: the customer comments, staff sees it; staff's internal note never reaches the customer.
    for person in (staff, customer):
        await person.page.click(f"{card} .card-title a")
        await person.page.wait_for_selector(".composer")
    await shoot(staff, "task")
    await shoot(customer, "task")
    await customer.page.fill("#comment-body", "Looks **great** to us")
    await customer.page.click("#post-shared")
    await expect(staff.page.locator(".comment", has_text="Looks great to us")).to_be_visible(timeout=2000)
    # An internal note has its own composer and its own button; the customer's page has neither.
    assert await customer.page.locator("#open-internal, #post-internal").count() == 0
    await staff.page.click("#open-internal")
    await expect(staff.page.locator("#comment-body-internal")).to_be_focused()
    await expect(staff.page.locator(".composer-internal")).to_be_visible()
    await staff.page.fill("#comment-body-internal", "Margin is thin here TOPSECRET")
    await staff.page.click("#post-internal")
    await expect(staff.page.locator(".comment-internal", has_text="TOPSECRET")).to_be_visible()
    await staff.page.fill("#comment-body", "Thanks, we go ahead")
    await staff.page.click("#post-shared")
    await expect(customer.page.locator(".comment", has_text="Thanks, we go ahead")).to_be_visible(timeout=2000)
    assert "TOPSECRET" not in await customer.page.content()
    # The customer attaches a file to the task; staff find it there.
    await customer.page.set_input_files(
        "#attach-file", files=[{"name": "brief.txt", "mimeType": "text/plain", "buffer": b"the brief, version one"}]
    )
    await expect(customer.page.locator(".attachments a", has_text="brief.txt")).to_be_visible(timeout=5000)
    await staff.page.reload()
    await expect(staff.page.locator(".attachments a", has_text="brief.txt")).to_be_visible(timeout=5000)

    # The customer's network drops; staff keeps working; on return the missed events appear without a reload.
    await customer.page.click("text=Back to the board")
    await customer.page.wait_for_selector(".board")
    await staff.page.click("text=Back to the board")
    await staff.page.wait_for_selector(".board")
    await customer.context.set_offline(True)
    await expect(customer.page.locator("#hub-connection")).not_to_have_attribute(
        "data-connection", "live", timeout=15000
    )
    waiting = f"[data-task-id='{ws.ids['px_customer_task']}']"
    await staff.page.select_option(f"{waiting} select.move", label="Done")
    await staff.page.click(f"{waiting} .move-confirm")  # choose, then confirm
    await customer.context.set_offline(False)
    await expect(customer.page.locator(f"{column(customer.page, 'Done')} {waiting}")).to_be_visible(timeout=15000)
    await expect(customer.page.locator("#hub-connection")).to_have_attribute("data-connection", "live")

    for person in (staff, customer):
        unexpected = [e for e in person.errors if "ERR_INTERNET_DISCONNECTED" not in e and "WebSocket" not in e]
        assert unexpected == []
        await person.context.close()


async def test_the_customer_portal_reads_in_swedish(
    browser: Browser, two_nodes: list[Node], database: tuple[str, Workspace]
) -> None:
    a, _ = two_nodes
    ws = database[1]
    english = json.loads((ROOT / "web" / "src" / "locales" / "en.json").read_text())
    swedish = json.loads((ROOT / "web" / "src" / "locales" / "sv.json").read_text())
    untranslated = {v for k, v in english.items() if swedish.get(k) != v and len(v) > 3}
    # The customer chose English once; their browser is Swedish. They switch to Swedish in the header.
    customer = await Person.sign_in(browser, a, "customer@example.test", width=390, height=844, locale="sv-SE")
    await choose_language(customer.page, "sv")
    await customer.page.wait_for_selector("h2:has-text('Väntar på dig')")
    pages = []
    pages.append(await customer.page.inner_text("body"))
    await customer.open_board("PX")
    pages.append(await customer.page.inner_text("body"))
    await customer.page.click(f"[data-task-id='{ws.ids['px_shared_task']}'] .card-title a")
    await customer.page.wait_for_selector(".composer")
    pages.append(await customer.page.inner_text("body"))
    assert await customer.page.get_attribute("html", "lang") == "sv"
    # Workflow status names are the organization's own words (content), not interface strings.
    statuses = httpx.get(
        f"{a.http}/api/projects/{ws.ids['px']}/statuses",
        headers={"authorization": f"Bearer {ws.token('customer')}"},
        timeout=10,
    ).json()["items"]
    content = {status["name"] for status in statuses}
    # So are people's names (the seeded customer is called "Customer", which is also an English role label).
    members = httpx.get(
        f"{a.http}/api/projects/{ws.ids['px']}/members",
        headers={"authorization": f"Bearer {ws.token('customer')}"},
        timeout=10,
    ).json()["items"]
    content |= {member["name"] for member in members}
    for text in pages:
        lines = {line.strip() for line in text.splitlines() if line.strip()} - content
        assert not lines & untranslated, f"English strings on a Swedish page: {lines & untranslated}"
        assert not re.search(r"\b[a-z]+\.[a-z][A-Za-z]+\b", text), "a raw message key is showing"
    assert "Väntar på dig" in pages[0] and "Diskussion" in pages[2]
    assert customer.errors == []
    await customer.context.close()


async def test_staff_and_customer_co_edit_a_note(
    browser: Browser, two_nodes: list[Node], database: tuple[str, Workspace]
) -> None:
    a, b = two_nodes
    ws = database[1]
    created = httpx.post(
        f"{a.http}/api/projects/{ws.ids['px']}/notes",
        timeout=10,
        headers={"authorization": f"Bearer {ws.token('staff')}"},
        json={"title": "Review call", "visibility": "shared"},
    )
    assert created.status_code == 201, created.text
    note = created.json()["id"]
    staff = await Person.sign_in(browser, a, "staff@example.test", width=1280, height=800)
    customer = await Person.sign_in(browser, b, "customer@example.test", width=390, height=844)
    for person in (staff, customer):
        await person.page.goto(f"{person.node.http}/projects/{ws.ids['px']}/notes/{note}")
        await person.page.wait_for_selector("#note-text")
        await expect(person.page.locator(".note-page .connection")).to_have_attribute(
            "data-connection", "live", timeout=10000
        )
        await expect(person.page.locator("#hub-connection")).to_have_attribute("data-connection", "live")
        await person.page.click("#note-text")
    # Both type at once, each into the same note, on different nodes.
    await asyncio.gather(
        staff.page.keyboard.type("Agreed: launch on Friday. ", delay=15),
        customer.page.keyboard.type("We will send the photos. ", delay=15),
    )

    async def text_of(person: Person) -> str:
        # The editor's text without the remote-cursor widgets (they show the other person's name).
        script = """() => { const c = document.querySelector('#note-text').cloneNode(true);
            c.querySelectorAll('.collaboration-carets__caret, .ProseMirror-separator, .ProseMirror-trailingBreak')
              .forEach(e => e.remove());
            return c.innerText.replace(/\u00a0/g, ' ').trim(); }"""
        return str(await person.page.evaluate(script))

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        staff_text, customer_text = await text_of(staff), await text_of(customer)
        if staff_text == customer_text and "Friday" in staff_text and "photos" in staff_text:
            break
        await asyncio.sleep(0.1)
    assert staff_text == customer_text, (staff_text, customer_text)
    assert "Agreed: launch on Friday." in staff_text and "We will send the photos." in staff_text
    # Each sees the other's cursor with their name.
    await expect(staff.page.locator(".collaboration-carets__label", has_text="Customer")).to_have_count(1, timeout=5000)
    # ... and in the list of who is here, under the name the server bound to their socket, once each.
    await expect(staff.page.locator(".avatars li[title='Customer']")).to_have_count(1, timeout=5000)
    await expect(customer.page.locator(".avatars li[title='Staff']")).to_have_count(1, timeout=5000)
    await shoot(staff, "note")
    await shoot(customer, "note")
    exported = httpx.get(
        f"{b.http}/api/notes/{note}/export", timeout=10, headers={"authorization": f"Bearer {ws.token('customer')}"}
    )
    assert exported.status_code == 200 and "We will send the photos." in exported.text
    for person in (staff, customer):
        assert [e for e in person.errors if "WebSocket" not in e] == []
        await person.context.close()


async def test_the_last_seen_board_stays_readable_offline(
    browser: Browser, two_nodes: list[Node], database: tuple[str, Workspace]
) -> None:
    a, _ = two_nodes
    ws = database[1]
    customer = await Person.sign_in(browser, a, "customer@example.test", width=390, height=844)
    await customer.open_board("PX")
    await customer.page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=10000)
    await customer.page.reload()  # now under the service worker: what the page loads is kept
    card = f"[data-task-id='{ws.ids['px_shared_task']}']"
    await customer.page.wait_for_selector(card)
    await customer.context.set_offline(True)
    await customer.page.reload()
    await customer.page.wait_for_selector(card, timeout=10000)
    assert await customer.page.locator(".column").count() == 4
    await expect(customer.page.locator("#hub-connection")).not_to_have_attribute("data-connection", "live")
    await customer.context.set_offline(False)
    await expect(customer.page.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=15000)
    await customer.context.close()


AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"


async def serious_violations(page: Page) -> list[str]:
    """The page's serious and critical WCAG 2 A/AA violations (axe-core), each with its first three elements."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    # resultTypes: only violations are gathered in full, sparing axe the list of every passing element.
    result = await page.evaluate("axe.run(document, {runOnly: ['wcag2a', 'wcag2aa'], resultTypes: ['violations']})")
    return [
        f"{v['id']}: {v['help']} ({', '.join(n['target'][0] for n in v['nodes'][:3])})"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def test_pages_meet_wcag_aa(browser: Browser, two_nodes: list[Node], database: tuple[str, Workspace]) -> None:
    a, _ = two_nodes
    ws = database[1]
    assert AXE.exists(), "axe-core is a dev dependency of web/ (npm ci installs it)"
    context = await browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    page = await context.new_page()
    await page.goto(a.http + "/")
    await page.wait_for_selector("#email")
    problems = {"sign-in": await serious_violations(page)}
    await page.fill("#email", "staff@example.test")
    await page.fill("#password", PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector(".projects")
    problems["home"] = await serious_violations(page)
    await page.goto(f"{a.http}/projects/{ws.ids['px']}")
    await page.wait_for_selector(".board")
    problems["board"] = await serious_violations(page)
    await page.goto(f"{a.http}/projects/{ws.ids['px']}/tasks/{ws.ids['px_shared_task']}")
    await page.wait_for_selector(".composer")
    problems["task"] = await serious_violations(page)
    await context.close()
    assert {name: found for name, found in problems.items() if found} == {}
