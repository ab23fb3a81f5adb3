"""Requests: customer intake and its triage by staff (``routes``)."""
