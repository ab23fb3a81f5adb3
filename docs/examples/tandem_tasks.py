#!/usr/bin/env python3
"""List a Tandem project's tasks, and move a task to another status, with a personal API token.

Make a token (the web app's API tokens page, or POST /api/me/tokens; see docs/API.md) with the ``read`` scope to
list and ``read`` + ``write`` to move, then:

    export TANDEM_URL=https://tandem.example.com
    export TANDEM_TOKEN=tnd_...
    python tandem_tasks.py list 12            # the tasks of project 12, with their statuses
    python tandem_tasks.py move 345 Done      # move task 345 to the status named "Done" (or give its id)

Only the Python standard library is needed. Errors are Tandem's JSON errors, printed with their code; the exit
status is 1 on an error (2 on a usage mistake).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class TandemError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class Tandem:
    """A tiny client: every call sends ``Authorization: Bearer <token>`` and reads a JSON answer."""

    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, **query: Any) -> Any:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())
            except ValueError:
                error = {"error": "http_error", "message": exc.reason}
            raise TandemError(exc.code, error.get("error", "error"), error.get("message", "")) from None
        return json.loads(raw) if raw else None

    def tasks(self, project_id: int) -> list[dict[str, Any]]:
        """Every task of the project you may see, following the pages."""
        tasks: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.call("GET", f"/api/projects/{project_id}/tasks", limit=200, cursor=cursor)
            tasks.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return tasks

    def statuses(self, project_id: int) -> list[dict[str, Any]]:
        return self.call("GET", f"/api/projects/{project_id}/statuses")["items"]  # type: ignore[no-any-return]

    def move(self, task_id: int, status: str) -> dict[str, Any]:
        """Move the task to the status named ``status`` (case-insensitive) or with that id."""
        task = self.call("GET", f"/api/tasks/{task_id}")
        choices = self.statuses(task["project_id"])
        match = [s for s in choices if s["name"].lower() == status.lower() or str(s["id"]) == status]
        if not match:
            names = ", ".join(s["name"] for s in choices)
            raise TandemError(422, "no_such_status", f"no status {status!r} in the project (there are: {names})")
        return self.call("PATCH", f"/api/tasks/{task_id}", {"status_id": match[0]["id"]})  # type: ignore[no-any-return]


def main(argv: list[str]) -> int:
    usage = "usage: tandem_tasks.py list PROJECT_ID | move TASK_ID STATUS"
    url, token = os.environ.get("TANDEM_URL"), os.environ.get("TANDEM_TOKEN")
    if not url or not token:
        print("set TANDEM_URL and TANDEM_TOKEN (a personal API token, tnd_...)", file=sys.stderr)
        return 2
    tandem = Tandem(url, token)
    try:
        if len(argv) == 2 and argv[0] == "list":
            project_id = int(argv[1])
            names = {s["id"]: s["name"] for s in tandem.statuses(project_id)}
            for task in tandem.tasks(project_id):
                print(f"{task['id']}\t{names.get(task['status_id'], '?')}\t{task['title']}")
            return 0
        if len(argv) == 3 and argv[0] == "move":
            moved = tandem.move(int(argv[1]), argv[2])
            print(f"moved {moved['id']} to status {moved['status_id']} (version {moved['version']})")
            return 0
    except TandemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError:
        pass
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
