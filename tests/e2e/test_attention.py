"""What needs the customer, in a real browser: the bell and the "waiting on you" list follow staff's actions live,
on two devices at once (a phone and a desk, one per node), in Swedish (and the bell in English too)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, expect

from tests.e2e.test_portal import Person, serious_violations, shoot, staff_http
from tests.nodes import Node
from tests.workspace import PASSWORD, Workspace

__all__ = ["staff_http"]

PHONE = (390, 844)
DESK = (1280, 800)
LIVE_SECONDS = 5

# The words the bell test reads, per language of the customer.
WORDS = {
    "sv": {
        "waiting": "Väntar på dig",
        "unread": lambda n: f"Aviseringar, {n} {'oläst' if n == 1 else 'olästa'}",
        "reply": "Svara",
        "mention": "Omnämnande",
        "mentioned": "Staff nämnde dig i px shared task",
        "mark": "Markera som läst",
        "refused": "Det gick inte att markera som läst",
    },
    "en": {
        "waiting": "Waiting on you",
        "unread": lambda n: f"Notifications, {n} unread",
        "reply": "Reply",
        "mention": "Mention",
        "mentioned": "Staff mentioned you on px shared task",
        "mark": "Mark read",
        "refused": "Could not mark as read",
    },
}


async def customer_devices(
    browser: Browser, two_nodes: list[Node], ws: Workspace, first: tuple[int, int], lang: str = "sv"
) -> tuple[Person, Person]:
    """The customer, who reads ``lang``, signed in on two devices: ``first``'s size on node A, the other on node B."""
    async with httpx.AsyncClient(base_url=two_nodes[0].http, timeout=10) as http:
        answer = await http.patch(
            "/api/me", json={"locale": lang}, headers={"authorization": f"Bearer {ws.token('customer')}"}
        )
        assert answer.status_code == 200, answer.text
    second = DESK if first == PHONE else PHONE
    devices = []
    for node, (width, height) in zip(two_nodes, (first, second), strict=True):
        person = await Person.sign_in(
            browser,
            node,
            "customer@example.test",
            width=width,
            height=height,
            locale=f"{lang}-{'SE' if lang == 'sv' else 'GB'}",
        )
        await expect(person.page.locator("#hub-connection")).to_have_attribute("data-connection", "live")
        await expect(person.page.locator("#waiting-title")).to_have_text(WORDS[lang]["waiting"])
        devices.append(person)
    return devices[0], devices[1]


async def unread(page: Page) -> int:
    label = await page.locator("#bell").get_attribute("aria-label") or ""
    match = re.search(r"(\d+) (oläst|unread)", label)
    assert match, label
    return int(match.group(1))


@pytest.mark.parametrize("lang", ["sv", "en"])
@pytest.mark.parametrize("first", [PHONE, DESK], ids=["phone", "desk"])
async def test_a_mention_rings_the_bell_live_and_reading_it_clears_the_other_device(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    staff_http: httpx.AsyncClient,
    first: tuple[int, int],
    lang: str,
) -> None:
    ws = database[1]
    words = WORDS[lang]
    px, task = ws.ids["px"], ws.ids["px_shared_task"]
    phone, desk = await customer_devices(browser, two_nodes, ws, first, lang)
    before = await unread(phone.page)
    assert await unread(desk.page) == before

    posted = await staff_http.post(
        f"/api/tasks/{task}/comments",
        json={"body": "@Customer kan du godkänna?", "visibility": "shared", "mentions": [ws.users["customer"]]},
    )
    assert posted.status_code == 201, posted.text
    comment = posted.json()["id"]
    # Both devices' bells ring without a reload; the count is said in words too (plural form).
    for device in (phone, desk):
        await expect(device.page.locator("#bell")).to_have_attribute(
            "aria-label", words["unread"](before + 1), timeout=LIVE_SECONDS * 1000
        )
        await expect(device.page.locator(".bell-count")).to_have_text(str(before + 1))
        # The mention is on the customer's "waiting on you" list too.
        await expect(device.page.locator(f".waiting-item[data-kind='mention'][data-id='{comment}']")).to_contain_text(
            words["reply"]
        )

    await phone.page.click("#bell")
    row = phone.page.locator("#inbox .notice[data-notification-id]").first
    await expect(row).to_have_attribute("data-kind", "mention")
    await expect(row).to_have_class(re.compile(r"notice-unread"))
    await expect(row.locator(".notice-kind")).to_contain_text(words["mention"])
    link = row.locator("a.notice-text")
    await expect(link).to_have_text(words["mentioned"])  # worded from the reader's catalog
    await expect(link).to_have_attribute("href", f"/projects/{px}/tasks/{task}#comment-{comment}")
    await shoot(phone, f"inbox-{lang}")
    # A refused mark-read is undone, and said: the row stays unread, the count stays, a toast says why.
    await phone.page.route("**/api/notifications/read", lambda route: route.abort())
    await row.locator(f"button:has-text('{words['mark']}')").click()
    await expect(phone.page.locator(".toast-error")).to_contain_text(words["refused"])
    await expect(phone.page.locator(".toast-error")).to_be_visible()
    await expect(row).to_have_class(re.compile(r"notice-unread"))
    assert await unread(phone.page) == before + 1
    await phone.page.unroute("**/api/notifications/read")
    phone.errors = [e for e in phone.errors if "ERR_FAILED" not in e and "Failed to load resource" not in e]
    await link.click()
    # The link opens the thread at the comment; reading it there clears the bell on the other device, live.
    await expect(phone.page).to_have_url(re.compile(rf"/projects/{px}/tasks/{task}#comment-{comment}$"))
    await expect(phone.page.locator(f"#comment-{comment}")).to_be_visible()
    await expect(desk.page.locator("#bell")).to_have_attribute(
        "aria-label", words["unread"](before), timeout=LIVE_SECONDS * 1000
    )
    if before == 0:
        await expect(desk.page.locator(".bell-count")).to_have_count(0)
    assert await unread(phone.page) == before
    # On the desk, the read notification shows as read.
    await desk.page.click("#bell")
    await expect(desk.page.locator("#inbox .notice[data-notification-id]").first).not_to_have_class(
        re.compile(r"notice-unread")
    )
    await shoot(desk, f"inbox-read-{lang}")
    assert phone.errors == [] and desk.errors == []


@pytest.mark.parametrize("first", [PHONE, DESK], ids=["phone", "desk"])
async def test_a_request_needing_information_waits_on_the_customer_until_answered(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    staff_http: httpx.AsyncClient,
    first: tuple[int, int],
) -> None:
    ws = database[1]
    px, request = ws.ids["px"], ws.ids["px_request"]
    answering, watching = await customer_devices(browser, two_nodes, ws, first)
    # Staff read English, at the other size.
    width, height = DESK if first == PHONE else PHONE
    staff = await Person.sign_in(browser, two_nodes[1], "staff@example.test", width=width, height=height)
    await expect(staff.page.locator("#bell")).to_have_attribute(
        "aria-label", re.compile(r"^Notifications, \d+ unread$")
    )
    staff_unread = int(re.findall(r"\d+", await staff.page.locator("#bell").get_attribute("aria-label") or "")[0])
    row = f".waiting-item[data-kind='request'][data-id='{request}']"
    for device in (answering, watching):
        await expect(device.page.locator(".waiting-item").first).to_be_visible()
        assert await device.page.locator(row).count() == 0

    asked = await staff_http.post(
        f"/api/requests/{request}/triage", json={"action": "ask", "message": "Vilken sida gäller det?"}
    )
    assert asked.status_code == 200, asked.text
    for device in (answering, watching):
        item = device.page.locator(row)
        await expect(item).to_be_visible(timeout=LIVE_SECONDS * 1000)
        await expect(item).to_contain_text("Förfrågan")
        await expect(item).to_contain_text("px request: the logo is blurry")
        await expect(item.locator("a.waiting-action")).to_have_text("Komplettera →")
        await expect(item.locator("a.waiting-action")).to_have_attribute("href", f"/projects/{px}/requests/{request}")
    # Most urgent first: the overdue task leads, with its colour, icon and word.
    top = watching.page.locator(".waiting-item").first
    await expect(top).to_have_attribute("data-kind", "task")
    await expect(top.locator(".badge-overdue")).to_contain_text("Försenad")
    await shoot(watching, "waiting-on-you")

    await answering.page.click(f"{row} a.waiting-action")
    await answering.page.fill("#reply-text", "Startsidan.")
    await answering.page.click("form:has(#reply-text) button[type=submit]")
    # The watching device drops the row live; the answering one shows it gone when back home.
    await expect(watching.page.locator(row)).to_have_count(0, timeout=LIVE_SECONDS * 1000)
    await answering.page.click("a.brand")
    await expect(answering.page.locator(".waiting-item").first).to_be_visible()
    assert await answering.page.locator(row).count() == 0
    # Staff hear of the answer at once: the bell rings, and the inbox links to the request.
    await expect(staff.page.locator("#bell")).to_have_attribute(
        "aria-label", f"Notifications, {staff_unread + 1} unread", timeout=LIVE_SECONDS * 1000
    )
    await staff.page.click("#bell")
    notice = staff.page.locator("#inbox .notice[data-notification-id]").first
    await expect(notice.locator(".notice-kind")).to_contain_text("Request")
    await expect(notice.locator("a.notice-text")).to_have_text(re.compile(r"^New reply on "))
    await expect(notice.locator("a.notice-text")).to_have_attribute("href", f"/projects/{px}/requests/{request}")
    await staff.page.click("#inbox button:has-text('Mark all read')")
    await expect(staff.page.locator("#bell")).to_have_attribute("aria-label", "Notifications, 0 unread")
    await expect(staff.page.locator(".bell-count")).to_have_count(0)
    await shoot(staff, "inbox-staff")
    assert answering.errors == [] and watching.errors == [] and staff.errors == []


@pytest.mark.parametrize("size", [PHONE, DESK], ids=["phone", "desk"])
async def test_search_in_the_header_finds_every_kind_the_customer_may_see(
    browser: Browser, two_nodes: list[Node], database: tuple[str, Workspace], size: tuple[int, int]
) -> None:
    ws = database[1]
    px = ws.ids["px"]
    customer, _ = await customer_devices(browser, two_nodes, ws, size)
    page = customer.page
    await page.keyboard.press("Control+k")
    await expect(page.locator("#search")).to_be_focused()
    await page.keyboard.type("px")
    results = page.locator("#search-results")
    await expect(results.locator("li[data-kind='request']")).to_contain_text("Förfrågan")
    for kind in ("task", "comment", "note"):
        await expect(results.locator(f"li[data-kind='{kind}']").first).to_be_visible()
    await expect(results.locator("[role=status]")).to_contain_text("träffar")
    assert "SECRET" not in (await results.inner_text())
    await shoot(customer, "search")
    await page.fill("#search", "SECRET")
    await expect(results.locator("[role=status]")).to_have_text("Inget hittades.")
    # A search that fails says so; it is never "nothing found".
    searching = re.compile(r"/api/search\?")
    await customer.context.route(searching, lambda route: route.abort())
    await page.fill("#search", "logotyp")
    await expect(results.locator("[role=alert]")).to_contain_text("Sökningen misslyckades")
    await expect(results.locator("[role=status]")).to_have_count(0)
    await customer.context.unroute(searching)

    # So does a change of language the server did not take: the list keeps the language still in use.
    async def refuse_patch(route: Route) -> None:
        await (route.abort() if route.request.method == "PATCH" else route.continue_())

    await page.route("**/api/me", refuse_patch)
    await page.select_option("#language", "en")
    await expect(page.locator(".toast-error")).to_contain_text("Språket ändrades inte")
    await expect(page.locator("#language")).to_have_value("sv")
    await expect(page.locator("html")).to_have_attribute("lang", "sv")
    await page.unroute("**/api/me")
    customer.errors = [e for e in customer.errors if "ERR_FAILED" not in e and "Failed to load resource" not in e]
    await page.fill("#search", "logo")
    await results.locator("li[data-kind='request'] a").click()
    await expect(page).to_have_url(re.compile(rf"/projects/{px}/requests/{ws.ids['px_request']}$"))
    await expect(results).to_have_count(0)
    assert customer.errors == []


async def test_the_bell_waiting_list_and_search_meet_wcag_aa(
    browser: Browser, two_nodes: list[Node], database: tuple[str, Workspace], staff_http: httpx.AsyncClient
) -> None:
    ws = database[1]
    mention = {"body": "@Customer titta", "visibility": "shared", "mentions": [ws.users["customer"]]}
    assert (await staff_http.post(f"/api/tasks/{ws.ids['px_shared_task']}/comments", json=mention)).status_code == 201
    context = await browser.new_context(viewport={"width": PHONE[0], "height": PHONE[1]}, bypass_csp=True)
    page = await context.new_page()
    await page.goto(two_nodes[0].http + "/")
    await page.fill("#email", "customer@example.test")
    await page.fill("#password", PASSWORD)
    await page.click("form button[type=submit]")
    await expect(page.locator(".waiting-item[data-kind='mention']")).to_be_visible()
    problems = {"waiting": await serious_violations(page)}
    await page.click("#bell")
    await expect(page.locator("#inbox .notice").first).to_be_visible()
    problems["inbox"] = await serious_violations(page)
    await page.keyboard.press("Escape")
    await expect(page.locator("#inbox")).to_have_count(0)
    await expect(page.locator("#bell")).to_be_focused()
    await page.fill("#search", "px")
    await expect(page.locator("#search-results li").first).to_be_visible()
    problems["search"] = await serious_violations(page)
    await context.close()
    assert {name: found for name, found in problems.items() if found} == {}


async def test_an_inbox_that_cannot_load_says_so_and_loads_on_try_again(
    browser: Browser, two_nodes: list[Node], database: tuple[str, Workspace], staff_http: httpx.AsyncClient
) -> None:
    ws = database[1]
    mention = {"body": "@Customer titta", "visibility": "shared", "mentions": [ws.users["customer"]]}
    assert (await staff_http.post(f"/api/tasks/{ws.ids['px_shared_task']}/comments", json=mention)).status_code == 201
    context = await browser.new_context(viewport={"width": PHONE[0], "height": PHONE[1]}, locale="en-GB")
    # Routed on the context, so the service worker's fetches are refused too.
    listing = re.compile(r"/api/notifications\?")
    await context.route(listing, lambda route: route.abort())
    page = await context.new_page()
    await page.goto(two_nodes[0].http + "/")
    await page.fill("#email", "customer@example.test")
    await page.fill("#password", PASSWORD)
    await page.click("form button[type=submit]")
    await expect(page.locator("#hub-connection")).to_have_attribute("data-connection", "live")
    await page.click("#bell")
    failed = page.locator("#inbox .inbox-failed")
    await expect(failed).to_contain_text("Could not load your notifications")
    await expect(page.locator("#inbox")).not_to_contain_text("No notifications yet")  # never "nothing" for a failure
    await context.unroute(listing)
    await failed.locator("button", has_text="Try again").click()
    await expect(failed).to_have_count(0)
    await expect(page.locator("#inbox .notice[data-kind='mention']").first).to_contain_text("mentioned you")
    await context.close()
