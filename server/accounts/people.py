"""How people appear to others: the presenter every feature uses for an item's author, assignee or requester."""

from __future__ import annotations

from server.models import User
from server.schemas import PersonOut


def person_out(user: User | None) -> PersonOut | None:
    """How a person appears on items others see: id, name, and whether they are a customer."""
    if user is None or user.id is None:
        return None
    return PersonOut(id=user.id, name=user.name, is_customer=not user.is_staff)
