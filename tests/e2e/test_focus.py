"""Focus stays where the person was when someone else's change redraws their screen (web/src/app/keepFocus.ts):
one person works by keyboard while another, in their own browser, changes what they are looking at.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.test_portal import Person, column
from tests.nodes import Node
from tests.workspace import Workspace

WIDTHS = [pytest.param((1280, 800), id="desk"), pytest.param((390, 844), id="phone")]

FOCUSED_ITEM = """(attr) => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const item = el.closest('[' + attr + ']');
  if (!item) return 'elsewhere';
  return item.getAttribute(attr) + ' ' + el.tagName.toLowerCase() + '.' + [...el.classList].join('.');
}"""


async def scroll_y(page: Page) -> float:
    return float(await page.evaluate("window.scrollY"))


async def bottom(page: Page) -> float:
    """The furthest the page can scroll down now."""
    return float(await page.evaluate("document.documentElement.scrollHeight - innerHeight"))


@pytest.mark.parametrize("size", WIDTHS)
async def test_a_card_moved_by_someone_else_keeps_the_keyboard_focus(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    size: tuple[int, int],
) -> None:
    a, b = two_nodes
    ws = database[1]
    me = await Person.sign_in(browser, a, "staff@example.test", width=size[0], height=size[1])
    other = await Person.sign_in(browser, b, "owner@example.test", width=1280, height=800)
    for person in (me, other):
        await person.open_board("PX")
    task = ws.ids["px_shared_task"]
    card = f"[data-task-id='{task}']"
    # By keyboard: onto the card's link, then Tab to its move control (the page scrolls to it on a phone).
    await me.page.focus(f"{card} a")
    await me.page.keyboard.press("Tab")
    await expect(me.page.locator(f"{card} select.move")).to_be_focused()
    before = await scroll_y(me.page)

    # Someone else moves that very card: it is drawn anew in its new column.
    await other.page.select_option(f"{card} select.move", label="In progress")
    await other.page.click(f"{card} .move-confirm")
    await expect(me.page.locator(f"{column(me.page, 'In progress')} {card}")).to_be_visible(timeout=5000)
    assert await me.page.evaluate(FOCUSED_ITEM, "data-task-id") == f"{task} select.move"
    # The page stays where it was, or as near as the page now allows: the card left a column, so the page may be
    # shorter than it was (the browser then stops at the new bottom), never thrown back to the top.
    assert await scroll_y(me.page) == pytest.approx(min(before, await bottom(me.page)), abs=2)
    await expect(me.page.locator(f"{card} select.move")).to_be_in_viewport()

    # A change to another card (a new task) leaves the focus alone too, and the keyboard goes on from there.
    added = httpx.post(
        f"{b.http}/api/projects/{ws.ids['px']}/tasks",
        json={"title": "Arrived meanwhile", "visibility": "shared"},
        headers={"authorization": f"Bearer {ws.token('owner')}"},
    )
    assert added.status_code == 201, added.text
    await expect(me.page.locator(".board", has_text="Arrived meanwhile")).to_be_visible(timeout=5000)
    assert await me.page.evaluate(FOCUSED_ITEM, "data-task-id") == f"{task} select.move"
    await me.page.keyboard.press("Shift+Tab")
    await expect(me.page.locator(f"{card} a").first).to_be_focused()
    for person in (me, other):
        await person.context.close()


async def test_an_item_leaving_the_waiting_list_hands_focus_to_the_next(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, b = two_nodes
    ws = database[1]
    staff = {"authorization": f"Bearer {ws.token('staff')}"}
    customer_api = {"authorization": f"Bearer {ws.token('customer')}"}
    # Two requests wait on the customer (staff asked for information on both).
    asked: list[int] = []
    for title in ("First question", "Second question"):
        filed = httpx.post(
            f"{a.http}/api/projects/{ws.ids['px']}/requests", json={"title": title}, headers=customer_api
        )
        assert filed.status_code == 201, filed.text
        rid = filed.json()["id"]
        triaged = httpx.post(
            f"{a.http}/api/requests/{rid}/triage", json={"action": "ask", "message": "Which?"}, headers=staff
        )
        assert triaged.status_code == 200, triaged.text
        asked.append(rid)
    me = await Person.sign_in(browser, a, "customer@example.test", width=390, height=844)
    first = f".waiting-item[data-focus-key='request:{asked[0]}']"
    await expect(me.page.locator(first)).to_be_visible()
    await expect(me.page.locator(f".waiting-item[data-focus-key='request:{asked[1]}']")).to_be_visible()
    await me.page.focus(f"{first} .waiting-action")
    await expect(me.page.locator(f"{first} .waiting-action")).to_be_focused()
    before = await scroll_y(me.page)
    position = await me.page.evaluate(
        "(sel) => [...document.querySelectorAll('.waiting-list > li')].indexOf(document.querySelector(sel))", first
    )

    # Staff, elsewhere, decline the first: it leaves the list, and the row now in its place takes the focus.
    declined = httpx.post(
        f"{b.http}/api/requests/{asked[0]}/triage", json={"action": "decline", "reason": "Done already"}, headers=staff
    )
    assert declined.status_code == 200, declined.text
    await expect(me.page.locator(first)).to_have_count(0, timeout=5000)
    focused = me.page.locator(".waiting-list > li:focus-within")
    await expect(focused).to_have_count(1)
    now_at = await me.page.evaluate(
        "() => [...document.querySelectorAll('.waiting-list > li')]"
        ".findIndex((li) => li.contains(document.activeElement))"
    )
    rows = await me.page.locator(".waiting-list > li").count()
    assert now_at == min(position, rows - 1)
    assert await me.page.evaluate("document.activeElement.classList.contains('waiting-action')")
    assert await scroll_y(me.page) == pytest.approx(before, abs=2)
    await me.context.close()


async def test_the_thread_keeps_focus_while_comments_arrive_and_change(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, b = two_nodes
    ws = database[1]
    owner = {"authorization": f"Bearer {ws.token('owner')}"}
    task = ws.ids["px_shared_task"]
    posted = httpx.post(
        f"{a.http}/api/tasks/{task}/comments", json={"body": "First words", "visibility": "shared"}, headers=owner
    )
    assert posted.status_code == 201, posted.text
    comment = posted.json()["id"]
    me = await Person.sign_in(browser, a, "staff@example.test", width=1280, height=800)
    await me.page.goto(f"{a.http}/projects/{ws.ids['px']}/tasks/{task}")
    item = f"#comment-{comment}"
    await expect(me.page.locator(item)).to_be_visible()
    await expect(me.page.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=5000)
    first_button = me.page.locator(f"{item} button").first
    await first_button.focus()
    label = await first_button.inner_text()
    # Someone else edits that comment and writes a new one.
    edited = httpx.patch(f"{b.http}/api/comments/{comment}", json={"body": "First words, edited"}, headers=owner)
    assert edited.status_code == 200, edited.text
    more = httpx.post(
        f"{b.http}/api/tasks/{task}/comments", json={"body": "Second words", "visibility": "shared"}, headers=owner
    )
    assert more.status_code == 201, more.text
    await expect(me.page.locator(".thread", has_text="Second words")).to_be_visible(timeout=5000)
    await expect(me.page.locator(item, has_text="edited")).to_be_visible(timeout=5000)
    assert await me.page.evaluate("(sel) => document.querySelector(sel).contains(document.activeElement)", item)
    assert await me.page.evaluate("document.activeElement.innerText") == label
    await me.context.close()
