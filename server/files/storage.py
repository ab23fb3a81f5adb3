"""Where file contents live: a small ``Storage`` Protocol, a local directory, and an S3-compatible store.

Uploads never sit in memory whole: :func:`spool_upload` streams a request body into a temporary file while
hashing and counting it (refusing it the moment it passes the limit), and :meth:`Storage.read` yields a stored
blob in chunks. Keys are chosen by the server (``{project}/{file}/{version}-{random}``), never from a filename.

One factory, :func:`storage_from_url`, picks the backend from a URL scheme (``file://``, ``s3://``) and imports
``boto3`` only when S3 is configured.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from server.settings import S3Settings, Settings

CHUNK_SIZE = 64 * 1024
# Bytes of an upload held in memory at once: the write buffer (one incoming chunk may add to it).
UPLOAD_MEMORY_BUDGET = 1024 * 1024
_WRITE_BUFFER = 256 * 1024
_SNIFF_BYTES = 8192
_KEY = re.compile(r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9_.-]+)*$")


class UploadTooLarge(Exception):
    """The upload passed the configured limit; what had arrived is discarded."""


class Storage(Protocol):
    """A store of immutable blobs by key."""

    async def save(self, key: str, source: Path) -> None:
        """Store the complete file at ``source`` under ``key``. ``source`` may be moved away.

        Raises:
            OSError (or the backend's error): nothing was stored.
        """

    def read(self, key: str) -> AsyncIterator[bytes]:
        """Yield the blob's bytes in chunks of at most 64 KiB, in order.

        Raises:
            FileNotFoundError: no blob under ``key`` (raised on the first iteration).
        """

    async def delete(self, key: str) -> None:
        """Remove the blob; a missing key is not an error (deleting is idempotent)."""


@dataclass
class Upload:
    """A request body spooled to disk: where, how big, its SHA-256, and its first bytes (for sniffing)."""

    path: Path
    size: int
    sha256: str
    head: bytes

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


async def spool_upload(chunks: AsyncIterator[bytes], directory: Path, limit: int) -> Upload:
    """Stream ``chunks`` into a temporary file in ``directory``, hashing and counting as they arrive.

    At most ``UPLOAD_MEMORY_BUDGET`` bytes are held at once. The caller owns the file (``Upload.discard``).

    Raises:
        UploadTooLarge: more than ``limit`` bytes arrived; the partial file is removed and the rest of the body
            is not read.
    """
    handle = await asyncio.to_thread(_temporary_file, directory)
    path = Path(handle.name)
    digest = hashlib.sha256()
    size = 0
    head = bytearray()
    buffer = bytearray()
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge
            digest.update(chunk)
            if len(head) < _SNIFF_BYTES:
                head += chunk[: _SNIFF_BYTES - len(head)]
            buffer += chunk
            if len(buffer) >= _WRITE_BUFFER:
                # The buffer itself, not a copy: nothing touches it until the write has finished.
                await asyncio.to_thread(handle.write, buffer)
                buffer.clear()
        if buffer:
            await asyncio.to_thread(handle.write, buffer)
        await asyncio.to_thread(handle.close)
    except BaseException:
        handle.close()
        path.unlink(missing_ok=True)  # noqa: ASYNC240  (cleanup must finish even when cancelled)
        raise
    return Upload(path=path, size=size, sha256=digest.hexdigest(), head=bytes(head))


def _temporary_file(directory: Path) -> Any:
    directory.mkdir(parents=True, exist_ok=True)
    return tempfile.NamedTemporaryFile(dir=directory, prefix="upload-", delete=False)


def _check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"invalid storage key {key!r}")
    return key


class LocalStorage:
    """Blobs as files under one directory (the default: ``DATA_DIR/files``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    async def save(self, key: str, source: Path) -> None:
        target = self._path(key)

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(source, target)

        await asyncio.to_thread(move)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self._path(key).open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)


class S3Storage:
    """Blobs as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph...), through boto3 in worker threads.

    Uploads go through boto3's managed transfer (multipart above 8 MiB); downloads read the object's body in
    chunks, so neither holds a whole file in memory.
    """

    def __init__(self, bucket: str, prefix: str, settings: S3Settings, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        if client is None:
            import boto3

            client = boto3.client(
                "s3",
                endpoint_url=settings.endpoint_url,
                aws_access_key_id=settings.access_key_id,
                aws_secret_access_key=settings.secret_access_key,
                region_name=settings.region,
            )
        self.client = client

    def _key(self, key: str) -> str:
        return self.prefix + _check_key(key)

    async def save(self, key: str, source: Path) -> None:
        await asyncio.to_thread(self.client.upload_file, str(source), self.bucket, self._key(key))
        await asyncio.to_thread(source.unlink, missing_ok=True)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        try:
            response = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(key) from None
        body = response["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK_SIZE):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))


def storage_from_url(settings: Settings) -> Storage:
    """The storage ``settings.storage_url`` names: ``file:///dir`` (default ``DATA_DIR/files``) or
    ``s3://bucket/prefix`` (endpoint and keys from the ``TANDEM_S3_*`` settings).

    Raises:
        ValueError: an unknown scheme.
    """
    url = settings.storage_url or f"file://{(settings.data_dir / 'files').resolve()}"
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStorage(Path(parsed.path))
    if parsed.scheme == "s3":
        return S3Storage(parsed.netloc, parsed.path, settings.s3)
    raise ValueError(f"unsupported storage URL {url!r}: use file:///path or s3://bucket/prefix")
