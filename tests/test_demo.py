"""The demo workspace (server/demo.py) has something to show on every screen, as its customer sees it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.testclient import TestClient

from server import migrate
from server.app import create_app
from server.db import Database
from server.demo import DEMO_PASSWORD, seed_demo
from tests.conftest import make_settings


def test_demo_has_notes_milestones_and_a_request_waiting_on_the_customer(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    migrate.upgrade(settings.database_url)

    async def seed() -> tuple[bool, bool]:
        db = Database(settings.database_url)
        try:
            return await seed_demo(db), await seed_demo(db)
        finally:
            await db.close()

    assert asyncio.run(seed()) == (True, False)  # the second run leaves it as it is
    with TestClient(create_app(settings)) as client:
        login = client.post("/api/auth/login", json={"email": "anna@acme.test", "password": DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        projects = {p["name"]: p["id"] for p in client.get("/api/projects").json()["items"]}
        web = projects["Website relaunch"]
        notes = client.get(f"/api/projects/{web}/notes").json()["items"]
        assert [n["title"] for n in notes] == ["Launch plan"]  # the internal note is not hers to see
        text = client.get(f"/api/notes/{notes[0]['id']}/export?format=markdown").text
        assert "# Launch plan" in text and "Switch DNS" in text
        milestones = client.get(f"/api/projects/{web}/milestones").json()["items"]
        assert [m["name"] for m in milestones] == ["Launch"]
        requests = client.get(f"/api/projects/{web}/requests").json()["items"]
        waiting = [r for r in requests if r["status"] == "needs_info"]
        assert [r["title"] for r in waiting] == ["Add gift cards to the shop"]
        history = client.get(f"/api/requests/{waiting[0]['id']}").json()["history"]
        assert [e["kind"] for e in history] == ["filed", "asked"]
        owner = TestClient(client.app)
        owner.post("/api/auth/login", json={"email": "owner@demo.tandem.test", "password": DEMO_PASSWORD})
        templates = owner.get("/api/workflow-templates").json()["items"]
        assert [t["name"] for t in templates] == ["Website project"]
