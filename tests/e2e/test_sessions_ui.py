"""Where you're signed in, in a real browser: the person sees their sessions with this one marked, signs out one
by keyboard, and signs out everywhere else behind a confirm; the ended session's socket on another node closes."""

from __future__ import annotations

import asyncio

import httpx
from playwright.async_api import Browser, expect

from channels.client import TandemClient
from tests.e2e.test_portal import Person, choose_language, shoot
from tests.nodes import Node
from tests.workspace import PASSWORD, Workspace

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Version/18.1 Mobile Safari/604.1"
TABLET = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0.0.0 Safari/537.36"


async def sign_in_elsewhere(http: httpx.AsyncClient, user_agent: str) -> str:
    answer = await http.post(
        "/api/auth/login",
        json={"email": "staff@example.test", "password": PASSWORD},
        headers={"user-agent": user_agent},
    )
    assert answer.status_code == 200, answer.text
    http.cookies.clear()
    return str(answer.json()["token"])


async def test_sign_out_one_session_and_everywhere_else(
    browser: Browser, two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    async with httpx.AsyncClient(base_url=a.http, timeout=10) as http:
        phone = await sign_in_elsewhere(http, PHONE)
        tablet = await sign_in_elsewhere(http, TABLET)
    phone_socket = await TandemClient.connect(b.ws, token=phone, ping_interval=None)
    tablet_socket = await TandemClient.connect(b.ws, token=tablet, ping_interval=None)
    clients.extend([phone_socket, tablet_socket])

    staff = await Person.sign_in(browser, a, "staff@example.test", width=390, height=844)
    page = staff.page
    await page.click("a:has-text('API tokens')")
    table = page.locator("table.sessions-list")
    await expect(table).to_contain_text("Safari on iOS")
    await expect(table).to_contain_text("Chrome on Android")
    await expect(page.locator("tr[data-current=true]")).to_have_count(1)
    await expect(page.locator("tr[data-current=true]")).to_contain_text("this device")
    await shoot(staff, "sessions")

    # One session, by keyboard: focus its button and press Enter.
    await page.get_by_role("button", name="Sign out of Safari on iOS").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator(".sessions-status")).to_have_text("Signed out of Safari on iOS.")
    await expect(table).not_to_contain_text("Safari on iOS")
    async with asyncio.timeout(2):
        while phone_socket.close_code is None:
            await asyncio.sleep(0.02)
    assert phone_socket.close_code == 4401 and tablet_socket.close_code is None

    # Everywhere else: cancelling the confirm ends nothing; confirming ends the rest but this one.
    await page.click("button.sessions-others")
    # Escape is for the open dialog (pressed before it opened, it went nowhere and the dialog stayed over the page).
    await expect(page.locator("dialog.confirm")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.locator("dialog.confirm")).to_be_hidden()
    await expect(table).to_contain_text("Chrome on Android")
    await page.click("button.sessions-others")
    await page.click("dialog.confirm button.danger")
    await expect(page.locator("table.sessions-list tbody tr")).to_have_count(1)
    await expect(page.locator("button.sessions-others")).to_have_count(0)
    async with asyncio.timeout(2):
        while tablet_socket.close_code is None:
            await asyncio.sleep(0.02)
    assert tablet_socket.close_code == 4401
    await expect(page.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=5000)
    assert staff.errors == []


async def test_the_list_reads_in_swedish(browser: Browser, two_nodes: list[Node]) -> None:
    staff = await Person.sign_in(browser, two_nodes[0], "staff@example.test", width=1280, height=800, locale="sv-SE")
    await staff.page.click("a:has-text('API tokens')")
    await expect(staff.page.locator("#sessions-title")).to_have_text("Where you're signed in")
    # The language chosen in the header re-renders the list at once.
    await choose_language(staff.page, "sv")
    await expect(staff.page.locator("#sessions-title")).to_have_text("Där du är inloggad")
    await expect(staff.page.locator("tr[data-current=true]")).to_contain_text("den här enheten")
    await expect(staff.page.locator("table.sessions-list th").first).to_have_text("Enhet")
    assert staff.errors == []
