"""The browser's sockets and cookies, in real Chromium: the live (``/ws``) and note (``/yjs``) sockets are admitted
by the session cookie, with no credential in their URLs; the cookies are ``__Host-`` prefixed behind https and
plain on a plain-http development server, and in both the client's writes find their CSRF cookie; signing out
deletes them.

Chromium treats ``http://127.0.0.1`` as potentially trustworthy and keeps Secure (and ``__Host-``) cookies there,
so one loopback node configured with an https base URL shows the https names (a LAN address over plain http would
not keep them: hence the names follow the base URL, server/accounts/auth.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.e2e.test_sessions_ui import PHONE, sign_in_elsewhere
from tests.nodes import SECRET, Node, free_port
from tests.workspace import PASSWORD, Workspace


@pytest.fixture(params=["plain-http", "https-base-url"])
def node(request: pytest.FixtureRequest, database: tuple[str, Workspace], tmp_path: Path) -> Iterator[Node]:
    port = free_port()
    served = f"http://127.0.0.1:{port}"
    env = {
        "TANDEM_DATABASE_URL": database[0],
        "TANDEM_SECRET_KEY": SECRET,
        "TANDEM_DATA_DIR": str(tmp_path),
        "TANDEM_AUTO_MIGRATE": "false",
        "TANDEM_REDIS_PREFIX": f"test:{uuid.uuid4().hex}:",
        # Behind a TLS proxy the base URL is https; the browser reaches this node directly, from its served origin.
        "TANDEM_BASE_URL": f"https://127.0.0.1:{port}" if request.param == "https-base-url" else served,
        "TANDEM_ALLOWED_ORIGINS": served,
    }
    node = Node(env=env, port=port, log_path=tmp_path / "node.log").start()
    try:
        yield node
    finally:
        node.kill()


async def test_sockets_carry_no_credential_in_their_urls_and_cookies_are_named_by_scheme(
    browser: Browser, node: Node, database: tuple[str, Workspace]
) -> None:
    ws = database[1]
    https = node.env["TANDEM_BASE_URL"].startswith("https://")
    async with httpx.AsyncClient(base_url=node.http, timeout=10) as http:
        await sign_in_elsewhere(http, PHONE)  # a second session, which the browser will end (a CSRF-checked write)

    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    page = await context.new_page()
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(node.http + "/")
    await page.fill("#email", "staff@example.test")
    await page.fill("#password", PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector(".projects")

    cookies = {c["name"]: c for c in await context.cookies()}
    session_name, csrf_name = (
        ("__Host-tandem_session", "__Host-tandem_csrf") if https else ("tandem_session", "tandem_csrf")
    )
    device_name = "__Host-tandem_device" if https else "tandem_device"  # server/accounts/notices.py
    assert set(cookies) == {session_name, csrf_name, device_name}
    assert cookies[device_name]["httpOnly"] and cookies[device_name]["secure"] is https
    session = cookies[session_name]
    assert session["httpOnly"] and session["path"] == "/" and session["secure"] is https
    assert cookies[csrf_name]["secure"] is https and not cookies[csrf_name]["httpOnly"]

    # The live socket and a note's socket come up on the cookie alone.
    px, note = ws.ids["px"], ws.ids["px_shared_note"]
    await page.goto(f"{node.http}/projects/{px}/notes/{note}")
    await expect(page.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=10_000)
    await expect(page.locator(".note-page .connection")).to_have_attribute("data-connection", "live", timeout=10_000)
    assert any(url.endswith("/ws") for url in sockets) and any(f"/yjs/{note}" in url for url in sockets)
    for url in sockets:
        assert "?" not in url and session["value"] not in url, url  # no token, no ticket, no cookie value

    # A write through the client's API module sends the CSRF token from the cookie of this scheme's name.
    await page.goto(f"{node.http}/settings/tokens")
    await page.get_by_role("button", name="Sign out of Safari on iOS").click()
    await expect(page.locator(".sessions-status")).to_have_text("Signed out of Safari on iOS.")

    # Signing out deletes both session cookies, prefixed or not (a __Host- cookie only goes with a Secure Set-Cookie).
    async with page.expect_response(lambda r: r.url.endswith("/api/auth/logout")) as logout:
        await page.get_by_role("button", name="Sign out", exact=True).click()
    assert (await logout.value).status == 204
    await page.wait_for_selector("#email")
    # The device cookie stays: it is how a sign-in from a new browser is told apart (server/accounts/notices.py).
    assert [c["name"] for c in await context.cookies()] == [device_name]
    assert errors == []
    await context.close()
