"""The ASGI entry point for uvicorn: ``uvicorn --factory server.main:create``."""

from __future__ import annotations

from starlette.applications import Starlette

from server.app import create_app
from server.observability import configure_logging
from server.settings import load_settings


def create() -> Starlette:
    """Build the app from the environment (each uvicorn worker calls this once)."""
    settings = load_settings()
    configure_logging(settings)
    return create_app(settings)
