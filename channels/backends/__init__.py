"""Broker backends and the factory that picks one from a URL scheme.

``redis`` is imported only when a ``redis://``/``rediss://`` URL (or a Redis Cluster's ``redis+cluster://``/
``rediss+cluster://``) asks for it, so memory-only deployments and tests do not need it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.backends.memory import MemoryBroker
from channels.broker import Broker

__all__ = ["MemoryBroker", "make_broker"]


def make_broker(url: str | None, prefix: str = "tandem:") -> Broker:
    """Build the broker a URL names.

    Args:
        url: ``None`` or ``memory://`` for `MemoryBroker`; ``redis://``/``rediss://`` for `RedisBroker` on one
            Redis, ``redis+cluster://host:port[,host:port...]`` (``rediss+cluster://`` with TLS) for `RedisBroker`
            on a Redis Cluster (sharded pub/sub).
        prefix: key and pub/sub prefix (Redis only).

    Returns:
        An unstarted broker (call ``await broker.start()``).

    Raises:
        ValueError: unknown scheme.
    """
    scheme = urlsplit(url).scheme if url else "memory"
    if scheme == "memory":
        return MemoryBroker()
    if scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        from channels.backends.redis import RedisBroker

        return RedisBroker(url or "", prefix)
    raise ValueError(f"unsupported broker URL scheme {scheme!r}")
