"""The notes list in a real browser: staff create, rename, share or make internal, and delete notes; a customer's
list follows live on another node; a saved version is restored in the editor. At a phone's and a desk's width,
staff in English, the customer in Swedish, partly by keyboard alone."""

from __future__ import annotations

import asyncio
import time

import httpx
import pycrdt
from playwright.async_api import Browser, expect

from tests.crdt.yclient import YClient
from tests.e2e.test_portal import Person, choose_language, shoot
from tests.nodes import Node
from tests.workspace import Workspace

DEADLINE = 15.0


async def test_notes_list_is_live_for_the_customer(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, b = two_nodes
    ws = database[1]
    px = ws.ids["px"]
    staff = await Person.sign_in(browser, a, ws.emails["staff"], width=1280, height=800)
    customer = await Person.sign_in(browser, b, ws.emails["customer"], width=390, height=844, locale="sv-SE")
    await choose_language(customer.page, "sv")
    for person in (staff, customer):
        await person.page.goto(f"{person.node.http}/projects/{px}/notes")
        await expect(person.page.locator("#hub-connection")).to_have_attribute("data-connection", "live")
    theirs, ours = customer.page.locator("#notes-list"), staff.page.locator("#notes-list")
    await expect(theirs).to_contain_text("px shared note")
    await expect(theirs).not_to_contain_text("SECRET")  # the internal note is not even named
    await expect(ours.locator(".note-internal")).to_contain_text("px internal note SECRET")
    # Customers are offered nothing that changes notes.
    await expect(customer.page.locator("#note-create")).to_have_count(0)
    await expect(customer.page.locator("#notes-list button")).to_have_count(0)
    await shoot(customer, "notes-customer")

    # Create by keyboard alone: an empty title is refused beside the field, before anything is sent.
    page = staff.page
    await page.focus("#note-title")
    await page.keyboard.press("Enter")
    await expect(page.locator("#note-title-error")).to_be_visible()
    await expect(page.locator("#note-title")).to_have_attribute("aria-invalid", "true")
    await page.keyboard.type("Kickoff minutes")
    await page.keyboard.press("Tab")  # to the audience: internal is the default
    await page.keyboard.press("ArrowDown")  # shared
    await expect(page.locator("input[name=note-audience][value=shared]")).to_be_checked()
    await expect(page.locator("#note-create-submit")).to_contain_text("Create shared note")
    await page.keyboard.press("Tab")  # to the task
    await page.keyboard.press("Tab")  # to the button
    await page.keyboard.press("Enter")
    await expect(page.locator("#people-status")).to_contain_text("Created “Kickoff minutes”")
    mine = ours.locator(".note-row", has_text="Kickoff minutes")
    await expect(mine).to_have_attribute("data-visibility", "shared")
    # Live on the customer's phone, on the other node.
    await expect(theirs.locator(".note-row", has_text="Kickoff minutes")).to_be_visible()
    await shoot(staff, "notes-staff")

    # Rename: the customer's list follows.
    await mine.get_by_role("button", name="Rename").click()
    await mine.locator("input").fill("Kickoff minutes, 3 May")
    await mine.locator("input").press("Enter")
    await expect(page.locator("#people-status")).to_contain_text("Renamed to “Kickoff minutes, 3 May”")
    await expect(theirs).to_contain_text("Kickoff minutes, 3 May")

    # Making it internal asks first, naming the change of audience; Escape cancels.
    mine = ours.locator(".note-row", has_text="Kickoff minutes, 3 May")
    await mine.locator(".note-make-internal").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("customers lose it at once")
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await expect(mine).to_have_attribute("data-visibility", "shared")
    await mine.locator(".note-make-internal").click()
    await page.get_by_role("dialog").get_by_role("button", name="Make internal").click()
    await expect(mine).to_have_attribute("data-visibility", "internal")
    await expect(mine.locator(".audience-internal")).to_be_visible()
    # It leaves the customer's list, live.
    await expect(theirs).not_to_contain_text("Kickoff minutes")
    await expect(theirs).to_contain_text("px shared note")

    # Sharing it again brings it back; deleting asks, then it is gone for both.
    await mine.locator(".note-share").click()
    await expect(page.get_by_role("dialog")).to_contain_text("can open it and read everything")
    await page.get_by_role("dialog").get_by_role("button", name="Share with the customer").click()
    await expect(theirs).to_contain_text("Kickoff minutes, 3 May")
    await mine.get_by_role("button", name="Delete").click()
    await expect(page.get_by_role("dialog")).to_contain_text("cannot be undone")
    await page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    await expect(ours).not_to_contain_text("Kickoff minutes")
    await expect(theirs).not_to_contain_text("Kickoff minutes")

    # A refused write says why and shows the list as it is: the note was deleted elsewhere meanwhile.
    async with httpx.AsyncClient(base_url=a.http, headers={"authorization": f"Bearer {ws.token('owner')}"}) as api:
        made = await api.post(f"/api/projects/{px}/notes", json={"title": "Doomed", "visibility": "internal"})
        doomed = ours.locator(".note-row", has_text="Doomed")
        await expect(doomed).to_be_visible()  # live for staff too
        await staff.context.set_offline(True)
        await doomed.get_by_role("button", name="Rename").click()
        await doomed.locator("input").fill("Saved")
        await doomed.locator("input").press("Enter")
        await expect(doomed.locator(".field-error")).to_be_visible()  # offline: the reason beside the field
        await staff.context.set_offline(False)
        await expect(page.locator("#hub-connection")).to_have_attribute(
            "data-connection", "live", timeout=DEADLINE * 1000
        )
        assert (await api.delete(f"/api/notes/{made.json()['id']}")).status_code == 204
    await expect(doomed).to_have_count(0)
    assert [
        e for e in staff.errors + customer.errors if "Failed to load resource" not in e and "ERR_INTERNET" not in e
    ] == []


async def test_restoring_a_saved_version(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, b = two_nodes
    ws = database[1]
    px, note = ws.ids["px"], ws.ids["px_shared_note"]
    staff = await Person.sign_in(browser, a, ws.emails["staff"], width=390, height=844)
    customer = await Person.sign_in(browser, b, ws.emails["customer"], width=1280, height=800)
    page = staff.page
    await page.goto(f"{a.http}/projects/{px}/notes")
    await page.locator(".note-link", has_text="px shared note").click()
    await page.wait_for_url(f"**/projects/{px}/notes/{note}")
    await expect(page.locator(".note-page .connection")).to_have_attribute("data-connection", "live")
    await customer.page.goto(f"{b.http}/projects/{px}/notes/{note}")
    await expect(customer.page.locator(".note-page .connection")).to_have_attribute("data-connection", "live")
    await expect(page.locator("#note-audience")).to_contain_text("Shared: the customer sees it")
    editor = page.locator("#note-text")
    await expect(editor).to_contain_text("px shared note text")

    # Edit, then save that as a version.
    await editor.click()
    await page.keyboard.press("Control+End")
    await page.keyboard.type(" plus a later edit")
    await expect(customer.page.locator("#note-text")).to_contain_text("plus a later edit")
    await page.fill("#version-name", "with the edit")
    await page.keyboard.press("Enter")
    await expect(page.locator("#version-status")).to_contain_text("Saved version “with the edit”")
    versions = page.locator("#note-versions")
    await expect(versions.locator("li")).to_have_count(2)

    # Restoring asks first, then everyone editing sees the version's text; the server stores it.
    seeded = versions.locator(f"li[data-version-id='{ws.ids['px_shared_note_version']}']")
    await seeded.get_by_role("button", name="Restore").click()
    await expect(page.get_by_role("dialog")).to_contain_text("after the review")
    await page.get_by_role("dialog").get_by_role("button", name="Restore").click()
    await expect(page.locator("#version-status")).to_contain_text("Restored version “after the review”")
    await expect(editor).to_have_text("px shared note text")
    # (the customer's editor also shows staff's cursor, labelled with their name)
    await expect(customer.page.locator("#note-text")).to_contain_text("px shared note text")
    await expect(customer.page.locator("#note-text")).not_to_contain_text("later edit")
    # Customers may read versions but are not offered restoring one.
    await expect(customer.page.locator(".version-restore")).to_have_count(0)
    await shoot(staff, "note-restored")
    async with httpx.AsyncClient(base_url=b.http, headers={"authorization": f"Bearer {ws.token('staff')}"}) as api:
        deadline = time.monotonic() + DEADLINE
        while (text := (await api.get(f"/api/notes/{note}/export")).text) != "px shared note text":
            assert time.monotonic() < deadline, text
            await page.wait_for_timeout(100)
        # The edit it replaced is kept in the version saved before.
        listed = (await api.get(f"/api/notes/{note}/versions")).json()["items"]
        saved = next(v for v in listed if v["name"] == "with the edit")
        assert (await api.get(f"/api/notes/{note}/versions/{saved['id']}")).json()["text"].endswith("plus a later edit")
    assert [e for e in staff.errors + customer.errors if "Failed to load resource" not in e] == []


def rich_note(a: Node, ws: Workspace, content: str) -> int:
    created = httpx.post(
        f"{a.http}/api/projects/{ws.ids['px']}/notes",
        timeout=10,
        headers={"authorization": f"Bearer {ws.token('staff')}"},
        json={"title": "Launch plan", "visibility": "shared", "content": content},
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def open_note(person: Person, ws: Workspace, note: int) -> None:
    await person.page.goto(f"{person.node.http}/projects/{ws.ids['px']}/notes/{note}")
    await expect(person.page.locator(".note-page .connection")).to_have_attribute(
        "data-connection", "live", timeout=DEADLINE * 1000
    )


async def test_co_editing_rich_text_with_the_toolbar_and_shortcuts(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    """Staff (desk, English) formats by shortcut, by mouse and by keyboard on the toolbar; the customer (phone,
    Swedish, on the other node) sees each format arrive live, with staff's named cursor, and ticks the checklist."""
    a, b = two_nodes
    ws = database[1]
    note = rich_note(a, ws, "Intro")
    staff = await Person.sign_in(browser, a, ws.emails["staff"], width=1280, height=800)
    customer = await Person.sign_in(browser, b, ws.emails["customer"], width=390, height=844, locale="sv-SE")
    await choose_language(customer.page, "sv")
    for person in (staff, customer):
        await open_note(person, ws, note)
    page, theirs = staff.page, customer.page.locator("#note-text")
    text = page.locator("#note-text")
    await expect(text).to_contain_text("Intro")
    # A document, not source: no line numbers, no markdown syntax on screen; the toolbar is named in each language.
    await expect(page.locator(".cm-gutters, .cm-lineNumbers")).to_have_count(0)
    await expect(page.get_by_role("toolbar", name="Formatting")).to_be_visible()
    await expect(customer.page.get_by_role("toolbar", name="Formatering")).to_be_visible()
    for label in ("Fetstil", "Kursiv", "Rubrik 1", "Punktlista", "Numrerad lista", "Checklista", "Länk"):
        await expect(customer.page.get_by_role("button", name=label, exact=True)).to_be_visible()

    # A heading by shortcut (Ctrl+Alt+1).
    await text.click()
    await page.keyboard.press("Control+End")
    await page.keyboard.press("Enter")
    await page.keyboard.type("Plan")
    await page.keyboard.press("Control+Alt+1")
    await expect(text.locator("h1")).to_have_text("Plan")
    await expect(page.get_by_role("button", name="Heading 1", exact=True)).to_have_attribute("aria-pressed", "true")
    await expect(theirs.locator("h1")).to_contain_text("Plan")

    # Bold by the toolbar, with the mouse, on a selection; then by shortcut (Ctrl+B) while typing.
    await page.keyboard.press("End")
    await page.keyboard.press("Enter")
    await page.keyboard.type("launch Friday")
    await page.keyboard.press("Shift+Home")
    bold = page.get_by_role("button", name="Bold", exact=True)
    await bold.click()
    await expect(bold).to_have_attribute("aria-pressed", "true")
    await expect(theirs.locator("strong")).to_contain_text("launch Friday")
    await page.keyboard.press("End")
    await page.keyboard.press("Control+B")  # off: what follows is plain
    await expect(bold).to_have_attribute("aria-pressed", "false")
    await page.keyboard.type(" see the ")
    await page.keyboard.press("Control+B")
    await page.keyboard.type("brief")
    await page.keyboard.press("Control+B")
    await expect(theirs.locator("strong").nth(1)).to_contain_text("brief")
    # A link by Ctrl+K on the selected word: the address field opens, Enter applies, the focus is back in the text.
    for _ in "brief":
        await page.keyboard.press("Shift+ArrowLeft")
    await page.keyboard.press("Control+K")
    address = page.get_by_label("Link address")
    await expect(address).to_be_focused()
    await page.keyboard.type("not a link")
    await page.keyboard.press("Enter")
    await expect(page.locator("#note-link-error")).to_be_visible()  # refused, beside the field, in words
    await address.fill("example.com/brief")
    await page.keyboard.press("Enter")
    await expect(text).to_be_focused()
    await expect(theirs.locator("a[href='https://example.com/brief']")).to_contain_text("brief")

    # A checklist by keyboard alone: Shift+Tab to the toolbar, arrows to "Checklist", Enter; typing goes on.
    await page.keyboard.press("End")
    await page.keyboard.press("Enter")
    await page.keyboard.press("Shift+Tab")
    await expect(page.locator(".note-toolbar .tool[tabindex='0']")).to_be_focused()
    await page.keyboard.press("End")  # the last tool: Link
    await expect(page.locator(".tool-link")).to_be_focused()
    await page.keyboard.press("ArrowLeft")
    checklist = page.get_by_role("button", name="Checklist", exact=True)
    await expect(checklist).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(text).to_be_focused()
    await page.keyboard.type("send photos")
    await expect(checklist).to_have_attribute("aria-pressed", "true")
    item = theirs.locator("ul[data-type='taskList'] li", has_text="send photos")
    await expect(item).to_be_visible()
    # The customer sees staff's cursor, named, and ticks the item; staff sees it ticked.
    await expect(customer.page.locator(".collaboration-carets__label", has_text="Staff")).to_be_visible()
    await customer.page.get_by_role("checkbox", name="Att göra: send photos").check()
    await expect(text.locator("ul[data-type='taskList'] li")).to_have_attribute("data-checked", "true")
    await shoot(staff, "note-rich")
    await shoot(customer, "note-rich")

    # The server reads the same structure: the markdown export has every format.
    async with httpx.AsyncClient(base_url=b.http, headers={"authorization": f"Bearer {ws.token('customer')}"}) as api:
        expected = (
            "# Launch plan\n\nIntro\n\n# Plan\n\n**launch Friday** see the [**brief**](https://example.com/brief)"
            "\n\n- [x] send photos"
        )
        deadline = time.monotonic() + DEADLINE
        while (markdown := (await api.get(f"/api/notes/{note}/export?format=markdown")).text) != expected:
            assert time.monotonic() < deadline, markdown
            await page.wait_for_timeout(100)
    assert [e for e in staff.errors + customer.errors if "Failed to load resource" not in e] == []


async def test_a_stock_yjs_client_and_the_browser_edit_the_same_fragment(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    """A y-websocket peer that is not the web client (pycrdt, the same wire protocol as the stock Node client)
    writes a heading and bold text into the fragment: the browser shows them formatted; the browser's typing
    reaches the peer."""
    a, b = two_nodes
    ws = database[1]
    note = rich_note(a, ws, "")
    staff = await Person.sign_in(browser, a, ws.emails["staff"], width=390, height=844)
    await open_note(staff, ws, note)
    peer = await YClient.connect(f"ws://127.0.0.1:{b.port}/yjs/{note}", token=ws.token("owner"))
    try:
        await asyncio.wait_for(peer.synced.wait(), 10)
        await peer.add_block(pycrdt.XmlElement("heading", {"level": 2}, [pycrdt.XmlText("From the peer")]), 0)
        paragraph = await peer.add_block(pycrdt.XmlElement("paragraph", contents=[pycrdt.XmlText("plain and ")]), 1)
        await peer.change(lambda: paragraph.children[0].insert(len("plain and "), "bold", {"bold": {}}))
        text = staff.page.locator("#note-text")
        await expect(text.locator("h2")).to_have_text("From the peer")
        await expect(text.locator("strong")).to_have_text("bold")
        await text.locator("strong").click()
        await staff.page.keyboard.press("End")
        await staff.page.keyboard.type(" typed in the browser")
        await peer.wait(lambda: "typed in the browser" in str(peer), timeout=DEADLINE, what="the browser's typing")
        assert str(peer).startswith("From the peer\n\nplain and bold")
    finally:
        await peer.close()


async def test_a_viewer_reads_the_note_without_a_toolbar(
    browser: Browser,
    two_nodes: list[Node],
    database: tuple[str, Workspace],
) -> None:
    a, _ = two_nodes
    ws = database[1]
    note = rich_note(a, ws, "# Agenda\n\n- [ ] one")
    viewer = await Person.sign_in(browser, a, ws.emails["viewer"], width=390, height=844)
    await open_note(viewer, ws, note)
    page = viewer.page
    await expect(page.locator("#note-read-only")).to_contain_text("You can read this note; you cannot edit it.")
    await expect(page.locator(".note-toolbar")).to_have_count(0)
    text = page.locator("#note-text")
    await expect(text.locator("h1")).to_have_text("Agenda")
    await expect(text).to_have_attribute("contenteditable", "false")
    await expect(text).to_have_attribute("aria-readonly", "true")
    await expect(page.get_by_role("checkbox")).to_be_disabled()
    await choose_language(page, "sv")
    await expect(page.locator("#note-read-only")).to_contain_text("Du kan läsa anteckningen men inte ändra den.")
    await shoot(viewer, "note-viewer")
