"""Server-side message catalogs, for what Tandem sends people (emails), in the recipient's language."""

from __future__ import annotations

CATALOGS: dict[str, dict[str, str]] = {
    "en": {
        "digest.subject": "Tandem: {count} new for you",
        "digest.greeting": "Hello {name}, here is what happened in your projects:",
        "digest.footer": "You get this digest because you take part in these projects on Tandem.",
        "digest.kind.mention": "You were mentioned",
        "digest.kind.assignment": "Assigned to you",
        "digest.kind.request": "Request update",
        "digest.kind.status": "Status changed",
        "digest.kind.feedback": "How well were your goals supported?",
    },
    "sv": {
        "digest.subject": "Tandem: {count} nya för dig",
        "digest.greeting": "Hej {name}, det här har hänt i dina projekt:",
        "digest.footer": "Du får den här sammanfattningen eftersom du deltar i projekten på Tandem.",
        "digest.kind.mention": "Du nämndes",
        "digest.kind.assignment": "Tilldelad dig",
        "digest.kind.request": "Uppdatering av förfrågan",
        "digest.kind.status": "Status ändrad",
        "digest.kind.feedback": "Hur väl stöddes era mål?",
    },
}


def message(locale: str, key: str, **params: str) -> str:
    """The message ``key`` in ``locale`` (English when the locale or key is missing), with ``{params}`` filled."""
    template = CATALOGS.get(locale, CATALOGS["en"]).get(key) or CATALOGS["en"].get(key, key)
    return template.format(**params)
