"""Task threads through the API: rendering, visibility, edits, tombstones, reactions, mentions, unread, search."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from starlette.testclient import TestClient

from server.discussion.rendering import render_markdown
from tests.conftest import bearer
from tests.workspace import Workspace

# The API suites run on both engines (the PostgreSQL variant copies a seeded template database).
pytestmark = pytest.mark.both_databases

HOSTILE = [
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "[click](JAVASCRIPT:alert(1))",
    "[click](  javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "[x](vbscript:msgbox)",
    '<img src=x onerror="alert(1)">',
    '<a href="https://ok.example" onclick="steal()">x</a>',
    "<iframe src=https://evil.example></iframe>",
    "![pixel](https://tracker.example/p.gif)",
    "<svg onload=alert(1)>",
    '[x](https://ok.example "title" onmouseover="alert(1)")',
    "```\n<script>alert(1)</script>\n```",
    "<style>body{display:none}</style>",
]


class ActiveContent(HTMLParser):
    """Collects what a browser would act on: tags, attributes, link targets (text is inert)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            self.attributes.add(name)
            if name == "href":
                self.hrefs.append(value or "")


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_comes_out_inert(text: str) -> None:
    parser = ActiveContent()
    parser.feed(render_markdown(text))
    assert parser.tags <= {"p", "a", "code", "pre", "strong", "em"}, parser.tags
    assert parser.attributes <= {"href", "title", "rel"}, parser.attributes
    assert all(href.startswith(("https://", "http://", "mailto:")) for href in parser.hrefs), parser.hrefs


def test_light_markdown_renders() -> None:
    html = render_markdown("**bold** and `code`\n\n- one\n- two\n\n[site](https://example.com)")
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html and "<li>one</li>" in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">site</a>' in html


def post(
    client: TestClient,
    ws: Workspace,
    role: str,
    body: str,
    visibility: str = "shared",
    task: str = "px_shared_task",
    **extra: object,
) -> dict[str, object]:
    response = client.post(
        f"/api/tasks/{ws.ids[task]}/comments",
        headers=bearer(ws, role),
        json={"body": body, "visibility": visibility, **extra},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def listing(client: TestClient, ws: Workspace, role: str) -> list[dict[str, object]]:
    response = client.get(f"/api/tasks/{ws.ids['px_shared_task']}/comments", headers=bearer(ws, role))
    assert response.status_code == 200
    return response.json()["items"]  # type: ignore[no-any-return]


def test_internal_comments_are_invisible_to_customers_everywhere(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    px = ws.ids["px"]
    before_unread = client.get(f"/api/projects/{px}/unread", headers=bearer(ws, "customer")).json()
    before_list = listing(client, ws, "customer")
    secret = post(client, ws, "staff", "margin is thin ZEBRA", "internal")
    assert secret["visibility"] == "internal"
    assert [c["id"] for c in listing(client, ws, "customer")] == [c["id"] for c in before_list]
    assert secret["id"] in [c["id"] for c in listing(client, ws, "owner")]
    assert client.get(f"/api/projects/{px}/unread", headers=bearer(ws, "customer")).json() == before_unread
    assert client.get("/api/search?q=ZEBRA", headers=bearer(ws, "customer")).json()["items"] == []
    assert len(client.get("/api/search?q=ZEBRA", headers=bearer(ws, "owner")).json()["items"]) == 1
    assert client.get(f"/api/comments/{secret['id']}/revisions", headers=bearer(ws, "customer")).status_code == 404
    # A customer can neither post internal comments nor quote internal ones.
    refused = client.post(
        f"/api/tasks/{ws.ids['px_shared_task']}/comments",
        headers=bearer(ws, "customer"),
        json={"body": "x", "visibility": "internal"},
    )
    assert refused.status_code == 403
    quoting = client.post(
        f"/api/tasks/{ws.ids['px_shared_task']}/comments",
        headers=bearer(ws, "customer"),
        json={"body": "x", "visibility": "shared", "reply_to_id": secret["id"]},
    )
    assert quoting.status_code == 422


def test_thread_is_newest_first_and_paginates(client: TestClient, workspace: Workspace) -> None:
    ids = [post(client, workspace, "customer", f"message {i}")["id"] for i in range(5)]
    page = client.get(
        f"/api/tasks/{workspace.ids['px_shared_task']}/comments?limit=3", headers=bearer(workspace, "customer")
    ).json()
    assert [c["id"] for c in page["items"]] == ids[::-1][:3]
    rest = client.get(
        f"/api/tasks/{workspace.ids['px_shared_task']}/comments?limit=3&cursor={page['next_cursor']}",
        headers=bearer(workspace, "customer"),
    ).json()
    assert [c["id"] for c in rest["items"]][:2] == ids[::-1][3:]


def test_edit_keeps_history_and_delete_leaves_a_tombstone(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    comment = post(client, ws, "customer", "first **draft**")
    edited = client.patch(
        f"/api/comments/{comment['id']}", headers=bearer(ws, "customer"), json={"body": "second draft"}
    ).json()
    assert edited["body"] == "second draft" and edited["edited_at"] and edited["version"] == 2
    history = client.get(f"/api/comments/{comment['id']}/revisions", headers=bearer(ws, "staff")).json()["items"]
    assert [r["body"] for r in history] == ["first **draft**"]
    reply = post(client, ws, "staff", "noted", reply_to_id=comment["id"])
    assert reply["reply_to"]["excerpt"] == "second draft"
    assert client.delete(f"/api/comments/{comment['id']}", headers=bearer(ws, "customer")).status_code == 204
    shown = {c["id"]: c for c in listing(client, ws, "staff")}[comment["id"]]
    assert shown["deleted"] is True and shown["body"] == "" and shown["body_html"] == ""
    assert (
        client.patch(
            f"/api/comments/{comment['id']}", headers=bearer(ws, "customer"), json={"body": "zombie"}
        ).status_code
        == 409
    )
    quoted = {c["id"]: c for c in listing(client, ws, "staff")}[reply["id"]]
    assert quoted["reply_to"]["deleted"] is True and quoted["reply_to"]["excerpt"] == ""


def test_an_edit_based_on_an_older_version_is_refused(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    who = bearer(ws, "customer")
    comment = post(client, ws, "customer", "first")
    path = f"/api/comments/{comment['id']}"
    # Another tab edits first; the edit based on version 1 then changes nothing and says which version is current.
    assert client.patch(path, headers=who, json={"body": "from the phone", "version": 1}).json()["version"] == 2
    stale = client.patch(path, headers=who, json={"body": "from the desk", "version": 1})
    assert stale.status_code == 409
    assert stale.json()["error"] == "version_conflict" and stale.json()["params"] == {"version": 2}
    shown = {c["id"]: c for c in listing(client, ws, "staff")}[comment["id"]]
    assert shown["body"] == "from the phone" and shown["version"] == 2
    # Based on the current version it goes through; deleted meanwhile, it is refused as deleted.
    assert client.patch(path, headers=who, json={"body": "from the desk", "version": 2}).status_code == 200
    assert client.delete(path, headers=bearer(ws, "owner")).status_code == 204
    gone = client.patch(path, headers=who, json={"body": "again", "version": 3})
    assert gone.status_code == 409 and gone.json()["error"] == "deleted"


def test_reactions(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    target = ws.ids["px_shared_comment"]
    for role in ("customer", "staff"):
        client.post(f"/api/comments/{target}/reactions", headers=bearer(ws, role), json={"emoji": "🎉"})
    again = client.post(f"/api/comments/{target}/reactions", headers=bearer(ws, "customer"), json={"emoji": "🎉"})
    assert again.json()["reactions"] == [
        {"emoji": "🎉", "count": 2, "mine": True, "user_ids": [ws.users["customer"], ws.users["staff"]]}
    ]
    assert (
        client.post(
            f"/api/comments/{target}/reactions", headers=bearer(ws, "customer"), json={"emoji": "<b>"}
        ).status_code
        == 422
    )
    removed = client.delete(f"/api/comments/{target}/reactions/🎉", headers=bearer(ws, "customer")).json()
    assert removed["reactions"][0]["count"] == 1 and removed["reactions"][0]["mine"] is False


def test_mentions_notify_and_are_limited_to_the_project(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    comment = post(client, ws, "staff", "@Customer please approve", mentions=[ws.users["customer"]])
    assert comment["mentions"] == [ws.users["customer"]]
    notes = client.get("/api/notifications?unread=true", headers=bearer(ws, "customer")).json()["items"]
    assert notes[0]["kind"] == "mention" and notes[0]["comment_id"] == comment["id"]
    client.post("/api/notifications/read", headers=bearer(ws, "customer"), json={"ids": [notes[0]["id"]]})
    assert client.get("/api/notifications?unread=true", headers=bearer(ws, "customer")).json()["items"] == []
    # A customer cannot mention someone outside the project (another client's customer, a stranger).
    for outsider in ("other_customer", "stranger", "spare_customer"):
        response = client.post(
            f"/api/tasks/{ws.ids['px_shared_task']}/comments",
            headers=bearer(ws, "customer"),
            json={"body": "hey", "visibility": "shared", "mentions": [ws.users[outsider]]},
        )
        assert response.status_code == 422 and response.json()["error"] == "invalid_mention"
    # An internal comment cannot mention a customer: they could not read it.
    internal = client.post(
        f"/api/tasks/{ws.ids['px_shared_task']}/comments",
        headers=bearer(ws, "staff"),
        json={"body": "fyi", "visibility": "internal", "mentions": [ws.users["customer"]]},
    )
    assert internal.status_code == 422
    people = client.get(f"/api/projects/{ws.ids['px']}/mentionable", headers=bearer(ws, "customer")).json()["items"]
    names = {p["name"] for p in people}
    assert "Customer" in names and "Staff" in names and "Other Customer" not in names and "Stranger" not in names
    internal_people = client.get(
        f"/api/projects/{ws.ids['px']}/mentionable?internal=true", headers=bearer(ws, "staff")
    ).json()["items"]
    assert all(not p["is_customer"] for p in internal_people)


def test_unread_counts_follow_read_positions(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    px, task = ws.ids["px"], ws.ids["px_shared_task"]
    start = client.get(f"/api/projects/{px}/unread", headers=bearer(ws, "customer")).json()
    post(client, ws, "staff", "new for you")
    counts = client.get(f"/api/projects/{px}/unread", headers=bearer(ws, "customer")).json()
    assert counts["total"] == start["total"] + 1
    own = post(client, ws, "customer", "my own words do not count")
    assert client.get(f"/api/projects/{px}/unread", headers=bearer(ws, "customer")).json()["total"] == counts["total"]
    read = client.post(f"/api/tasks/{task}/read", headers=bearer(ws, "customer"), json={"comment_id": own["id"]}).json()
    assert read["unread"] == 0 and read["last_read_comment_id"] == own["id"]
    # Positions never move backwards (another device catching up late).
    back = client.post(f"/api/tasks/{task}/read", headers=bearer(ws, "customer"), json={"comment_id": 1})
    assert back.json()["last_read_comment_id"] == own["id"]
    assert client.get(f"/api/projects/{px}/unread", headers=bearer(ws, "customer")).json()["total"] == 0


def test_comment_limits(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    too_long = client.post(
        f"/api/tasks/{ws.ids['px_shared_task']}/comments",
        headers=bearer(ws, "customer"),
        json={"body": "x" * 10_001, "visibility": "shared"},
    )
    assert too_long.status_code == 422
    statuses = [
        client.post(
            f"/api/tasks/{ws.ids['px_shared_task']}/comments",
            headers=bearer(ws, "viewer"),
            json={"body": "viewers only read", "visibility": "shared"},
        ).status_code
    ]
    assert statuses == [403]
    codes = [
        client.post(
            f"/api/tasks/{ws.ids['px_shared_task']}/comments",
            headers=bearer(ws, "customer"),
            json={"body": f"spam {i}", "visibility": "shared"},
        ).status_code
        for i in range(22)
    ]
    assert codes[:20] == [201] * 20 and codes[20:] == [429, 429]
