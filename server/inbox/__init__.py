"""Notifications: creating them (``notify``), email digests (``digest``) and the inbox routes (``routes``)."""
