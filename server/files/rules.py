"""Rules of files that other features share: safe display names, which files an actor may see, and removing
stored blobs once a deletion commits."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, true
from sqlmodel import col, select

from server.context import Context
from server.models import Comment, FileVersion, StoredFile
from server.policy import visible_items


def safe_filename(raw: str) -> str:
    """A display name safe in any header or filesystem: the last path segment, no control characters, no leading
    dots, at most 200 characters (keeping the extension); ``file`` when nothing is left."""
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").split("/")[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    name = re.sub(r'[<>:"|?*]', "_", name).strip().lstrip(".").strip()
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = stem[: 200 - len(ext) - 1] + dot + ext if dot and len(ext) <= 16 else name[:200]
    return name or "file"


def files_visible(actor: Any) -> ColumnElement[bool]:
    """A WHERE clause: files ``actor`` may see, given the project is visible (customers: shared files whose task
    and comment, if any, are shared, and whose comment is not deleted)."""
    if actor.is_staff:
        return true()
    live_comments = select(Comment.id).where(col(Comment.deleted_at).is_(None))
    return and_(
        visible_items(actor, StoredFile),
        or_(col(StoredFile.comment_id).is_(None), col(StoredFile.comment_id).in_(live_comments)),
    )


async def purge_blobs_after_commit(ctx: Context, where: ColumnElement[bool]) -> None:
    """Delete the stored blobs of the files matching ``where`` once the transaction (which deletes their rows,
    directly or by cascade) commits. Call it before deleting."""
    keys = list(
        (
            await ctx.session.exec(
                select(FileVersion.storage_key).join(StoredFile, col(StoredFile.id) == FileVersion.file_id).where(where)
            )
        ).all()
    )
    if not keys:
        return
    storage = ctx.services.storage

    async def purge() -> None:
        for key in keys:
            await storage.delete(key)

    ctx.after_commit.append(purge)
