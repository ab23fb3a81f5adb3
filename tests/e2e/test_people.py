"""Managing people and projects in a real browser: the People page, the Clients & staff page, and what each role
is (not) offered, at a phone's and a desk's width, in English and Swedish, partly by keyboard alone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.test_portal import AXE, Person, choose_language, serious_violations, shoot
from tests.nodes import Node, cluster
from tests.workspace import INVITE_TOKEN, PASSWORD, Workspace


@pytest.fixture
def node(database: tuple[str, Workspace], tmp_path: Path) -> Iterator[Node]:
    with cluster(tmp_path, database[0], None, count=1) as (one,):
        yield one


def member(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(".member", has=page.locator("strong", has_text=name))


async def test_owner_manages_a_projects_people_by_keyboard(
    browser: Browser,
    node: Node,
    database: tuple[str, Workspace],
) -> None:
    ws = database[1]
    owner = await Person.sign_in(browser, node, ws.emails["owner"], width=1280, height=800)
    page = owner.page
    await page.goto(f"{node.http}/projects/{ws.ids['px']}/people")
    await expect(page.locator("h1")).to_contain_text("PX")
    await shoot(owner, "people")

    # A role changes in place and stays changed.
    await page.get_by_label("Role of Viewer").select_option("customer")
    await expect(page.locator("#people-status")).to_contain_text("Viewer is now: Customer")
    await page.reload()
    await expect(page.get_by_label("Role of Viewer")).to_have_value("customer")
    # Staff hold staff roles and customers customer roles: nothing else is offered.
    assert await page.get_by_label("Role of Staff").locator("option").all_inner_texts() == ["Staff member", "Manager"]
    assert await page.get_by_label("Role of Customer").locator("option").all_inner_texts() == [
        "Customer",
        "Viewer (reads only)",
    ]

    # Inviting, by keyboard alone: a bad address is refused beside the field, before and by the server.
    await page.focus("#invite-email")
    await page.keyboard.type("not-an-address")
    await page.keyboard.press("Enter")
    await expect(page.locator("#invite-email-error")).to_be_visible()
    await expect(page.locator("#invite-email")).to_have_attribute("aria-invalid", "true")
    await page.fill("#invite-email", "new.person@reserved.test")  # well-formed, but a reserved domain
    await page.keyboard.press("Enter")
    # The server's refusal, in the catalog's words beside the field (never its own English message).
    await expect(page.locator("#invite-email-error")).to_have_text(re.compile(r"\S"))
    await expect(page.locator("#invite-email-error")).not_to_contain_text("special-use or reserved")
    await expect(page.locator("#invite-email")).to_have_value("new.person@reserved.test")  # what was typed stays
    await page.fill("#invite-email", "new.person@example.com")
    await page.keyboard.press("Tab")  # to the name
    await page.keyboard.type("Nell")
    await page.keyboard.press("Tab")  # to the role (customer)
    await page.keyboard.press("Tab")  # to "Invite"
    await page.keyboard.press("Enter")
    await expect(page.locator("#invite-link")).to_be_visible()
    await expect(page.locator(".pending-invite", has_text="new.person@example.com")).to_be_visible()

    # Resend makes a new link, shown in the row; the earlier one stops working.
    seeded = page.locator(f".pending-invite[data-invite-id='{ws.ids['px_invite']}']")
    await seeded.get_by_role("button", name="Resend").click()
    await expect(seeded.locator(f"#invite-link-{ws.ids['px_invite']}")).to_be_visible()
    async with httpx.AsyncClient(base_url=node.http) as api:
        old = await api.post("/api/invites/preview", json={"token": INVITE_TOKEN})
    assert old.status_code == 404

    # Revoke asks first (Escape cancels), then the invitation is gone.
    await seeded.get_by_role("button", name="Revoke").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("invited@example.test")
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await seeded.get_by_role("button", name="Revoke").click()
    await page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    await expect(page.locator("#people-status")).to_contain_text("invited@example.test was revoked")
    await expect(seeded).to_have_count(0)

    # Remove someone; a change made elsewhere meanwhile is shown as it now is, with the reason.
    await member(page, "Viewer").get_by_role("button", name="Remove").click()
    await page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    await expect(member(page, "Viewer")).to_have_count(0)
    async with httpx.AsyncClient(base_url=node.http, headers={"authorization": f"Bearer {ws.token('owner')}"}) as api:
        gone = await api.delete(f"/api/projects/{ws.ids['px']}/members/{ws.users['customer']}")
        assert gone.status_code == 204
    await page.get_by_label("Role of Customer").select_option("viewer")
    await expect(page.locator("#people-error")).to_contain_text("It no longer exists")
    await expect(member(page, "Customer")).to_have_count(0)

    # Rename and describe, archive and restore.
    await page.fill("#settings-name", "PX renamed")
    await page.fill("#settings-description", "The relaunch")
    await page.click("#settings-save")
    await expect(page.get_by_text("✓ Saved")).to_be_visible()
    await page.click("#settings-archive")
    await expect(page.locator("#people-status")).to_contain_text("Archived.")
    await expect(page.locator("h1")).to_contain_text("Archived")
    await page.click("#settings-archive")
    await expect(page.locator("#people-status")).to_contain_text("Restored.")
    await page.reload()
    await expect(page.locator("h1")).to_contain_text("PX renamed")
    # Chromium logs the refused requests (422, 404) as console errors; nothing else went wrong.
    assert [e for e in owner.errors if "Failed to load resource" not in e] == []


async def test_deleting_a_project_on_a_phone_asks_for_its_name(
    browser: Browser,
    node: Node,
    database: tuple[str, Workspace],
) -> None:
    ws = database[1]
    owner = await Person.sign_in(browser, node, ws.emails["owner"], width=390, height=844, locale="sv-SE")
    page = owner.page
    await choose_language(page, "sv")
    await page.goto(f"{node.http}/projects/{ws.ids['py']}/people")
    await page.click("#settings-delete")
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Radera PY?")
    # On a phone the dialog is the whole screen.
    box = await dialog.bounding_box()
    assert box is not None and box["width"] == 390 and box["height"] == 844
    await shoot(owner, "delete-project")
    confirm = dialog.get_by_role("button", name="Radera för gott")
    await expect(confirm).to_be_disabled()
    await page.fill("#delete-confirm-name", "PY")
    await confirm.click()
    await page.wait_for_url(f"{node.http}/")
    await expect(page.locator(".projects")).not_to_contain_text("PY")


async def test_clients_and_staff_for_owners_and_read_only_for_staff(
    browser: Browser,
    node: Node,
    database: tuple[str, Workspace],
) -> None:
    ws = database[1]
    owner = await Person.sign_in(browser, node, ws.emails["owner"], width=390, height=844, locale="sv-SE")
    page = owner.page
    await choose_language(page, "sv")
    await page.click("a[href='/organization']")
    await expect(page.locator("h1")).to_have_text("Kunder & personal")
    # An empty name is refused beside the field; then the client is added.
    await page.click("#add-client")
    await expect(page.locator("#new-client-name-error")).to_have_text("Fyll i det här.")
    await page.fill("#new-client-name", "Nordic Bakery")
    await page.click("#add-client")
    await expect(page.locator(".client", has_text="Nordic Bakery")).to_be_visible()
    client_x = page.locator(f".client[data-client-id='{ws.ids['client_x']}']")
    await client_x.get_by_role("button", name="Byt namn").click()
    await page.fill(f"#client-name-{ws.ids['client_x']}", "Client X AB")
    await page.keyboard.press("Enter")
    await expect(client_x).to_contain_text("Client X AB")
    await expect(client_x).to_contain_text("1 projekt")
    # The owner makes a colleague an admin, then deactivates them (asked first).
    spare = page.locator(f".staff-person[data-user-id='{ws.users['spare_staff']}']")
    await spare.get_by_label("Organisationsroll för Spare Staff").select_option("admin")
    await expect(page.locator("#people-status")).to_have_text("Sparat")
    await spare.get_by_role("button", name="Inaktivera").click()
    await page.get_by_role("dialog").get_by_role("button", name="Inaktivera").click()
    await expect(spare).to_contain_text("Inaktiverad")
    # Owners themselves are not offered a change.
    me = page.locator(f".staff-person[data-user-id='{ws.users['owner']}']")
    assert await me.locator("select, button").count() == 0
    await shoot(owner, "organization")

    # Staff see the lists but are offered no change; customers do not find the page at all.
    staff = await Person.sign_in(browser, node, ws.emails["staff"], width=1280, height=800)
    assert await staff.page.locator("#new-project").count() == 0
    await staff.page.click("a[href='/organization']")
    await expect(staff.page.locator(".client", has_text="Nordic Bakery")).to_be_visible()
    assert await staff.page.locator("main select, main button, #add-client").count() == 0
    await staff.page.goto(f"{node.http}/projects/{ws.ids['px']}/people")
    await expect(staff.page.get_by_text("Only the project's managers change these.")).to_be_visible()
    assert await staff.page.locator("#invite-email, .member select, .member button").count() == 0
    customer = await Person.sign_in(browser, node, ws.emails["customer"], width=390, height=844)
    assert await customer.page.locator("a[href='/organization'], #new-project").count() == 0
    await customer.page.goto(f"{node.http}/projects/{ws.ids['px']}/people")
    await expect(member(customer.page, "Staff")).to_be_visible()
    assert await customer.page.locator("#invite-email, .pending-invite, #settings-delete").count() == 0


async def test_people_screens_meet_wcag_aa(
    browser: Browser,
    node: Node,
    database: tuple[str, Workspace],
) -> None:
    ws = database[1]
    assert AXE.exists(), "axe-core is a dev dependency of web/ (npm ci installs it)"
    context = await browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    page = await context.new_page()
    await page.goto(node.http + "/")
    await page.fill("#email", ws.emails["owner"])
    await page.fill("#password", PASSWORD)
    await page.click("form button[type=submit]")
    await page.click("#new-project")
    await page.select_option("#project-client", value="new")
    await page.click("#new-project-dialog button[type=submit]")  # empty: every field error showing
    await expect(page.locator("#client-name-error")).to_be_visible()
    problems = {"new project": await serious_violations(page)}
    await page.keyboard.press("Escape")
    await page.goto(f"{node.http}/projects/{ws.ids['px']}/people")
    await page.fill("#invite-email", "someone@example.com")
    await page.click("#invite-submit")
    await expect(page.locator("#invite-link")).to_be_visible()
    problems["people"] = await serious_violations(page)
    await page.goto(f"{node.http}/organization")
    await expect(page.locator(".staff-person").first).to_be_visible()
    problems["clients and staff"] = await serious_violations(page)
    await context.close()
    assert {name: found for name, found in problems.items() if found} == {}
