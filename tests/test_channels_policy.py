"""Every live channel kind x every role, through a real node: exactly who may subscribe, and refusals that all
look the same (no channel's existence leaks through the answer).

The live counterpart of `tests/test_authorization.py::test_matrix` for ``server/live/channels_policy.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channels.client import ClientError, TandemClient
from tests.nodes import Node, cluster
from tests.workspace import ROLES, Workspace

STAFF = {"owner", "staff"}
PX_PEOPLE = STAFF | {"customer", "viewer"}  # everyone who sees project X; customer and viewer are of client X
NOBODY: set[str] = set()


def matrix(ws: Workspace) -> list[tuple[str, set[str]]]:
    """(channel, the roles that may subscribe to it)."""
    ids = ws.ids
    px, py, pb = ids["px"], ids["py"], ids["pb"]
    shared_task, internal_task = ids["px_shared_task"], ids["px_internal_task"]
    return [
        (f"project:{px}:staff", STAFF),
        (f"project:{px}:shared", PX_PEOPLE),
        (f"report:project:{px}:staff", STAFF),
        (f"report:project:{px}:shared", PX_PEOPLE),
        (f"task:{shared_task}:staff", STAFF),
        (f"task:{shared_task}:shared", PX_PEOPLE),
        (f"task:{internal_task}:staff", STAFF),
        (f"task:{internal_task}:shared", STAFF),  # an internal task has no customer audience
        (f"room:project:{px}", PX_PEOPLE),
        (f"room:task:{shared_task}", PX_PEOPLE),
        (f"room:task:{shared_task}:staff", STAFF),
        (f"room:task:{internal_task}", STAFF),
        # Client Y's project: its customer, and organization A's staff; not client X's people.
        (f"project:{py}:shared", STAFF | {"other_customer"}),
        (f"project:{py}:staff", STAFF),
        (f"task:{ids['py_shared_task']}:shared", STAFF | {"other_customer"}),
        (f"room:project:{py}", STAFF | {"other_customer"}),
        # Organization B's: only its owner, whatever their role in A.
        (f"project:{pb}:shared", {"stranger"}),
        (f"project:{pb}:staff", {"stranger"}),
        (f"report:project:{pb}:shared", {"stranger"}),
        (f"task:{ids['pb_shared_task']}:shared", {"stranger"}),
        (f"room:task:{ids['pb_internal_task']}:staff", {"stranger"}),
        # Another person's own channel; things that do not exist; names that are no channel at all.
        (f"user:{ws.users['owner']}", {"owner"}),
        (f"user:{ws.users['customer']}", {"customer"}),
        ("project:999999:shared", NOBODY),
        ("task:999999:staff", NOBODY),
        ("room:task:999999", NOBODY),
        ("report:project:999999:shared", NOBODY),
        ("user:999999", NOBODY),
        (f"project:{px}:everyone", NOBODY),
        (f"report:task:{shared_task}:shared", NOBODY),
    ]


@pytest.fixture
def node(database: tuple[str, Workspace], tmp_path: Path) -> Iterator[Node]:
    with cluster(tmp_path, database[0], None, count=1) as nodes:
        yield nodes[0]


async def answer(client: TandemClient, channel: str) -> dict[str, Any]:
    """The reply to subscribing (the error frame without its id when refused); unsubscribes again if allowed."""
    try:
        reply = await client.subscribe(channel)
    except ClientError as refused:
        return {k: v for k, v in refused.frame.items() if k != "id"}
    await client.unsubscribe(channel)
    return reply


async def test_every_role_gets_exactly_the_channels_it_may_see(
    node: Node, database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    ws = database[1]
    rows = matrix(ws)
    refusal = {"type": "error", "code": "forbidden", "message": "not allowed to subscribe"}
    wrong: list[str] = []
    for role in ROLES:
        client = await TandemClient.connect(node.ws, token=ws.token(role), ping_interval=None)
        clients.append(client)
        own = await answer(client, f"user:{ws.users[role]}")
        assert own["type"] == "subscribed", (role, own)
        for channel, allowed in rows:
            reply = await answer(client, channel)
            # Refusals are byte for byte the same for what exists and what does not.
            expected = {"type": "subscribed", "channel": channel} if role in allowed else refusal
            if {k: reply.get(k) for k in expected} != expected or (role not in allowed and reply != refusal):
                wrong.append(f"{role} -> {channel}: {reply}")
        assert client.close_code is None, role
    assert wrong == []
