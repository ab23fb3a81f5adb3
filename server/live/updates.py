"""Live updates: what the REST API tells connected sockets about a change.

Handlers call these methods inside their transaction. Board events go to the transactional outbox
(``server/live/outbox.py``), so they are published after the change commits and never lost if it does; each is
written once for its audience streams (``project:{id}:staff`` always, ``project:{id}:shared`` only for shared
items): one row, published to each stream in turn.
Access changes (membership, logout, an item made internal or deleted) go over the control bus after commit as one
typed `server.live.control.AccessChanged`, so every node re-checks its ``/ws`` and ``/yjs`` sockets that hang off it.

Which event goes to which stream, and each event's payload, is specified once, in docs/PROTOCOL.md ("Board
events", "Thread events", "Personal events", "KPI events"); the methods below are what publishes them. Every board
event also touches the project's live KPIs (``server/live/report_live.py``), debounced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from server.live.channels_policy import project_channels, task_channels, user_channel
from server.live.control import AccessChanged, ControlBus, Disconnect, Subject
from server.live.outbox import OutboxRelay, RecordedEvent
from server.models import Visibility
from server.security import token_hash

if TYPE_CHECKING:
    from pydantic import BaseModel

    from server.context import Context
    from server.live.report_live import KpiPublisher
    from server.models import Notification, Task
    from server.schemas import CommentOut, MilestoneOut, ProjectOut, TaskOut


class LiveUpdates:
    def __init__(self, relay: OutboxRelay, control: ControlBus, reports: KpiPublisher | None = None) -> None:
        self.relay = relay
        self.control = control
        self.reports = reports

    def _emit(self, ctx: Context, channel: str | Sequence[str], payload: dict[str, Any]) -> None:
        """Record ``payload`` for ``channel`` (or several, one outbox row for all) in the request's transaction."""
        row = self.relay.record(ctx.session, [channel] if isinstance(channel, str) else channel, payload)
        hook = next((h for h in ctx.after_commit if isinstance(h, _PublishCommitted)), None)
        if hook is None:
            hook = _PublishCommitted(self.relay)
            ctx.after_commit.append(hook)
        hook.rows.append(row)

    def kpis_changed(self, ctx: Context, project_id: int, *, shared: bool = True) -> None:
        """Recompute the project's live KPIs after this request commits (once per request, debounced).

        ``shared``: whether the change may concern customers; only then may the shared KPI stream publish.
        """
        if self.reports is not None:
            hook = self.reports.hook(project_id, shared)
            if hook not in ctx.after_commit:
                ctx.after_commit.append(hook)

    def _board(self, ctx: Context, project_id: int, payload: dict[str, Any], *, shared: bool) -> None:
        self.kpis_changed(ctx, project_id, shared=shared)
        staff, customers = project_channels(project_id)
        self._emit(ctx, [staff, customers] if shared else [staff], payload)

    async def task_changed(self, ctx: Context, task: TaskOut, previous_visibility: str | None) -> None:
        event = {
            "type": "task.created" if previous_visibility is None else "task.updated",
            "task": task.model_dump(mode="json"),
        }
        shared = task.visibility == Visibility.SHARED
        self._board(ctx, task.project_id, event, shared=shared)
        if not shared and previous_visibility == Visibility.SHARED:
            removed = {"type": "task.removed", "task_id": task.id, "version": task.version}
            self._emit(ctx, project_channels(task.project_id)[1], removed)
            self.kpis_changed(ctx, task.project_id, shared=True)
        if previous_visibility is not None and previous_visibility != task.visibility:
            # Made internal: customers watching its thread or its presence room, or editing its notes, lose them
            # on every node. Made shared: every node forgets what it knew of the task (ChannelFacts), so customers
            # may subscribe at once.
            self.access_changed(ctx, AccessChanged(Subject.TASK, task.id))
        if task.assignee is not None and (shared or not task.assignee.is_customer):
            self._emit(ctx, user_channel(task.assignee.id), {"type": "action_items.changed", "task_id": task.id})

    async def task_deleted(self, ctx: Context, task: TaskOut) -> None:
        event = {"type": "task.removed", "task_id": task.id, "version": task.version + 1}
        self._board(ctx, task.project_id, event, shared=task.visibility == Visibility.SHARED)
        self.access_changed(ctx, AccessChanged(Subject.TASK, task.id))
        if task.assignee is not None and (task.visibility == Visibility.SHARED or not task.assignee.is_customer):
            self._emit(ctx, user_channel(task.assignee.id), {"type": "action_items.changed", "task_id": task.id})

    async def milestone_changed(self, ctx: Context, milestone: MilestoneOut, previous_visibility: str | None) -> None:
        event = {"type": "milestone.updated", "milestone": milestone.model_dump(mode="json")}
        shared = milestone.visibility == Visibility.SHARED
        self._board(ctx, milestone.project_id, event, shared=shared)
        if not shared and previous_visibility == Visibility.SHARED:
            removed = {"type": "milestone.removed", "milestone_id": milestone.id}
            self._emit(ctx, project_channels(milestone.project_id)[1], removed)
            self.kpis_changed(ctx, milestone.project_id, shared=True)
            self.access_changed(ctx, AccessChanged(Subject.MILESTONE, milestone.id))

    async def milestone_deleted(self, ctx: Context, milestone: MilestoneOut) -> None:
        event = {"type": "milestone.removed", "milestone_id": milestone.id}
        self._board(ctx, milestone.project_id, event, shared=milestone.visibility == Visibility.SHARED)

    async def workflow_changed(self, ctx: Context, project_id: int, moved_tasks: bool = False) -> None:
        self._board(ctx, project_id, {"type": "workflow.changed", "tasks_moved": moved_tasks}, shared=True)

    async def project_changed(self, ctx: Context, project: ProjectOut) -> None:
        # my_role belongs to whoever asked, not to the audience.
        data = project.model_dump(mode="json", exclude={"my_role"})
        self._board(ctx, project.id, {"type": "project.updated", "project": data}, shared=True)

    async def project_deleted(self, ctx: Context, project_id: int) -> None:
        self._board(ctx, project_id, {"type": "project.deleted", "project_id": project_id}, shared=True)
        self.access_changed(ctx, AccessChanged(Subject.PROJECT, project_id))

    async def membership_changed(self, ctx: Context, project_id: int, user_id: int) -> None:
        self._board(ctx, project_id, {"type": "members.changed"}, shared=True)
        self.access_changed(ctx, AccessChanged(Subject.USER, user_id))
        # Joining, leaving or changing role on a project changes what waits on the person.
        self.waiting_changed(ctx, [user_id])

    async def disconnect_user(
        self, ctx: Context, user_id: int, token: str | None = None, *, hashed: str | None = None
    ) -> None:
        """Close the user's sockets (those of one session or API token when ``token``, or its SHA-256 ``hashed``,
        is given) on every node."""
        message = Disconnect(user_id, hashed if token is None else token_hash(token))
        ctx.after_commit.append(lambda: self.control.send(message))

    def access_changed(self, ctx: Context, change: AccessChanged) -> None:
        """Re-check, on every node once this request commits, the live sockets (``/ws`` and ``/yjs``) that hang off
        ``change.subject``; each keeps only what the policy still allows."""
        ctx.after_commit.append(lambda: self.control.send(change))

    async def comment_changed(self, ctx: Context, comment: CommentOut, task: Task, kind: str) -> None:
        data = comment.model_dump(mode="json", exclude={"reactions": {"__all__": {"mine"}}})
        shared = comment.visibility == Visibility.SHARED and task.visibility == Visibility.SHARED
        staff_thread, shared_thread = task_channels(comment.task_id)
        self._emit(ctx, [staff_thread, shared_thread] if shared else [staff_thread], {"type": kind, "comment": data})
        if kind in ("comment.created", "comment.deleted"):
            author = comment.author.id if comment.author else None
            summary = {
                "type": "comment.activity",
                "task_id": comment.task_id,
                "comment_id": comment.id,
                "author_id": author,
                "kind": kind,
            }
            self._board(ctx, comment.project_id, summary, shared=shared)

    def staff_thread_event(self, ctx: Context, task_id: int, event: dict[str, Any]) -> None:
        """An event for the staff of a task's thread only (``task:{id}:staff``), e.g. a comment marked as feedback."""
        self._emit(ctx, task_channels(task_id)[0], event)

    def staff_project_event(self, ctx: Context, project_id: int, event: dict[str, Any]) -> None:
        """An event for the project's staff stream only (``project:{id}:staff``), e.g. a request reply marked as
        feedback."""
        self._emit(ctx, project_channels(project_id)[0], event)

    async def read_changed(self, ctx: Context, task: Task, last_read_comment_id: int, unread: int) -> None:
        """Tell the user's other devices how far they have read."""
        self._emit(
            ctx,
            user_channel(ctx.actor.user_id),
            {
                "type": "read.updated",
                "task_id": task.id,
                "last_read_comment_id": last_read_comment_id,
                "unread": unread,
            },
        )

    async def notification_created(self, ctx: Context, notification: Notification) -> None:
        from server.schemas import NotificationOut

        data = NotificationOut.model_validate(notification).model_dump(mode="json")
        self._emit(ctx, user_channel(notification.user_id), {"type": "notification.created", "notification": data})

    async def settings_changed(self, ctx: Context, project_id: int, settings: BaseModel) -> None:
        event = {"type": "settings.changed", "settings": settings.model_dump(mode="json")}
        self._board(ctx, project_id, event, shared=True)

    async def request_changed(
        self, ctx: Context, project_id: int, request: BaseModel, kind: str, *, shared_view: BaseModel | None = None
    ) -> None:
        """``kind``: ``request.created`` or ``request.updated``; requests are shared, so both streams get it: the
        shared stream ``shared_view`` when given (the request as customers see it: no internal task's id)."""
        if shared_view is None or shared_view == request:
            self._board(ctx, project_id, {"type": kind, "request": request.model_dump(mode="json")}, shared=True)
            return
        self._board(ctx, project_id, {"type": kind, "request": request.model_dump(mode="json")}, shared=False)
        self.kpis_changed(ctx, project_id, shared=True)
        customers = project_channels(project_id)[1]
        self._emit(ctx, customers, {"type": kind, "request": shared_view.model_dump(mode="json")})

    async def file_changed(
        self, ctx: Context, project_id: int, file: BaseModel, kind: str, *, shared: bool, was_shared: bool = False
    ) -> None:
        """``kind``: ``file.created`` or ``file.updated``; ``shared``: whether customers may see the file now."""
        self._board(ctx, project_id, {"type": kind, "file": file.model_dump(mode="json")}, shared=shared)
        if was_shared and not shared:
            file_id = getattr(file, "id", None)
            self._emit(ctx, project_channels(project_id)[1], {"type": "file.removed", "file_id": file_id})

    def notifications_read(self, ctx: Context, ids: Sequence[int] | None) -> None:
        """Tell the actor's other devices which notifications they read (``None``: all of them)."""
        event: dict[str, Any] = {"type": "notifications.read", **({"all": True} if ids is None else {"ids": ids})}
        self._emit(ctx, user_channel(ctx.actor.user_id), event)

    def waiting_changed(self, ctx: Context, user_ids: Sequence[int]) -> None:
        """Hint ``user_ids`` that their "waiting on you" list may have changed (one outbox row for all)."""
        if user_ids:
            self._emit(ctx, [user_channel(u) for u in user_ids], {"type": "waiting.changed"})

    async def feedback_requested(self, ctx: Context, user_id: int, request: BaseModel) -> None:
        event = {"type": "feedback.requested", "request": request.model_dump(mode="json")}
        self._emit(ctx, user_channel(user_id), event)

    def note_changed(self, ctx: Context, project_id: int, note: BaseModel, *, shared: bool, was_shared: bool) -> None:
        """A note appeared or changed; ``shared``/``was_shared``: whether customers may see it now / before."""
        staff, customers = project_channels(project_id)
        self._emit(
            ctx,
            [staff, customers] if shared else [staff],
            {"type": "note.updated", "note": note.model_dump(mode="json")},
        )
        if was_shared and not shared:
            self._emit(ctx, customers, {"type": "note.removed", "note_id": getattr(note, "id", None)})

    def note_removed(self, ctx: Context, project_id: int, note_id: int, *, shared: bool) -> None:
        staff, customers = project_channels(project_id)
        self._emit(ctx, [staff, customers] if shared else [staff], {"type": "note.removed", "note_id": note_id})

    async def file_removed(self, ctx: Context, project_id: int, file_id: int, *, shared: bool) -> None:
        self._board(ctx, project_id, {"type": "file.removed", "file_id": file_id}, shared=shared)


@dataclass
class _PublishCommitted:
    """The after-commit hook that publishes a request's outbox rows, in the order it recorded them."""

    relay: OutboxRelay
    rows: list[RecordedEvent] = field(default_factory=list)

    async def __call__(self) -> None:
        self.relay.hand_over(self.rows)
