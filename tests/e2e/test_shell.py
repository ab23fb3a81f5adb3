"""The shell in a real browser, at a phone's and a desk's width, in English and Swedish: the in-app "not found"
page for every route with a bad id, every page whose own load fails saying so with Try again (an invitation's
preview too, which says "invalid" only when the server says so), refusals in the reader's language (never the API's
English), every navigation starting at the top, and no page wider than a 360 px screen with long titles and file
names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, expect

from server.accounts.passwords import password_weakness
from tests.e2e.test_portal import Person, choose_language, shoot
from tests.nodes import Node
from tests.workspace import INVITE_TOKEN, Workspace

ROOT = Path(__file__).resolve().parents[2]
CATALOGS = {name: json.loads((ROOT / "web" / "src" / "locales" / f"{name}.json").read_text()) for name in ("en", "sv")}
WIDTHS = [pytest.param(360, 740, id="phone-360"), pytest.param(1280, 800, id="desktop")]
LANGUAGES = [pytest.param("en", id="en"), pytest.param("sv", id="sv")]
MISSING = 999_999


def english_only() -> set[str]:
    """Catalog sentences that read differently in Swedish: none of them may show on a Swedish screen."""
    en, sv = CATALOGS["en"], CATALOGS["sv"]
    return {v for k, v in en.items() if sv.get(k) != v and len(v) > 3 and "{" not in v}


def no_english(text: str, api_messages: set[str], content: frozenset[str] = frozenset()) -> list[str]:
    """English on a Swedish screen: a catalog sentence in English, or an English message the API sent. `content`
    is what people wrote (names), shown as written in every language."""
    lines = {line.strip() for line in text.splitlines() if line.strip()} - content
    found = sorted(lines & english_only())
    found += [m for m in api_messages if m and m in text]
    return found


async def sign_in(browser: Browser, node: Node, email: str, width: int, height: int, language: str) -> Person:
    person = await Person.sign_in(
        browser, node, email, width=width, height=height, locale="sv-SE" if language == "sv" else "en-GB"
    )
    if await person.page.locator("html").get_attribute("lang") != language:
        await choose_language(person.page, language)
    await expect(person.page.locator("html")).to_have_attribute("lang", language)
    return person


async def shows_not_found(page: Page, language: str) -> None:
    await expect(page.locator("#not-found h1")).to_have_text(CATALOGS[language]["error.notFoundTitle"], timeout=10_000)
    await expect(page.locator("#not-found")).to_contain_text(CATALOGS[language]["error.notFoundText"])
    await expect(page.locator("header.topbar")).to_be_visible()  # inside the app shell, with its header


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("width", "height"), WIDTHS)
async def test_every_route_with_a_bad_id_shows_the_in_app_not_found_page(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    width: int,
    height: int,
    language: str,
) -> None:
    node = two_nodes[0]
    ws = database[1]
    customer = await sign_in(browser, node, "customer@example.test", width, height, language)
    px = ws.ids["px"]
    members = httpx.get(
        f"{node.http}/api/projects/{px}/members",
        headers={"authorization": f"Bearer {ws.token('customer')}"},
        timeout=10,
    ).json()["items"]
    names = frozenset(member["name"] for member in members)  # the seeded customer is called "Customer"
    # Ids that do not exist, and ids that exist but that this customer may not see: the same page for both.
    paths = [
        "/no/such/page",
        f"/projects/{MISSING}",
        f"/projects/{ws.ids['py']}",
        f"/projects/{px}/tasks/{MISSING}",
        f"/projects/{px}/tasks/{ws.ids['px_internal_task']}",
        f"/projects/{px}/notes/{ws.ids['px_internal_note']}",
        f"/projects/{MISSING}/notes",
        f"/projects/{px}/requests/{MISSING}",
        f"/projects/{MISSING}/requests",
        f"/projects/{MISSING}/files",
        f"/projects/{MISSING}/reports",
        f"/projects/{MISSING}/people",
        f"/projects/{MISSING}/milestones",
        f"/projects/{MISSING}/settings",
        f"/projects/{px}/nonsense",
    ]
    page = customer.page
    for path in paths:
        # A fresh load (the server answers 404 with the shell) and a client-side move to the same address.
        await page.goto(node.http + path)
        await shows_not_found(page, language)
        await page.goto(node.http + "/")
        await page.wait_for_selector(".projects")
        await page.evaluate(
            "p => { history.pushState(null, '', p); dispatchEvent(new PopStateEvent('popstate')); }", path
        )
        await shows_not_found(page, language)
        assert await customer.no_horizontal_overflow(), path
        if language == "sv":
            assert no_english(await page.inner_text("body"), set(), names) == [], path
    # The page's link leads home.
    await page.click("#not-found a")
    await page.wait_for_selector(".projects")
    assert [e for e in customer.errors if "404" not in e and "403" not in e] == []
    await customer.context.close()


@pytest.mark.parametrize(
    ("width", "height", "language", "email"),
    [
        pytest.param(390, 844, "sv", "customer@example.test", id="customer-phone-sv"),
        pytest.param(1280, 800, "en", "owner@example.test", id="staff-desktop-en"),
    ],
)
async def test_a_page_whose_load_fails_says_so_and_loads_on_try_again(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    width: int,
    height: int,
    language: str,
    email: str,
) -> None:
    ws = database[1]
    px, task, request = ws.ids["px"], ws.ids["px_shared_task"], ws.ids["px_request"]
    words = CATALOGS[language]
    staff = not email.startswith("customer")
    # Each page, the one request of its own load that answers 500 (once), and what shows once it has loaded.
    title = "px request: the logo"
    pages = [
        (f"/projects/{px}/tasks/{task}", rf"/api/tasks/{task}$", "main.task-page h1", "px shared task"),
        (f"/projects/{px}", rf"/api/projects/{px}/statuses$", ".board-head h1", "PX"),
        (f"/projects/{px}/files", rf"/api/projects/{px}/files$", "main.files-page h1", words["files.title"]),
        (f"/projects/{px}/requests", rf"/api/projects/{px}/requests\?", ".request-list", title),
        (f"/projects/{px}/requests/{request}", rf"/api/requests/{request}$", "main.request-page h1", title),
        (f"/projects/{px}/reports", rf"/api/projects/{px}/reports/kpis\?", ".kpi-tiles", ""),
        (f"/projects/{px}/milestones", rf"/api/projects/{px}/milestones$", "main.milestones-page h1", "PX"),
        (f"/projects/{px}/settings", rf"/api/projects/{px}/settings$", "main.page h1", "PX"),
        (f"/projects/{px}/people", rf"/api/projects/{px}/members$", "main.people-page h1", "PX"),
        (f"/projects/{px}/notes", rf"/api/projects/{px}/notes$", "main.notes-page h1", "PX"),
        (f"/projects/{px}/activity", rf"/api/projects/{px}/activity\?", "main.activity-page h1", "PX"),
        (f"/projects/{px}/integrations", rf"/api/projects/{px}/webhooks$", "main.integrations-page h1", "PX"),
        ("/settings/tokens", r"/api/me/tokens$", "main h1", words["tokens.title"]),
    ]
    if staff:
        pages += [
            ("/reports", r"/api/reports/portfolio$", "main.portfolio h1", words["reports.portfolio"]),
            ("/organization", r"/api/clients(\?|$)", "main.organization-page h1", words["org.title"]),
            ("/audit", r"/api/audit\?", "table.audit tbody", "auth."),
        ]
    person = await sign_in(browser, two_nodes[0], email, width, height, language)
    page = person.page
    said = words["common.loadFailed"].replace("{reason}", words["error.server"])
    refused: list[str] = []

    async def refuse(route: Route) -> None:
        refused.append(route.request.url)
        await route.fulfill(status=500, json={"error": "internal", "message": "Internal error"})

    for done, (path, request_path, loaded, text) in enumerate(pages, start=1):
        # On the context, so the service worker's fetches are refused too; once, so Try again gets the answer.
        await person.context.route(re.compile(request_path), refuse, times=1)
        await page.goto(person.node.http + path)
        failed = page.locator("#page-load-failed")
        await expect(failed).to_have_attribute("role", "alert", timeout=10_000)
        await expect(failed).to_contain_text(said)
        if language == "sv":
            assert no_english(await page.inner_text("body"), {"Internal error"}) == [], path
        if path.endswith(f"/tasks/{task}"):
            await shoot(person, f"task-load-failed-{language}")
        # Try again, by keyboard: the page loads and the failure goes.
        await failed.get_by_role("button", name=words["common.tryAgain"]).focus()
        await page.keyboard.press("Enter")
        await expect(page.locator(loaded)).to_contain_text(text, timeout=10_000)
        await expect(failed).to_have_count(0)
        assert len(refused) == done, path
    # Chromium logs each refused request as a console error; nothing else may appear.
    assert [e for e in person.errors if "WebSocket" not in e and "500" not in e] == []
    await person.context.close()


@pytest.mark.parametrize(
    ("width", "height", "language"),
    [pytest.param(390, 844, "sv", id="phone-sv"), pytest.param(1280, 800, "en", id="desktop-en")],
)
async def test_the_account_panels_whose_load_fails_say_so_and_load_on_try_again(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    width: int,
    height: int,
    language: str,
) -> None:
    """The account page's panels load on their own: each one's failure is said in the panel, with Try again."""
    words = CATALOGS[language]
    person = await sign_in(browser, two_nodes[0], "customer@example.test", width, height, language)
    page = person.page
    said = words["common.loadFailed"].replace("{reason}", words["error.server"])

    async def refuse(route: Route) -> None:
        await route.fulfill(status=500, json={"error": "internal", "message": "Internal error"})

    panels = [
        (r"/api/me/second-factor$", "#second-factor-load-failed", ".second-factor h3"),
        (r"/api/me/sessions$", "#sessions-load-failed", "table.sessions-list"),
        (r"/api/me/notification-preferences$", "#prefs-load-failed", "#prefs-mentions"),
    ]
    for request_path, _, _ in panels:
        await person.context.route(re.compile(request_path), refuse, times=1)
    await page.goto(person.node.http + "/settings/tokens")
    for _, failed_id, loaded in panels:
        failed = page.locator(failed_id)
        await expect(failed).to_have_attribute("role", "alert", timeout=10_000)
        await expect(failed).to_contain_text(said)
        await expect(page.locator(loaded)).to_have_count(0)
    await shoot(person, f"account-panels-load-failed-{language}")
    for _, failed_id, loaded in panels:
        await page.locator(failed_id).get_by_role("button", name=words["common.tryAgain"]).focus()
        await page.keyboard.press("Enter")
        await expect(page.locator(loaded).first).to_be_visible(timeout=10_000)
        await expect(page.locator(failed_id)).to_have_count(0)
    assert [e for e in person.errors if "WebSocket" not in e and "500" not in e] == []
    await person.context.close()


@pytest.mark.parametrize(
    ("width", "height", "language"),
    [pytest.param(390, 844, "sv", id="phone-sv"), pytest.param(1280, 800, "en", id="desktop-en")],
)
async def test_an_invitation_whose_preview_fails_says_why_and_opens_on_try_again(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    width: int,
    height: int,
    language: str,
) -> None:
    """Only the server's answer that the link opens no invitation says "invalid"; a 500 or no connection says so,
    with Try again, and Try again opens the invitation."""
    node = two_nodes[0]
    words = CATALOGS[language]
    # Signed out: a fresh context with no session, in the reader's language.
    context = await browser.new_context(
        viewport={"width": width, "height": height}, locale="sv-SE" if language == "sv" else "en-GB"
    )
    person = Person(context, await context.new_page(), node)
    page = person.page
    refused: list[str] = []

    async def answer_500(route: Route) -> None:
        refused.append(route.request.url)
        await route.fulfill(status=500, json={"error": "internal", "message": "Internal error"})

    async def no_connection(route: Route) -> None:
        refused.append(route.request.url)
        await route.abort("connectionrefused")

    for done, (refuse, reason) in enumerate([(answer_500, "error.server"), (no_connection, "error.network")], start=1):
        # On the context, so a service worker's fetch is refused too; once, so Try again gets the answer.
        await context.route(re.compile(r"/api/invites/preview$"), refuse, times=1)
        await page.goto("about:blank")  # a load, not a move within the page already at this address
        await page.goto(f"{node.http}/invite#{INVITE_TOKEN}")
        failed = page.locator("#invite-load-failed")
        await expect(failed).to_have_attribute("role", "alert", timeout=10_000)
        await expect(failed).to_contain_text(words["invite.loadFailed"].replace("{reason}", words[reason]))
        await expect(page.locator("main")).not_to_contain_text(words["invite.invalid"])
        await expect(page.locator("html")).to_have_attribute("lang", language)
        if language == "sv":
            assert no_english(await page.inner_text("body"), {"Internal error"}) == [], reason
        if done == 1:
            await shoot(person, f"invite-load-failed-{language}")
        # Try again, by keyboard: the invitation opens and the failure goes.
        await failed.get_by_role("button", name=words["common.tryAgain"]).focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("main.centered form h1")).to_have_text(
            words["invite.title"].replace("{project}", "PX"), timeout=10_000
        )
        await expect(failed).to_have_count(0)
        assert len(refused) == done, reason
    # The server's own answer that the link opens nothing still says so, without Try again.
    await page.goto("about:blank")
    await page.goto(f"{node.http}/invite#{'no-such-invitation-' * 2}")
    await expect(page.locator("main.centered [role=alert]")).to_have_text(words["invite.invalid"], timeout=10_000)
    await expect(page.locator("#invite-load-failed")).to_have_count(0)
    # Chromium logs each refused request as a console error; nothing else may appear.
    assert [e for e in person.errors if not re.search(r"500|404|ERR_CONNECTION_REFUSED|Failed to fetch", e)] == []
    await context.close()


@pytest.mark.parametrize(("width", "height"), WIDTHS)
async def test_refusals_read_in_swedish_never_in_the_apis_english(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    width: int,
    height: int,
) -> None:
    node = two_nodes[0]
    ws = database[1]
    staff_headers = {"authorization": f"Bearer {ws.token('owner')}"}
    context = await browser.new_context(viewport={"width": width, "height": height}, locale="sv-SE")
    page = await context.new_page()
    api_messages: set[str] = set()

    async def check(what: str) -> None:
        text = await page.inner_text("body")
        assert await page.locator("html").get_attribute("lang") == "sv", what
        assert no_english(text, api_messages) == [], f"{what}: English on a Swedish screen"
        assert not re.search(r"\b(error|reason|password)\.[a-z][A-Za-z_.]+\b", text), f"{what}: a raw message key"

    # An invitation: each password rule the API enforces, refused in Swedish.
    email = "nya.kunden@bageriet.se"
    async with httpx.AsyncClient(base_url=node.http, timeout=10) as client:
        made = await client.post(
            "/api/invites", json={"project_id": ws.ids["px"], "email": email, "role": "customer"}, headers=staff_headers
        )
        assert made.status_code in (200, 201), made.text
        link = made.json()["link"]
    await page.goto(link.replace(re.match(r"http://[^/]+", link).group(0), node.http))  # type: ignore[union-attr]
    await page.wait_for_selector("#password")
    await page.fill("#name", "Nya Kunden")
    expectations = {
        "kort": CATALOGS["sv"]["error.password.too_short"].replace("{min}", "12"),
        "tandem tandem tandem": CATALOGS["sv"]["error.password.contains_product_name"],
        "nya.kunden skriver här": CATALOGS["sv"]["error.password.contains_email"],
        "aaaaaaaaaaaaaaaa": CATALOGS["sv"]["error.password.repetitive"],
        "password1234": CATALOGS["sv"]["error.password.breached"],
    }
    for password, sentence in expectations.items():
        weakness = password_weakness(password, email=email)
        assert weakness is not None, password
        api_messages.add(weakness.message)  # what the API says in English: never on this screen
        await page.fill("#password", password)
        await page.evaluate("document.querySelector('#password').removeAttribute('minlength')")
        await page.click("form button[type=submit]")
        await expect(page.locator("#password-error")).to_have_text(sentence, timeout=10_000)  # beside the field
        await check(f"invite, password {password!r}")

    # A used-up or made-up reset link, and a made-up invitation.
    await page.goto(node.http + "/reset-password#" + "y" * 43)
    await page.fill("#password", "a long enough good passphrase")
    await page.click("form button[type=submit]")
    await expect(page.locator("main")).to_contain_text(CATALOGS["sv"]["reset.invalid"], timeout=10_000)
    await check("reset link")
    await page.goto(node.http + "/invite#" + "z" * 43)
    await page.wait_for_selector(".error")
    await check("invitation link")

    # Signed in: a wrong password first, then refusals on the signed-in screens.
    await page.goto(node.http + "/")
    await page.fill("#email", "staff@example.test")
    await page.fill("#password", "not the password at all")
    await page.click("form button[type=submit]")
    await expect(page.locator(".error")).not_to_be_empty(timeout=10_000)
    await check("sign-in refused")
    await context.close()


WIDER_THAN_SCREEN = """() => [...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > innerWidth + 1
      || (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === 'visible' && e.clientWidth > 0))
    .slice(-5)
    .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + [...e.classList].join('.')
      + ' ' + Math.round(e.getBoundingClientRect().right))"""


LONG_TITLE = "Översättning" + "av" * 94  # 200 characters, one unbroken word: the worst case for wrapping
LONG_NAME = "x" * 196 + ".pdf"
DESCRIPTION = "\n\n".join(f"Paragraph {n} of a long description." for n in range(40))  # a task page taller than a phone


async def long_names_everywhere(client: httpx.AsyncClient, ws: Workspace) -> dict[str, int]:
    """The longest names the API takes, on every kind of thing a page lists: the customer's own name (header,
    people, activity), a request, a note, a milestone, a request field, a status and a webhook."""
    px = ws.ids["px"]
    owner = {"authorization": f"Bearer {ws.token('owner')}"}
    customer = {"authorization": f"Bearer {ws.token('customer')}"}
    made: dict[str, int] = {}
    for key, path, body, headers in [
        ("request", f"/api/projects/{px}/requests", {"title": LONG_TITLE, "description": LONG_TITLE}, customer),
        ("note", f"/api/projects/{px}/notes", {"title": LONG_TITLE, "visibility": "shared"}, owner),
        ("milestone", f"/api/projects/{px}/milestones", {"name": LONG_TITLE, "visibility": "shared"}, owner),
        (
            "field",
            f"/api/projects/{px}/request-fields",
            {"key": "long_label", "label": LONG_TITLE[:120], "kind": "text"},
            owner,
        ),
        (
            "status",
            f"/api/projects/{px}/statuses",
            {"name": LONG_TITLE[:80], "category": "active", "colour": "#336699"},
            owner,
        ),
        (
            "webhook",
            f"/api/projects/{px}/webhooks",
            {
                "url": "https://hooks.example.test/" + "h" * 180,
                "events": ["comment.created"],
                "description": LONG_TITLE,
            },
            owner,
        ),
    ]:
        answer = await client.post(path, json=body, headers=headers)
        assert answer.status_code == 201, (key, answer.text)
        made[key] = answer.json()["id"]
    renamed = await client.patch("/api/me", json={"name": LONG_TITLE}, headers=customer)
    assert renamed.status_code == 200, renamed.text
    return made


async def pages_fit(person: Person, paths: list[str]) -> None:
    """Each page opens in the app (not the not-found page) and is no wider than the screen."""
    page = person.page
    for path in paths:
        await page.goto(person.node.http + path)
        await page.wait_for_selector("#content main", timeout=10_000)
        await page.wait_for_load_state("networkidle")
        assert await page.locator("#not-found").count() == 0, path
        assert await person.no_horizontal_overflow(), (path, await page.evaluate(WIDER_THAN_SCREEN))


@pytest.mark.parametrize("language", LANGUAGES)
async def test_on_a_360_px_phone_pages_start_at_the_top_and_long_names_never_widen_them(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    language: str,
) -> None:
    node = two_nodes[0]
    ws = database[1]
    px = ws.ids["px"]
    owner = {"authorization": f"Bearer {ws.token('owner')}"}
    assert len(LONG_TITLE) == 200 and len(LONG_NAME) == 200
    async with httpx.AsyncClient(base_url=node.http, timeout=10) as client:
        for n in range(12):  # enough cards that the board scrolls on a phone
            made = await client.post(
                f"/api/projects/{px}/tasks",
                json={"title": f"{LONG_TITLE[:-3]}{n:03d}", "visibility": "shared", "description": DESCRIPTION},
                headers=owner,
            )
            assert made.status_code == 201, made.text
        uploaded = await client.post(
            f"/api/projects/{px}/files",
            params={"name": LONG_NAME, "visibility": "shared"},
            content=b"%PDF-1.4 long name",
            headers={**owner, "content-type": "application/octet-stream"},
        )
        assert uploaded.status_code == 201, uploaded.text
        ids = await long_names_everywhere(client, ws)
    customer = await sign_in(browser, node, "customer@example.test", 360, 740, language)
    page = customer.page

    # The skip link is the first stop of the keyboard and moves focus to the page's content.
    await page.keyboard.press("Tab")
    await expect(page.locator(".skip-link")).to_be_focused()
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.querySelector('#content').contains(document.activeElement)")

    pages = [
        f"/projects/{px}",
        f"/projects/{px}/files",
        f"/projects/{px}/requests",
        f"/projects/{px}/requests/{ids['request']}",
        f"/projects/{px}/notes",
        f"/projects/{px}/notes/{ids['note']}",
        f"/projects/{px}/reports",
        f"/projects/{px}/people",
        f"/projects/{px}/milestones",
        f"/projects/{px}/activity",
        "/",
    ]
    await pages_fit(customer, pages)
    # The pages only staff open, with the long names staff gave: at 360 px too.
    owner_person = await sign_in(browser, node, "owner@example.test", 360, 740, language)
    await pages_fit(
        owner_person,
        [f"/projects/{px}/integrations", f"/projects/{px}/settings", f"/projects/{px}/people"],
    )
    await owner_person.context.close()
    # The list view of the board, too.
    await page.goto(node.http + f"/projects/{px}")
    await page.wait_for_selector(".board")
    await page.click("[data-view=list]")
    await page.wait_for_selector(".task-list")
    assert await customer.no_horizontal_overflow(), "the list view is wider than a 360 px screen"
    await page.click("[data-view=columns]")

    # Scrolled far down the board, a task opens at its top (its title visible), and so does the way back.
    last = page.locator(".board .card", has_text=f"{LONG_TITLE[:-3]}011").locator(".card-title a")
    await last.scroll_into_view_if_needed()
    assert await page.evaluate("scrollY") > 300, "the board should scroll on a phone"
    await last.click()
    await page.wait_for_selector(".task-page h1")
    await expect(page.locator(".task-page", has_text="Paragraph 39 of a long description.")).to_be_visible()
    # Tall enough that the board's offset would still be there had the page kept it.
    assert await page.evaluate("document.documentElement.scrollHeight > innerHeight + 300")
    await page.wait_for_function("scrollY === 0", timeout=5000)
    assert await page.locator(".task-page h1").is_visible()
    assert await customer.no_horizontal_overflow(), "the task page is wider than a 360 px screen"
    await page.evaluate("scrollTo(0, document.body.scrollHeight)")
    await page.click(f"a[href='/projects/{px}']")
    await page.wait_for_selector(".board")
    await page.wait_for_function("scrollY === 0", timeout=5000)
    assert [e for e in customer.errors if "WebSocket" not in e] == []
    await customer.context.close()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("width", "height"), WIDTHS)
async def test_a_card_moves_by_keyboard_choose_a_column_then_confirm(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    width: int,
    height: int,
    language: str,
) -> None:
    ws = database[1]
    staff = await sign_in(browser, two_nodes[0], "staff@example.test", width, height, language)
    await staff.open_board("PX")
    page = staff.page
    task_id = ws.ids["px_shared_task"]
    card = page.locator(f".board [data-task-id='{task_id}']")
    select = card.locator("select.move")
    start = await select.input_value()
    await select.focus()
    await page.keyboard.press("ArrowDown")  # choosing a column moves nothing yet
    chosen = await select.input_value()
    assert chosen != start
    target = (await select.locator("option:checked").inner_text()).strip()
    await expect(card.locator(".move-confirm")).to_be_visible()
    assert await page.locator(f".column[aria-label='{target}'] [data-task-id='{task_id}']").count() == 0
    # Escape takes the choice back; choosing again and confirming with Enter moves the card.
    await page.keyboard.press("Escape")
    await expect(select).to_have_value(start)
    await expect(card.locator(".move-confirm")).to_have_count(0)
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Tab")
    await expect(card.locator(".move-confirm")).to_be_focused()
    await page.keyboard.press("Enter")
    moved = page.locator(f".column[aria-label='{target}'] [data-task-id='{task_id}']")
    await expect(moved).to_have_count(1, timeout=5000)
    # Focus stays with the card in its new column, so the next key acts where the person was.
    await expect(moved.locator("select.move")).to_be_focused(timeout=5000)
    await expect(moved.locator("select.move")).to_have_value(chosen)
    await expect(page.locator("[role=status]", has_text=target).first).to_be_attached()
    token = ws.token("staff")
    stored = httpx.get(
        f"{two_nodes[0].http}/api/tasks/{task_id}", headers={"authorization": f"Bearer {token}"}, timeout=10
    ).json()
    assert str(stored["status_id"]) == chosen
    assert [e for e in staff.errors if "WebSocket" not in e] == []
    await staff.context.close()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("width", "height"), WIDTHS)
async def test_a_mention_is_chosen_with_the_arrow_keys_and_enter(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    width: int,
    height: int,
    language: str,
) -> None:
    ws = database[1]
    staff = await sign_in(browser, two_nodes[0], "staff@example.test", width, height, language)
    page = staff.page
    await page.goto(f"{two_nodes[0].http}/projects/{ws.ids['px']}/tasks/{ws.ids['px_shared_task']}")
    field = page.locator("#comment-body")
    await field.focus()
    await page.keyboard.type("Hello @")
    options = page.locator(".composer-shared .suggestions [role=option]")
    await expect(options.first).to_be_visible(timeout=5000)
    assert await options.count() >= 2
    await expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    await page.keyboard.press("ArrowDown")
    await expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    second = (await options.nth(1).inner_text()).strip()
    await expect(field).to_be_focused()  # the text field keeps focus while choosing
    await page.keyboard.press("Enter")  # takes the person; no new line, nothing posted
    await expect(field).to_have_value(f"Hello @{second} ")
    await expect(options).to_have_count(0)
    await page.keyboard.type("again @")
    await expect(options.first).to_be_visible(timeout=5000)
    await page.keyboard.press("Escape")  # closes the list; the text stays
    await expect(options).to_have_count(0)
    await expect(field).to_have_value(f"Hello @{second} again @")
    assert await page.locator(".comment", has_text="Hello @").count() == 0
    assert [e for e in staff.errors if "WebSocket" not in e] == []
    await staff.context.close()
