"""Outgoing webhooks: events recorded with the change that caused them (``events.py``), delivered, signed and
retried by a worker (``delivery.py``) to targets checked against SSRF (``targets.py``)."""

from __future__ import annotations

from server.webhooks.delivery import WebhookWorker
from server.webhooks.events import WebhookEvents

__all__ = ["WebhookEvents", "WebhookWorker"]
