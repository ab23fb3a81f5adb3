"""The screens ported from view functions to Preact, in a real browser against real nodes: editing a request field
(and the answers already given keeping their meaning), a customer permission turned off reaching open customer pages
live, a comment edit that conflicts with an edit made elsewhere (shown, never silently overwritten), and the files
page on a phone with 200-character file names.
"""

from __future__ import annotations

import json

import httpx
from playwright.async_api import Browser, WebSocketRoute, expect

from tests.e2e.test_portal import Person, choose_language, shoot
from tests.e2e.test_tasks_ui import DESKTOP, PHONE, no_unexpected_errors
from tests.nodes import Node
from tests.workspace import Workspace

LIVE_MS = 5000


def call(node: Node, ws: Workspace, role: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(
        method, f"{node.http}{path}", headers={"authorization": f"Bearer {ws.token(role)}"}, timeout=10, **kwargs
    )


async def test_a_request_field_is_edited_and_moved_and_old_answers_keep_their_meaning(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, b = two_nodes
    ws = database[1]
    px, field_id = ws.ids["px"], ws.ids["px_request_field"]
    added = call(
        a,
        ws,
        "owner",
        "POST",
        f"/api/projects/{px}/request-fields",
        json={"key": "budget", "label": "Budget", "kind": "number"},
    )
    assert added.status_code == 201
    owner = await Person.sign_in(browser, a, "owner@example.test", width=PHONE[0], height=PHONE[1])
    page = owner.page
    await page.goto(f"{a.http}/projects/{px}/settings")
    row = page.locator("[data-field-key='browser']")
    await row.locator("button.edit").click()
    form = page.locator(f"#edit-field-{field_id}")
    await expect(form).to_be_visible()
    await form.locator(f"#edit-field-{field_id}-label").fill("Which browser?")
    await form.locator(f"#edit-field-{field_id}-options").fill("Chrome\nSafari")
    # Taking an option away is said before saving: requests that chose it keep it.
    await expect(form.locator(f"#edit-field-{field_id}-dropped")).to_contain_text("Firefox")
    await form.locator(f"#edit-field-{field_id}-required").check()
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#people-status")).to_contain_text("Which browser? saved", timeout=LIVE_MS)
    await expect(form).to_have_count(0)
    await expect(row).to_contain_text("Chrome, Safari")
    # Refused (empty label): the form says why beside the field, keeps what was typed, and nothing changed.
    await row.locator("button.edit").click()
    await form.locator(f"#edit-field-{field_id}-label").fill("  ")
    await form.locator("button[type=submit]").click()
    await expect(form.locator(f"#edit-field-{field_id}-label-error")).to_be_visible()
    await form.locator("button.secondary").click()
    # Keyboard: move the budget field to the top.
    budget = page.locator("[data-field-key='budget']")
    await budget.locator("button.up").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#people-status")).to_contain_text("Budget moved", timeout=LIVE_MS)
    await expect(page.locator(".request-fields li").first).to_have_attribute("data-field-key", "budget")
    await shoot(owner, "request-fields-edit")
    fields = call(a, ws, "owner", "GET", f"/api/projects/{px}/request-fields").json()["items"]
    browser_field = next(f for f in fields if f["key"] == "browser")
    assert browser_field["label"] == "Which browser?" and browser_field["options"] == ["Chrome", "Safari"]
    assert browser_field["required"] is True and fields[0]["key"] == "budget"

    # The customer (Swedish, desktop): the request filed before keeps "Firefox" under the new label; the form asks
    # the new question with the new options.
    customer = await Person.sign_in(browser, b, "customer@example.test", width=DESKTOP[0], height=DESKTOP[1])
    await choose_language(customer.page, "sv")
    await expect(customer.page.locator("html")).to_have_attribute("lang", "sv")
    await customer.page.goto(f"{b.http}/projects/{px}/requests/{ws.ids['px_request']}")
    await expect(customer.page.locator(".request-fields")).to_contain_text("Which browser?")
    await expect(customer.page.locator(".request-fields")).to_contain_text("Firefox")
    await customer.page.goto(f"{b.http}/projects/{px}/requests")
    select = customer.page.locator("#field-browser")
    await expect(customer.page.locator("label[for=field-browser]")).to_contain_text("Which browser?")
    assert await select.locator("option").all_inner_texts() == ["—", "Chrome", "Safari"]
    await customer.page.fill("#request-title", "Ny sida")
    await customer.page.click(".request-form button[type=submit]")
    await expect(customer.page.locator("#field-browser-error")).to_have_text("Fyll i det här.")
    await select.select_option("Safari")
    await customer.page.click(".request-form button[type=submit]")
    await expect(customer.page.locator(".request-form .ok")).to_have_text("Förfrågan skickad: Ny sida", timeout=LIVE_MS)
    await expect(customer.page.locator(".request-list")).to_contain_text("Ny sida")
    for person in (owner, customer):
        assert no_unexpected_errors(person) == []
        await person.context.close()


async def test_a_permission_turned_off_takes_the_control_off_open_customer_pages(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, b = two_nodes
    ws = database[1]
    px = ws.ids["px"]
    customer = await Person.sign_in(browser, b, "customer@example.test", width=PHONE[0], height=PHONE[1])
    files = customer.page
    await files.goto(f"{b.http}/projects/{px}/files")
    await expect(files.locator("#file-upload")).to_be_visible()
    requests = await customer.context.new_page()
    await requests.goto(f"{b.http}/projects/{px}/requests")
    await expect(requests.locator(".request-form")).to_be_visible()
    task = await customer.context.new_page()
    await task.goto(f"{b.http}/projects/{px}/tasks/{ws.ids['px_shared_task']}")
    await expect(task.locator("#attach-file")).to_have_count(1)
    for page in (files, requests, task):
        await expect(page.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=LIVE_MS)

    owner = await Person.sign_in(browser, a, "owner@example.test", width=DESKTOP[0], height=DESKTOP[1])
    await owner.page.goto(f"{a.http}/projects/{px}/settings")
    await owner.page.uncheck("#perm-customer_upload")
    await expect(owner.page.locator("#perm-customer_upload-status")).to_have_text("Saved", timeout=LIVE_MS)
    # Without a reload, on another node: the upload controls go, and the page says why.
    await expect(files.locator("#file-upload")).to_have_count(0, timeout=LIVE_MS)
    await expect(files.locator("#upload-off")).to_be_visible()
    await expect(task.locator("#attach-file")).to_have_count(0, timeout=LIVE_MS)
    await owner.page.uncheck("#perm-customer_requests")
    await expect(owner.page.locator("#perm-customer_requests-status")).to_have_text("Saved", timeout=LIVE_MS)
    await expect(requests.locator(".request-form")).to_have_count(0, timeout=LIVE_MS)
    await expect(requests.locator("#requests-off")).to_be_visible()
    await shoot(customer, "files-upload-off")
    # Turned on again, they come back, live as well.
    await owner.page.check("#perm-customer_upload")
    await expect(files.locator("#file-upload")).to_be_visible(timeout=LIVE_MS)
    refused = call(b, ws, "customer", "POST", f"/api/projects/{px}/requests", json={"title": "still off?"})
    assert refused.status_code == 403

    # A viewer is offered nothing the API refuses them: no upload, no request form, no answer box.
    viewer = await Person.sign_in(browser, a, "viewer@example.test", width=PHONE[0], height=PHONE[1])
    await viewer.page.goto(f"{a.http}/projects/{px}/files")
    await expect(viewer.page.locator("#upload-off")).to_be_visible()
    await expect(viewer.page.locator("input[type=file]")).to_have_count(0)
    await viewer.page.goto(f"{a.http}/projects/{px}/requests/{ws.ids['px_request']}")
    await expect(viewer.page.locator("main h1")).to_contain_text("logo is blurry")
    await expect(viewer.page.locator("#reply-text")).to_have_count(0)
    for person in (owner, customer, viewer):
        assert no_unexpected_errors(person) == []
        await person.context.close()


async def test_a_comment_edit_that_conflicts_shows_the_newer_text(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, _ = two_nodes
    ws = database[1]
    task_id = ws.ids["px_shared_task"]
    posted = call(
        a,
        ws,
        "customer",
        "POST",
        f"/api/tasks/{task_id}/comments",
        json={"body": "first words", "visibility": "shared"},
    )
    assert posted.status_code == 201
    comment = posted.json()["id"]
    path = f"/api/comments/{comment}"

    customer = await Person.sign_in(browser, a, "customer@example.test", width=PHONE[0], height=PHONE[1])
    page = customer.page
    # The page's live socket, with a switch that holds back comment updates: the edit below then reaches the server
    # on an old version, as it would when an event is late.
    held: set[str] = set()

    def route(ws_route: WebSocketRoute) -> None:
        server = ws_route.connect_to_server()

        def forward(message: str | bytes) -> None:
            text = message if isinstance(message, str) else message.decode(errors="replace")
            if any(f'"{kind}"' in text for kind in held):
                return
            ws_route.send(message)

        server.on_message(forward)

    await page.route_web_socket("**/*", route)
    await page.goto(f"{a.http}/projects/{ws.ids['px']}/tasks/{task_id}")
    item = page.locator(f"#comment-{comment}")
    await expect(item).to_contain_text("first words")
    await expect(page.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=LIVE_MS)

    # 1. Edited elsewhere while typing, and the update arrives live: the newer text shows above the person's own.
    await item.get_by_role("button", name="Edit", exact=True).click()
    await item.locator(f"#edit-{comment}").fill("my desk words")
    assert call(a, ws, "customer", "PATCH", path, json={"body": "phone words", "version": 1}).status_code == 200
    conflict = item.locator(f"#conflict-{comment}")
    await expect(conflict).to_contain_text("phone words", timeout=LIVE_MS)
    await expect(item.locator(f"#edit-{comment}")).to_have_value("my desk words")
    await shoot(customer, "comment-edit-conflict")
    # Having seen it, the person chooses to save theirs.
    await item.get_by_role("button", name="Save mine instead").click()
    await expect(item.locator(".comment-body")).to_contain_text("my desk words", timeout=LIVE_MS)
    assert call(a, ws, "customer", "GET", f"/api/tasks/{task_id}/comments").json()["items"][0]["version"] == 3

    # 2. Edited elsewhere and the update is late: the server refuses the edit (version_conflict); the page fetches
    #    the comment and shows the newer text, keeping the person's, and nothing was overwritten.
    held.add("comment.updated")
    await item.get_by_role("button", name="Edit", exact=True).click()
    await item.locator(f"#edit-{comment}").fill("late desk words")
    assert call(a, ws, "customer", "PATCH", path, json={"body": "tablet words", "version": 3}).status_code == 200
    await item.get_by_role("button", name="Save", exact=True).click()
    await expect(conflict).to_contain_text("tablet words", timeout=LIVE_MS)
    await expect(item.locator("[role=alert].error")).to_contain_text("changed while you were editing")
    await expect(item.locator(f"#edit-{comment}")).to_have_value("late desk words")
    stored = call(a, ws, "customer", "GET", f"/api/tasks/{task_id}/comments").json()["items"][0]
    assert stored["body"] == "tablet words" and stored["version"] == 4

    # 3. Deleted by an admin while being edited (the event held back too): refused as deleted; the text is kept.
    held.add("comment.deleted")
    assert call(a, ws, "owner", "DELETE", path).status_code == 204
    await item.get_by_role("button", name="Save mine instead").click()
    await expect(item.locator(".comment-conflict")).to_contain_text("late desk words", timeout=LIVE_MS)
    await expect(item).to_contain_text("This comment was deleted.")
    assert [e for e in no_unexpected_errors(customer) if "409" not in e] == []
    await customer.context.close()


async def test_files_on_a_phone_with_200_character_names(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, _ = two_nodes
    ws = database[1]
    px = ws.ids["px"]
    long_staff = "Q" * 196 + ".pdf"
    staff_file = call(
        a,
        ws,
        "staff",
        "POST",
        f"/api/projects/{px}/files",
        params={"name": long_staff, "visibility": "shared"},
        content=b"%PDF-1.4 staff",
    )
    assert staff_file.status_code == 201, staff_file.text
    customer = await Person.sign_in(browser, a, "customer@example.test", width=PHONE[0], height=PHONE[1])
    page = customer.page
    await page.goto(f"{a.http}/projects/{px}/files")
    await expect(page.locator(f"[data-file-id='{staff_file.json()['id']}']")).to_contain_text(long_staff[:50])

    # Upload through the form: progress, then what was uploaded, in the list.
    long_mine = "w" * 150 + " " + "x" * 45 + ".txt"
    await page.set_input_files(
        "#file-upload", files=[{"name": long_mine, "mimeType": "text/plain", "buffer": b"hello from the phone"}]
    )
    await page.click(".upload-form button[type=submit]")
    await expect(page.locator("#files-message")).to_contain_text("Uploaded", timeout=LIVE_MS)
    mine = page.locator(".file-list li", has_text=long_mine[:40])
    await expect(mine).to_have_count(1)
    mine_id = await mine.get_attribute("data-file-id")
    # Only their own file takes a new version or a delete (the API refuses them the staff file).
    await expect(page.locator(f"[data-file-id='{staff_file.json()['id']}'] input[type=file]")).to_have_count(0)
    await page.set_input_files(
        f"#file-version-{mine_id}", files=[{"name": long_mine, "mimeType": "text/plain", "buffer": b"second"}]
    )
    await expect(page.locator("#files-message")).to_contain_text("New version", timeout=LIVE_MS)
    await expect(mine).to_contain_text("version 2")
    # Nothing wider than the phone, every file input named (axe-core walks this page in test_every_page.py, with a
    # 200-character name of its own).
    assert await customer.no_horizontal_overflow()
    unnamed = await page.evaluate(
        """() => [...document.querySelectorAll('input[type=file]')]
             .filter((i) => !(i.labels && i.labels.length && i.labels[0].textContent.trim())
                            && !i.getAttribute('aria-label'))
             .map((i) => i.id)"""
    )
    assert unnamed == []
    await shoot(customer, "files-long-names")
    # The keyboard reaches the new-version control of their file (the input behind its visible label).
    await page.locator(f"#file-version-{mine_id}").focus()
    assert await page.evaluate("document.activeElement.id") == f"file-version-{mine_id}"
    # Delete, confirmed first.
    await mine.get_by_role("button", name="Delete").click()
    await page.locator("dialog.confirm button.danger").click()
    await expect(page.locator("#files-message")).to_contain_text("deleted", timeout=LIVE_MS)
    await expect(mine).to_have_count(0)
    listed = call(a, ws, "customer", "GET", f"/api/projects/{px}/files").json()["items"]
    assert str(mine_id) not in {str(f["id"]) for f in listed}
    assert json.dumps(listed).count(long_staff) >= 1
    assert no_unexpected_errors(customer) == []
    await customer.context.close()
