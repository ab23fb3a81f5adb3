"""In a real browser: the project's feedback view with informal feedback, i.e. customer comments staff marked as
feedback, one of them a reply that came by email (a real aiosmtpd inbound server, smtplib). Each marked quote says it
is a staff mark, says when it came by email, and links to the comment in its thread, reached by keyboard; at a desk in
English and on a phone in Swedish."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from tests.e2e.test_portal import Person, serious_violations, shoot
from tests.test_mail_in import MailWorld, sink, world
from tests.workspace import PASSWORD

__all__ = ["sink", "world"]

PHONE = (390, 844)
DESK = (1280, 800)
WORDS = {
    "en-GB": ("Comment marked by staff", "reply by email", "Open the comment", "2 marked items", "Concern"),
    "sv-SE": (
        "Kommentar markerad av personalen",
        "svar via e-post",
        "Öppna kommentaren",
        "2 markerade inlägg",
        "Oro",
    ),
}


@pytest.mark.parametrize(("size", "locale"), [(DESK, "en-GB"), (PHONE, "sv-SE")], ids=["desk-english", "phone-swedish"])
async def test_the_feedback_view_shows_marked_comments_as_informal_with_their_source(
    browser: Browser, world: MailWorld, size: tuple[int, int], locale: str
) -> None:
    ws = world.ws
    px, task, seeded = ws.ids["px"], ws.ids["px_shared_task"], ws.ids["px_customer_comment"]
    marked, by_email, open_comment, count, concern = WORDS[locale]
    # The customer replies by email; staff mark that reply and the customer's comment written in Tandem.
    code, answer = await world.send(
        world.address("customer", task),
        "The colours are hard to read.\n\nOn Mon, Tandem wrote:\n> Please check the logo",
        sender="customer@example.test",
    )
    assert code == 250, answer
    emailed = (await world.thread(task))[0]
    assert emailed["body"] == "The colours are hard to read."
    staff_api = world.api("staff").client
    for comment, kind, theme in ((emailed["id"], "concern", "clarity"), (seeded, "concern", "clarity")):
        response = await staff_api.put(f"/api/comments/{comment}/feedback", json={"kind": kind, "theme": theme})
        assert response.status_code == 200, response.text
    if locale == "sv-SE":
        assert (await staff_api.patch("/api/me", json={"locale": "sv"})).status_code == 200

    # Signed in by hand: axe-core needs the page's CSP bypassed.
    context = await browser.new_context(viewport={"width": size[0], "height": size[1]}, locale=locale, bypass_csp=True)
    staff = Person(context, await context.new_page(), world.node)
    await staff.page.goto(world.node.http + "/")
    await staff.page.fill("#email", "staff@example.test")
    await staff.page.fill("#password", PASSWORD)
    await staff.page.click("form button[type=submit]")
    await staff.page.wait_for_selector(".projects")
    page = staff.page
    await page.goto(f"{world.node.http}/projects/{px}/reports")
    view = page.locator(".feedback")
    await expect(view.locator(".theme").first).to_be_visible()
    await expect(view).to_contain_text(count)
    from_mail = view.locator(f".quote-marked[data-comment='{emailed['id']}']")
    in_tandem = view.locator(f".quote-marked[data-comment='{seeded}']")
    # One row per marked comment: two concerns on one theme no longer share a key.
    await expect(from_mail).to_have_count(1)
    await expect(in_tandem).to_have_count(1)
    await expect(from_mail.locator(".quote-source")).to_have_text(f"{marked} · {by_email}")
    await expect(from_mail).to_contain_text(f"{concern}: “The colours are hard to read.”")
    await expect(in_tandem.locator(".quote-source")).to_have_text(marked)
    await shoot(staff, f"feedback-view-{locale}")
    assert await serious_violations(page) == []

    # By keyboard to the emailed comment in its thread.
    link = from_mail.get_by_role("link", name=open_comment)
    await expect(link).to_have_attribute("href", f"/projects/{px}/tasks/{task}#comment-{emailed['id']}")
    await link.focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(rf"/projects/{px}/tasks/{task}#comment-{emailed['id']}$"))
    await expect(page.locator(f"#comment-{emailed['id']}")).to_contain_text("The colours are hard to read.")
    await expect(page.locator(f"#comment-{emailed['id']} .fbmark-tag")).to_be_visible()
    assert staff.errors == []
    await staff.context.close()

    # The customer's report page holds no trace of the marking.
    customer = await Person.sign_in(browser, world.node, "customer@example.test", width=size[0], height=size[1])
    await customer.page.goto(f"{world.node.http}/projects/{px}/reports")
    await expect(customer.page.locator("#feedback-title")).to_be_visible()
    assert await customer.page.locator(".quote-marked, .quote-source").count() == 0
    assert customer.errors == []
    await customer.context.close()
