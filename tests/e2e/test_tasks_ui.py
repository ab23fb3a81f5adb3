"""Tasks and comments written from the screen, in a real browser: staff on one node, the customer on the other,
once with staff on a desktop and the customer on a phone, once the other way round.
"""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from playwright.async_api import Browser, Route, expect

from tests.e2e.test_portal import Person, choose_language, column, shoot
from tests.e2e.test_shell import CATALOGS, LANGUAGES, sign_in
from tests.nodes import Node
from tests.workspace import Workspace

DESKTOP = (1280, 800)
PHONE = (390, 844)
SIZES = [
    pytest.param(DESKTOP, PHONE, id="staff-desktop-customer-phone"),
    pytest.param(PHONE, DESKTOP, id="staff-phone-customer-desktop"),
]


async def people(
    launched: Browser,
    nodes: list[Node],
    staff_size: tuple[int, int],
    customer_size: tuple[int, int],
    language: str = "en",
) -> tuple[Person, Person]:
    """Staff on node A and the customer on node B, both reading ``language``."""
    a, b = nodes
    staff = await sign_in(launched, a, "staff@example.test", *staff_size, language)
    customer = await sign_in(launched, b, "customer@example.test", *customer_size, language)
    return staff, customer


def no_unexpected_errors(person: Person) -> list[str]:
    # Chromium logs refused requests (the 409 of a refused move) as console errors; nothing else may appear.
    return [e for e in person.errors if "WebSocket" not in e and "409" not in e]


@pytest.mark.parametrize(("staff_size", "customer_size"), SIZES)
async def test_staff_adds_and_edits_a_task_the_customer_sees_live(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    staff_size: tuple[int, int],
    customer_size: tuple[int, int],
) -> None:
    staff, customer = await people(browser, two_nodes, staff_size, customer_size)
    for person in (staff, customer):
        await person.open_board("PX")
    page = staff.page

    # Quick-add in "To do": Enter saves and keeps the field open for the next one, Escape stops.
    todo = column(page, "To do")
    await page.click(f"{todo} .quick-add-open")
    title_field = page.locator(f"{todo} .quick-add-title")
    await expect(title_field).to_be_focused()
    await page.keyboard.type("Photos for the launch")
    await page.keyboard.press("Enter")
    await expect(page.locator(f"{todo} .card", has_text="Photos for the launch")).to_be_visible(timeout=5000)
    await expect(title_field).to_have_value("")
    await expect(title_field).to_be_focused()
    await page.keyboard.press("Enter")  # an empty title is refused before it reaches the API, beside the field
    await expect(page.locator(f"{todo} .quick-add .error")).to_have_text("A task needs a title.")
    await page.keyboard.type("Second one")
    await page.keyboard.press("Enter")
    await expect(page.locator(f"{todo} .card", has_text="Second one")).to_be_visible(timeout=5000)
    await page.keyboard.press("Escape")
    await expect(page.locator(f"{todo} .quick-add-open")).to_be_focused()
    # New tasks are internal: marked so for staff, absent for the customer.
    card = page.locator(f"{todo} .card", has_text="Photos for the launch")
    await expect(card.locator(".tag-internal")).to_be_visible()
    task_id = await card.get_attribute("data-task-id")
    on_customer = customer.page.locator(f"[data-task-id='{task_id}']")
    assert await on_customer.count() == 0

    # The task page: sharing it is an explicit, confirmed act; then the customer's board shows it live.
    await card.locator(".card-title a").click()
    await page.wait_for_selector("#task-visibility")
    await page.click("#task-visibility")
    dialog = page.locator("dialog.confirm")
    await expect(dialog).to_contain_text("Share this task with the customer?")
    await dialog.locator("button.primary").click()
    await expect(page.locator(".audience-shared")).to_be_visible(timeout=5000)
    await expect(on_customer).to_be_visible(timeout=5000)
    await shoot(staff, "task-edit")  # and nothing scrolls sideways, on a phone either

    # The customer's home page, open in a second tab: "waiting on you" does not hold the task yet.
    home = await customer.context.new_page()
    await home.goto(customer.node.http + "/")
    await expect(home.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=10000)
    waiting = home.locator(f".waiting-item[data-kind='task'][data-id='{task_id}']")
    await expect(home.locator("section.waiting")).to_have_attribute("aria-busy", "false", timeout=5000)
    assert await waiting.count() == 0

    # Assigned to the customer; a due date of yesterday turns the customer's card overdue without a reload.
    await page.select_option("#task-assignee", label="Customer (customer)")
    await expect(page.locator("#task-assignee_id-status")).to_have_text("Saved", timeout=5000)
    await expect(on_customer).to_contain_text("Customer", timeout=5000)
    await expect(on_customer).to_have_attribute("data-colour", "on_track")
    await expect(waiting).to_contain_text("Photos for the launch", timeout=5000)  # live, on the home page too
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    await page.fill("#task-due", yesterday)
    await expect(page.locator("#task-due_date-status")).to_have_text("Saved", timeout=5000)
    await expect(on_customer).to_have_attribute("data-colour", "overdue", timeout=5000)
    await expect(on_customer.locator(".badge-overdue")).to_be_visible()
    await expect(waiting.locator(".badge-overdue")).to_be_visible(timeout=5000)
    # The title, edited in place and saved with Enter, changes on the customer's screen too.
    await page.fill("#task-title", "Photos for the launch, final")
    await page.press("#task-title", "Enter")
    await expect(on_customer).to_contain_text("Photos for the launch, final", timeout=5000)
    for person in (staff, customer):
        assert no_unexpected_errors(person) == []
        await person.context.close()


async def test_an_edit_on_an_older_copy_shows_the_newer_value(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, _ = two_nodes
    ws = database[1]
    staff = await Person.sign_in(browser, a, "staff@example.test", width=DESKTOP[0], height=DESKTOP[1])
    page = staff.page
    await page.goto(f"{a.http}/projects/{ws.ids['px']}/tasks/{ws.ids['px_shared_task']}")
    await page.wait_for_selector("#task-title")
    await expect(page.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=10000)
    await page.fill("#task-title", "My title")
    # Someone else renames it while this person is typing; their edit arrives live.
    renamed = httpx.patch(
        f"{a.http}/api/tasks/{ws.ids['px_shared_task']}",
        json={"title": "Their title"},
        headers={"authorization": f"Bearer {ws.token('owner')}"},
        timeout=10,
    )
    assert renamed.status_code == 200, renamed.text
    await page.press("#task-title", "Enter")
    # Theirs is shown; this person's words are kept in the message, not silently dropped.
    await expect(page.locator("#task-title")).to_have_value("Their title", timeout=5000)
    await expect(page.locator("#task-title-status")).to_contain_text("My title")
    await expect(page.locator("#task-title-status")).to_have_attribute("role", "alert")
    await staff.context.close()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("staff_size", "customer_size"), SIZES)
async def test_internal_or_shared_is_chosen_by_keyboard_and_cannot_flip(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    staff_size: tuple[int, int],
    customer_size: tuple[int, int],
    language: str,
) -> None:
    ws = database[1]
    words = CATALOGS[language]
    staff, customer = await people(browser, two_nodes, staff_size, customer_size, language)
    for person in (staff, customer):
        await person.page.goto(f"{person.node.http}/projects/{ws.ids['px']}/tasks/{ws.ids['px_shared_task']}")
        await person.page.wait_for_selector(".composer")
        await expect(person.page.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=10000)
    page, keyboard = staff.page, staff.page.keyboard
    await page.locator("#comment-body").focus()  # the only step that is not a key: where the cursor starts

    # Typing a reply: the customer sees "Staff is typing".
    await keyboard.type("Margin note KBSECRET", delay=20)
    typing = customer.page.locator(".typing")
    await expect(typing).to_contain_text("Staff", timeout=5000)
    # Enter in the text makes a new line; it never posts.
    await keyboard.press("Enter")
    await keyboard.type("second line", delay=20)
    # Tab reaches the named button of this composer's audience, then the way to move the text to an internal note.
    await keyboard.press("Tab")
    await expect(page.locator("#post-shared")).to_be_focused()
    await expect(page.locator("#post-shared")).to_have_text(words["thread.sendShared"])
    await keyboard.press("Tab")
    await expect(page.locator(":focus")).to_have_text(words["thread.moveToInternal"])
    await keyboard.press("Enter")
    # The text moved to the internal note's own composer; the customer's "typing" is taken back at once,
    # while staff go on typing there (the idle timeout alone would take four seconds after the last key).
    await expect(page.locator("#comment-body-internal")).to_be_focused()
    await expect(page.locator("#comment-body")).to_have_value("")
    await keyboard.type(" more", delay=150)
    await expect(typing).to_have_text("", timeout=1500)
    await keyboard.press("Tab")
    await expect(page.locator("#post-internal")).to_be_focused()
    await expect(page.locator("#post-internal")).to_contain_text(words["thread.sendInternal"])
    await shoot(staff, f"composers-{language}")
    await keyboard.press("Enter")
    await expect(page.locator(".comment-internal", has_text="KBSECRET")).to_be_visible(timeout=5000)

    # A reply to the customer, by keyboard, from its own composer.
    await page.locator("#comment-body").focus()
    await keyboard.type("We ship on Friday", delay=10)
    await keyboard.press("Tab")
    await expect(page.locator("#post-shared")).to_be_focused()
    await keyboard.press("Enter")
    await expect(customer.page.locator(".comment", has_text="We ship on Friday")).to_be_visible(timeout=5000)
    await expect(page.locator(".comment:not(.comment-internal)", has_text="We ship on Friday")).to_be_visible()
    # The reply arrived after the note was posted: had the note reached the customer, it would be here by now.
    assert "KBSECRET" not in await customer.page.content()
    assert await customer.page.locator("#open-internal, #post-internal, .composer-internal").count() == 0
    for person in (staff, customer):
        assert no_unexpected_errors(person) == []
        await person.context.close()


@pytest.mark.parametrize(("staff_size", "customer_size"), SIZES)
async def test_a_move_past_the_wip_limit_is_refused_visibly_and_the_card_stays(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    staff_size: tuple[int, int],
    customer_size: tuple[int, int],
) -> None:
    a, _ = two_nodes
    ws = database[1]
    owner = {"authorization": f"Bearer {ws.token('owner')}"}
    # "In progress" holds at most one task, and holds one (an internal one the customer cannot see).
    limited = httpx.patch(
        f"{a.http}/api/projects/{ws.ids['px']}/statuses/{ws.ids['px_active']}", json={"wip_limit": 1}, headers=owner
    )
    assert limited.status_code == 200, limited.text
    filled = httpx.patch(
        f"{a.http}/api/tasks/{ws.ids['px_internal_task']}", json={"status_id": ws.ids["px_active"]}, headers=owner
    )
    assert filled.status_code == 200, filled.text
    staff, customer = await people(browser, two_nodes, staff_size, customer_size)
    for person in (staff, customer):
        await person.open_board("PX")

    # Staff: the card jumps at once, then goes back with a toast that says why.
    card = f"[data-task-id='{ws.ids['px_shared_task']}']"
    await staff.page.select_option(f"{card} select.move", label="In progress")
    await staff.page.click(f"{card} .move-confirm")  # choose, then confirm
    toast = staff.page.locator(".toast-error")
    await expect(toast).to_contain_text("In progress is full", timeout=5000)
    await expect(toast).to_be_visible()
    await shoot(staff, "move-refused")
    await expect(staff.page.locator(f"{column(staff.page, 'To do')} {card}")).to_be_visible()
    await expect(staff.page.locator(f"{card} select.move")).to_have_value(str(ws.ids["px_todo"]))
    assert await staff.page.locator(f"{column(staff.page, 'In progress')} {card}").count() == 0

    # A customer is refused only by tasks they can see (an internal one filling the column must not show through):
    # a shared task takes the internal one's place.
    for task, status in (("px_internal_task", "px_todo"), ("px_shared_task", "px_active")):
        moved = httpx.patch(f"{a.http}/api/tasks/{ws.ids[task]}", json={"status_id": ws.ids[status]}, headers=owner)
        assert moved.status_code == 200, moved.text
    # The customer, in Swedish, moving the task assigned to them: refused in Swedish; the card stays where it is.
    await choose_language(customer.page, "sv")
    await expect(customer.page.locator("html")).to_have_attribute("lang", "sv")
    mine = f"[data-task-id='{ws.ids['px_customer_task']}']"
    waiting = column(customer.page, "Waiting on customer")
    await expect(customer.page.locator(f"{waiting} {mine}")).to_be_visible()
    await customer.page.select_option(f"{mine} select.move", label="In progress")
    await customer.page.click(f"{mine} .move-confirm")  # choose, then confirm
    swedish = customer.page.locator(".toast-error")
    await expect(swedish).to_contain_text(re.compile(r"In progress är full"), timeout=5000)
    await expect(customer.page.locator(f"{waiting} {mine}")).to_be_visible()
    # Both screens still agree with the server.
    truth = httpx.get(f"{a.http}/api/tasks/{ws.ids['px_customer_task']}", headers=owner).json()
    assert truth["status_id"] == ws.ids["px_blocked"]
    for person in (staff, customer):
        assert no_unexpected_errors(person) == []
        await person.context.close()


async def test_list_quick_add_markdown_and_a_confirmed_delete_on_a_phone(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, _ = two_nodes
    staff = await Person.sign_in(browser, a, "staff@example.test", width=PHONE[0], height=PHONE[1])
    page = staff.page
    await staff.open_board("PX")
    await page.click("[data-view='list']")
    await page.click(".quick-add-open")
    await page.keyboard.type("Made in the list")
    await page.keyboard.press("Enter")
    row = page.locator(".task-list tr", has_text="Made in the list")
    await expect(row).to_be_visible(timeout=5000)
    await row.locator("a").click()

    # The description is Markdown, rendered in two safe layers: markup a person types stays text.
    await page.fill("#task-description", "**Bold** point\n\n<script>window.pwned = 1</script>")
    await page.click("#task-title")  # leaving the field saves it
    await expect(page.locator("#task-description-status")).to_have_text("Saved", timeout=5000)
    await page.click("button:has-text('Preview')")
    preview = page.locator(".task-description")
    await expect(preview.locator("strong")).to_have_text("Bold")
    await expect(preview).to_contain_text("<script>window.pwned = 1</script>")
    assert await preview.locator("script").count() == 0
    assert await page.evaluate("window.pwned === undefined")

    # Delete asks first; Escape keeps the task, the dialog's own button deletes it.
    await page.click("#task-delete")
    dialog = page.locator("dialog.confirm")
    await expect(dialog).to_contain_text("Made in the list")
    await expect(dialog.locator("button", has_text="Cancel")).to_be_focused()
    await shoot(staff, "delete-dialog")
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await page.click("#task-delete")
    await dialog.locator("button.danger").click()
    await expect(page.locator(".toast-info")).to_contain_text("was deleted", timeout=5000)
    await page.wait_for_selector(".board, .task-list")
    await expect(page.locator(".card, .task-list tr", has_text="Made in the list")).to_have_count(0)
    assert no_unexpected_errors(staff) == []
    await staff.context.close()


async def test_comments_are_edited_with_history_quoted_and_reacted_to_live(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    ws = database[1]
    staff, customer = await people(browser, two_nodes, DESKTOP, PHONE)
    for person in (staff, customer):
        await person.page.goto(f"{person.node.http}/projects/{ws.ids['px']}/tasks/{ws.ids['px_shared_task']}")
        await person.page.wait_for_selector(".composer")
        await expect(person.page.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=10000)
    page = staff.page
    own = page.locator(f"#comment-{ws.ids['px_shared_comment']}")
    # Only one's own comments offer Edit; the customer's does not, on the staff screen.
    assert (
        await page.locator(".comment", has_text="px customer comment").locator("button", has_text="Edit").count() == 0
    )
    await own.locator("button", has_text="Edit").click()
    await page.fill(f"#edit-{ws.ids['px_shared_comment']}", "px shared comment, corrected")
    await own.locator("button", has_text="Save").click()
    edited = customer.page.locator(".comment", has_text="px shared comment, corrected")
    await expect(edited).to_be_visible(timeout=5000)
    await edited.locator("button", has_text="edited").click()
    await expect(edited.locator(".revisions")).to_contain_text("px shared comment")

    # Quote-reply to the customer's comment; the customer sees the quote. A reaction shows up live too.
    theirs = page.locator(f"#comment-{ws.ids['px_customer_comment']}")
    await theirs.locator("button", has_text="Reply").click()
    await expect(page.locator("#comment-body")).to_be_focused()
    await expect(page.locator(".composer-shared .reply-note")).to_contain_text("Customer")
    await page.keyboard.type("Yes, agreed")
    await page.click("#post-shared")
    reply = customer.page.locator(".comment", has_text="Yes, agreed")
    await expect(reply.locator(".quote")).to_contain_text("Customer: px customer comment", timeout=5000)
    await theirs.locator("button.reaction", has_text="👍").click()
    await expect(
        customer.page.locator(".comment", has_text="px customer comment").locator("button.reaction", has_text="👍 1")
    ).to_be_visible(timeout=5000)
    # A mention, chosen from the suggestions, is marked in the rendered text on the other screen.
    await page.locator("#comment-body").focus()
    await page.keyboard.type("Thanks @Cus")
    # A slow press (a long tap on a phone) still picks the person: the list stays while the button is down.
    suggestion = page.locator(".composer-shared .suggestions li", has_text="Customer")
    await suggestion.scroll_into_view_if_needed()
    box = await suggestion.bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.down()
    await page.wait_for_timeout(400)  # the press itself lasts this long (the list used to close 200 ms after blur)
    await page.mouse.up()
    await expect(page.locator("#comment-body")).to_have_value("Thanks @Customer ")
    await expect(page.locator("#comment-body")).to_be_focused()
    await page.keyboard.type("for the photos")
    await page.click("#post-shared")
    mentioned = customer.page.locator(".comment", has_text="for the photos")
    await expect(mentioned.locator("mark.mention")).to_contain_text("@Customer", timeout=5000)
    # For the customer it is a mention of them: marked apart (its own colour) and said to screen readers.
    mine = mentioned.locator("mark.mention")
    await expect(mine).to_have_class("mention mention-me")
    await expect(mine).to_have_text("@Customer (mentions you)")
    await expect(mine).to_have_attribute("title", "mentions you")
    # For staff the same words mention someone else: an ordinary mention, in the ordinary colour.
    theirs_mark = page.locator(".comment", has_text="for the photos").locator("mark.mention")
    await expect(theirs_mark).to_have_class("mention")
    await expect(theirs_mark).to_have_text("@Customer")
    background = "e => getComputedStyle(e).backgroundColor"
    assert await mine.evaluate(background) != await theirs_mark.evaluate(background)
    for person in (staff, customer):
        assert no_unexpected_errors(person) == []
        await person.context.close()


@pytest.mark.parametrize(("staff_size", "customer_size"), SIZES)
async def test_status_and_milestone_set_on_the_task_page_and_a_comment_deleted_live(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    staff_size: tuple[int, int],
    customer_size: tuple[int, int],
) -> None:
    ws = database[1]
    task, comment = ws.ids["px_shared_task"], ws.ids["px_shared_comment"]
    staff, customer = await people(browser, two_nodes, staff_size, customer_size)
    for person in (staff, customer):
        await person.page.goto(f"{person.node.http}/projects/{ws.ids['px']}/tasks/{task}")
        await person.page.wait_for_selector(".composer")
        await expect(person.page.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=10000)
    page = staff.page

    def truth() -> dict[str, object]:
        answer = httpx.get(
            f"{staff.node.http}/api/tasks/{task}", headers={"authorization": f"Bearer {ws.token('owner')}"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        found: dict[str, object] = answer.json()
        return found

    # The status, chosen on the task page: saved with a quiet "Saved", and the customer's page follows live.
    facts = customer.page.locator(".task-facts")
    await expect(facts).to_contain_text("To do")
    await page.select_option("#task-status", label="In progress")
    await expect(page.locator("#task-status_id-status")).to_have_text("Saved", timeout=5000)
    await expect(facts).to_contain_text("In progress", timeout=5000)
    assert truth()["status_id"] == ws.ids["px_active"]

    # The milestone: a shared task is offered only shared milestones (the API's rule); taken off, then put back.
    milestone = page.locator("#task-milestone")
    await expect(milestone).to_have_value(str(ws.ids["px_shared_milestone"]))
    assert await milestone.locator("option", has_text="px internal milestone").count() == 0
    await page.select_option("#task-milestone", value="")
    await expect(page.locator("#task-milestone_id-status")).to_have_text("Saved", timeout=5000)
    assert truth()["milestone_id"] is None
    await page.select_option("#task-milestone", label="px shared milestone")
    await expect(page.locator("#task-milestone_id-status")).to_have_text("Saved", timeout=5000)
    assert truth()["milestone_id"] == ws.ids["px_shared_milestone"]

    # Deleting one's own comment asks first (Escape keeps it), then the customer sees it go, live.
    own = page.locator(f"#comment-{comment}")
    theirs = customer.page.locator(f"#comment-{comment}")
    await expect(theirs).to_contain_text("px shared comment")
    await own.locator("button", has_text="Delete").click()
    dialog = page.locator("dialog.confirm")
    await expect(dialog).to_contain_text("Delete this comment?")
    await expect(dialog).to_have_attribute("open", "")  # modal now: Escape reaches it
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await expect(own).to_contain_text("px shared comment")
    await own.locator("button", has_text="Delete").click()
    await dialog.locator("button.danger").click()
    await expect(own).to_contain_text("This comment was deleted.", timeout=5000)
    await expect(theirs).to_contain_text("This comment was deleted.", timeout=5000)
    await expect(theirs).not_to_contain_text("px shared comment")
    await shoot(customer, "comment-deleted")
    for person in (staff, customer):
        assert no_unexpected_errors(person) == []
        await person.context.close()


@pytest.mark.parametrize(
    ("size", "language", "email"),
    [
        pytest.param(PHONE, "sv", "customer@example.test", id="customer-phone-sv"),
        pytest.param(DESKTOP, "en", "staff@example.test", id="staff-desktop-en"),
    ],
)
async def test_a_thread_that_cannot_load_says_so_and_loads_on_try_again(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    size: tuple[int, int],
    language: str,
    email: str,
) -> None:
    ws = database[1]
    task, words = ws.ids["px_shared_task"], CATALOGS[language]
    person = await sign_in(browser, two_nodes[0], email, *size, language)
    server_error = {"status": 500, "json": {"error": "internal", "message": "Internal error"}}
    # Refused once each, on the context so the service worker's fetches are refused too: the thread's comments and
    # its read position. Its people to mention are the task page's copy, asked for once (the page's own failure is
    # tests/e2e/test_shell.py's).
    asked: list[str] = []

    async def counted(route: Route) -> None:
        asked.append(route.request.url)
        await route.fallback()

    refuse = lambda route: route.fulfill(**server_error)  # noqa: E731
    await person.context.route(re.compile(rf"/api/tasks/{task}/comments\?limit=50$"), refuse, times=1)
    await person.context.route(re.compile(rf"/api/projects/{ws.ids['px']}/mentionable$"), counted)
    await person.context.route(f"**/api/tasks/{task}/read", refuse, times=1)
    page = person.page
    await page.goto(f"{person.node.http}/projects/{ws.ids['px']}/tasks/{task}")

    said = words["error.server"]
    failed = page.locator("#thread-failed")
    await expect(failed).to_have_attribute("role", "alert", timeout=10_000)
    await expect(failed).to_contain_text(words["thread.loadFailed"].replace("{reason}", said))
    await expect(page.locator(".thread")).not_to_contain_text(words["thread.empty"])  # never "nothing" for a failure
    await shoot(person, f"thread-load-failed-{language}")

    # Try again, by keyboard: the comments load, and marking them read is refused (said quietly, with its own retry).
    again = failed.get_by_role("button", name=words["common.tryAgain"])
    await again.focus()
    await page.keyboard.press("Enter")
    comment = page.locator(f"#comment-{ws.ids['px_shared_comment']}")
    await expect(comment).to_contain_text("px shared comment", timeout=10_000)
    await expect(failed).to_have_count(0)
    read_failed = page.locator("#thread-read-failed")
    await expect(read_failed).to_have_attribute("role", "status", timeout=10_000)
    await expect(read_failed).to_contain_text(words["thread.readFailed"].replace("{reason}", said))
    async with page.expect_response(lambda r: r.url.endswith(f"/api/tasks/{task}/read") and r.ok, timeout=10_000):
        await read_failed.get_by_role("button", name=words["common.tryAgain"]).press("Enter")
    await expect(read_failed).to_have_count(0)
    assert len(asked) == 1
    ids: list[str] = await page.evaluate("() => [...document.querySelectorAll('[id]')].map((e) => e.id)")
    assert sorted({i for i in ids if ids.count(i) > 1}) == []
    # Chromium logs each refused request as a console error; nothing else may appear.
    assert [e for e in person.errors if "WebSocket" not in e and "500" not in e] == []
    await person.context.close()
