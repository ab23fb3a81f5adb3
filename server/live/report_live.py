"""Live KPIs: after a change commits, a project's KPIs are recomputed once per audience and pushed to its dashboards.

Every board event a handler records (``LiveUpdates._board``: tasks, milestones, workflow, requests, comments...)
also *touches* the project after commit. Touches are debounced per project: the first one schedules a
recomputation ``delay`` seconds later (250 ms by default) and every touch until it runs joins it, so a burst of
changes costs one computation. That computation loads the facts once per audience (staff, shared) and publishes
the two snapshots through the hub::

    report:project:{id}:staff   {"type": "kpi.changed", "kpis": {...ProjectKpis, audience "staff"}}
    report:project:{id}:shared  {"type": "kpi.changed", "kpis": {...ProjectKpis, audience "shared"}}

So the cost is per change burst and per audience, never per viewer; a customer's socket can only subscribe to the
shared stream (``server/live/channels_policy.py``). Snapshots are not stored: a dashboard fetches the KPIs over REST
when it opens and replaces them with each snapshot; a snapshot lost with a crashed node is superseded by the next.
So when no socket on any node is subscribed to either stream (the hub asks the broker: Redis's ``PUBSUB
NUMSUB``), nothing is computed: a snapshot would reach nobody, and a dashboard opening later reads REST.
Guarantee: a change that commits is reflected in a published snapshot within ``delay`` plus one computation.

The shared stream must not tell customers *when* staff work on internal items. A touch says whether the change
could concern customers (``shared``: it sent something to the project's shared board stream, or changed a request
or a feedback answer); a burst of internal-only touches recomputes and publishes the staff snapshot alone. And a
shared snapshot is published only when its numbers differ from the last one this node published for the project
(``computed_at`` aside), so an event on the shared stream always carries a change customers can see.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server.db import Database
from server.feedback.rules import parse_weights
from server.live.channels_policy import report_channels
from server.reports.kpis import Audience, load_facts, project_kpis

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[object]]
Listening = Callable[[str], Awaitable[bool]]  # is any socket subscribed to this channel?


class KpiPublisher:
    def __init__(
        self, db: Database, publish: Publish, weights: str, *, delay: float = 0.25, listening: Listening | None = None
    ) -> None:
        self.db = db
        self.publish = publish
        self.listening = listening
        self.weights = parse_weights(weights)  # a bad TANDEM_FEEDBACK_WEIGHTS fails at start-up
        self.delay = delay
        self._dirty: set[int] = set()
        self._dirty_shared: set[int] = set()  # dirty by a change customers may see
        self._last_shared: dict[int, bytes] = {}  # digest of the last shared snapshot published, per project
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self.computations = 0
        self.skipped = 0  # computations left out because nobody was subscribed

    def touch(self, project_id: int, shared: bool = True) -> None:
        """Note that ``project_id`` changed; its KPIs are published within ``delay`` (plus computing time).

        Args:
            project_id: the project that changed.
            shared: whether the change may concern customers; without one, only the staff snapshot is published.
        """
        self._dirty.add(project_id)
        if shared:
            self._dirty_shared.add(project_id)
        if project_id not in self._tasks:
            self._tasks[project_id] = asyncio.create_task(self._run(project_id), name=f"kpis-{project_id}")

    def hook(self, project_id: int, shared: bool = True) -> Touch:
        return Touch(self, project_id, shared)

    async def _run(self, project_id: int) -> None:
        try:
            # A touch arriving while we compute marks the project dirty again: one more round follows.
            while project_id in self._dirty:
                await asyncio.sleep(self.delay)
                self._dirty.discard(project_id)
                shared = project_id in self._dirty_shared
                self._dirty_shared.discard(project_id)
                try:
                    await self.publish_now(project_id, shared=shared)
                except Exception:
                    log.warning("live KPIs of project %s not published", project_id, exc_info=True)
        finally:
            self._tasks.pop(project_id, None)

    async def publish_now(self, project_id: int, *, shared: bool = True) -> None:
        """Compute the project's KPIs and publish them (one session, a fact load per audience), unless no socket is
        subscribed to either stream. The shared snapshot only when ``shared`` and its numbers changed."""
        now = dt.datetime.now(dt.UTC)
        channels = dict(zip((Audience.STAFF, Audience.SHARED), report_channels(project_id), strict=True))
        if self.listening is not None and not await self._anyone_listening(list(channels.values())):
            self.skipped += 1
            return
        audiences = list(channels) if shared else [Audience.STAFF]
        async with self.db.session() as session:
            snapshots = {}
            for audience in audiences:
                facts = (await load_facts(session, [project_id], audience))[project_id]
                snapshots[audience] = project_kpis(project_id, facts, audience, now, self.weights)
        self.computations += 1
        for audience, kpis in snapshots.items():
            if audience == Audience.SHARED:
                numbers = kpis.model_dump_json(exclude={"computed_at"}).encode()
                digest = hashlib.sha256(numbers).digest()
                if self._last_shared.get(project_id) == digest:
                    continue
                self._last_shared[project_id] = digest
            payload = {"type": "kpi.changed", "kpis": kpis.model_dump(mode="json")}
            await self.publish(channels[audience], json.dumps(payload, separators=(",", ":")).encode())

    async def _anyone_listening(self, channels: list[str]) -> bool:
        assert self.listening is not None
        for channel in channels:
            try:
                if await self.listening(channel):
                    return True
            except Exception:  # cannot tell (the broker is away): compute, as before the check existed
                log.debug("live KPIs: cannot tell who listens to %s", channel, exc_info=True)
                return True
        return False

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._dirty.clear()


@dataclass(frozen=True)
class Touch:
    """An after-commit hook touching one project; equal hooks are added to a request only once."""

    publisher: KpiPublisher
    project_id: int
    shared: bool = True

    async def __call__(self) -> None:
        self.publisher.touch(self.project_id, self.shared)
