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
        "notification.mention": "{actor} mentioned you on {task}",
        "notification.assignment": "{actor} assigned {task} to you",
        "notification.status": "{task} moved to {status}",
        "notification.feedback": "How well were your goals supported in {project}?",
        "notification.request.filed": "New request: {request}",
        "notification.request.reply": "New reply on {request}",
        "notification.request.accepted": "{request} was accepted",
        "notification.request.merged": "{request} was merged into {task}",
        "notification.request.merged_hidden": "{request} was merged into an existing task",
        "notification.request.asked": "More information is needed on {request}",
        "notification.request.declined": "{request} was declined",
        "digest.reply_to_item": "Reply by email: {address}",
        "digest.reply_hint": "Reply to this mail to answer in the thread.",
        "bounce.subject": "Your reply could not be posted: {subject}",
        "bounce.body": (
            "Hello,\n\nTandem could not post your reply to the thread, and stored nothing of it:\n\n{reason}\n\n"
            "You can still answer in Tandem: {link}"
        ),
        "bounce.invalid_token": "The address you replied to is not a valid Tandem reply address.",
        "bounce.not_recipient": (
            "The reply address belongs to the person the notification was sent to; reply from that mailbox."
        ),
        "bounce.unauthenticated": "Your mail server could not prove this mail came from you (SPF/DKIM failed).",
        "bounce.no_access": "You no longer have access to this thread.",
        "bounce.enrol_first": (
            "Your organization requires a second way to sign in (a passkey or authenticator codes), and you have not "
            "set one up yet. Sign in to Tandem, set one up, then send your reply again."
        ),
        "bounce.too_large": "The mail or an attachment is too large (at most {limit} bytes).",
        "bounce.empty": "We found no reply text above the quoted message.",
        "bounce.invalid": "The reply could not be posted: {detail}",
        "bounce.no_thread": "This request has no thread to reply in yet; answer it in Tandem.",
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
        "link.subject": "Your Tandem sign-in link",
        "link.body": (
            "Hello {name},\n\nsomeone (hopefully you) asked to sign in to Tandem with a link. Sign in here:\n{link}\n\n"
            "The link works once, for {minutes} minutes, and only in the browser where you asked for it.\n\n"
            "If you did not ask for this, ignore this mail: nobody can sign in with it from another browser."
        ),
        "security.body": (
            "Hello {name},\n\n{what}\n\nWhen: {when}\nDevice: {device}\nAddress: {ip}\n\n"
            "If this was you, there is nothing to do. If it was not, change your password and sign out the sessions "
            "you do not recognise here:\n{link}"
        ),
        "security.password_changed.subject": "Your Tandem password was changed",
        "security.password_changed": "The password of your Tandem account was changed.",
        "security.passkey_added.subject": "A passkey was added to your Tandem account",
        "security.passkey_added": 'A passkey named "{passkey}" was added to your Tandem account.',
        "security.passkey_removed.subject": "A passkey was removed from your Tandem account",
        "security.passkey_removed": 'The passkey named "{passkey}" was removed from your Tandem account.',
        "security.totp_added.subject": "Authenticator codes were turned on for your Tandem account",
        "security.totp_added": "Sign-in with authenticator-app codes was turned on for your Tandem account.",
        "security.totp_removed.subject": "Authenticator codes were turned off for your Tandem account",
        "security.totp_removed": "Sign-in with authenticator-app codes was turned off for your Tandem account.",
        "security.recovery_codes.subject": "New recovery codes for your Tandem account",
        "security.recovery_codes": "New recovery codes were made for your Tandem account; the old ones no longer work.",
        "security.new_device.subject": "New sign-in to your Tandem account",
        "security.new_device": "Someone signed in to your Tandem account from a device not used before.",
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
        "notification.mention": "{actor} nämnde dig i {task}",
        "notification.assignment": "{actor} tilldelade dig {task}",
        "notification.status": "{task} flyttades till {status}",
        "notification.feedback": "Hur väl stöddes era mål i {project}?",
        "notification.request.filed": "Ny förfrågan: {request}",
        "notification.request.reply": "Nytt svar på {request}",
        "notification.request.accepted": "{request} har godtagits",
        "notification.request.merged": "{request} har slagits ihop med {task}",
        "notification.request.merged_hidden": "{request} har slagits ihop med en befintlig uppgift",
        "notification.request.asked": "Mer information behövs om {request}",
        "notification.request.declined": "{request} har avböjts",
        "digest.reply_to_item": "Svara via e-post: {address}",
        "digest.reply_hint": "Svara på det här mejlet för att svara i tråden.",
        "bounce.subject": "Ditt svar kunde inte publiceras: {subject}",
        "bounce.body": (
            "Hej,\n\nTandem kunde inte publicera ditt svar i tråden och har inte sparat något av det:\n\n{reason}\n\n"
            "Du kan fortfarande svara i Tandem: {link}"
        ),
        "bounce.invalid_token": "Adressen du svarade till är ingen giltig svarsadress i Tandem.",
        "bounce.not_recipient": ("Svarsadressen tillhör den som aviseringen skickades till; svara från den brevlådan."),
        "bounce.unauthenticated": "Din e-postserver kunde inte visa att mejlet kom från dig (SPF/DKIM misslyckades).",
        "bounce.no_access": "Du har inte längre tillgång till den här tråden.",
        "bounce.enrol_first": (
            "Din organisation kräver ett andra sätt att logga in (en nyckel eller koder från en autentiseringsapp), "
            "och du har inte lagt till något än. Logga in i Tandem, lägg till ett och skicka sedan ditt svar igen."
        ),
        "bounce.too_large": "Mejlet eller en bilaga är för stor (högst {limit} byte).",
        "bounce.empty": "Vi hittade ingen svarstext ovanför det citerade meddelandet.",
        "bounce.invalid": "Svaret kunde inte publiceras: {detail}",
        "bounce.no_thread": "Förfrågan har ingen tråd att svara i än; svara på den i Tandem.",
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
        "link.subject": "Din inloggningslänk till Tandem",
        "link.body": (
            "Hej {name},\n\nnågon (förhoppningsvis du) bad om att logga in på Tandem med en länk. Logga in här:\n"
            "{link}\n\nLänken fungerar en gång, i {minutes} minuter, och bara i webbläsaren där du bad om den.\n\n"
            "Har du inte bett om detta kan du bortse från det här mejlet: ingen kan logga in med det från en annan "
            "webbläsare."
        ),
        "security.body": (
            "Hej {name},\n\n{what}\n\nNär: {when}\nEnhet: {device}\nAdress: {ip}\n\n"
            "Var det du behöver du inte göra något. Var det inte du: byt lösenord och logga ut de sessioner du inte "
            "känner igen här:\n{link}"
        ),
        "security.password_changed.subject": "Ditt lösenord till Tandem har ändrats",
        "security.password_changed": "Lösenordet till ditt Tandem-konto har ändrats.",
        "security.passkey_added.subject": "En nyckel har lagts till i ditt Tandem-konto",
        "security.passkey_added": 'En nyckel (passkey) med namnet "{passkey}" har lagts till i ditt Tandem-konto.',
        "security.passkey_removed.subject": "En nyckel har tagits bort från ditt Tandem-konto",
        "security.passkey_removed": 'Nyckeln (passkey) med namnet "{passkey}" har tagits bort från ditt Tandem-konto.',
        "security.totp_added.subject": "Koder från autentiseringsapp har slagits på för ditt Tandem-konto",
        "security.totp_added": "Inloggning med koder från en autentiseringsapp har slagits på för ditt Tandem-konto.",
        "security.totp_removed.subject": "Koder från autentiseringsapp har stängts av för ditt Tandem-konto",
        "security.totp_removed": "Inloggning med koder från en autentiseringsapp har stängts av för ditt Tandem-konto.",
        "security.recovery_codes.subject": "Nya reservkoder för ditt Tandem-konto",
        "security.recovery_codes": "Nya reservkoder har skapats för ditt Tandem-konto; de gamla fungerar inte längre.",
        "security.new_device.subject": "Ny inloggning på ditt Tandem-konto",
        "security.new_device": "Någon loggade in på ditt Tandem-konto från en enhet som inte använts förut.",
    },
}


def pick_locale(accept_language: str) -> str:
    """The first language of an Accept-Language header that Tandem speaks (``en`` when none), ignoring weights of
    zero. What the server says before it knows who is asking (the page's ``lang``) follows it."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, weight = part.strip().partition(";q=")
        try:
            quality = float(weight) if weight else 1.0
        except ValueError:
            continue
        base = tag.strip().lower().split("-")[0]
        if quality > 0 and base in CATALOGS:
            ranked.append((-quality, position, base))
    return min(ranked)[2] if ranked else "en"


def message(locale: str, key: str, **params: str) -> str:
    """The message ``key`` in ``locale`` (English when the locale or key is missing), with ``{params}`` filled."""
    template = CATALOGS.get(locale, CATALOGS["en"]).get(key) or CATALOGS["en"].get(key, key)
    return template.format(**params)


def notification_text(locale: str, kind: str, params: dict[str, str]) -> str:
    """A notification's sentence in ``locale`` from its ``kind`` and ``params`` (server/inbox/notify.py); an
    empty string when the kind (or a request's step) has no message, so callers can fall back to the stored text."""
    key = f"notification.{kind}"
    if kind == "request":
        step = params.get("step", "")
        key = f"notification.request.{step}"
        if step == "merged" and not params.get("task"):
            key = "notification.request.merged_hidden"
    if key not in CATALOGS["en"]:
        return ""
    template = CATALOGS.get(locale, CATALOGS["en"]).get(key) or CATALOGS["en"][key]
    return template.format_map(_Blank(params))


class _Blank(dict[str, str]):
    """Params where a missing name reads as empty (an old notification may lack one)."""

    def __missing__(self, key: str) -> str:
        return ""
