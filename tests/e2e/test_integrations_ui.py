"""A project's integrations and a person's notification preferences in a real browser: a webhook added in the
page delivers to a real HTTP receiver on 127.0.0.1 and shows in its delivery log; a disabled one is turned back on;
a CSV file is checked (the dry run as a preview table, with per-row errors) and then imported; a notification
preference changed stays changed after a reload. At a desk's width in English and a phone's in Swedish."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.e2e.test_portal import Person, choose_language, shoot
from tests.nodes import Node, cluster
from tests.test_webhooks import Receiver, verify
from tests.workspace import Workspace

DEADLINE = 20.0


@pytest.fixture
def node(database: tuple[str, Workspace], tmp_path: Path) -> Iterator[Node]:
    # The webhook worker runs in the web process, polls often, and may post to this machine's loopback receiver.
    env = {"TANDEM_WEBHOOK_ALLOW_PRIVATE_TARGETS": "yes", "TANDEM_WEBHOOK_POLL_SECONDS": "0.2"}
    with cluster(tmp_path, database[0], None, count=1, extra_env=env) as (one,):
        yield one


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


async def test_webhook_added_delivers_and_shows_in_its_log(
    browser: Browser,
    node: Node,
    database: tuple[str, Workspace],
    receiver: Receiver,
) -> None:
    ws = database[1]
    px = ws.ids["px"]
    owner = await Person.sign_in(browser, node, ws.emails["owner"], width=1280, height=800)
    page = owner.page
    await page.goto(f"{node.http}/projects/{px}")
    await page.locator(".project-nav").get_by_role("link", name="Integrations").click()
    await expect(page.locator("h1")).to_contain_text("PX: Integrations")
    hooks = page.locator("#webhooks")
    await expect(hooks.locator(".webhook")).to_have_count(2)
    await expect(hooks.locator(".webhook-internal")).to_contain_text("Internal: internal and shared items")

    # The form checks what the API checks, beside each field, before anything is sent.
    await page.click("#hook-create-submit")
    await expect(page.locator("#hook-url-error")).to_contain_text("Fill this in")
    await expect(page.locator("#hook-events-error")).to_contain_text("Pick at least one event")
    await page.fill("#hook-url", "ftp://example.com/x")
    await page.click("#hook-create-submit")
    await expect(page.locator("#hook-url-error")).to_contain_text("http://")
    # What only the server knows comes back beside the field too: a URL with credentials in it.
    await page.fill("#hook-url", "http://user@127.0.0.1/x")
    await page.locator("#hook-events").get_by_label("A task changed status").check()
    await page.click("#hook-create-submit")
    await expect(page.locator("#hook-url")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#hook-url")).to_have_value("http://user@127.0.0.1/x")  # what was typed stays

    # By keyboard: the URL, the description, then the rest of the form to the button.
    await page.fill("#hook-url", receiver.url("/from-ui"))
    await page.focus("#hook-description")
    await page.keyboard.type("Our ticket system")
    await page.locator("#hook-create-submit").focus()
    await page.keyboard.press("Enter")
    secret = await page.locator("#hook-secret").input_value()
    assert secret
    row = hooks.locator(".webhook", has_text="/from-ui")
    await expect(row).to_contain_text("Our ticket system")
    await expect(row.locator("[data-enabled]")).to_have_attribute("data-enabled", "true")

    # A task moves: the receiver gets the signed event, and the log shows it delivered.
    async with httpx.AsyncClient(base_url=node.http, headers={"authorization": f"Bearer {ws.token('owner')}"}) as api:
        task = (await api.get(f"/api/tasks/{ws.ids['px_shared_task']}")).json()
        moved = await api.patch(
            f"/api/tasks/{task['id']}", json={"status_id": ws.ids["px_active"], "version": task["version"]}
        )
        assert moved.status_code == 200, moved.text
    [request] = receiver.wait_for(lambda rs: len([r for r in rs if r.path == "/from-ui"]) == 1, DEADLINE)
    assert verify(secret, request)
    await row.get_by_role("button", name="Delivery log").click()
    log = row.locator("table.deliveries")
    for _ in range(int(DEADLINE * 5)):  # the worker marks it delivered just after the receiver answers
        if await log.locator("tr[data-status=delivered]").count():
            break
        await row.get_by_role("button", name="Refresh").click()
        await expect(row.get_by_role("button", name="Refresh")).to_be_enabled()
    await expect(log.locator("tr[data-status=delivered]")).to_contain_text("A task changed status")
    await expect(log.locator("tr[data-status=delivered]")).to_contain_text("200")
    await shoot(owner, "integrations")

    # A disabled webhook is turned back on, and stays on.
    seeded = hooks.locator(f".webhook[data-webhook-id='{ws.ids['px_shared_webhook']}']")
    await expect(seeded.locator("[data-enabled]")).to_have_attribute("data-enabled", "false")
    await seeded.get_by_role("button", name="Turn back on").click()
    await expect(page.locator("#people-status")).to_contain_text("The webhook is on again")
    await page.reload()
    await expect(seeded.locator("[data-enabled]")).to_have_attribute("data-enabled", "true")
    await expect(seeded.get_by_role("button", name="Turn back on")).to_have_count(0)

    # Deleting asks first, naming where nothing more will be sent.
    await row.get_by_role("button", name="Delete").click()
    await expect(page.get_by_role("dialog")).to_contain_text(receiver.url("/from-ui"))
    await page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    await expect(row).to_have_count(0)
    assert [e for e in owner.errors if "Failed to load resource" not in e] == []


async def test_staff_member_reads_webhooks_but_is_not_offered_changes(
    browser: Browser,
    node: Node,
    database: tuple[str, Workspace],
) -> None:
    ws = database[1]
    staff = await Person.sign_in(browser, node, ws.emails["staff"], width=390, height=844)
    await staff.page.goto(f"{node.http}/projects/{ws.ids['px']}/integrations")
    await expect(staff.page.locator("#webhooks .webhook")).to_have_count(2)
    await expect(staff.page.locator("#webhook-create")).to_have_count(0)
    await expect(staff.page.locator("#webhooks").get_by_role("button", name="Delete")).to_have_count(0)
    await expect(staff.page.locator("#webhooks").get_by_role("button", name="Turn back on")).to_have_count(0)
    await expect(staff.page.locator("#csv-import")).to_be_visible()  # staff add tasks, so they import them
    customer = await Person.sign_in(browser, node, ws.emails["customer"], width=390, height=844)
    await customer.page.goto(f"{node.http}/projects/{ws.ids['px']}")
    await expect(customer.page.locator(".project-nav")).not_to_contain_text("Integrations")


async def test_csv_import_previews_then_imports_in_swedish_on_a_phone(
    browser: Browser,
    node: Node,
    database: tuple[str, Workspace],
) -> None:
    ws = database[1]
    px = ws.ids["px"]
    staff = await Person.sign_in(browser, node, ws.emails["staff"], width=390, height=844, locale="sv-SE")
    page = staff.page
    await choose_language(page, "sv")  # stored before the next page load reads it
    await page.goto(f"{node.http}/projects/{px}/integrations")
    await expect(page.locator("h1")).to_contain_text("PX: Integrationer")

    # No file: said beside the field.
    await page.click("#import-check")
    await expect(page.locator("#import-file-error")).to_contain_text("Välj en CSV-fil")
    # A file with a bad row: the preview names the row and why; nothing can be imported yet.
    bad = b"title,status,visibility\nFirst imported,,shared\nSecond imported,Nowhere,internal\n"
    await page.set_input_files("#import-file", files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": bad}])
    await page.click("#import-check")
    preview = page.locator("#import-preview")
    await expect(preview).to_contain_text("Förhandsvisning: inget är importerat än")
    await expect(preview.locator("tr[data-row='3']")).to_contain_text("Nowhere")
    await expect(preview.locator("tr[data-row='2']")).to_contain_text("Klar")
    await expect(page.locator("#import-confirm")).to_have_count(0)
    # Unknown columns are refused as a whole, in Swedish.
    await page.set_input_files(
        "#import-file", files=[{"name": "x.csv", "mimeType": "text/csv", "buffer": b"colour\nred\n"}]
    )
    await page.click("#import-check")
    await expect(page.locator("#import-result")).to_contain_text("kolumnen title")

    good = b"title,description,visibility\nFirst imported,From the sheet,shared\nSecond imported,,internal\n"
    await page.set_input_files("#import-file", files=[{"name": "good.csv", "mimeType": "text/csv", "buffer": good}])
    await page.click("#import-check")
    await expect(preview).to_contain_text("Alla 2 rader kan importeras")
    await shoot(staff, "import-preview")
    async with httpx.AsyncClient(base_url=node.http, headers={"authorization": f"Bearer {ws.token('staff')}"}) as api:
        before = (await api.get(f"/api/projects/{px}/tasks?limit=200")).json()["items"]
        assert not [t for t in before if t["title"].endswith(" imported")]  # the check stored nothing
        await page.click("#import-confirm")
        await expect(page.locator("#import-result")).to_contain_text("2 uppgifter har importerats")
        after = (await api.get(f"/api/projects/{px}/tasks?limit=200")).json()["items"]
    imported = {t["title"]: t["visibility"] for t in after if t["title"].endswith(" imported")}
    assert imported == {"First imported": "shared", "Second imported": "internal"}
    assert [e for e in staff.errors if "Failed to load resource" not in e] == []


async def test_notification_preferences_persist(
    browser: Browser,
    node: Node,
    database: tuple[str, Workspace],
) -> None:
    ws = database[1]
    for width, height, locale, label, saved in (
        (390, 844, "sv-SE", "Daglig sammanfattning", "Sparat."),
        (1280, 800, "en-GB", "Never", "Saved."),
    ):
        person = await Person.sign_in(browser, node, ws.emails["customer"], width=width, height=height, locale=locale)
        page = person.page
        await choose_language(page, locale[:2])  # the choice is kept with the account
        await page.goto(f"{node.http}/settings/tokens")
        mentions = page.locator("#prefs-mentions")
        # "Right away" is offered for mentions only: the API refuses it for everything else.
        await expect(page.locator("#prefs-others input")).to_have_count(3)
        # By keyboard: into the mentions group, then down to the choice.
        await mentions.locator("input:checked").focus()
        target = mentions.get_by_label(label)
        while not await target.is_checked():
            await page.keyboard.press("ArrowDown")
        await expect(page.locator("#people-status")).to_contain_text(saved)
        await page.reload()
        await expect(page.locator("#prefs-mentions").get_by_label(label)).to_be_checked()
        await shoot(person, "preferences")
        await person.context.close()
    async with httpx.AsyncClient(
        base_url=node.http, headers={"authorization": f"Bearer {ws.token('customer')}"}
    ) as api:
        assert (await api.get("/api/me/notification-preferences")).json()["mentions"] == "off"
