"""Report dashboards in a real browser at phone width: live KPIs for staff and customer, charts under the CSP,
and the customer answering a feedback request."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from tests.e2e.test_portal import Person, shoot
from tests.nodes import Node
from tests.workspace import Workspace


async def test_dashboards_update_live_and_customers_answer_feedback(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, b = two_nodes
    ws = database[1]
    px = ws.ids["px"]
    staff = await Person.sign_in(browser, a, "staff@example.test", width=390, height=844)
    customer = await Person.sign_in(browser, b, "customer@example.test", width=390, height=844)
    for person in (staff, customer):
        await person.page.goto(f"{person.node.http}/projects/{px}/reports")
        await person.page.wait_for_selector(".kpi-tiles .kpi")
        await expect(person.page.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=5000)
        assert await person.page.locator(".chart canvas").count() == 3
    progress = ".kpi-tiles .kpi:first-child dd"
    await expect(staff.page.locator(progress)).to_have_text("0 % (0/3)")
    await expect(customer.page.locator(progress)).to_have_text("0 % (0/2)")  # the internal task is not counted
    assert await customer.page.locator("text=Feedback metric").count() == 0
    moved = httpx.patch(
        f"{a.http}/api/tasks/{ws.ids['px_shared_task']}",
        json={"status_id": ws.ids["px_done"]},
        headers={"authorization": f"Bearer {ws.token('staff')}"},
        timeout=10,
    )
    assert moved.status_code == 200
    await expect(staff.page.locator(progress)).to_have_text("33 % (1/3)", timeout=3000)
    await expect(customer.page.locator(progress)).to_have_text("50 % (1/2)", timeout=3000)
    await shoot(staff, "reports-staff")
    await shoot(customer, "reports-customer")

    form = customer.page.locator(".feedback-form")
    await form.locator("input[value='4']").check()
    await form.locator("textarea[name=helped]").fill("Quick replies")
    await form.locator("textarea[name=hindered]").fill("Unclear scope")
    await form.locator("button[type=submit]").click()
    await expect(customer.page.locator(".feedback [role=status]")).to_have_text("Thank you for your feedback.")
    await staff.page.reload()
    await staff.page.wait_for_selector(".feedback .theme")
    await expect(staff.page.locator(".feedback .theme h3").first).to_contain_text("Clarity")
    await staff.page.goto(f"{a.http}/reports")
    await staff.page.wait_for_selector(".portfolio table tbody tr")
    # The chart's colours are the health badges' colours (one design token each), in the order on track, at risk, late.
    same = await staff.page.evaluate(
        """() => {
          const css = (value) => { const probe = document.createElement('span'); probe.style.color = value;
            document.body.append(probe); const c = getComputedStyle(probe).color; probe.remove(); return c; };
          const drawn = document.querySelector('#chart-health').dataset.colours.split(' ').map(css);
          const badges = ['on_track', 'at_risk', 'late'].map(
            (h) => getComputedStyle(document.querySelector(`.legend .health-${h}`)).color);
          return {drawn, badges};
        }"""
    )
    assert same["drawn"] == same["badges"], same
    await shoot(staff, "reports-portfolio")
    assert staff.errors == [] and customer.errors == []
    await staff.context.close()
    await customer.context.close()
