"""Prometheus metrics of the hub. Cheap on the hot path: at most one increment per publication, never one per
subscriber; gauges over all connections are computed when scraped."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("tandem_ws_connections", "Open hub WebSocket connections on this node.")
PUBLISHED = Counter("tandem_events_published_total", "Publications this node sent to the broker.")
RECEIVED = Counter("tandem_events_received_total", "Publications this node received from the broker.")
DELIVERED = Counter("tandem_events_delivered_total", "Event frames queued to local subscribers.")
FANOUT_SECONDS = Histogram(
    "tandem_fanout_seconds",
    "Time to encode one publication and queue it to every local subscriber.",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)
CLOSES = Counter("tandem_ws_closes_total", "Connections closed by the server, by close code.", ["code"])
BROKER_RECONNECTS = Counter("tandem_broker_reconnects_total", "Times the broker re-established its connection.")
RECOVERIES = Counter("tandem_recoveries_total", "Subscribes with a resume position, by outcome.", ["outcome"])
RECOVERED, RELOADED = RECOVERIES.labels(outcome="recovered"), RECOVERIES.labels(outcome="reload")  # looked up once
SUBSCRIPTIONS = Gauge("tandem_ws_subscriptions", "Channel subscriptions of the open connections.")
QUEUE_DEPTH_MAX = Gauge("tandem_ws_send_queue_depth_max", "Deepest send queue among open connections (frames).")
LOOP_PASSES = Counter(
    "tandem_loop_passes_total",
    "Finished passes of the background loops (channels.loops), by loop and outcome.",
    ["loop", "outcome"],
)
