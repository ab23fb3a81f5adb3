"""Files: streamed uploads within a memory budget, downloads, versions, visibility, hostile names and types,
blobs removed with what they belong to, and the S3 store against a local S3-compatible server (moto)."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.files.storage import UPLOAD_MEMORY_BUDGET, S3Storage, UploadTooLarge, spool_upload
from server.settings import S3Settings
from tests.conftest import bearer, make_settings
from tests.nodes import cluster, free_port
from tests.workspace import Workspace

MIB = 1024 * 1024


async def test_spooling_an_upload_stays_within_the_memory_budget(tmp_path: Path) -> None:
    size = 8 * UPLOAD_MEMORY_BUDGET
    chunk = os.urandom(64 * 1024)
    expected = hashlib.sha256()
    for _ in range(size // len(chunk)):
        expected.update(chunk)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // len(chunk)):
            yield chunk

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        upload = await spool_upload(body(), tmp_path, limit=size)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert upload.size == size and upload.sha256 == expected.hexdigest()
    assert upload.path.stat().st_size == size
    assert peak < UPLOAD_MEMORY_BUDGET, f"peak {peak} bytes for an {size}-byte upload"
    upload.discard()

    with pytest.raises(UploadTooLarge):
        await spool_upload(body(), tmp_path / "small", limit=size - 1)
    assert list((tmp_path / "small").iterdir()) == []  # the partial file is gone


async def test_round_trip_of_a_large_file_through_a_real_node(database: tuple[str, Workspace], tmp_path: Path) -> None:
    url, ws = database
    data = os.urandom(6 * MIB + 123)  # larger than the upload memory budget
    with cluster(tmp_path, url, None, count=1) as (node,):
        headers = {"authorization": f"Bearer {ws.token('staff')}"}
        async with httpx.AsyncClient(base_url=node.http, headers=headers, timeout=30) as api:

            async def chunks() -> AsyncIterator[bytes]:
                for start in range(0, len(data), 256 * 1024):
                    yield data[start : start + 256 * 1024]

            created = await api.post(
                f"/api/projects/{ws.ids['px']}/files?name=big.bin&visibility=shared",
                content=chunks(),
                headers={"content-type": "application/octet-stream"},
            )
            assert created.status_code == 201, created.text
            file = created.json()
            assert file["size"] == len(data)
            assert file["versions"][0]["sha256"] == hashlib.sha256(data).hexdigest()
            digest = hashlib.sha256()
            async with api.stream("GET", file["download_url"]) as response:
                assert response.status_code == 200
                assert response.headers["content-length"] == str(len(data))
                assert response.headers["content-disposition"].startswith("attachment;")
                async for piece in response.aiter_bytes():
                    digest.update(piece)
            assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def upload(client: TestClient, ws: Workspace, role: str, query: str, data: bytes, **headers: str) -> httpx.Response:
    return client.post(
        f"/api/projects/{ws.ids['px']}/files?{query}", content=data, headers={**bearer(ws, role), **headers}
    )


def test_an_internal_file_is_not_found_for_customers(client: TestClient, workspace: Workspace) -> None:
    customer = bearer(workspace, "customer")
    internal = workspace.ids["px_internal_file"]
    for url in (
        f"/api/files/{internal}",
        f"/api/files/{internal}/download",
        f"/api/files/{internal}/download?version=1",
    ):
        response = client.get(url, headers=customer)
        assert response.status_code == 404 and "SECRET" not in response.text
    listed = client.get(f"/api/projects/{workspace.ids['px']}/files", headers=customer).json()["items"]
    assert internal not in {f["id"] for f in listed} and all(f["visibility"] == "shared" for f in listed)
    # A shared file on a task that later turns internal disappears for customers too.
    task = client.post(
        f"/api/projects/{workspace.ids['px']}/tasks",
        headers=bearer(workspace, "staff"),
        json={"title": "Soon internal", "visibility": "shared"},
    ).json()
    file = upload(client, workspace, "staff", f"name=a.txt&task_id={task['id']}", b"hello").json()
    assert file["visibility"] == "shared"
    assert client.get(f"/api/files/{file['id']}", headers=customer).status_code == 200
    client.patch(f"/api/tasks/{task['id']}", headers=bearer(workspace, "staff"), json={"visibility": "internal"})
    assert client.get(f"/api/files/{file['id']}/download", headers=customer).status_code == 404
    listed = client.get(f"/api/projects/{workspace.ids['px']}/files", headers=customer).json()["items"]
    assert file["id"] not in {f["id"] for f in listed}
    # Shared files cannot hang on internal tasks; customers cannot upload internal files.
    refused = upload(client, workspace, "staff", f"name=a.txt&visibility=shared&task_id={task['id']}", b"x")
    assert refused.status_code == 422
    assert upload(client, workspace, "customer", "name=a.txt&visibility=internal", b"x").status_code == 422


def test_hostile_names_and_types_are_stored_and_served_safely(
    client: TestClient, workspace: Workspace, tmp_path: Path
) -> None:
    page = b"<html><body><script>alert(document.cookie)</script></body></html>"
    created = upload(client, workspace, "customer", "name=../../etc/passwd", page, **{"content-type": "text/html"})
    assert created.status_code == 201, created.text
    file = created.json()
    assert file["name"] == "passwd" and file["content_type"] == "text/plain"
    assert not (tmp_path.parent / "etc").exists()
    stored = [p for p in (tmp_path / "files").rglob("*") if p.is_file() and p.read_bytes() == page]
    assert len(stored) == 1 and (tmp_path / "files") in stored[0].parents
    response = client.get(file["download_url"], headers=bearer(workspace, "customer"))
    assert response.content == page
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-disposition"] == "attachment; filename=\"passwd\"; filename*=UTF-8''passwd"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    # A real PNG claimed as HTML is a PNG, shown inline; an SVG (it can carry script) is an attachment.
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + b"\x00" * 64
    image = upload(client, workspace, "staff", "name=logo.png", png, **{"content-type": "text/html"}).json()
    assert image["content_type"] == "image/png"
    served = client.get(image["download_url"], headers=bearer(workspace, "staff"))
    assert served.headers["content-type"] == "image/png" and served.headers["content-disposition"].startswith("inline")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    vector = upload(client, workspace, "staff", "name=x.svg", svg, **{"content-type": "image/svg+xml"}).json()
    served = client.get(vector["download_url"], headers=bearer(workspace, "staff"))
    assert (
        served.headers["content-disposition"].startswith("attachment") and "svg" not in served.headers["content-type"]
    )
    # Control characters, quotes and non-ASCII survive only as a safe header.
    odd = upload(client, workspace, "staff", "name=" + quote('Rapport "Q1"\r\nX: y å.pdf'), b"%PDF-1.4")
    assert odd.status_code == 201
    disposition = client.get(odd.json()["download_url"], headers=bearer(workspace, "staff")).headers[
        "content-disposition"
    ]
    assert "\r" not in disposition and "\n" not in disposition
    assert disposition.startswith('attachment; filename="Rapport _Q1_X_ y _.pdf"')


def test_uploads_past_the_limit_are_refused(workspace: Workspace, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, upload_max_bytes=1000)
    with TestClient(create_app(settings)) as client:
        assert upload(client, workspace, "staff", "name=big.bin", b"x" * 1001).status_code == 413

        def chunked() -> Iterator[bytes]:
            yield b"x" * 800
            yield b"x" * 800

        refused = client.post(
            f"/api/projects/{workspace.ids['px']}/files?name=big.bin",
            content=chunked(),
            headers=bearer(workspace, "staff"),
        )
        assert refused.status_code == 413 and refused.json()["error"] == "too_large"
        assert upload(client, workspace, "staff", "name=ok.bin", b"x" * 1000).status_code == 201
    assert list((tmp_path / "uploads").iterdir()) == []


def test_new_versions_keep_the_old_ones(client: TestClient, workspace: Workspace) -> None:
    staff = bearer(workspace, "staff")
    file = upload(client, workspace, "staff", "name=plan.txt&visibility=shared", b"first plan").json()
    again = client.post(f"/api/files/{file['id']}/versions?name=plan-v2.txt", content=b"second plan", headers=staff)
    assert again.status_code == 201
    latest = again.json()
    assert latest["version"] == 2 and latest["name"] == "plan-v2.txt"
    assert [v["number"] for v in latest["versions"]] == [2, 1]
    assert client.get(latest["download_url"], headers=staff).content == b"second plan"
    assert client.get(latest["download_url"] + "?version=1", headers=staff).content == b"first plan"
    assert client.get(latest["download_url"] + "?version=3", headers=staff).status_code == 404


def blobs(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_deleting_a_task_or_project_removes_its_files(client: TestClient, workspace: Workspace, tmp_path: Path) -> None:
    owner = bearer(workspace, "owner")
    root = tmp_path / "files"
    before = blobs(root)
    task = workspace.ids["px_shared_task"]
    on_task = upload(client, workspace, "staff", f"name=a.txt&task_id={task}", b"on the task").json()
    comment = client.post(
        f"/api/tasks/{task}/comments",
        headers=bearer(workspace, "customer"),
        json={"body": "see", "visibility": "shared"},
    ).json()
    on_comment = upload(client, workspace, "customer", f"name=b.txt&comment_id={comment['id']}", b"attached").json()
    assert on_comment["task_id"] == task and on_comment["visibility"] == "shared"
    assert len(blobs(root) - before) == 2
    assert client.delete(f"/api/tasks/{task}", headers=owner).status_code == 204
    assert blobs(root) == before
    for file in (on_task, on_comment):
        assert client.get(f"/api/files/{file['id']}", headers=owner).status_code == 404
    assert client.delete(f"/api/projects/{workspace.ids['px']}", headers=owner).status_code == 204
    assert blobs(root) == set()  # every seeded file belonged to the project too


@pytest.fixture
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_files_on_an_s3_compatible_store(s3_server: str, workspace: Workspace, tmp_path: Path) -> None:
    s3 = S3Settings(endpoint_url=s3_server, access_key_id="test", secret_access_key="test")
    storage = S3Storage("tandem-files", "prefix", s3)
    storage.client.create_bucket(Bucket="tandem-files")
    settings = make_settings(tmp_path, storage_url="s3://tandem-files/prefix", s3=s3)
    data = os.urandom(3 * MIB)
    with TestClient(create_app(settings)) as client:
        file = upload(client, workspace, "staff", "name=report.bin&visibility=shared", data).json()
        keys = [o["Key"] for o in storage.client.list_objects_v2(Bucket="tandem-files")["Contents"]]
        assert len(keys) == 1 and keys[0].startswith(f"prefix/{workspace.ids['px']}/{file['id']}/")
        response = client.get(file["download_url"], headers=bearer(workspace, "customer"))
        assert response.status_code == 200 and response.content == data
        assert client.delete(f"/api/files/{file['id']}", headers=bearer(workspace, "staff")).status_code == 204
        assert storage.client.list_objects_v2(Bucket="tandem-files").get("Contents", []) == []
