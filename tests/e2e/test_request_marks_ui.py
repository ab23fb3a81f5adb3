"""In a real browser: staff mark a customer's reply by email to a request without a task (a real aiosmtpd inbound
server, smtplib) as feedback, by keyboard, on the request page's history; the feedback view quotes it with a link back
to the request; the customer's request page holds no trace of it. At a desk in English and on a phone in Swedish."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from server.mail.tokens import ItemKind
from tests.e2e.test_portal import Person, serious_violations, shoot
from tests.test_mail_in import MailWorld, sink, world
from tests.workspace import PASSWORD

__all__ = ["sink", "world"]

PHONE = (390, 844)
DESK = (1280, 800)
WORDS = {
    "en-GB": {
        "mark": "Mark as feedback",
        "concern": "Concern",
        "theme": "Theme",
        "save": "Save feedback",
        "tag": r"Feedback: Concern · Speed \(by email\)",
        "source": "Request reply marked by staff · reply by email",
        "open": "Open the request",
    },
    "sv-SE": {
        "mark": "Markera som återkoppling",
        "concern": "Oro",
        "theme": "Tema",
        "save": "Spara återkopplingen",
        "tag": r"Återkoppling: Oro · Tempo \(via e-post\)",
        "source": "Svar på förfrågan markerat av personalen · svar via e-post",
        "open": "Öppna förfrågan",
    },
}


@pytest.mark.parametrize(("size", "locale"), [(DESK, "en-GB"), (PHONE, "sv-SE")], ids=["desk-english", "phone-swedish"])
async def test_staff_mark_an_emailed_request_reply_as_feedback_by_keyboard(
    browser: Browser, world: MailWorld, size: tuple[int, int], locale: str
) -> None:
    ws, words = world.ws, WORDS[locale]
    px, request = ws.ids["px"], ws.ids["px_request"]
    staff_api = world.api("staff").client
    asked = await staff_api.post(f"/api/requests/{request}/triage", json={"action": "ask", "message": "Which logo?"})
    assert asked.status_code == 200, asked.text
    staff_step = asked.json()["history"][-1]["id"]
    code, answer = await world.send(
        world.address("customer", request, kind=ItemKind.REQUEST),
        "We are still waiting for the new logo.\n\nOn Mon, Tandem wrote:\n> Thanks for the request",
        sender="customer@example.test",
    )
    assert code == 250, answer
    event = (await staff_api.get(f"/api/requests/{request}")).json()["history"][-1]
    assert event["text"] == "We are still waiting for the new logo."
    if locale == "sv-SE":
        assert (await staff_api.patch("/api/me", json={"locale": "sv"})).status_code == 200

    # Signed in by hand: axe-core needs the page's CSP bypassed.
    context = await browser.new_context(viewport={"width": size[0], "height": size[1]}, locale=locale, bypass_csp=True)
    staff = Person(context, await context.new_page(), world.node)
    page = staff.page
    await page.goto(world.node.http + "/")
    await page.fill("#email", "staff@example.test")
    await page.fill("#password", PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector(".projects")
    await page.goto(f"{world.node.http}/projects/{px}/requests/{request}")
    item = page.locator(f"#request-event-{event['id']}")
    await expect(item).to_contain_text(event["text"])
    # Staff's own step has no control; the customer's emailed reply has one.
    await expect(page.locator(f"#request-event-{staff_step}")).to_contain_text("Which logo?")
    await expect(page.locator(f"#request-event-{staff_step} .fbmark")).to_have_count(0)
    await item.get_by_role("button", name=words["mark"]).focus()
    await page.keyboard.press("Enter")
    form = item.locator(".fbmark-form")
    await expect(form).to_be_visible()
    await form.get_by_label(words["concern"]).focus()
    await page.keyboard.press("Space")
    theme = form.get_by_label(words["theme"])
    await theme.focus()
    await page.keyboard.press("ArrowDown")  # communication -> speed
    await expect(theme).to_have_value("speed")
    await form.get_by_role("button", name=words["save"]).focus()
    await page.keyboard.press("Enter")
    await expect(item.locator(".fbmark-tag")).to_have_text(re.compile(words["tag"]))
    await expect(form).to_have_count(0)
    await shoot(staff, f"request-mark-{locale}")
    assert await serious_violations(page) == []
    assert (await staff_api.get(f"/api/projects/{px}/feedback")).json()["informal"] == 1

    # The feedback view quotes it, and its link leads back to the reply on the request page, by keyboard.
    await page.goto(f"{world.node.http}/projects/{px}/reports")
    quote = page.locator(f".feedback .quote-marked[data-request-event='{event['id']}']")
    await expect(quote.locator(".quote-source")).to_have_text(words["source"])
    link = quote.get_by_role("link", name=words["open"])
    await link.focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(rf"/projects/{px}/requests/{request}#request-event-{event['id']}$"))
    await expect(page.locator(f"#request-event-{event['id']} .fbmark-tag")).to_be_visible()
    assert staff.errors == []
    await staff.context.close()

    # The customer's request page holds no trace of the marking.
    customer = await Person.sign_in(browser, world.node, "customer@example.test", width=size[0], height=size[1])
    await customer.page.goto(f"{world.node.http}/projects/{px}/requests/{request}")
    await expect(customer.page.locator(f"#request-event-{event['id']}")).to_contain_text(event["text"])
    assert await customer.page.locator(".fbmark, .fbmark-tag").count() == 0
    assert customer.errors == []
    await customer.context.close()
