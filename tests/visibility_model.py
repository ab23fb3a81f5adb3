"""The probes of the visibility model test (tests/test_visibility_model.py).

``Scenario`` drives a real node: staff actions over REST and ``/yjs``, then ``check`` walks every GET route of the
OpenAPI document as a customer, a viewer and a customer of another client, plus their live sockets, and compares
what they got with the oracle (``tests/visibility_oracle.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import threading
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from channels.client import ClientError, TandemClient
from tests.crdt.yclient import YClient
from tests.visibility_oracle import (
    ITEM_PARAMS,
    MEMBERS,
    MISSING,
    READERS,
    ROUTE_KINDS,
    UNMODELLED_PARAMS,
    Item,
    Leak,
    World,
    find_ids,
)
from tests.workspace import Workspace

T = TypeVar("T")


class Loop:
    """An event loop in a thread of its own: the live sockets keep reading between hypothesis steps."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Env:
    """What one test run shares across examples: the node, the seeded workspace, the loop, the GET routes."""

    http: str
    ws_url: str
    workspace: Workspace
    loop: Loop
    get_routes: list[dict[str, Any]]
    document: dict[str, Any] = field(default_factory=dict)
    examples: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    earlier_hidden: set[str] = field(default_factory=set)


def get_routes(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The GET operations of the OpenAPI document: path, path parameter names, query parameters (name, schema)."""
    routes = []
    for path, operations in document["paths"].items():
        op = operations.get("get")
        if op is None:
            continue
        params = [p for p in op.get("parameters", []) if p["in"] == "path"]
        query = [p for p in op.get("parameters", []) if p["in"] == "query"]
        routes.append({"path": path, "params": [p["name"] for p in params], "query": query})
    return routes


def _enum_values(schema: dict[str, Any], document: dict[str, Any]) -> list[Any]:
    for option in schema.get("anyOf", [schema]):
        if "$ref" in option:
            option = document["components"]["schemas"][option["$ref"].rsplit("/", 1)[1]]
        if "enum" in option:
            return list(option["enum"])
        if "const" in option:
            return [option["const"]]
    return []


class Scenario:
    """One example: a fresh project with the customer and viewer as members, staff acting, readers probed."""

    def __init__(self, env: Env, document: dict[str, Any]) -> None:
        self.env = env
        self.document = document
        self.ws = env.workspace
        self.world = World(next(env.examples), env.earlier_hidden)
        self.steps: list[tuple[str, dict[str, Any]]] = []
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.live: dict[str, TandemClient] = {}
        self.frames: dict[str, list[dict[str, Any]]] = {r: [] for r in READERS}
        self.subscribed: dict[str, set[str]] = {r: set() for r in READERS}
        self.note_sockets: dict[int, YClient] = {}
        self.staff_notes: dict[int, YClient] = {}
        self.beacons = itertools.count(1)
        self.collectors: list[asyncio.Task[None]] = []
        self.previous: dict[str, tuple[set[str], dict[str, set[int]]]] = {r: (set(), {}) for r in READERS}
        try:
            self.run(self._setup())
        except BaseException:
            self.run(self._close())
            raise

    def run(self, coro: Awaitable[T]) -> T:
        return self.env.loop.run(coro)

    # -- set-up and tear-down -------------------------------------------------------------------------------------

    async def _setup(self) -> None:
        for role in ("owner", "staff", *READERS):
            self.clients[role] = httpx.AsyncClient(
                base_url=self.env.http,
                headers={"authorization": f"Bearer {self.ws.token(role)}"},
                timeout=30,
                # Drop idle connections before uvicorn does (5 s), or a reused one may close under a request.
                limits=httpx.Limits(keepalive_expiry=2),
            )
        owner = self.clients["owner"]
        self.project_marker = self.world.marker("p")
        created = await owner.post(
            "/api/projects", json={"name": f"Project {self.project_marker}", "client_id": self.ws.ids["client_x"]}
        )
        assert created.status_code == 201, created.text
        self.project = int(created.json()["id"])
        for role in MEMBERS:
            added = await owner.post(
                f"/api/projects/{self.project}/members", json={"user_id": self.ws.users[role], "role": role}
            )
            assert added.status_code == 201, added.text
        statuses = await self.clients["staff"].get(f"/api/projects/{self.project}/statuses")
        self.statuses = [int(s["id"]) for s in statuses.json()["items"]]
        # The beacon: a shared task staff rename after every step; once members' sockets have the new title,
        # every event of the step was delivered before it (one node publishes in commit order).
        beacon = await self._post("/api/projects/{p}/tasks", {"title": "beacon", "visibility": "shared"})
        self.beacon = int(beacon["id"])
        for role in READERS:
            client = await TandemClient.connect(self.env.ws_url, token=self.ws.token(role), ping_interval=None)
            self.live[role] = client
            self.collectors.append(asyncio.get_running_loop().create_task(self._collect(role, client)))
        for role in MEMBERS:
            for channel in (
                f"project:{self.project}:shared",
                f"report:project:{self.project}:shared",
                f"user:{self.ws.users[role]}",
                f"task:{self.beacon}:shared",
            ):
                await self.live[role].subscribe(channel)
                self.subscribed[role].add(channel)
        await self.live["other_customer"].subscribe(f"user:{self.ws.users['other_customer']}")

    async def _collect(self, role: str, client: TandemClient) -> None:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            async for frame in client.events():
                self.frames[role].append(frame)
                if frame.get("type") == "unsubscribed":
                    self.subscribed[role].discard(frame["channel"])

    def close(self) -> None:
        """Close every socket and delete the project; its hidden markers stay forbidden for later examples."""
        self.env.earlier_hidden |= {m for i in self.world.items if not i.visible for m in i.markers()}
        self.run(self._close())

    async def _close(self) -> None:
        try:
            for client in [*self.note_sockets.values(), *self.staff_notes.values()]:
                await client.close()
            for live in self.live.values():
                await live.close()
            for task in self.collectors:
                task.cancel()
            await asyncio.gather(*self.collectors, return_exceptions=True)
            if hasattr(self, "project"):
                deleted = await self.clients["owner"].delete(f"/api/projects/{self.project}")
                assert deleted.status_code == 204, deleted.text
        finally:
            for client in self.clients.values():
                await client.aclose()

    # -- staff actions ----------------------------------------------------------------------------------------------

    async def _post(self, path: str, body: dict[str, Any] | None = None, expect: int = 201, **kw: Any) -> Any:
        response = await self.clients["staff"].post(path.replace("{p}", str(self.project)), json=body, **kw)
        assert response.status_code == expect, f"POST {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    async def _patch(self, path: str, body: dict[str, Any], expect: int = 200) -> Any:
        response = await self.clients["staff"].patch(path, json=body)
        assert response.status_code == expect, f"PATCH {path}: {response.status_code} {response.text}"
        return response.json()

    def pick(self, kind: str, index: int) -> Item | None:
        items = self.world.of(kind)
        return items[index % len(items)] if items else None

    def step(self, name: str, **args: Any) -> None:
        """Do one action (a method ``do_<name>``), record it, then check every reader against the oracle."""
        self.steps.append((name, args))
        self.run(getattr(self, f"do_{name}")(**args))
        self.check()

    async def do_create_task(self, shared: bool, milestone: int | None = None) -> None:
        ms = self.pick("milestone", milestone) if milestone is not None else None
        marker = self.world.marker("t")
        body = {"title": f"Task {marker}", "description": f"about {marker}", "visibility": _vis(shared)}
        if ms is not None:
            body["milestone_id"] = ms.id
        if shared and ms is not None and not ms.shared:  # a shared task cannot belong to an internal milestone
            await self._post("/api/projects/{p}/tasks", body, expect=422)
            return
        out = await self._post("/api/projects/{p}/tasks", body)
        self.world.add(Item("task", int(out["id"]), marker, shared, milestone=ms))

    async def do_set_task_visibility(self, task: int, shared: bool) -> None:
        item = self.pick("task", task)
        if item is None:
            return
        refused = shared and item.milestone is not None and not item.milestone.deleted and not item.milestone.shared
        await self._patch(f"/api/tasks/{item.id}", {"visibility": _vis(shared)}, expect=422 if refused else 200)
        if not refused:
            item.shared = shared

    async def do_move_task(self, task: int, status: int) -> None:
        item = self.pick("task", task)
        if item is None:
            return
        await self._patch(f"/api/tasks/{item.id}", {"status_id": self.statuses[status % len(self.statuses)]})

    async def do_delete_task(self, task: int) -> None:
        item = self.pick("task", task)
        if item is None:
            return
        response = await self.clients["staff"].delete(f"/api/tasks/{item.id}")
        assert response.status_code == 204, response.text
        item.deleted = True
        # Comments and the files on the task or its comments go with it; notes and requests only lose the link.
        for other in self.world.items:
            if item in other.parents and other.kind == "note":
                other.parents.remove(item)
            elif item in other.parents:
                other.deleted = True
            if other.task is item:
                other.task = None
        for other in self.world.of("file"):
            if any(p.deleted and p.kind == "comment" for p in other.parents):
                other.deleted = True

    async def do_delete_note(self, note: int) -> None:
        item = self.pick("note", note)
        if item is None:
            return
        response = await self.clients["staff"].delete(f"/api/notes/{item.id}")
        assert response.status_code == 204, response.text
        item.deleted = True
        for version in self.world.of("version"):
            if item in version.parents:
                version.deleted = True
        editor = self.staff_notes.pop(item.id, None)
        if editor is not None:
            await editor.close()

    async def do_create_milestone(self, shared: bool) -> None:
        marker = self.world.marker("m")
        out = await self._post(
            "/api/projects/{p}/milestones", {"name": f"Milestone {marker}", "visibility": _vis(shared)}
        )
        self.world.add(Item("milestone", int(out["id"]), marker, shared))

    async def do_set_milestone_visibility(self, milestone: int, shared: bool) -> None:
        item = self.pick("milestone", milestone)
        if item is None:
            return
        await self._patch(f"/api/milestones/{item.id}", {"visibility": _vis(shared)})
        item.shared = shared

    async def do_complete_milestone(self, milestone: int) -> None:
        item = self.pick("milestone", milestone)
        if item is None:
            return
        await self._patch(f"/api/milestones/{item.id}", {"completed": True})
        asked = any(f.parents == [item] for f in self.world.of("feedback"))
        if item.shared and not asked:
            await self._new_feedback(item)
        item.completed = True

    async def do_ask_feedback(self, milestone: int | None) -> None:
        item = self.pick("milestone", milestone) if milestone is not None else None
        body = {"milestone_id": item.id} if item is not None else {}
        if item is not None and not item.shared:
            await self._post("/api/projects/{p}/feedback/requests", body, expect=422)
            return
        out = await self._post("/api/projects/{p}/feedback/requests", body)
        self.world.add(Item("feedback", int(out["id"]), self.world.marker("k"), True, [item] if item else []))

    async def _new_feedback(self, milestone: Item) -> None:
        listed = await self.clients["staff"].get(f"/api/projects/{self.project}/feedback/requests")
        known = {f.id for f in self.world.of("feedback")}
        new = [r for r in listed.json()["items"] if r["id"] not in known and r["milestone_id"] == milestone.id]
        assert len(new) == 1, listed.text
        self.world.add(Item("feedback", int(new[0]["id"]), self.world.marker("k"), True, [milestone]))

    async def do_create_note(self, shared: bool, task: int | None = None) -> None:
        parent = self.pick("task", task) if task is not None else None
        marker = self.world.marker("n")
        body: dict[str, Any] = {"title": f"Note {marker}", "visibility": _vis(shared), "content": f"{marker}\n"}
        if parent is not None:
            body["task_id"] = parent.id
        if shared and parent is not None and not parent.shared:
            await self._post("/api/projects/{p}/notes", body, expect=422)
            return
        out = await self._post("/api/projects/{p}/notes", body)
        self.world.add(Item("note", int(out["id"]), marker, shared, [parent] if parent else []))

    async def do_set_note_visibility(self, note: int, shared: bool) -> None:
        item = self.pick("note", note)
        if item is None:
            return
        refused = shared and any(not p.shared for p in item.parents)
        await self._patch(f"/api/notes/{item.id}", {"visibility": _vis(shared)}, expect=422 if refused else 200)
        if not refused:
            item.shared = shared

    async def do_write_note(self, note: int) -> None:
        item = self.pick("note", note)
        if item is None:
            return
        marker = self.world.marker("w")
        editor = self.staff_notes.get(item.id)
        if editor is None:
            base = self.env.ws_url.rsplit("/", 1)[0]
            editor = await YClient.connect(f"{base}/yjs/{item.id}", token=self.ws.token("staff"))
            self.staff_notes[item.id] = editor
            await asyncio.wait_for(editor.synced.wait(), 10)
        await editor.edit(f"{marker}\n")
        item.content.append(marker)
        # Stored before anyone sees it: the export (read from the store) has it once the room wrote it.
        exported = ""
        try:
            async with asyncio.timeout(30):  # generous: two shared cores, and the room batches its writes
                while marker not in (
                    exported := (await self.clients["staff"].get(f"/api/notes/{item.id}/export")).text
                ):
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(
                f"staff's edit of note {item.id} was not stored within 30 s: export {exported!r}, editor has "
                f"{str(editor)!r}, denied {editor.denied}, closed {editor.close_code}"
            ) from None

    async def do_save_version(self, note: int) -> None:
        item = self.pick("note", note)
        if item is None:
            return
        marker = self.world.marker("v")
        out = await self._post(f"/api/notes/{item.id}/versions", {"name": f"Version {marker}"})
        # A version is shared iff its note was shared when it was saved.
        self.world.add(Item("version", int(out["id"]), marker, item.shared, [item]))

    async def do_comment(self, task: int, shared: bool) -> None:
        parent = self.pick("task", task)
        if parent is None:
            return
        marker = self.world.marker("c")
        out = await self._post(
            f"/api/tasks/{parent.id}/comments", {"body": f"Comment {marker}", "visibility": _vis(shared)}
        )
        self.world.add(Item("comment", int(out["id"]), marker, shared, [parent]))

    async def do_delete_comment(self, comment: int) -> None:
        item = self.pick("comment", comment)
        if item is None:
            return
        response = await self.clients["staff"].delete(f"/api/comments/{item.id}")
        assert response.status_code == 204, response.text
        item.deleted = True

    async def do_upload_file(self, on: str, index: int, shared: bool | None) -> None:
        parent = self.pick(on, index) if on != "project" else None
        if on != "project" and parent is None:
            return
        marker = self.world.marker("f")
        params: dict[str, Any] = {"name": f"File {marker}.txt"}
        if parent is not None:
            params[f"{on}_id"] = parent.id
        if shared is not None:
            params["visibility"] = _vis(shared)
        response = await self.clients["staff"].post(
            f"/api/projects/{self.project}/files", params=params, content=f"contents {marker}\n".encode()
        )
        assert response.status_code == 201, response.text
        out = response.json()
        # Without a visibility, a file takes its parent's (a request's: shared; none: internal).
        expected = shared if shared is not None else (parent.shared if parent is not None else False)
        assert out["visibility"] == _vis(expected), out
        self.world.add(Item("file", int(out["id"]), marker, expected, [parent] if parent else []))

    async def do_create_request(self) -> None:
        marker = self.world.marker("r")
        out = await self._post("/api/projects/{p}/requests", {"title": f"Request {marker}", "description": marker})
        self.world.add(Item("request", int(out["id"]), marker, True))

    async def do_merge_request(self, request: int, task: int) -> None:
        item, target = self.pick("request", request), self.pick("task", task)
        if item is None or target is None or item.task is not None or item.completed:
            return
        expect = 200 if target.shared else 422
        await self._post(f"/api/requests/{item.id}/triage", {"action": "merge", "task_id": target.id}, expect=expect)
        if expect == 200:
            item.task, item.completed = target, True
            # The request's files follow it onto the task.
            for file in self.world.of("file"):
                if item in file.parents:
                    file.parents.append(target)

    # -- the check ------------------------------------------------------------------------------------------------

    def check(self) -> None:
        self.run(self._check())

    async def _check(self) -> None:
        await self._barrier()
        for role in READERS:
            self._check_frames(role)
            await self._check_routes(role)
        await self._check_note_sockets()
        await self._check_task_channels()
        for item in self.world.items:
            item.seen = item.seen or item.visible
        self.previous = {r: (self.world.hidden_markers(r), self.world.hidden_ids(r)) for r in READERS}

    async def _barrier(self) -> None:
        title = f"beacon {next(self.beacons)}"
        await self._patch(f"/api/tasks/{self.beacon}", {"title": title})
        async with asyncio.timeout(10):
            for role in MEMBERS:
                while not any(
                    f.get("type") == "event" and f.get("data", {}).get("task", {}).get("title") == title
                    for f in self.frames[role]
                ):
                    await asyncio.sleep(0.01)

    def _check_frames(self, role: str) -> None:
        for frame in self.frames[role]:
            text = json.dumps(frame, ensure_ascii=False)
            data = frame.get("data", {})
            kind = str(data.get("type", ""))
            if (kind.endswith(".removed") or "comment.deleted" in (kind, data.get("kind"))) and role in MEMBERS:
                # "gone from your view" (or a deleted comment's tombstone): allowed for what the member saw before,
                # never for what they did not.
                named = [
                    i
                    for i in self.world.items
                    if i.kind in ("task", "milestone", "file", "comment", "note")
                    and i.id in (data.get(f"{i.kind}_id"), (data.get(i.kind) or {}).get("id"))
                ]
                if any(i.seen for i in named):  # (SQLite reuses a deleted row's id: one of them may be meant)
                    self.assert_clean(role, f"/ws frame {frame.get('channel')}", text)
                    continue
            lenient = str(frame.get("channel", "")).startswith("report:")
            self.assert_clean(role, f"/ws frame {frame.get('channel')}", text, frame, lenient=lenient)
        self.frames[role].clear()

    def assert_clean(
        self, role: str, where: str, text: str, data: Any = None, kind: str | None = None, lenient: bool = False
    ) -> None:
        """No hidden marker in ``text``, no hidden id in ``data``. ``lenient``: hidden now and at the last check
        (live KPIs are debounced past the barrier: one may be computed on the state before the step)."""
        markers = self.world.hidden_markers(role)
        hidden = self.world.hidden_ids(role)
        if lenient:
            markers &= self.previous[role][0]
            hidden = {k: v & self.previous[role][1].get(k, set()) for k, v in hidden.items()}
        for marker in markers:
            if marker in text:
                raise Leak(f"{role} got {marker} ({self._describe(marker)}) from {where}: {text[:600]}")
        if data is not None:
            for id_kind, value in find_ids(data, kind):
                if value in hidden.get(id_kind, set()):
                    raise Leak(f"{role} got the id of hidden {id_kind} {value} from {where}: {text[:600]}")

    def _describe(self, marker: str) -> str:
        for item in self.world.items:
            if marker in item.markers():
                return f"{item.kind} {item.id}, shared={item.shared}, deleted={item.deleted}"
        return "an item of an earlier example"

    async def _get(self, role: str, url: str) -> httpx.Response:
        return await self.clients[role].get(url)

    async def _check_routes(self, role: str) -> None:
        calls: list[tuple[str, str, Item | None, str | None]] = []  # url, route, the item probed, missing-id twin
        for route in self.env.get_routes:
            calls.extend(self._expand(route, variants=role == "customer"))
        responses = await _gather_limited([self._get(role, url) for url, _, _, _ in calls], 6)
        twins: dict[str, httpx.Response] = {}
        for (url, route, item, twin), response in zip(calls, responses, strict=True):
            kind = ROUTE_KINDS.get(route)
            data = None
            if response.headers.get("content-type", "").startswith("application/json"):
                data = response.json()
            self.assert_clean(role, f"GET {url} ({response.status_code})", response.text, data, kind)
            if item is not None and twin is not None and not ((item.visible or item.tombstone) and role in MEMBERS):
                if twin not in twins:
                    twins[twin] = await self._get(role, twin)
                missing = twins[twin]
                if (response.status_code, response.content) != (missing.status_code, missing.content):
                    raise Leak(
                        f"{role}: GET {url} for hidden {item.kind} {item.id} answered {response.status_code} "
                        f"{response.text[:300]}, unlike a missing one ({twin}): {missing.status_code} {missing.text}"
                    )
        if role in MEMBERS:
            self._check_positive(role, calls, responses)

    def _check_positive(self, role: str, calls: list[Any], responses: list[httpx.Response]) -> None:
        """A member does see what the oracle shows (else a check that finds nothing could pass for the wrong reason)."""
        tasks = next(
            r
            for (u, route, _, _), r in zip(calls, responses, strict=True)
            if u == f"/api/projects/{self.project}/tasks"
        )
        unread = next(
            r
            for (u, route, _, _), r in zip(calls, responses, strict=True)
            if u == f"/api/projects/{self.project}/unread"
        ).json()
        counted: dict[str, int] = {}
        for comment in self.world.of("comment"):
            if comment.visible:
                key = str(comment.parents[0].id)
                counted[key] = counted.get(key, 0) + 1
        # Nobody reads here, and staff wrote every comment: each visible comment is unread, and nothing else.
        assert unread["tasks"] == counted, f"{role}'s unread counts {unread}, the oracle counts {counted}"
        assert unread["total"] == sum(counted.values()), unread
        listed = {t["id"] for t in tasks.json()["items"]}
        expected = {t.id for t in self.world.of("task") if t.visible} | {self.beacon}
        assert listed == expected, f"{role} lists tasks {sorted(listed)}, the oracle shows {sorted(expected)}"
        for (url, route, item, _), response in zip(calls, responses, strict=True):
            if item is not None and item.visible and url.endswith(str(item.id)) and route in ROUTE_KINDS:
                assert response.status_code == 200, f"{role}: GET {url}: {response.status_code} {response.text}"

    def _expand(self, route: dict[str, Any], variants: bool) -> list[tuple[str, str, Item | None, str | None]]:
        """The URLs to read a route at: with each item id the model knows (and a missing id's twin URL to compare
        refusals with), each with the query strings worth trying (``variants``; else only the bare one)."""
        path: str = route["path"]
        params: list[str] = route["params"]
        unknown = set(params) - set(ITEM_PARAMS) - UNMODELLED_PARAMS - {"project_id"}
        assert not unknown, f"GET {path} takes {unknown}: teach the visibility model about them"
        if "/feedback/" in path and "request_id" in params:
            return []  # feedback requests are only read through their project's list
        base = path.replace("{project_id}", str(self.project))
        if any(p in UNMODELLED_PARAMS for p in params):
            return [(_fill(base, {p: MISSING for p in params}), path, None, None)]
        item_params = [p for p in params if p in ITEM_PARAMS]
        urls: list[tuple[str, str, Item | None, str | None]] = []
        if not item_params:
            urls = [(base, path, None, None)]
        elif item_params == ["note_id", "version_id"]:
            for version in self.world.probe_ids("version"):
                note = version.parents[0]
                url = _fill(base, {"note_id": note.id, "version_id": version.id})
                # A hidden version of a visible note answers like a missing version; of a hidden note, like a
                # missing note.
                twin = (
                    _fill(base, {"note_id": note.id, "version_id": MISSING})
                    if note.visible
                    else _fill(base, {"note_id": MISSING, "version_id": version.id})
                )
                urls.append((url, path, version, twin))
        else:
            (param,) = item_params
            for item in self.world.probe_ids(ITEM_PARAMS[param]):
                urls.append((_fill(base, {param: item.id}), path, item, _fill(base, {param: MISSING})))
        queries = self._queries(route) if variants else self._queries(route)[:1]
        out = []
        for url, name, item, twin in urls:
            for query, query_item, query_twin in queries:
                if item is None and query_item is not None:  # an id in the query: refused like a missing one
                    out.append((url + query, name, query_item, url + (query_twin or "")))
                else:
                    out.append((url + query, name, item, (twin + query) if twin else None))
        return out

    def _queries(self, route: dict[str, Any]) -> list[tuple[str, Item | None, str | None]]:
        """Query strings to try on a route: none, then each parameter alone with each value worth trying; with an
        item's id, also the item and the same query naming a missing id instead."""
        out: list[tuple[str, Item | None, str | None]] = [("", None, None)]
        required = [p for p in route["query"] if p.get("required")]
        if required:
            out = []
        for param in route["query"]:
            name = param["name"]
            values: list[Any] = []
            if name == "q":
                # Every marker starts with "xq"; an example makes fewer items than a search answers (25 a kind).
                values = ["xq"]
            elif name in ITEM_PARAMS:
                extra = "".join(f"&{p['name']}={_DEFAULTS[p['name']]}" for p in required if p["name"] != name)
                out += [
                    (f"?{name}={i.id}{extra}", i, f"?{name}={MISSING}{extra}")
                    for i in self.world.probe_ids(ITEM_PARAMS[name])
                ]
                continue
            elif name == "project_id":
                values = [self.project]
            elif name == "group_by":
                values = ["milestone,visibility,status", "project,milestone"]
            elif name == "limit":
                values = [200]
            elif name == "version":
                values = [1]
            elif param["schema"].get("pattern", "").startswith("^("):
                values = re.findall(r"\w+", param["schema"]["pattern"])
            else:
                values = [v for v in _enum_values(param["schema"], self.document) if v is not None]
                if param["schema"].get("type") == "boolean" or any(
                    o.get("type") == "boolean" for o in param["schema"].get("anyOf", [])
                ):
                    values = [True, False]
            if name == "source":
                out += [(f"?source={v}&group_by=status,visibility", None, None) for v in values]
                continue
            extra = "".join(f"&{p['name']}={_DEFAULTS[p['name']]}" for p in required if p["name"] != name)
            out += [
                (f"?{name}={quote(str(v).lower() if isinstance(v, bool) else str(v))}{extra}", None, None)
                for v in values
            ]
        return out

    async def _check_note_sockets(self) -> None:
        """Open notes stay open only while visible; a hidden (or missing) note's socket is refused alike."""
        base = self.env.ws_url.rsplit("/", 1)[0]
        for note in self.world.probe_ids("note"):
            open_socket = self.note_sockets.get(note.id)
            if note.visible and open_socket is None:
                client = await YClient.connect(f"{base}/yjs/{note.id}", token=self.ws.token("customer"))
                self.note_sockets[note.id] = client
                await client.wait(lambda c=client: c.synced.is_set() or c.close_code is not None, what="synced")
                assert client.close_code is None, f"customer's socket on visible note {note.id}: {client.close_code}"
            elif not note.visible and open_socket is not None:
                code = await open_socket.wait_closed(timeout=3)
                if code != 4403:
                    raise Leak(f"customer's socket on note {note.id} stayed open after it was hidden ({code})")
                # What it held arrived while the note was visible; nothing came after (it closed).
                del self.note_sockets[note.id]
            elif not note.visible:
                for role in READERS:
                    client = await YClient.connect(f"{base}/yjs/{note.id}", token=self.ws.token(role))
                    try:
                        code = await client.wait_closed(timeout=5)
                    except TimeoutError:
                        raise Leak(f"{role} opened hidden note {note.id}: {str(client)!r}") from None
                    finally:
                        await client.close()
                    if code != 4403 or str(client):
                        raise Leak(f"{role} on hidden note {note.id}: closed {code}, text {str(client)!r}")
        for client in self.note_sockets.values():
            self.assert_clean("customer", "/yjs", str(client))

    async def _check_task_channels(self) -> None:
        """Members subscribe to visible tasks' shared threads; hidden ones are refused like missing ones."""
        missing = await _refusal(self.live["customer"], f"task:{MISSING}:shared")
        for task in self.world.probe_ids("task"):
            channel = f"task:{task.id}:shared"
            for role in MEMBERS:
                if task.visible and channel not in self.subscribed[role]:
                    await self.live[role].subscribe(channel)
                    self.subscribed[role].add(channel)
                elif task.deleted and channel in self.subscribed[role]:
                    # Nothing is published for a deleted task; clients drop it on task.removed, as this one does.
                    with contextlib.suppress(ClientError):
                        await self.live[role].unsubscribe(channel)
                    self.subscribed[role].discard(channel)
                elif not task.visible:
                    await _until(lambda r=role, c=channel: c not in self.subscribed[r], 3)
                    if channel in self.subscribed[role]:
                        raise Leak(f"{role} is still subscribed to {channel} of a hidden task")
                    refused = await _refusal(self.live[role], channel)
                    if refused != missing:
                        raise Leak(f"{role} subscribing to {channel}: {refused}, unlike a missing task: {missing}")
            refused = await _refusal(self.live["other_customer"], channel)
            if refused != missing:
                raise Leak(f"other_customer subscribing to {channel}: {refused}, unlike a missing task: {missing}")


async def _until(check: Any, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.01)


async def _refusal(client: TandemClient, channel: str) -> str | None:
    try:
        await client.subscribe(channel)
    except ClientError as exc:
        return str(exc.frame.get("code"))
    with contextlib.suppress(ClientError):
        await client.unsubscribe(channel)
    return None


async def _gather_limited(coros: list[Awaitable[T]], limit: int) -> list[T]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Awaitable[T]) -> T:
        async with gate:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))


def _fill(path: str, values: dict[str, int]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", str(value))
    return path


def _vis(shared: bool) -> str:
    return "shared" if shared else "internal"


# Values for a route's required query parameters while another one is varied.
_DEFAULTS = {"q": "xq"}
