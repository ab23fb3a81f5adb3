"""The ASGI entry point for uvicorn: ``uvicorn --factory server.main:create``."""

from __future__ import annotations

import gc

from starlette.applications import Starlette

from server.app import create_app
from server.live import uvicorn_socket
from server.observability import configure_logging
from server.settings import load_settings


def create() -> Starlette:
    """Build the app from the environment (each uvicorn worker calls this once).

    Everything alive once the app is built (the imported modules: some 140,000 objects) lives as long as the
    process, so it is moved out of the garbage collector's sight (`gc.freeze`): a full collection otherwise walks
    all of it and stalls whatever fan-out or request is running at that moment (bench/README.md has the figure).
    """
    settings = load_settings()
    configure_logging(settings)
    uvicorn_socket.report()  # says, once per worker, whether the WebSocket fast path is on
    app = create_app(settings)
    gc.collect()
    gc.freeze()
    return app
