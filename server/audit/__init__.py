"""The audit log: recording events (``log``), the hash chain (``chain``) and ``GET /api/audit`` (``routes``)."""
