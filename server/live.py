"""Live updates: what the REST API tells connected sockets after a change commits.

Wired to the real-time hub in ``channels/`` (the hub issue); until then every change is only stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.api.routing import Context
    from server.schemas import MilestoneOut, ProjectOut, TaskOut


class LiveUpdates:
    async def task_changed(self, ctx: Context, task: TaskOut, previous_visibility: str | None) -> None:
        pass

    async def task_deleted(self, ctx: Context, task: TaskOut) -> None:
        pass

    async def milestone_changed(self, ctx: Context, milestone: MilestoneOut, previous_visibility: str | None) -> None:
        pass

    async def milestone_deleted(self, ctx: Context, milestone: MilestoneOut) -> None:
        pass

    async def workflow_changed(self, ctx: Context, project_id: int, moved_tasks: bool = False) -> None:
        pass

    async def project_changed(self, ctx: Context, project: ProjectOut) -> None:
        pass

    async def project_deleted(self, ctx: Context, project_id: int) -> None:
        pass

    async def membership_changed(self, ctx: Context, project_id: int, user_id: int) -> None:
        pass

    async def disconnect_user(self, ctx: Context, user_id: int) -> None:
        pass
