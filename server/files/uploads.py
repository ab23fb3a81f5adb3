"""Adding files: the one way a file or a new version of one is made (the upload routes, attachments of replies by
email), and files as the API shows them."""

from __future__ import annotations

import codecs
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

import filetype
from pydantic import Field, StringConstraints
from sqlmodel import col, select

from server.board.rules import project_for
from server.context import Context
from server.db import utcnow
from server.errors import Invalid, Refused
from server.files.rules import safe_filename
from server.files.storage import Upload
from server.models import Comment, FileVersion, Project, Request, StoredFile, Task, User, Visibility
from server.policy import Action, can_see_item, effective_visibility
from server.schemas import Id, In, Out, PersonOut


class FileUploadQuery(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    visibility: Visibility | None = Field(
        None, description="Default: shared for customers, else what the file hangs on (a bare file: internal)."
    )
    task_id: Id | None = None
    comment_id: Id | None = Field(None, description="Attach to my comment (its task is implied).")
    request_id: Id | None = None


class FileVersionOut(Out):
    number: int
    name: str
    content_type: str
    size: int
    sha256: str
    uploaded_by_id: int | None
    created_at: dt.datetime


class FileOut(Out):
    id: int
    project_id: int
    task_id: int | None
    comment_id: int | None
    request_id: int | None
    visibility: Visibility
    name: str
    content_type: str = Field(description="Sniffed from the content, not taken from the uploader.")
    size: int
    version: int
    uploaded_by: PersonOut | None
    created_at: dt.datetime
    updated_at: dt.datetime
    download_url: str
    versions: list[FileVersionOut]


def sniff(head: bytes) -> str:
    """The content type of a file from its first bytes: a known binary signature, else text or octet-stream."""
    kind = filetype.guess(head) if head else None
    if kind is not None:
        return str(kind.mime)
    if b"\x00" not in head:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
            return "text/plain"
        except UnicodeDecodeError:
            pass
    return "application/octet-stream"


def parent_visibilities(task: Task | None, comment: Comment | None) -> tuple[str | None, str | None]:
    """The visibilities of a file's parents for the policy; a deleted comment hides its files like an internal one."""
    comment_visibility = (
        None if comment is None else Visibility.INTERNAL if comment.deleted_at is not None else comment.visibility
    )
    return (task.visibility if task is not None else None), comment_visibility


def shared_now(file: StoredFile, task: Task | None, comment: Comment | None) -> bool:
    return effective_visibility(file.visibility, parent_visibilities(task, comment)) == Visibility.SHARED


async def files_out(ctx: Context, files: Sequence[StoredFile]) -> list[FileOut]:
    ids = [f.id for f in files]
    versions: dict[int, list[FileVersion]] = {}
    if ids:
        for v in (
            await ctx.session.exec(
                select(FileVersion).where(col(FileVersion.file_id).in_(ids)).order_by(col(FileVersion.number).desc())
            )
        ).all():
            versions.setdefault(v.file_id, []).append(v)
    people_ids = {f.uploaded_by_id for f in files if f.uploaded_by_id}
    people = (
        {u.id: u for u in (await ctx.session.exec(select(User).where(col(User.id).in_(people_ids)))).all()}
        if people_ids
        else {}
    )
    out = []
    for f in files:
        assert f.id is not None
        user = people.get(f.uploaded_by_id) if f.uploaded_by_id else None
        out.append(
            FileOut.model_validate(
                {
                    **f.model_dump(exclude={"uploaded_by_id"}),
                    "uploaded_by": (
                        PersonOut(id=user.id, name=user.name, is_customer=not user.is_staff)
                        if user is not None and user.id is not None
                        else None
                    ),
                    "download_url": f"/api/files/{f.id}/download",
                    "versions": [FileVersionOut.model_validate(v) for v in versions.get(f.id, [])],
                }
            )
        )
    return out


async def store_upload(ctx: Context, file: StoredFile, name: str, upload: Upload) -> None:
    """Store ``upload`` (already within the size limit) as the next version of ``file``, its type sniffed from its
    first bytes; the blob is removed again if the transaction rolls back. ``upload``'s temporary file is consumed."""
    try:
        assert file.id is not None
        key = f"{file.project_id}/{file.id}/{file.version}-{uuid.uuid4().hex}"
        await ctx.services.storage.save(key, upload.path)
    finally:
        upload.discard()
    file.name = name
    file.content_type = sniff(upload.head)
    file.size = upload.size
    file.updated_at = utcnow()
    ctx.session.add(file)
    ctx.session.add(
        FileVersion(
            file_id=file.id,
            number=file.version,
            storage_key=key,
            name=name,
            content_type=file.content_type,
            size=upload.size,
            sha256=upload.sha256,
            uploaded_by_id=ctx.actor.user_id,
        )
    )
    storage = ctx.services.storage
    ctx.after_rollback.append(lambda: storage.delete(key))
    await ctx.session.flush()


async def check_parents(
    ctx: Context, project: Project, query: FileUploadQuery
) -> tuple[Task | None, Comment | None, Request | None]:
    """What the upload hangs on. A task or comment the uploader may not see answers exactly as one that does not
    exist (422), so the answer tells nothing about internal ids."""
    task = comment = request = None
    if query.comment_id is not None:
        comment = await ctx.session.get(Comment, query.comment_id)
        task = await ctx.session.get(Task, comment.task_id) if comment is not None else None
        if (
            comment is None
            or task is None
            or comment.project_id != project.id
            or comment.deleted_at is not None
            or not can_see_item(ctx.actor, project, comment.visibility, parents=(task.visibility,))
        ):
            raise Invalid("comment_id names no comment of this project.", reason="unknown_comment")
        if comment.author_id != ctx.actor.user_id:
            raise Refused("Attach files to your own comments.")
    elif query.task_id is not None:
        task = await ctx.session.get(Task, query.task_id)
        if task is None or task.project_id != project.id or not can_see_item(ctx.actor, project, task.visibility):
            raise Invalid("task_id names no task of this project.", reason="unknown_task")
    if query.request_id is not None:
        request = await ctx.session.get(Request, query.request_id)
        if request is None or request.project_id != project.id:
            raise Invalid("request_id names no request of this project.", reason="unknown_request")
    return task, comment, request


async def add_file(
    ctx: Context, project_id: int, query: FileUploadQuery, receive: Callable[[], Awaitable[Upload]]
) -> FileOut:
    """Add a file to a project as ``ctx.actor``: the one way a file is made (the upload route, mail attachments).

    Args:
        receive: spools the content (within ``TANDEM_UPLOAD_MAX_BYTES``), called once the checks have passed.

    Raises:
        NotFound, Forbidden: the actor may not upload to the project.
        Invalid: a parent or visibility that does not fit. Whatever ``receive`` raises (413 in the route).
    """
    project = await project_for(ctx.session, ctx.actor, project_id, Action.FILE_UPLOAD)
    assert project.id is not None
    task, comment, request = await check_parents(ctx, project, query)
    parent_visibility = (
        comment.visibility
        if comment is not None
        else task.visibility
        if task is not None
        else Visibility.SHARED
        if request is not None
        else Visibility.INTERNAL
    )
    visibility = query.visibility or (Visibility.SHARED if not ctx.actor.is_staff else parent_visibility)
    if visibility == Visibility.INTERNAL and not ctx.actor.is_staff:
        raise Invalid("Files customers upload are shared.", reason="customer_files_shared")
    if visibility == Visibility.SHARED and (
        parent_visibility == Visibility.INTERNAL and (task is not None or comment is not None)
    ):
        raise Invalid("A shared file cannot hang on an internal task or comment.", reason="shared_under_internal")
    file = StoredFile(
        project_id=project.id,
        task_id=task.id if task else None,
        comment_id=comment.id if comment else None,
        request_id=request.id if request else None,
        visibility=visibility,
        name=safe_filename(query.name),
        content_type="application/octet-stream",
        uploaded_by_id=ctx.actor.user_id,
    )
    ctx.session.add(file)
    await ctx.session.flush()
    await store_upload(ctx, file, file.name, await receive())
    out = (await files_out(ctx, [file]))[0]
    await ctx.services.live.file_changed(ctx, project.id, out, "file.created", shared=shared_now(file, task, comment))
    return out
