"""HTTP security headers on pages, static files and the API: what a browser is told about every answer."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from server.app import WEB_DIST, create_app
from tests.conftest import bearer, make_settings
from tests.workspace import Workspace

# Every test here reads pages and static files of the built client: built first if missing, never skipped.
pytestmark = pytest.mark.usefixtures("built_web_client")


def policy(response: httpx.Response) -> dict[str, str]:
    """The Content-Security-Policy header as {directive: sources}."""
    directives = (part.strip().split(None, 1) for part in response.headers["content-security-policy"].split(";"))
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives if d}


def assert_hardened(response: httpx.Response) -> None:
    csp = policy(response)
    if "sandbox" in csp:
        # A downloaded file: nothing may load or run at all, even when a browser shows it inline.
        assert csp["default-src"] == "'none'"
    else:
        assert csp["default-src"] == "'self'"
        assert csp["script-src"] == "'self'"  # no inline script, no eval, no other origin
        assert csp["object-src"] == "'none'"
        assert csp["base-uri"] == "'none'"
        assert "unsafe-inline" not in csp["style-src"]
    assert csp["frame-ancestors"] == "'none'"  # no other site may frame any answer (clickjacking)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert response.headers["cross-origin-opener-policy"] == "same-origin"


def every_kind_of_answer(client: TestClient, ws: Workspace) -> dict[str, httpx.Response]:
    owner, customer = bearer(ws, "owner"), bearer(ws, "customer")
    asset = next((WEB_DIST / "assets").glob("*.js")).name
    return {
        "page": client.get("/"),
        "deep page": client.get(f"/projects/{ws.ids['px']}/tasks/{ws.ids['px_shared_task']}"),
        "asset": client.get(f"/assets/{asset}"),
        "health": client.get("/healthz"),
        "unknown path": client.get("/no/such/page"),
        "api read": client.get(f"/api/projects/{ws.ids['px']}", headers=owner),
        "api list": client.get("/api/projects", headers=customer),
        "api write": client.patch(f"/api/tasks/{ws.ids['px_shared_task']}", json={"title": "t"}, headers=owner),
        "api 401": client.get("/api/me"),
        "api 404": client.get(f"/api/tasks/{ws.ids['px_internal_task']}", headers=customer),
        "api 422": client.post("/api/auth/login", json={"email": 3}),
        "file download": client.get(f"/api/files/{ws.ids['px_shared_file']}/download", headers=customer),
        "openapi": client.get("/api/openapi.json"),
    }


def test_every_answer_carries_the_security_headers_and_api_answers_are_not_stored(
    client: TestClient, workspace: Workspace
) -> None:
    answers = every_kind_of_answer(client, workspace)
    assert answers["file download"].status_code == 200, answers["file download"].text
    for what, response in answers.items():
        assert_hardened(response)
        assert "strict-transport-security" not in response.headers, f"{what}: HSTS over plain HTTP"
        if what.startswith(("api", "file", "openapi")):
            assert response.headers["cache-control"] == "no-store", what


def test_pages_have_no_inline_script_and_a_fresh_style_nonce_each_time(client: TestClient) -> None:
    first, second = client.get("/"), client.get("/")
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/html")
    nonces = []
    for page in (first, second):
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) == []  # every script is a file
        nonce = re.search(r'<meta name="csp-nonce" content="([^"]+)"', page.text)
        assert nonce is not None and len(nonce.group(1)) >= 16
        assert policy(page)["style-src"] == f"'self' 'nonce-{nonce.group(1)}'"
        nonces.append(nonce.group(1))
    assert nonces[0] != nonces[1]
    assert "__CSP_NONCE__" not in first.text


def test_hsts_only_behind_tls(tmp_path: Path, workspace_template: tuple[Path, Workspace]) -> None:
    shutil.copy(workspace_template[0], tmp_path / "tandem.db")
    ws = workspace_template[1]
    settings = make_settings(tmp_path, env="production", base_url="https://tandem.example.com")
    with TestClient(create_app(settings), base_url="https://tandem.example.com") as client:
        for what, response in every_kind_of_answer(client, ws).items():
            if what == "file download":
                continue  # the blobs of the seeded files live in the shared test folder, not in tmp_path
            assert_hardened(response)
            assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains", what


def test_an_unknown_page_gets_the_shell_with_404_and_an_unknown_api_path_gets_json(client: TestClient) -> None:
    for path in ("/no/such/page", "/projects/abc", "/projects/1/nonsense"):
        page = client.get(path)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html"), path
        assert '<div id="app">' in page.text, path  # the client shows "not found" inside its header
        assert "__CSP_NONCE__" not in page.text
        assert_hardened(page)
    for path in ("/api/no/such", "/assets/missing.js"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.json()["error"] == "not_found", path
    assert client.post("/no/such/page").headers["content-type"].startswith("application/json")


def test_every_page_the_client_routes_is_served_with_200(client: TestClient) -> None:
    """A reload of any screen answers 200, not the unknown page's 404 (the routes are read from app/App.tsx)."""
    app_tsx = (Path(__file__).resolve().parents[1] / "web" / "src" / "app" / "App.tsx").read_text()
    paths = re.findall(r'<Route path="([^"]+)"', app_tsx)
    assert len(paths) > 15
    for path in paths:
        address = re.sub(r":\w+", "1", path)
        page = client.get(address)
        assert page.status_code == 200, (path, page.status_code)
        assert '<div id="app">' in page.text, path


def test_the_page_speaks_the_browsers_language_before_anyone_signs_in(client: TestClient) -> None:
    from server.i18n import pick_locale

    assert pick_locale("sv-SE,sv;q=0.9,en;q=0.8") == "sv"
    assert pick_locale("de-DE, en;q=0.5, sv;q=0.7") == "sv"
    assert pick_locale("sv;q=0, fr") == "en"
    assert pick_locale("") == "en"
    assert '<html lang="sv">' in client.get("/", headers={"accept-language": "sv-SE,sv;q=0.9"}).text
    assert '<html lang="en">' in client.get("/no/such/page", headers={"accept-language": "en-GB"}).text
