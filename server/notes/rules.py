"""Rules of notes: loading a note by id for an actor, and who may see it now (REST, exports and ``/yjs`` alike)."""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.models import Note, Project, Task
from server.policy import Action, Actor, Forbidden, NotFound, authorize, effective_visibility

# A note with its project and the visibility of its task (None: a note of no task), in one query.
_NOTE_PROJECT_TASK = (
    select(Note, Project, col(Task.visibility))
    .join(Project, col(Project.id) == Note.project_id)
    .outerjoin(Task, col(Task.id) == Note.task_id)
    .where(Note.id == bindparam("note_id"))
)


async def note_for(session: AsyncSession, actor: Actor, note_id: int, action: Action) -> tuple[Note, Project]:
    """The note and its project, if ``actor`` may see the note (it and its task, if any) and do ``action`` to it.

    Raises:
        NotFound: no such note, or one the actor may not see (an internal note, or a shared one on an internal task).
        Forbidden: visible, but the action is not allowed.
    """
    row = (await session.exec(_NOTE_PROJECT_TASK, params={"note_id": note_id})).first()
    if row is None:
        raise NotFound
    note, project, task_visibility = row
    authorize(actor, Action.ITEM_READ, project, note, parents=(task_visibility,))
    authorize(actor, action, project, note, parents=(task_visibility,))
    return note, project


async def note_audience(session: AsyncSession, note: Note) -> str:
    """Who may see ``note`` now: ``shared`` if it and its task (if any) are shared, else ``internal``."""
    task = await session.get(Task, note.task_id) if note.task_id is not None else None
    return effective_visibility(note.visibility, (task.visibility if task is not None else None,))


async def may_see_note(session: AsyncSession, actor: Actor, note_id: int) -> bool:
    """True if ``actor`` may see the note now: it exists, and it and its task (if any) are visible to them.

    The one answer for every path that hands out a note's content (REST, exports, ``/yjs`` admission and re-checks).
    """
    try:
        await note_for(session, actor, note_id, Action.ITEM_READ)
    except (NotFound, Forbidden):
        return False
    return True
