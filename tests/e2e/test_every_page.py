"""Every page of the web client, in a real browser (Debian's chromium through Playwright), at a phone's width and a
desk's, as staff, a customer and a viewer of the seeded workspace (tests/workspace.py) and signed out.

On every page: a full-page screenshot into tests/artifacts/, no sideways scrolling, no serious or critical axe-core
violation; and a customer or viewer never sees an internal item (its title, text or marker, in the text or in any
attribute or field), a link to one, or a staff-only control (``data-staff-only`` in the screens, and the internal
treatments). Staff see internal items and staff-only controls on the same pages, so the checks cannot pass by
looking at nothing.

The pages come from one table, ``SCREENS``: a new route is one line, and ``test_the_table_covers_every_route`` fails
when web/src/app/App.tsx routes a path the table does not visit.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.conftest import REDIS
from tests.e2e.test_portal import serious_violations
from tests.nodes import Node, cluster
from tests.workspace import INVITE_TOKEN, PASSWORD, Workspace

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
APP = ROOT / "web" / "src" / "app" / "App.tsx"
WIDTHS = ((390, 844), (1280, 800))

# Who walks: staff is the organization's owner (an admin, so the management controls are on their pages too).
STAFF, CUSTOMER, VIEWER, PUBLIC = "owner", "customer", "viewer", "public"
SIGNED_IN = (STAFF, CUSTOMER, VIEWER)
OUTSIDERS = (CUSTOMER, VIEWER)  # the customer side: may never see an internal thing

# Text every internal item of the seeded workspace carries (titles, bodies, file names, webhook descriptions), in
# this case ("Secret" is also an ordinary word on the webhooks page).
INTERNAL_MARKERS = ("SECRET", "internal milestone")
# How the screens draw an internal thing or a staff-only control: none of it may reach the customer side.
STAFF_ONLY = (
    "[data-staff-only], .tag-internal, .card-internal, .comment-internal, .composer-internal, .task-internal,"
    " .is-internal, .audience-internal, #open-internal, #post-internal, .quick-add, .quick-add-open, #task-delete,"
    " #task-visibility, .triage, #file-visibility, #preview-customer, .note-internal, .webhook-internal"
)


@dataclass(frozen=True)
class Screen:
    """One page to visit: the App.tsx route it exercises, its address (``{key}`` are ids of the workspace) and
    what shows when it is ready, for those who may use it; others get a refusal, checked like any page."""

    name: str
    route: str
    path: str
    ready: str
    who: tuple[str, ...] = SIGNED_IN
    then: str | None = None  # a control to press once ready (the list view is a layout of the board)
    refused: str | None = None  # what the others see instead
    staff_controls: bool = False  # staff get at least one staff-only control here
    staff_internal: bool = False  # staff see an internal item here (so the marker check is not vacuous)


SCREENS: tuple[Screen, ...] = (
    Screen("login", "(signed out)", "/", "#email", who=(PUBLIC,)),
    Screen("invite", "/invite", f"/invite#{INVITE_TOKEN}", "main.centered form", who=(PUBLIC,)),
    Screen("reset", "/reset-password", "/reset-password", "main.centered form", who=(PUBLIC,)),
    Screen("sign-in-link", "/sign-in-link", "/sign-in-link#not-a-link", "main.centered .error", who=(PUBLIC,)),
    Screen("home", "/", "/", ".projects", staff_controls=True),
    Screen("home-requests", "/requests", "/requests", ".projects", staff_controls=True),
    Screen("not-found", "default", "/no-such-page", "#not-found"),
    Screen("board", "/projects/:project", "/projects/{px}", ".board", staff_controls=True, staff_internal=True),
    Screen(
        "list",
        "/projects/:project",
        "/projects/{px}",
        ".task-list",
        then="[data-view=list]",
        staff_controls=True,
        staff_internal=True,
    ),
    Screen(
        "task",
        "/projects/:project/tasks/:task",
        "/projects/{px}/tasks/{px_shared_task}",
        ".thread",
        staff_controls=True,
        staff_internal=True,
    ),
    Screen(
        "internal-task",
        "/projects/:project/tasks/:task",
        "/projects/{px}/tasks/{px_internal_task}",
        ".thread",
        who=(STAFF,),
        refused="#not-found",  # the same page as for an address that does not exist
        staff_controls=True,
        staff_internal=True,
    ),
    Screen(
        "notes",
        "/projects/:project/notes",
        "/projects/{px}/notes",
        "#notes-list",
        staff_controls=True,
        staff_internal=True,
    ),
    Screen("note", "/projects/:project/notes/:note", "/projects/{px}/notes/{px_shared_note}", "#note-text"),
    Screen(
        "internal-note",
        "/projects/:project/notes/:note",
        "/projects/{px}/notes/{px_internal_note}",
        "#note-text",
        who=(STAFF,),
        refused="#not-found",  # the same page as for an address that does not exist
        staff_controls=True,
        staff_internal=True,
    ),
    Screen("requests", "/projects/:project/requests", "/projects/{px}/requests", "main.page h1"),
    Screen(
        "request",
        "/projects/:project/requests/:request",
        "/projects/{px}/requests/{px_request}",
        "main.page h1",
        staff_controls=True,
    ),
    Screen(
        "files",
        "/projects/:project/files",
        "/projects/{px}/files",
        "main.page h1",
        staff_controls=True,
        staff_internal=True,
    ),
    Screen(
        "reports",
        "/projects/:project/reports",
        "/projects/{px}/reports",
        ".kpi-tiles .kpi",
        staff_controls=True,
    ),
    Screen("portfolio", "/reports", "/reports", "main h1", who=(STAFF,)),
    Screen(
        "milestones",
        "/projects/:project/milestones",
        "/projects/{px}/milestones",
        ".milestone-row",
        staff_controls=True,
        staff_internal=True,
    ),
    Screen(
        "activity",
        "/projects/:project/activity",
        "/projects/{px}/activity",
        ".activity-list",
        staff_controls=True,
        staff_internal=True,
    ),
    Screen("settings", "/projects/:project/settings", "/projects/{px}/settings", "main.page h1", staff_controls=True),
    Screen(
        "integrations",
        "/projects/:project/integrations",
        "/projects/{px}/integrations",
        "#webhooks",
        who=(STAFF, CUSTOMER),  # a viewer reads no webhooks
        staff_controls=True,
        staff_internal=True,
    ),
    Screen("people", "/projects/:project/people", "/projects/{px}/people", ".members", staff_controls=True),
    Screen("tokens", "/settings/tokens", "/settings/tokens", "#token-name"),
    Screen("audit", "/audit", "/audit", "main.page h1", who=(STAFF,)),
    Screen("organization", "/organization", "/organization", ".staff-person", who=(STAFF,), staff_controls=True),
)


def app_routes() -> set[str]:
    """The paths App.tsx routes: its <Route path=…> lines, the public pages it checks by path, and the default."""
    source = APP.read_text()
    routes = set(re.findall(r'<Route\s+path="([^"]+)"', source))
    routes |= set(re.findall(r'path === "([^"]+)"', source))
    if "<Route default" in source:
        routes.add("default")
    return routes


def test_the_table_covers_every_route() -> None:
    routes = app_routes()
    assert {"default", "/projects/:project", "/invite"} <= routes, "App.tsx no longer reads as expected"
    assert routes - {s.route for s in SCREENS} == set(), "a route of App.tsx is missing from SCREENS"
    assert {s.route for s in SCREENS} - routes - {"(signed out)"} == set(), "SCREENS names a route App.tsx lacks"


@pytest.fixture
def node(database: tuple[str, Workspace], tmp_path: Path) -> Iterator[Node]:
    with cluster(tmp_path, database[0], REDIS, count=1) as nodes:
        yield nodes[0]


# Settled: the page has its <main>, nothing in it is still loading, and every view function has drawn something.
SETTLED = """() => {
  const main = document.querySelector('main');
  if (!main || document.querySelector('[aria-busy="true"]')) return false;
  return [...document.querySelectorAll('.view')].every((v) => v.childElementCount > 0);
}"""

# Everything a person could read or a script could lift: the markup with its attributes, and the live values of
# fields (a value set by script is not an attribute).
EXPOSED = """() => [document.title, document.documentElement.outerHTML,
  ...[...document.querySelectorAll('input, textarea, select')].map((e) => e.value)].join('\\n')"""


async def sign_in(page: Page, node: Node, email: str) -> None:
    await page.goto(node.http + "/")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector(".projects")


async def open_screen(page: Page, node: Node, screen: Screen, role: str, ws: Workspace) -> None:
    await page.goto(node.http + screen.path.format(**ws.ids))
    if role in screen.who:
        if screen.then:
            await page.click(screen.then, timeout=10000)
        await page.wait_for_selector(screen.ready, timeout=10000)
    elif screen.refused:
        await page.wait_for_selector(screen.refused, timeout=10000)
    await page.wait_for_function(SETTLED, timeout=10000)


async def test_every_page_at_both_widths(browser: Browser, node: Node, database: tuple[str, Workspace]) -> None:
    ws = database[1]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    internal_links = [
        re.compile(rf"/tasks/{ws.ids['px_internal_task']}(?!\d)"),
        re.compile(rf"/notes/{ws.ids['px_internal_note']}(?!\d)"),
        re.compile(rf"/files/{ws.ids['px_internal_file']}(?!\d)"),
    ]
    # A file name of 200 characters (the API's longest) on the files pages: it must wrap, never widen the page.
    long_name = httpx.post(
        f"{node.http}/api/projects/{ws.ids['px']}/files",
        params={"name": "L" * 120 + " " + "n" * 75 + ".txt"},
        content=b"a long name",
        headers={"authorization": f"Bearer {ws.token('customer')}"},
        timeout=10,
    )
    assert long_name.status_code == 201, long_name.text
    problems: dict[str, list[str]] = {}
    staff_controls: dict[str, int] = {}
    staff_internal: dict[str, bool] = {}
    started = time.monotonic()

    async def walk(role: str) -> None:
        # One context per role, reused at both widths: everything is visited anew at each width.
        context = await browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True, locale="en-GB")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        if role != PUBLIC:
            await sign_in(page, node, ws.emails[role])
        # A customer also walks every staff-only page: what they get there must hold nothing internal either.
        screens = [s for s in SCREENS if role in s.who or (role != PUBLIC and PUBLIC not in s.who)]
        for width, height in WIDTHS:
            await page.set_viewport_size({"width": width, "height": height})
            for screen in screens:
                where = f"{role} {screen.name} {width}px"
                found: list[str] = []
                try:
                    await open_screen(page, node, screen, role, ws)
                except Exception as error:  # a page that never got ready is a finding, and the walk goes on
                    problems[where] = [f"not ready: {str(error).splitlines()[0]}"]
                    continue
                if role != VIEWER:  # the viewer sees what the customer sees, minus writing: leaks are checked
                    await page.screenshot(
                        path=str(ARTIFACTS / f"page-{screen.name}-{role}-{width}x{height}.png"), full_page=True
                    )
                    if not await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"):
                        found.append("scrolls sideways")
                    found += await serious_violations(page)
                exposed = str(await page.evaluate(EXPOSED))
                controls = await page.locator(STAFF_ONLY).count()
                if role in OUTSIDERS:
                    found += [f"internal marker {m!r}" for m in INTERNAL_MARKERS if m in exposed]
                    found += [f"link to an internal item {p.pattern}" for p in internal_links if p.search(exposed)]
                    if controls:
                        found.append(f"{controls} staff-only control(s)")
                elif role == STAFF:
                    staff_controls[screen.name] = max(staff_controls.get(screen.name, 0), controls)
                    staff_internal[screen.name] = staff_internal.get(screen.name, False) or any(
                        m in exposed for m in INTERNAL_MARKERS
                    )
                if found:
                    problems[where] = found
        if errors:
            problems[f"{role} script errors"] = errors
        await context.close()

    # The roles walk side by side (one browser, a context each): the server and the browser wait on each other.
    await asyncio.gather(*(walk(role) for role in (PUBLIC, *SIGNED_IN)))
    elapsed = time.monotonic() - started
    # Staff get what the customer side must not: the checks above looked at pages where these things are.
    for screen in SCREENS:
        if screen.staff_controls and not staff_controls.get(screen.name):
            problems.setdefault(f"{STAFF} {screen.name}", []).append("no staff-only control for staff")
        if screen.staff_internal and not staff_internal.get(screen.name):
            problems.setdefault(f"{STAFF} {screen.name}", []).append("no internal item shown to staff")
    print(f"walked {len(SCREENS)} screens in {elapsed:.0f}s")
    assert problems == {}, "\n".join(f"{where}: {'; '.join(found)}" for where, found in problems.items())
