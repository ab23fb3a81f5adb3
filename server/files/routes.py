"""Files on projects, tasks, comments and requests: streamed upload and download, versions, visibility.

An upload is the raw request body (``POST ...?name=report.pdf``, any ``Content-Type``: it is not trusted). It is
streamed to a temporary file while hashed and counted, refused with 413 the moment it passes
``TANDEM_UPLOAD_MAX_BYTES``, its type sniffed from its first bytes, and then handed to the storage under a key
the server chooses. A download streams from the storage with headers that keep a browser from running it:
``Content-Disposition: attachment`` for anything but plain raster images, ``nosniff``, and a sandboxing CSP.

A file is visible to a customer only if it is shared and so is what it hangs on (its task, comment); anything else
answers 404, so guessing ids reveals nothing. Deleting a file, task or project deletes the stored blobs after the
transaction commits.
"""

from __future__ import annotations

import codecs
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Annotated, Any
from urllib.parse import quote

import filetype
from pydantic import Field, StringConstraints
from sqlmodel import col, select
from starlette.responses import StreamingResponse

from server.api import api
from server.api.routing import ApiError
from server.board.rules import project_for
from server.context import Context
from server.db import utcnow
from server.files.rules import files_visible, purge_blobs_after_commit, safe_filename
from server.files.storage import Upload, UploadTooLarge, spool_upload
from server.models import Comment, FileVersion, Project, Request, StoredFile, Task, User, Visibility
from server.policy import Action, NotFound, authorize, can_see_item, effective_visibility
from server.schemas import Id, In, Out, PersonOut

# Types a browser may show inline: raster images cannot carry script. Everything else is an attachment.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
DOWNLOAD_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"


class FileUploadQuery(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    visibility: Visibility | None = Field(
        None, description="Default: shared for customers, else what the file hangs on (a bare file: internal)."
    )
    task_id: Id | None = None
    comment_id: Id | None = Field(None, description="Attach to my comment (its task is implied).")
    request_id: Id | None = None


class FileVersionQuery(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = None


class FileListQuery(In):
    task_id: Id | None = None
    comment_id: Id | None = None
    request_id: Id | None = None


class DownloadQuery(In):
    version: Annotated[int, Field(ge=1, le=2**31)] | None = None


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


class FileList(Out):
    items: list[FileOut]


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


def content_disposition(kind: str, name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_").replace("\\", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def _parent_visibilities(task: Task | None, comment: Comment | None) -> tuple[str | None, str | None]:
    """The visibilities of a file's parents for the policy; a deleted comment hides its files like an internal one."""
    comment_visibility = (
        None if comment is None else Visibility.INTERNAL if comment.deleted_at is not None else comment.visibility
    )
    return (task.visibility if task is not None else None), comment_visibility


def _shared_now(file: StoredFile, task: Task | None, comment: Comment | None) -> bool:
    return effective_visibility(file.visibility, _parent_visibilities(task, comment)) == Visibility.SHARED


async def file_for(ctx: Context, file_id: int, action: Action) -> tuple[StoredFile, Project, bool]:
    """The file, its project, and whether customers may see it, if ``ctx.actor`` may do ``action`` to it.

    Raises:
        NotFound: no such file, or one the actor may not see (an internal one, or on an internal task or comment).
        Forbidden: visible, but the action is not allowed.
    """
    file = await ctx.session.get(StoredFile, file_id)
    if file is None:
        raise NotFound
    project = await ctx.session.get(Project, file.project_id)
    if project is None:
        raise NotFound
    task = await ctx.session.get(Task, file.task_id) if file.task_id else None
    comment = await ctx.session.get(Comment, file.comment_id) if file.comment_id else None
    parents = _parent_visibilities(task, comment)
    authorize(ctx.actor, Action.ITEM_READ, project, file, parents=parents)
    if action != Action.ITEM_READ:
        authorize(ctx.actor, action, project, file, parents=parents)
    return file, project, _shared_now(file, task, comment)


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


async def _receive(ctx: Context) -> Any:
    declared = ctx.request.headers.get("content-length")
    limit = ctx.services.settings.upload_max_bytes
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"Files are limited to {limit} bytes.")
    try:
        return await spool_upload(ctx.request.stream(), ctx.services.settings.data_dir / "uploads", limit)
    except UploadTooLarge:
        raise ApiError(413, "too_large", f"Files are limited to {limit} bytes.") from None


async def _store_version(ctx: Context, file: StoredFile, name: str) -> None:
    """Receive the request body as the next version of ``file`` (flushed, so ``file.id`` is set)."""
    await store_upload(ctx, file, name, await _receive(ctx))


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


async def _parents(
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
            raise ApiError(422, "invalid", "comment_id names no comment of this project.", reason="unknown_comment")
        if comment.author_id != ctx.actor.user_id:
            raise ApiError(403, "forbidden", "Attach files to your own comments.")
    elif query.task_id is not None:
        task = await ctx.session.get(Task, query.task_id)
        if task is None or task.project_id != project.id or not can_see_item(ctx.actor, project, task.visibility):
            raise ApiError(422, "invalid", "task_id names no task of this project.", reason="unknown_task")
    if query.request_id is not None:
        request = await ctx.session.get(Request, query.request_id)
        if request is None or request.project_id != project.id:
            raise ApiError(422, "invalid", "request_id names no request of this project.", reason="unknown_request")
    return task, comment, request


@api.route(
    "POST",
    "/api/projects/{project_id:int}/files",
    summary="Upload a file: the raw request body, streamed (?name=, and optionally task_id, comment_id, request_id)",
    tag="files",
    query=FileUploadQuery,
    response=FileOut,
    status=201,
    errors=(401, 403, 404, 413, 422),
)
async def upload_file(ctx: Context, query: FileUploadQuery) -> FileOut:
    return await add_file(ctx, ctx.path_int("project_id"), query, lambda: _receive(ctx))


async def add_file(
    ctx: Context, project_id: int, query: FileUploadQuery, receive: Callable[[], Awaitable[Upload]]
) -> FileOut:
    """Add a file to a project as ``ctx.actor``: the one way a file is made (the upload route, mail attachments).

    Args:
        receive: spools the content (within ``TANDEM_UPLOAD_MAX_BYTES``), called once the checks have passed.

    Raises:
        NotFound, Forbidden: the actor may not upload to the project.
        ApiError: 422 for a parent or visibility that does not fit; 413 from ``receive``.
    """
    project = await project_for(ctx.session, ctx.actor, project_id, Action.FILE_UPLOAD)
    assert project.id is not None
    task, comment, request = await _parents(ctx, project, query)
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
        raise ApiError(422, "invalid", "Files customers upload are shared.", reason="customer_files_shared")
    if visibility == Visibility.SHARED and (
        parent_visibility == Visibility.INTERNAL and (task is not None or comment is not None)
    ):
        raise ApiError(
            422, "invalid", "A shared file cannot hang on an internal task or comment.", reason="shared_under_internal"
        )
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
    await ctx.services.live.file_changed(ctx, project.id, out, "file.created", shared=_shared_now(file, task, comment))
    return out


@api.route(
    "GET",
    "/api/projects/{project_id:int}/files",
    summary="The project's files I can see (?task_id=, comment_id=, request_id= narrow)",
    tag="files",
    query=FileListQuery,
    response=FileList,
    errors=(401, 404, 422),
)
async def list_files(ctx: Context, query: FileListQuery) -> FileList:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    stmt = select(StoredFile).where(StoredFile.project_id == project.id, files_visible(ctx.actor))
    for name in ("task_id", "comment_id", "request_id"):
        value = getattr(query, name)
        if value is not None:
            stmt = stmt.where(getattr(StoredFile, name) == value)
    rows = (await ctx.session.exec(stmt.order_by(col(StoredFile.id).desc()).limit(500))).all()
    return FileList(items=await files_out(ctx, rows))


@api.route(
    "GET",
    "/api/files/{file_id:int}",
    summary="A file and its versions",
    tag="files",
    response=FileOut,
    errors=(401, 404),
)
async def get_file(ctx: Context) -> FileOut:
    file, _, _ = await file_for(ctx, ctx.path_int("file_id"), Action.ITEM_READ)
    return (await files_out(ctx, [file]))[0]


@api.route(
    "GET",
    "/api/files/{file_id:int}/download",
    summary="The file's content (?version= for an earlier one), streamed with safe download headers",
    tag="files",
    query=DownloadQuery,
    errors=(401, 404, 422),
)
async def download_file(ctx: Context, query: DownloadQuery) -> StreamingResponse:
    file, _, _ = await file_for(ctx, ctx.path_int("file_id"), Action.ITEM_READ)
    version = (
        await ctx.session.exec(
            select(FileVersion).where(
                FileVersion.file_id == file.id, FileVersion.number == (query.version or file.version)
            )
        )
    ).first()
    if version is None:
        raise ApiError(404, "not_found", "No such version.")
    storage = ctx.services.storage
    chunks = storage.read(version.storage_key)
    try:
        first = await anext(chunks, b"")
    except FileNotFoundError:
        raise ApiError(404, "not_found", "The file's content is gone.") from None

    async def body() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk

    inline = version.content_type in INLINE_TYPES
    media_type = "text/plain; charset=utf-8" if version.content_type == "text/plain" else version.content_type
    return StreamingResponse(
        body(),
        media_type=media_type,
        headers={
            "content-disposition": content_disposition("inline" if inline else "attachment", version.name),
            "content-length": str(version.size),
            "x-content-type-options": "nosniff",
            "content-security-policy": DOWNLOAD_CSP,
            # Like every API answer (server/app.py SecurityHeaders): a shared computer keeps no copy.
            "cache-control": "no-store",
            "etag": f'"{version.sha256}"',
        },
    )


@api.route(
    "POST",
    "/api/files/{file_id:int}/versions",
    summary="Upload a new version (the raw body, streamed); earlier versions are kept",
    tag="files",
    query=FileVersionQuery,
    response=FileOut,
    status=201,
    errors=(401, 403, 404, 413, 422),
)
async def upload_version(ctx: Context, query: FileVersionQuery) -> FileOut:
    file, project, shared = await file_for(ctx, ctx.path_int("file_id"), Action.FILE_MANAGE)
    file.version += 1
    await _store_version(ctx, file, safe_filename(query.name) if query.name else file.name)
    out = (await files_out(ctx, [file]))[0]
    assert project.id is not None
    await ctx.services.live.file_changed(ctx, project.id, out, "file.updated", shared=shared)
    return out


@api.route(
    "DELETE",
    "/api/files/{file_id:int}",
    summary="Delete a file with all its versions",
    tag="files",
    status=204,
    errors=(401, 403, 404),
)
async def delete_file(ctx: Context) -> None:
    file, project, shared = await file_for(ctx, ctx.path_int("file_id"), Action.FILE_MANAGE)
    assert file.id is not None and project.id is not None
    await purge_blobs_after_commit(ctx, col(StoredFile.id) == file.id)
    await ctx.session.delete(file)
    await ctx.services.live.file_removed(ctx, project.id, file.id, shared=shared)
