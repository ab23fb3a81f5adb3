"""The new text of a reply: quoted history, client headers and signatures removed.

Quotes are found by mail-parser-reply (maintained, MIT, no dependencies), which knows the reply headers of many
languages' mail clients: "On ... wrote:", "Den ... skrev:", Outlook's "From:/Från:" and "-----Original Message-----"
blocks. It keeps a "-- " signature, so the RFC 3676 delimiter is cut here, and any ">" line left over.
"""

from __future__ import annotations

import html
import re
from email.message import EmailMessage, Message

from mailparser_reply import EmailReplyParser

LANGUAGES = ["en", "sv"]
_SIGNATURE = re.compile(r"^-- ?$", re.MULTILINE)
_TAG = re.compile(r"<[^>]+>")
_BLOCK_END = re.compile(r"(?i)<br\s*/?>|</(p|div|li|tr|h\d)>")
_HIDDEN = re.compile(r"(?is)<(script|style|head)\b.*?</\1>|<blockquote\b.*?</blockquote>")


def reply_text(text: str) -> str:
    """The reply written above the quoted history, without its signature, trimmed."""
    text = text.replace("\r\n", "\n")
    reply = EmailReplyParser(languages=LANGUAGES).parse_reply(text=text) or ""
    cut = _SIGNATURE.search(reply)
    if cut is not None:
        reply = reply[: cut.start()]
    # Quoted lines the parser left (a reply that is only a quote, or answers between quotes) are history too.
    return "\n".join(line for line in reply.splitlines() if not line.startswith(">")).strip()


def body_text(message: Message) -> str:
    """The mail's text: its text/plain part, else its HTML part reduced to text (quoted blocks dropped)."""
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain",))
    if part is not None:
        return str(part.get_content())
    part = message.get_body(preferencelist=("html",))
    if part is None:
        return ""
    markup = _HIDDEN.sub("", str(part.get_content()))
    return html.unescape(_TAG.sub("", _BLOCK_END.sub("\n", markup)))
