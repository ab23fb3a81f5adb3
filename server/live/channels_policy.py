"""Which live channels exist and who may subscribe to them: the policy, applied to channel names.

Streams are split by audience, so a customer's socket is never subscribed to anything that could carry an
internal item (nothing is filtered per socket on the hot path):

| channel | carries | who may subscribe |
|---|---|---|
| ``project:{id}:staff`` | every board event of the project, internal and shared | staff who see the project |
| ``project:{id}:shared`` | board events of shared items only | anyone who sees the project |
| ``report:project:{id}:staff`` | the project's live KPIs over every item | staff who see the project |
| ``report:project:{id}:shared`` | the project's live KPIs over shared items only | anyone who sees the project |
| ``task:{id}:staff`` | every thread event of the task | staff who see the task |
| ``task:{id}:shared`` | thread events customers may see | anyone who sees the (shared) task |
| ``user:{id}`` | the user's own events (action items, mentions, notifications) | that user |
| ``room:project:{id}`` | presence only: who is on the project | anyone who sees the project |
| ``room:task:{id}`` | presence only: who is on the task (and typing a shared comment) | anyone who sees the task |
| ``room:task:{id}:staff`` | presence only: staff typing an internal comment | staff who see the task |

Anything else, or anything the actor may not see, is refused the same way (``forbidden``), so a refusal never
tells whether the resource exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeVar

from server.accounts.session_cache import AccessEpoch
from server.db import Reads, session_of
from server.models import Project, Task
from server.policy import Actor, can_see_item, can_see_project

_CHANNEL = re.compile(
    r"^(?:(project|task):(\d{1,16}):(staff|shared)|user:(\d{1,16})|room:(project|task):(\d{1,16})(:staff)?"
    r"|report:project:(\d{1,16}):(staff|shared))$"
)


_Row = TypeVar("_Row", Project, Task)


@dataclass(frozen=True)
class ChannelRef:
    kind: str  # project, task, user
    id: int
    audience: str  # staff, shared, own, room


def parse_channel(name: str) -> ChannelRef | None:
    match = _CHANNEL.match(name)
    if match is None:
        return None
    kind, ident, audience, user_id, room_kind, room_id, staff_room, report_id, report_audience = match.groups()
    if report_id:
        # A project's KPI stream: the same audiences and access as its board.
        return ChannelRef("project", int(report_id), report_audience)
    if kind:
        return ChannelRef(kind, int(ident), audience)
    if user_id:
        return ChannelRef("user", int(user_id), "own")
    return ChannelRef(room_kind, int(room_id), "staff" if staff_room else "room")


class ChannelFacts:
    """The projects and tasks the policy reads to answer subscribes, kept on this node while they cannot have changed.

    Every change that could change an answer (a project's or task's audience, a membership, a deletion) is
    announced on the control bus, and every announcement advances the `AccessEpoch`; this cache empties when the
    epoch moves, and after ``epoch.max_age`` seconds at the latest. A reconnect storm of a thousand customers of one
    project then reads that project once, not once per socket and channel. Only rows that exist are kept: a
    subscribe to a task not created yet must not be refused later because someone asked for its id first.
    """

    def __init__(self, epoch: AccessEpoch, *, max_entries: int = 20_000) -> None:
        self._epoch = epoch
        self._max_entries = max_entries
        self._at_epoch = -1
        self._filled_at = 0.0
        self._rows: dict[tuple[type, int], Project | Task] = {}

    async def get(self, session: Reads, model: type[_Row], ident: int) -> _Row | None:
        epoch = self._epoch.value
        now = self._epoch.now()
        if epoch != self._at_epoch or now - self._filled_at >= self._epoch.max_age:
            self._rows.clear()
            self._at_epoch, self._filled_at = epoch, now
        found = self._rows.get((model, ident))
        if found is not None:
            return found  # type: ignore[return-value]
        row = await (await session_of(session)).get(model, ident)
        # Kept only if no control message arrived while it was read (the read may predate the change).
        if row is not None and self._epoch.value == self._at_epoch and len(self._rows) < self._max_entries:
            self._rows[(model, ident)] = row
        return row


async def may_subscribe(facts: ChannelFacts, session: Reads, actor: Actor, channel: str) -> bool:
    """True if ``actor`` may receive ``channel``'s events (memberships as ``actor`` holds them)."""
    ref = parse_channel(channel)
    if ref is None:
        return False
    if ref.kind == "user":
        return ref.id == actor.user_id
    if ref.audience == "staff" and not actor.is_staff:
        return False
    if ref.kind == "project":
        project = await facts.get(session, Project, ref.id)
        return project is not None and can_see_project(actor, project)
    task = await facts.get(session, Task, ref.id)
    if task is None:
        return False
    project = await facts.get(session, Project, task.project_id)
    if project is None:
        return False
    # Customers only ever reach shared tasks; staff reach every task of a project they see.
    return can_see_item(actor, project, task.visibility)


def project_channels(project_id: int) -> tuple[str, str]:
    """The (staff, shared) streams of a project's board."""
    return f"project:{project_id}:staff", f"project:{project_id}:shared"


def task_channels(task_id: int) -> tuple[str, str]:
    """The (staff, shared) streams of a task's thread."""
    return f"task:{task_id}:staff", f"task:{task_id}:shared"


def report_channels(project_id: int) -> tuple[str, str]:
    """The (staff, shared) streams of a project's live KPIs."""
    return f"report:project:{project_id}:staff", f"report:project:{project_id}:shared"


def user_channel(user_id: int) -> str:
    return f"user:{user_id}"


def is_presence_channel(channel: str) -> bool:
    return channel.startswith("room:")
