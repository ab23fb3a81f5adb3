"""Every page in Swedish, signed out, as a customer and as staff, at a phone's width and a desk's, and the error
states the client shows (a refused move past a WIP limit, a form the server finds invalid, an item that does not
exist, a session that ended): no English may show.

English is told from the catalogs themselves: a word of web/src/locales/en.json that no Swedish message uses
(``ENGLISH``). What people wrote (every text stored in the seeded workspace: titles, names, comments) is theirs and
may be in any language, so its words are left out (``content_words``). The page is read as a person and a screen
reader would: its visible text, the document title, and the names and hints of controls (aria-label, title,
placeholder, alt).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import String, Text, column, create_engine, inspect, select, table

from server.db import sync_url
from tests.e2e.test_every_page import (  # noqa: F401 (node: a fixture)
    ARTIFACTS,
    CUSTOMER,
    PUBLIC,
    SCREENS,
    SETTLED,
    STAFF,
    WIDTHS,
    node,
    open_screen,
)
from tests.nodes import Node
from tests.workspace import PASSWORD, Workspace

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ROOT / "web" / "src" / "locales"
APOSTROPHES = "'\u2019"
WORD = re.compile(rf"[A-Za-zÅÄÖåäöÉé][A-Za-zÅÄÖåäöÉé{APOSTROPHES}]+")
# Words both languages use that the catalogs happen to spell only in English messages (names, borrowed words).
SHARED_WORDS = {"tandem", "csv", "markdown", "webhook", "webhooks", "json", "api", "url", "spf", "dkim", "e-post"}


def _words(text: str) -> set[str]:
    text = re.sub(r"\{\w+\}", " ", text)
    return {w.lower().strip(APOSTROPHES) for w in WORD.findall(text) if len(w) >= 3}


def english_words() -> set[str]:
    """Words the English catalog uses and the Swedish one never does."""
    english = json.loads((LOCALES / "en.json").read_text())
    swedish = json.loads((LOCALES / "sv.json").read_text())
    en = set().union(*(_words(v) for v in english.values()))
    sv = set().union(*(_words(v) for v in swedish.values()))
    return en - sv - SHARED_WORDS


ENGLISH = english_words()


def content_words(url: str) -> set[str]:
    """Every word people stored in the database (it is shown as written, in whatever language)."""
    engine = create_engine(sync_url(url))
    words: set[str] = set()
    try:
        inspector = inspect(engine)
        with engine.connect() as conn:
            for name in inspector.get_table_names():
                texts = [c["name"] for c in inspector.get_columns(name) if isinstance(c["type"], (String, Text))]
                if not texts:
                    continue
                rows = conn.execute(select(*(column(c) for c in texts)).select_from(table(name))).all()
                for row in rows:
                    for value in row:
                        if isinstance(value, str):
                            words |= _words(value)
    finally:
        engine.dispose()
    return words


# What a person reads on the page, and what a screen reader says of its controls; not what is shown as code
# (<code>, <samp>: the audit log's stable action codes and raw details, the same in every language).
READABLE = """() => {
  const parts = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    let el = node.parentElement;
    if (!el || el.closest('code, samp, script, style, noscript')) continue;
    if (el.tagName === 'OPTION') el = el.closest('select') || el;
    if (!el.checkVisibility()) continue;
    const text = node.textContent.trim();
    if (text) parts.push(text);
  }
  for (const el of document.querySelectorAll('[aria-label], [title], [placeholder], img[alt]')) {
    if (el.closest('[hidden], [aria-hidden="true"]')) continue;
    for (const name of ['aria-label', 'title', 'placeholder', 'alt']) {
      const value = el.getAttribute(name);
      if (value) parts.push(value);
    }
  }
  return parts.join('\\n');
}"""


class EnglishFinder:
    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.found: dict[str, list[str]] = {}

    async def check(self, page: Page, where: str) -> None:
        readable = str(await page.evaluate(READABLE))
        hits: list[str] = []
        for line in readable.splitlines():
            english = sorted(w for w in _words(line) if w in ENGLISH and w not in self.allowed)
            if english:
                hits.append(f"{', '.join(english)} in {line.strip()[:120]!r}")
        if hits:
            self.found.setdefault(where, []).extend(hits)

    def report(self) -> str:
        return "\n".join(f"{where}: {' | '.join(hits)}" for where, hits in self.found.items())


async def swedish_context(browser: Browser, width: int, height: int) -> BrowserContext:
    return await browser.new_context(viewport={"width": width, "height": height}, locale="sv-SE")


async def sign_in(page: Page, at: Node, email: str) -> None:
    await page.goto(at.http + "/")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector(".projects")
    await expect(page.locator("html")).to_have_attribute("lang", "sv")


@pytest.fixture
async def swedes(database: tuple[str, Workspace], node: Node) -> AsyncIterator[Workspace]:  # noqa: F811
    ws = database[1]
    for role in (STAFF, CUSTOMER):
        response = httpx.patch(
            f"{node.http}/api/me", json={"locale": "sv"}, headers={"authorization": f"Bearer {ws.token(role)}"}
        )
        assert response.status_code == 200, response.text
    yield ws


async def test_every_page_in_swedish_holds_no_english(
    browser: Browser,
    node: Node,  # noqa: F811
    database: tuple[str, Workspace],
    swedes: Workspace,
) -> None:
    ws = swedes
    finder = EnglishFinder(content_words(database[0]))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    not_ready: dict[str, str] = {}
    for role in (PUBLIC, CUSTOMER, STAFF):
        context = await swedish_context(browser, *WIDTHS[1])
        page = await context.new_page()
        if role != PUBLIC:
            await sign_in(page, node, ws.emails[role])
        screens = [s for s in SCREENS if role in s.who or (role != PUBLIC and PUBLIC not in s.who)]
        for width, height in WIDTHS:
            await page.set_viewport_size({"width": width, "height": height})
            for screen in screens:
                where = f"{role} {screen.name} {width}px"
                try:
                    await open_screen(page, node, screen, role, ws)
                except Exception as error:  # a page that never got ready is reported, and the walk goes on
                    not_ready[where] = str(error).splitlines()[0]
                    continue
                await finder.check(page, where)
            # Bad ids: the in-app "not found" page, in Swedish, for each kind of item (signed out: the sign-in page).
            bad_ids = ("/projects/999999", "/projects/{px}/tasks/999999", "/projects/{px}/notes/999999")
            for bad in () if role == PUBLIC else bad_ids:
                await page.goto(node.http + bad.format(**ws.ids))
                await page.wait_for_selector("#not-found", timeout=10000)
                await finder.check(page, f"{role} {bad} {width}px")
        if role != PUBLIC:
            # The header's panels: the inbox and the account menu.
            await page.goto(node.http + "/")
            await page.wait_for_selector(".projects")
            await page.click("#bell")
            await page.wait_for_selector("#inbox")
            await finder.check(page, f"{role} inbox")
        await context.close()
    assert not_ready == {}, not_ready
    assert finder.found == {}, "English in the Swedish UI:\n" + finder.report()


async def test_the_errors_the_client_shows_are_swedish(
    browser: Browser,
    node: Node,  # noqa: F811
    database: tuple[str, Workspace],
    swedes: Workspace,
) -> None:
    ws = swedes
    finder = EnglishFinder(content_words(database[0]))
    owner = {"authorization": f"Bearer {ws.token(STAFF)}"}
    # "In progress" holds at most one task and is full.
    limited = httpx.patch(
        f"{node.http}/api/projects/{ws.ids['px']}/statuses/{ws.ids['px_active']}", json={"wip_limit": 1}, headers=owner
    )
    assert limited.status_code == 200, limited.text
    filled = httpx.patch(
        f"{node.http}/api/tasks/{ws.ids['px_internal_task']}", json={"status_id": ws.ids["px_active"]}, headers=owner
    )
    assert filled.status_code == 200, filled.text
    for width, height in WIDTHS:
        context = await swedish_context(browser, width, height)
        page = await context.new_page()
        await sign_in(page, node, ws.emails[STAFF])

        # A move past the WIP limit, by keyboard: refused with a toast.
        await page.goto(f"{node.http}/projects/{ws.ids['px']}")
        card = f"[data-task-id='{ws.ids['px_shared_task']}']"
        await page.focus(f"{card} select.move")
        await page.select_option(f"{card} select.move", str(ws.ids["px_active"]))
        await page.focus(f"{card} .move-confirm")
        await page.keyboard.press("Enter")
        toast = page.locator(".toast-error")
        await expect(toast).to_contain_text("är full", timeout=5000)
        await finder.check(page, f"wip refusal {width}px")

        # A form the server finds invalid: a webhook to an address that is no URL.
        await page.goto(f"{node.http}/projects/{ws.ids['px']}/integrations")
        await page.fill("#hook-url", "ftp://nowhere")
        await page.click("#hook-create-submit")
        await page.wait_for_selector("#webhook-create .field-error, #webhook-create .error", timeout=5000)
        await finder.check(page, f"invalid webhook {width}px")

        # The session ends elsewhere (signed out on another device).
        await page.goto(f"{node.http}/projects/{ws.ids['px']}")
        await page.wait_for_selector(".board")
        csrf = next(c["value"] for c in await context.cookies() if c["name"] == "tandem_csrf")
        ended = await context.request.post(
            f"{node.http}/api/auth/logout", headers={"origin": node.http, "x-csrf-token": csrf}
        )
        assert ended.status in (200, 204), await ended.text()
        # The live connection hears of it and the page says so (or an action in flight is refused): either way
        # the person reads why, in Swedish.
        await page.wait_for_selector(".toast-error, #email", timeout=10000)
        await page.wait_for_function(SETTLED, timeout=10000)
        await finder.check(page, f"ended session {width}px")
        await page.screenshot(path=str(ARTIFACTS / f"language-ended-session-{width}x{height}.png"), full_page=True)
        await context.close()
    assert finder.found == {}, "English in the Swedish UI:\n" + finder.report()


def test_the_english_word_list_is_not_empty_and_holds_no_swedish() -> None:
    assert {"the", "and", "project", "task"} <= ENGLISH
    assert "och" not in ENGLISH and "tandem" not in ENGLISH
