"""The ASGI entry point for uvicorn: ``uvicorn --factory server.main:create``."""

from __future__ import annotations

import gc

from starlette.applications import Starlette

from server.app import create_app
from server.live import uvicorn_socket
from server.observability import configure_logging
from server.settings import load_settings

# The collector's thresholds: the young generations' as CPython sets them, a full collection considered 100 times
# less often (every 7 million allocations net, not 70,000). A node holds long-lived objects by the thousand per
# second when sockets arrive together (a deploy, a reconnect storm: each socket's protocol, connection and queues),
# and CPython runs a full collection, a walk of the whole heap, each time it considers one and finds the long-lived
# objects grown by a quarter: in a storm of 10,000 sockets that was dozens of walks of a growing heap, about as much
# CPU as the sockets themselves (bench/README.md, `bench/connect.py`). A full collection still runs once the heap
# grew by a quarter, at the next consideration, so what closed sockets leave in cycles is still freed.
GC_THRESHOLDS = (700, 10, 1000)


def create() -> Starlette:
    """Build the app from the environment (each uvicorn worker calls this once).

    Everything alive once the app is built (the imported modules: some 140,000 objects) lives as long as the
    process, so it is moved out of the garbage collector's sight (`gc.freeze`): a full collection otherwise walks
    all of it and stalls whatever fan-out or request is running at that moment (bench/README.md has the figure).
    Full collections are considered less often than CPython's default (`GC_THRESHOLDS`).
    """
    settings = load_settings()
    configure_logging(settings)
    uvicorn_socket.report()  # says, once per worker, whether the WebSocket fast path is on
    app = create_app(settings)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return app
