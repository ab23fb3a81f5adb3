"""The REST API. Each module registers its endpoints on ``api``; importing ``server.api.endpoints`` loads them all."""

from __future__ import annotations

from server.api.routing import Api

api = Api()
