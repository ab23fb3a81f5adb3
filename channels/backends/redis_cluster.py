"""Redis Cluster: the ``redis+cluster://`` URL, one client factory for every Redis user, and `ShardedSubscriber`.

A cluster URL names one or more seed nodes, comma separated: ``redis+cluster://host1:6379,host2:6379`` (TLS:
``rediss+cluster://``; credentials as in ``redis://user:password@...``). The client discovers every shard from them.

Every key of a channel is hash-tagged ``{channel}``, so a channel's meta hash, history stream, presence keys and
its sharded pub/sub channel (``P{channel}:pub``) all live in one slot of one shard. Publishing is one Lua script
whose ``SPUBLISH`` goes out from that shard, so only the nodes subscribed on that shard receive it: pub/sub traffic
grows with the shard count instead of being broadcast to every node of the cluster as plain ``PUBLISH`` is.

`ShardedSubscriber` keeps one `PubSubReader` (one connection, SSUBSCRIBE) per primary that owns a slot this process
wants, and routes each channel by its slot (``CRC16 mod 16384``, the client's slot map). When a shard answers
``-MOVED``, drops a channel with an unasked ``sunsubscribe`` (the slot migrated) or keeps failing to connect (a
failover may have promoted a replica elsewhere), it refreshes the slot map, moves the channels whose owner changed
to the owner's reader and then awaits the reconnect handler, so the hub fills any gap from history as after a
reconnect. A shard that restarts in place is handled by its reader alone (backoff, resubscribe, reconnect handler).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError

from channels.backends.redis_pubsub import PubSubReader, SlotMoved, dedicated_connection, pubsub_name
from channels.broker import BrokerUnavailable, PublicationHandler, ReconnectHandler

logger = logging.getLogger(__name__)

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
_SUBSCRIBE_ATTEMPTS = 3


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://`` or ``rediss+cluster://``)."""
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def redis_client(url: str, **options: Any) -> Redis | RedisCluster:
    """A client for ``url``: `Redis` for ``redis://``/``rediss://``, `RedisCluster` for a cluster URL.

    Args:
        url: the URL (cluster URLs may list several ``host:port`` seeds, comma separated).
        options: passed to the client (timeouts, ``retry``).

    Raises:
        ValueError: a cluster URL without a host, or with a database number (a cluster has only database 0).
    """
    if not is_cluster_url(url):
        return Redis.from_url(url, **options)
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError("a Redis Cluster has only database 0; drop the path from the cluster URL")
    seeds = []
    for address in filter(None, hosts.split(",")):
        host, _, port = address.rpartition(":") if ":" in address else (address, "", "6379")
        seeds.append(ClusterNode(host.strip("[]"), int(port)))
    if not seeds:
        raise ValueError(f"no host in cluster URL {url!r}")
    return RedisCluster(
        startup_nodes=seeds,
        username=unquote(username) or None,
        password=unquote(password) or None,
        ssl=parts.scheme == "rediss+cluster",
        **options,
    )


class ShardedSubscriber:
    """Sharded pub/sub over a Redis Cluster: one `PubSubReader` per shard, channels routed by hash slot."""

    def __init__(
        self,
        cluster: RedisCluster,
        prefix: str,
        *,
        ping_interval: float,
        base_delay: float,
        max_delay: float,
        subscribe_timeout: float,
        socket_timeout: float,
    ) -> None:
        self._cluster = cluster
        self._prefix = prefix
        self._options = dict(
            ping_interval=ping_interval,
            base_delay=base_delay,
            max_delay=max_delay,
            subscribe_timeout=subscribe_timeout,
        )
        self._socket_timeout = socket_timeout
        self._base_delay = base_delay
        self._readers: dict[str, PubSubReader] = {}  # shard (node name) -> its reader
        self._routes: dict[bytes, str] = {}  # pub/sub name -> the shard it is subscribed on
        self._handler: PublicationHandler | None = None
        self._reconnect_handler: ReconnectHandler | None = None
        self._reroute_task: asyncio.Task[None] | None = None

    @property
    def handler(self) -> PublicationHandler | None:
        return self._handler

    @handler.setter
    def handler(self, handler: PublicationHandler | None) -> None:
        self._handler = handler
        for reader in self._readers.values():
            reader.handler = handler

    @property
    def reconnect_handler(self) -> ReconnectHandler | None:
        return self._reconnect_handler

    @reconnect_handler.setter
    def reconnect_handler(self, handler: ReconnectHandler | None) -> None:
        self._reconnect_handler = handler
        for reader in self._readers.values():
            reader.reconnect_handler = handler

    def shards(self) -> dict[str, list[str]]:
        """The channels each shard's reader holds, by shard address (for tests and diagnostics)."""
        return {node: sorted(reader.wanted.values()) for node, reader in self._readers.items()}

    def start(self) -> None:
        """Readers start with the first channel routed to their shard."""

    async def close(self) -> None:
        if self._reroute_task is not None:
            self._reroute_task.cancel()
            await asyncio.gather(self._reroute_task, return_exceptions=True)
            self._reroute_task = None
        readers, self._readers = list(self._readers.values()), {}
        await asyncio.gather(*(reader.close() for reader in readers))
        self._routes.clear()

    async def subscribe(self, channel: str) -> None:
        name = pubsub_name(self._prefix, channel).encode()
        for _ in range(_SUBSCRIBE_ATTEMPTS):
            reader = await self._route(name)
            try:
                await reader.subscribe(channel)
                return
            except SlotMoved:
                await self._refresh_slots()
        raise BrokerUnavailable(f"subscribing to {channel!r}: its slot kept moving")

    async def unsubscribe(self, channel: str) -> None:
        name = pubsub_name(self._prefix, channel).encode()
        shard = self._routes.pop(name, None)
        reader = self._readers.get(shard) if shard is not None else None
        if reader is not None:
            await reader.forget(name)

    async def _route(self, name: bytes) -> PubSubReader:
        """The reader of the shard owning ``name``'s slot; drops ``name`` from a previous shard's reader."""
        try:
            await self._cluster.initialize()
            owner = self._cluster.nodes_manager.get_node_from_slot(key_slot(name))
        except (RedisError, RedisClusterException) as exc:
            raise BrokerUnavailable(f"cluster slot map unavailable: {exc}") from exc
        previous = self._routes.get(name)
        if previous is not None and previous != owner.name and (old := self._readers.get(previous)) is not None:
            await old.forget(name)
        self._routes[name] = owner.name
        return self._reader(owner)

    def _reader(self, node: ClusterNode) -> PubSubReader:
        reader = self._readers.get(node.name)
        if reader is None:
            connect = dedicated_connection(node.connection_class, node.connection_kwargs, self._socket_timeout)
            reader = PubSubReader(
                connect, self._prefix, sharded=True, name=f"tandem-redis-shard-{node.name}", **self._options
            )
            reader.handler = self._handler
            reader.reconnect_handler = self._reconnect_handler
            reader.on_lost = self._schedule_reroute
            self._readers[node.name] = reader
            reader.start()
        return reader

    async def _refresh_slots(self) -> bool:
        try:
            await self._cluster.nodes_manager.initialize()
        except (RedisError, RedisClusterException) as exc:
            logger.warning("refreshing the cluster slot map failed: %s", exc)
            return False
        return True

    def _schedule_reroute(self) -> None:
        if self._reroute_task is None or self._reroute_task.done():
            self._reroute_task = asyncio.get_running_loop().create_task(self._reroute(), name="tandem-redis-reroute")

    async def _reroute(self) -> None:
        # Let a burst of reports (every channel of a migrated slot, several shards failing) become one refresh.
        await asyncio.sleep(self._base_delay)
        if not await self._refresh_slots():
            return
        moved: list[str] = []
        for name, shard in list(self._routes.items()):
            try:
                owner = self._cluster.nodes_manager.get_node_from_slot(key_slot(name))
            except RedisClusterException:
                continue  # slot not covered right now; its reader keeps retrying
            reader = self._readers.get(shard)
            if owner.name != shard and reader is not None and (channel := await reader.forget(name)) is not None:
                del self._routes[name]
                moved.append(channel)
        if not moved:
            return
        logger.warning("re-routing %d channel(s) to their new shards", len(moved))
        results = await asyncio.gather(*(self.subscribe(channel) for channel in moved), return_exceptions=True)
        for channel, result in zip(moved, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("re-subscribing %r on its new shard failed: %s", channel, result)
        for shard, reader in list(self._readers.items()):
            if not reader.wanted:
                del self._readers[shard]
                await reader.close()
        handler = self._reconnect_handler
        if handler is not None:
            try:
                await handler()
            except Exception:
                logger.exception("reconnect handler failed")
