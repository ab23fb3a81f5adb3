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
        "reset.subject": "Reset your Tandem password",
        "reset.body": (
            "Hello {name},\n\nsomeone (hopefully you) asked to reset the password of your Tandem account. "
            "Choose a new password here:\n{link}\n\nThe link works once and expires in {minutes} minutes. "
            "Setting a new password signs you out everywhere.\n\nIf you did not ask for this, ignore this mail: "
            "your password stays as it is."
        ),
        "invite.subject": "{inviter} invited you to {project} on Tandem",
        "invite.body": (
            "{inviter} of {organization} invited you to collaborate on {project}.\n\n"
            "Accept the invitation and set your password here:\n{link}\n\n"
            "The link works once and expires in {hours} hours."
        ),
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
        "reset.subject": "Återställ ditt lösenord till Tandem",
        "reset.body": (
            "Hej {name},\n\nnågon (förhoppningsvis du) bad om att få återställa lösenordet till ditt Tandem-konto. "
            "Välj ett nytt lösenord här:\n{link}\n\nLänken fungerar en gång och slutar gälla om {minutes} minuter. "
            "När du sätter ett nytt lösenord loggas du ut överallt.\n\nHar du inte bett om detta kan du bortse från "
            "det här mejlet: ditt lösenord förblir som det är."
        ),
        "invite.subject": "{inviter} har bjudit in dig till {project} på Tandem",
        "invite.body": (
            "{inviter} på {organization} har bjudit in dig att samarbeta i {project}.\n\n"
            "Tacka ja och välj ditt lösenord här:\n{link}\n\n"
            "Länken fungerar en gång och slutar gälla om {hours} timmar."
        ),
    },
}


def message(locale: str, key: str, **params: str) -> str:
    """The message ``key`` in ``locale`` (English when the locale or key is missing), with ``{params}`` filled."""
    template = CATALOGS.get(locale, CATALOGS["en"]).get(key) or CATALOGS["en"].get(key, key)
    return template.format(**params)
