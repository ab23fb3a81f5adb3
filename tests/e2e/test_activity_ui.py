"""In a real browser: "since your last visit" on the project page and the activity feed (a customer, in Swedish, on a
phone and at a desk: shared changes only, marked new, live), and staff marking a customer's comment as feedback in
the thread by keyboard, which the customer never sees. (Accessibility of these pages: tests/e2e/test_every_page.py.)"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.e2e.test_portal import Person, shoot, staff_http
from tests.nodes import Node
from tests.workspace import Workspace

__all__ = ["staff_http"]

PHONE = (390, 844)
DESK = (1280, 800)
LIVE_MS = 5000


@pytest.mark.parametrize("size", [PHONE, DESK], ids=["phone", "desk"])
async def test_since_the_last_visit_and_the_feed_show_the_customer_only_shared_changes(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    staff_http: httpx.AsyncClient,
    size: tuple[int, int],
) -> None:
    ws = database[1]
    px, task = ws.ids["px"], ws.ids["px_shared_task"]
    async with httpx.AsyncClient(base_url=two_nodes[1].http, timeout=10) as http:
        answer = await http.patch(
            "/api/me", json={"locale": "sv"}, headers={"authorization": f"Bearer {ws.token('customer')}"}
        )
        assert answer.status_code == 200
    customer = await Person.sign_in(
        browser, two_nodes[1], "customer@example.test", width=size[0], height=size[1], locale="sv-SE"
    )
    page = customer.page
    # The first visit: recent activity, nothing marked new.
    await page.goto(f"{two_nodes[1].http}/projects/{px}")
    await expect(page.locator("#since-visit-title")).to_have_text("Senaste aktivitet")
    await expect(page.locator(".since-visit .tag-new")).to_have_count(0)
    await page.goto(f"{two_nodes[1].http}/")
    await page.wait_for_selector(".projects")

    changed = await staff_http.patch(f"/api/tasks/{task}", json={"due_date": "2031-01-01"})
    assert changed.status_code == 200, changed.text
    internal = await staff_http.post(
        f"/api/projects/{px}/tasks", json={"title": "Offert SECRET", "visibility": "internal"}
    )
    assert internal.status_code == 201
    # Back on the project page: the shared change is new since the last visit; the internal one is not there.
    await page.goto(f"{two_nodes[1].http}/projects/{px}")
    panel = page.locator(".since-visit")
    await expect(panel.locator("#since-visit-title")).to_have_text("Sedan ditt senaste besök")
    new_row = panel.locator(".activity-item.is-new")
    await expect(new_row).to_have_count(1)
    await expect(new_row).to_contain_text("Nytt")
    await expect(new_row).to_contain_text("ändrade px shared task")
    await expect(new_row.locator(".activity-changes")).to_contain_text(re.compile(r"Förfallodatum: inget → .*2031"))
    assert "SECRET" not in await page.content()
    await shoot(customer, "since-last-visit")

    # By keyboard to the whole feed, which the digest links to.
    link = panel.get_by_role("link", name="All aktivitet")
    await link.focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(rf"/projects/{px}/activity$"))
    await expect(page.locator("main h1")).to_contain_text("Aktivitet")
    await expect(page.locator(".activity-list .activity-item").first).to_be_visible()
    await expect(page.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=LIVE_MS)
    # Live: a shared comment shows at once, an internal one never.
    await staff_http.post(f"/api/tasks/{task}/comments", json={"body": "Intern SECRET", "visibility": "internal"})
    posted = await staff_http.post(f"/api/tasks/{task}/comments", json={"body": "Klart!", "visibility": "shared"})
    assert posted.status_code == 201
    comment_row = page.locator(".activity-item[data-kind='comment.created']")
    await expect(comment_row).to_have_count(1, timeout=LIVE_MS)
    await expect(comment_row.locator("a")).to_have_attribute(
        "href", f"/projects/{px}/tasks/{task}#comment-{posted.json()['id']}"
    )
    assert "SECRET" not in await page.content()
    assert await page.locator(".card-internal, .tag-internal").count() == 0
    await shoot(customer, "activity-feed")
    assert customer.errors == []
    await customer.context.close()


@pytest.mark.parametrize("size", [PHONE, DESK], ids=["phone", "desk"])
async def test_staff_mark_a_customer_comment_as_feedback_by_keyboard(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    staff_http: httpx.AsyncClient,
    size: tuple[int, int],
) -> None:
    ws = database[1]
    px, task, comment = ws.ids["px"], ws.ids["px_shared_task"], ws.ids["px_customer_comment"]
    staff = await Person.sign_in(browser, two_nodes[0], "staff@example.test", width=size[0], height=size[1])
    customer = await Person.sign_in(browser, two_nodes[1], "customer@example.test", width=size[0], height=size[1])
    await staff.page.goto(f"{two_nodes[0].http}/projects/{px}/tasks/{task}")
    await customer.page.goto(f"{two_nodes[1].http}/projects/{px}/tasks/{task}")
    await expect(customer.page.locator(f"#comment-{comment}")).to_be_visible()
    item = staff.page.locator(f"#comment-{comment}")
    # Only customers' comments can be marked: the staff's own shared comment has no control.
    await expect(staff.page.locator(f"#comment-{ws.ids['px_shared_comment']} .fbmark")).to_have_count(0)
    mark = item.get_by_role("button", name="Mark as feedback")
    await mark.focus()
    await staff.page.keyboard.press("Enter")
    form = item.locator(".fbmark-form")
    await expect(form).to_be_visible()
    await form.get_by_label("Request for change").focus()
    await staff.page.keyboard.press("Space")
    await form.get_by_label("Theme").select_option("clarity")
    await form.get_by_role("button", name="Save feedback").focus()
    await staff.page.keyboard.press("Enter")
    await expect(item.locator(".fbmark-tag")).to_have_text(re.compile(r"Feedback: Request for change · Clarity"))
    await expect(form).to_have_count(0)
    await shoot(staff, "feedback-mark")
    view = (await staff_http.get(f"/api/projects/{px}/feedback")).json()
    assert view["informal"] == 1
    # The customer's page, even reloaded, holds no trace of the marking.
    await customer.page.reload()
    await expect(customer.page.locator(f"#comment-{comment}")).to_be_visible()
    assert await customer.page.locator(".fbmark, .fbmark-tag").count() == 0
    assert "Clarity" not in await customer.page.content()
    assert staff.errors == [] and customer.errors == []
    await staff.context.close()
    await customer.context.close()


@pytest.mark.parametrize("size", [PHONE, DESK], ids=["phone", "desk"])
async def test_the_owner_lets_staff_sign_in_by_link(
    browser: Browser, two_nodes: list[Node], database: tuple[str, Workspace], size: tuple[int, int]
) -> None:
    ws = database[1]
    owner = await Person.sign_in(
        browser, two_nodes[0], "owner@example.test", width=size[0], height=size[1], locale="sv-SE"
    )
    page = owner.page
    async with httpx.AsyncClient(base_url=two_nodes[0].http, timeout=10) as http:
        headers = {"authorization": f"Bearer {ws.token('owner')}"}
        assert (await http.patch("/api/me", json={"locale": "sv"}, headers=headers)).status_code == 200
        await page.goto(f"{two_nodes[0].http}/organization")
        box = page.get_by_label("Personalen får logga in med en länk via e-post")
        await expect(box).not_to_be_checked()
        await box.focus()
        await page.keyboard.press("Space")
        await expect(page.locator("#org-sign-in [role=status]")).to_have_text("Sparat.")
        await expect(box).to_be_checked()
        answer = await http.get("/api/organization/settings", headers=headers)
        assert answer.json() == {"allow_staff_link_sign_in": True}
    await shoot(owner, "organization-sign-in")
    # Staff read it and cannot change it.
    staff = await Person.sign_in(browser, two_nodes[1], "staff@example.test", width=size[0], height=size[1])
    await staff.page.goto(f"{two_nodes[1].http}/organization")
    staff_box = staff.page.get_by_label("Staff may sign in with a link by email")
    await expect(staff_box).to_be_checked()
    await expect(staff_box).to_be_disabled()
    assert owner.errors == [] and staff.errors == []
    await owner.context.close()
    await staff.context.close()
