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

from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import Field, StringConstraints
from sqlmodel import col, select
from starlette.responses import StreamingResponse

from server.api import api
from server.api.routing import ApiError
from server.board.rules import project_for
from server.context import Context
from server.files.rules import files_visible, purge_blobs_after_commit, safe_filename
from server.files.storage import UploadTooLarge, spool_upload
from server.files.uploads import (
    FileOut,
    FileUploadQuery,
    add_file,
    files_out,
    parent_visibilities,
    shared_now,
    store_upload,
)
from server.models import Comment, FileVersion, Project, StoredFile, Task
from server.policy import Action, NotFound, authorize
from server.schemas import Id, In, Out

# Types a browser may show inline: raster images cannot carry script. Everything else is an attachment.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
DOWNLOAD_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"


class FileVersionQuery(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = None


class FileListQuery(In):
    task_id: Id | None = None
    comment_id: Id | None = None
    request_id: Id | None = None


class DownloadQuery(In):
    version: Annotated[int, Field(ge=1, le=2**31)] | None = None


class FileList(Out):
    items: list[FileOut]


def content_disposition(kind: str, name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_").replace("\\", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


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
    parents = parent_visibilities(task, comment)
    authorize(ctx.actor, Action.ITEM_READ, project, file, parents=parents)
    if action != Action.ITEM_READ:
        authorize(ctx.actor, action, project, file, parents=parents)
    return file, project, shared_now(file, task, comment)


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
    # The file's own type (as uploaded, or application/octet-stream when it is not safe to show).
    produces={200: {"*/*": {"type": "string", "contentMediaType": "application/octet-stream"}}},
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
