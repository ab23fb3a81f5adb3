"""Configuring a project from the screen, in a real browser: the workflow editor (a new status, its colour and WIP
limit, reordering by keyboard) and the board obeying it; milestones (create, rename, share, complete, which asks
the customer for feedback); a customer permission switched off taking the control off the customer's screen.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import httpx
import pytest
from playwright.async_api import Browser, Locator, expect

from tests.e2e.test_portal import Person, choose_language, column, shoot
from tests.e2e.test_tasks_ui import DESKTOP, PHONE, no_unexpected_errors
from tests.nodes import Node
from tests.workspace import Workspace


def statuses(node: Node, ws: Workspace) -> list[dict[str, object]]:
    answer = httpx.get(
        f"{node.http}/api/projects/{ws.ids['px']}/statuses",
        headers={"authorization": f"Bearer {ws.token('owner')}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, object]] = answer.json()["items"]
    return items


@pytest.mark.parametrize(
    ("size", "language"), [pytest.param(DESKTOP, "en", id="desktop-en"), pytest.param(PHONE, "sv", id="phone-sv")]
)
async def test_workflow_editor_adds_a_status_whose_wip_limit_refuses_a_move(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    size: tuple[int, int],
    language: str,
) -> None:
    a, _ = two_nodes
    ws = database[1]
    sv = language == "sv"
    owner = await Person.sign_in(browser, a, "owner@example.test", width=size[0], height=size[1])
    page = owner.page
    if sv:
        await choose_language(page, "sv")
        await expect(page.locator("html")).to_have_attribute("lang", "sv")
    await owner.open_board("PX")
    # Those who may manage the project find Settings in its navigation.
    await page.click(".project-nav a[href$='/settings']")
    await page.wait_for_selector("#new-status-name")

    # A new status with its own colour; the name is checked before sending, as the API would.
    await page.click("#add-status")
    await expect(page.locator("#new-status-name-error")).to_have_text("Fyll i det här." if sv else "Fill this in.")
    await expect(page.locator("#new-status-name")).to_have_attribute("aria-invalid", "true")
    await page.fill("#new-status-name", "Review")
    await page.fill("#new-status-colour", "#aa00ff")
    await page.select_option("#new-status-category", "active")
    await page.click("#add-status")
    await expect(page.locator("#people-status")).to_contain_text("Review", timeout=5000)
    review = next(s for s in statuses(a, ws) if s["name"] == "Review")
    assert review["colour"] == "#aa00ff" and review["category"] == "active" and review["wip_limit"] is None
    row = f".status-row[data-status-id='{review['id']}']"
    await expect(page.locator(f"{row} input.status-colour")).to_have_value("#aa00ff")

    # Its WIP limit: 0 is refused beside the field before sending; 1 saves with a quiet "saved".
    wip = page.locator(f"{row} input.status-wip")
    await wip.fill("0")
    await wip.press("Enter")
    await expect(page.locator(f"#status-{review['id']}-wip-error")).to_contain_text("heltal" if sv else "whole number")
    await wip.fill("1")
    await wip.press("Enter")
    await expect(page.locator(f"#status-{review['id']}-status")).to_have_text("Sparat" if sv else "Saved", timeout=5000)
    await expect(page.locator(f"#status-{review['id']}-wip-error")).to_have_count(0)
    assert next(s for s in statuses(a, ws) if s["id"] == review["id"])["wip_limit"] == 1
    # Whether its shared tasks wait on the customer: a checkbox that saves on change.
    await page.check(f"#status-{review['id']}-waits")
    deadline = time.monotonic() + 5
    while not next(s for s in statuses(a, ws) if s["id"] == review["id"])["waits_on_customer"]:
        assert time.monotonic() < deadline, "waits_on_customer was not saved"
        await asyncio.sleep(0.1)
    await expect(page.locator(f"#status-{review['id']}-status")).to_have_text("Sparat" if sv else "Saved", timeout=5000)
    await expect(page.locator(f"#status-{review['id']}-waits")).to_be_checked()

    # Reordered by keyboard: "up" moves it before Done, and the focus stays on the button.
    up = page.locator(f"{row} button.up")
    await up.focus()
    await page.keyboard.press("Enter")
    fourth = page.locator(".status-row").nth(3)
    await expect(fourth).to_have_attribute("data-status-id", str(review["id"]), timeout=5000)
    await expect(up).to_be_focused()
    assert [s["name"] for s in statuses(a, ws)][-2:] == ["Review", "Done"]
    await shoot(owner, f"workflow-settings-{language}")

    # The board: the new column shows its count against its limit.
    await page.click(f".project-nav a[href$='/projects/{ws.ids['px']}']")
    await page.wait_for_selector(".board")
    review_column = column(page, "Review")
    await expect(page.locator(f"{review_column} .count")).to_contain_text("0 / 1")
    shared = f"[data-task-id='{ws.ids['px_shared_task']}']"
    await page.select_option(f"{shared} select.move", label="Review")
    await page.click(f"{shared} .move-confirm")  # choose, then confirm
    await expect(page.locator(f"{review_column} {shared}")).to_be_visible(timeout=5000)
    await expect(page.locator(f"{review_column} .count")).to_contain_text("1 / 1", timeout=5000)

    # Past the limit: refused visibly, in the reader's language, and the card stays where it was.
    other = f"[data-task-id='{ws.ids['px_internal_task']}']"
    await page.select_option(f"{other} select.move", label="Review")
    await page.click(f"{other} .move-confirm")  # choose, then confirm
    toast = page.locator(".toast-error")
    await expect(toast).to_contain_text("Review är full" if sv else "Review is full", timeout=15000)
    await expect(page.locator(f"{column(page, 'To do')} {other}")).to_be_visible()
    await expect(page.locator(f"{other} select.move")).to_have_value(str(ws.ids["px_todo"]))
    assert await page.locator(f"{review_column} {other}").count() == 0
    await shoot(owner, f"workflow-board-{language}")
    truth = httpx.get(
        f"{a.http}/api/tasks/{ws.ids['px_internal_task']}",
        headers={"authorization": f"Bearer {ws.token('owner')}"},
        timeout=10,
    ).json()
    assert truth["status_id"] == ws.ids["px_todo"]
    assert no_unexpected_errors(owner) == []
    await owner.context.close()


@pytest.mark.parametrize(
    ("size", "language"), [pytest.param(DESKTOP, "en", id="desktop-en"), pytest.param(PHONE, "sv", id="phone-sv")]
)
async def test_a_status_is_renamed_then_removed_sending_its_tasks_where_chosen(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    size: tuple[int, int],
    language: str,
) -> None:
    a, b = two_nodes
    ws = database[1]
    sv = language == "sv"
    blocked, active, task = ws.ids["px_blocked"], ws.ids["px_active"], ws.ids["px_customer_task"]
    owner = await Person.sign_in(browser, a, "owner@example.test", width=size[0], height=size[1])
    customer = await Person.sign_in(browser, b, "customer@example.test", width=DESKTOP[0], height=DESKTOP[1])
    await customer.open_board("PX")
    card = customer.page.locator(f"[data-task-id='{task}']")

    def in_column(status: str) -> Locator:
        return customer.page.locator(f"{column(customer.page, status)} [data-task-id='{task}']")

    await expect(in_column("Waiting on customer")).to_be_visible()
    page = owner.page
    if sv:
        await choose_language(page, "sv")
        await expect(page.locator("html")).to_have_attribute("lang", "sv")
    # Within the app (a reload could outrun saving the language choice).
    await owner.open_board("PX")
    await page.click(".project-nav a[href$='/settings']")
    await page.wait_for_selector("#new-status-name")

    # Renamed in place by keyboard: a name another status has is refused beside the field before sending.
    name = page.locator(f"#status-{blocked}-name")
    await name.fill("done")
    await name.press("Enter")
    await expect(page.locator(f"#status-{blocked}-name-error")).to_have_text(
        "Det används redan här." if sv else "That is already used here."
    )
    await expect(name).to_have_attribute("aria-invalid", "true")
    await name.fill("With the customer")
    await name.press("Enter")
    await expect(page.locator(f"#status-{blocked}-status")).to_have_text("Sparat" if sv else "Saved", timeout=5000)
    await expect(page.locator(f"#status-{blocked}-name-error")).to_have_count(0)
    assert next(s for s in statuses(a, ws) if s["id"] == blocked)["name"] == "With the customer"
    # The customer's board, on the other node, renames the column without a reload.
    renamed = column(customer.page, "With the customer")
    await expect(in_column("With the customer")).to_be_visible(timeout=5000)

    # Removed, choosing where its tasks go; the dialog opens and is answered from the keyboard.
    remove = page.locator(f".status-row[data-status-id='{blocked}'] button.remove")
    await remove.focus()
    await page.keyboard.press("Enter")
    dialog = page.locator("dialog#confirm")
    await expect(dialog).to_contain_text("With the customer")
    await dialog.locator("#remove-move-to").select_option(str(active))
    await dialog.locator("button.danger").click()
    await expect(page.locator("#people-status")).to_contain_text(
        "With the customer togs bort" if sv else "With the customer removed", timeout=5000
    )
    await expect(dialog).to_have_count(0)
    await expect(page.locator(f".status-row[data-status-id='{blocked}']")).to_have_count(0)
    assert [s["name"] for s in statuses(a, ws)] == ["To do", "In progress", "Done"]
    truth = httpx.get(
        f"{a.http}/api/tasks/{task}", headers={"authorization": f"Bearer {ws.token('owner')}"}, timeout=10
    ).json()
    assert truth["status_id"] == active
    # The customer's board: the column is gone and its task stands in the chosen one, live.
    await expect(customer.page.locator(renamed)).to_have_count(0, timeout=5000)
    await expect(in_column("In progress")).to_be_visible()
    await expect(card).to_have_count(1)
    await shoot(owner, f"workflow-removed-{language}")
    for person in (owner, customer):
        assert no_unexpected_errors(person) == []
        await person.context.close()


async def test_milestones_are_created_shared_and_completed_which_asks_the_customer(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, b = two_nodes
    ws = database[1]
    staff = await Person.sign_in(browser, a, "staff@example.test", width=PHONE[0], height=PHONE[1])
    customer = await Person.sign_in(browser, b, "customer@example.test", width=DESKTOP[0], height=DESKTOP[1])
    page = staff.page
    await staff.open_board("PX")
    # A staff member who does not manage the project is not offered its settings (the API would refuse them).
    await expect(page.locator(".project-nav a[href$='/settings']")).to_have_count(0)
    await page.click(".project-nav a[href$='/milestones']")
    await page.wait_for_selector("#new-milestone-name")

    due = (dt.date.today() + dt.timedelta(days=14)).isoformat()
    await page.fill("#new-milestone-name", "Beta launch")
    await page.fill("#new-milestone-due", due)
    await page.click("#add-milestone")
    await expect(page.locator("#people-status")).to_contain_text("Beta launch", timeout=5000)
    listed = httpx.get(
        f"{a.http}/api/projects/{ws.ids['px']}/milestones",
        headers={"authorization": f"Bearer {ws.token('staff')}"},
        timeout=10,
    ).json()["items"]
    made = next(m for m in listed if m["name"] == "Beta launch")
    assert made["visibility"] == "internal" and made["due_date"] == due
    row = page.locator(f"[data-milestone-id='{made['id']}']")
    await expect(row).to_have_attribute("data-visibility", "internal")

    # Renamed in place (Enter saves).
    await page.fill(f"#milestone-{made['id']}-name", "Beta launch, public")
    await page.press(f"#milestone-{made['id']}-name", "Enter")
    await expect(page.locator(f"#milestone-{made['id']}-status")).to_have_text("Saved", timeout=5000)

    # Sharing changes who sees it: asked first, and Cancel changes nothing.
    await row.locator("button.visibility").click()
    dialog = page.locator("dialog#confirm")
    await expect(dialog).to_contain_text("The customer will see Beta launch, public")
    await dialog.locator("button.secondary").click()
    await expect(dialog).to_have_count(0)
    await expect(row).to_have_attribute("data-visibility", "internal")
    await row.locator("button.visibility").click()
    await dialog.locator("button.danger").click()
    await expect(row).to_have_attribute("data-visibility", "shared", timeout=5000)
    await expect(dialog).to_have_count(0)

    # The customer sees it, without controls to change it.
    await customer.page.goto(f"{b.http}/projects/{ws.ids['px']}/milestones")
    theirs = customer.page.locator(f"[data-milestone-id='{made['id']}']")
    await expect(theirs).to_contain_text("Beta launch, public", timeout=5000)
    await expect(customer.page.locator("button.complete")).to_have_count(0)
    await expect(customer.page.locator("#new-milestone-name")).to_have_count(0)

    # Completing it asks the customers for feedback, as the API does; the screen says so.
    await row.locator("button.complete").click()
    await expect(page.locator("#people-status")).to_contain_text("asked for feedback", timeout=5000)
    await expect(row.locator(".milestone-asked")).to_be_visible()
    await shoot(staff, "milestones")
    asked = httpx.get(
        f"{a.http}/api/projects/{ws.ids['px']}/feedback/requests",
        headers={"authorization": f"Bearer {ws.token('staff')}"},
        timeout=10,
    ).json()["items"]
    assert [r["milestone_id"] for r in asked].count(made["id"]) == 1
    for person in (staff, customer):
        assert no_unexpected_errors(person) == []
        await person.context.close()


async def test_a_customer_permission_switched_off_takes_the_control_off_the_customers_screen(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, b = two_nodes
    ws = database[1]
    owner = await Person.sign_in(browser, a, "owner@example.test", width=DESKTOP[0], height=DESKTOP[1])
    customer = await Person.sign_in(browser, b, "customer@example.test", width=PHONE[0], height=PHONE[1])
    await customer.open_board("PX")
    mine = customer.page.locator(f"[data-task-id='{ws.ids['px_customer_task']}'] select.move")
    await expect(mine).to_be_visible()

    page = owner.page
    await page.goto(f"{a.http}/projects/{ws.ids['px']}/settings")
    await page.wait_for_selector("#perm-customer_move_own")
    await expect(page.locator("#perm-customer_move_own")).to_be_checked()
    await page.uncheck("#perm-customer_move_own")
    await expect(page.locator("#perm-customer_move_own-status")).to_have_text("Saved", timeout=5000)
    await expect(page.locator("#perm-customer_move_own")).not_to_be_checked()
    # Live on the customer's board (another node), and still after a reload.
    await expect(mine).to_have_count(0, timeout=5000)
    await customer.page.reload()
    await customer.page.wait_for_selector(".board")
    await expect(customer.page.locator(f"[data-task-id='{ws.ids['px_customer_task']}']")).to_be_visible()
    await expect(mine).to_have_count(0)

    # Requests off: the customer's requests page offers no form, and says why.
    await page.uncheck("#perm-customer_requests")
    await expect(page.locator("#perm-customer_requests-status")).to_have_text("Saved", timeout=5000)
    await customer.page.goto(f"{b.http}/projects/{ws.ids['px']}/requests")
    await expect(customer.page.locator("#requests-off")).to_be_visible(timeout=5000)
    await expect(customer.page.locator(".request-form")).to_have_count(0)

    # Switched back on, the move control returns.
    await page.check("#perm-customer_move_own")
    await expect(page.locator("#perm-customer_move_own-status")).to_have_text("Saved", timeout=5000)
    await customer.page.goto(f"{b.http}/projects/{ws.ids['px']}")
    await expect(mine).to_be_visible(timeout=5000)
    settings = httpx.get(
        f"{a.http}/api/projects/{ws.ids['px']}/settings",
        headers={"authorization": f"Bearer {ws.token('owner')}"},
        timeout=10,
    ).json()
    assert settings["customer_move_own"] is True and settings["customer_requests"] is False
    for person in (owner, customer):
        assert no_unexpected_errors(person) == []
        await person.context.close()


async def test_applying_a_template_asks_where_the_tasks_of_removed_statuses_go(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, _ = two_nodes
    ws = database[1]
    owner = await Person.sign_in(browser, a, "owner@example.test", width=DESKTOP[0], height=DESKTOP[1])
    page = owner.page
    await page.goto(f"{a.http}/projects/{ws.ids['px']}/settings")
    await page.select_option("#template-choice", str(ws.ids["org_a_template"]))
    await page.click("#apply-template")
    dialog = page.locator("dialog#confirm")
    await expect(dialog).to_contain_text("Apply Agency flow?")
    await dialog.locator("button.danger").click()
    # "Waiting on customer" holds a task and the template has no such status: the dialog asks where it goes.
    destination = page.locator(f"#apply-move-{ws.ids['px_blocked']}")
    await expect(destination).to_be_visible(timeout=5000)
    await expect(dialog.locator("[role=alert]")).to_contain_text("say where they go")
    assert [s["name"] for s in statuses(a, ws)][:2] == ["To do", "In progress"]  # nothing changed yet
    await destination.select_option("Doing")
    await dialog.locator("button.danger").click()
    await expect(page.locator("#people-status")).to_contain_text("Agency flow applied", timeout=5000)
    await expect(dialog).to_have_count(0)
    now = statuses(a, ws)
    assert [s["name"] for s in now] == ["To do", "Doing", "Done"]
    doing = next(s for s in now if s["name"] == "Doing")
    moved = httpx.get(
        f"{a.http}/api/tasks/{ws.ids['px_customer_task']}",
        headers={"authorization": f"Bearer {ws.token('owner')}"},
        timeout=10,
    ).json()
    assert moved["status_id"] == doing["id"]
    await expect(page.locator(".status-row")).to_have_count(3)
    assert no_unexpected_errors(owner) == []
    await owner.context.close()
