"""Replies by email: signed reply addresses on outgoing mail, and the inbound SMTP server that turns a reply into a
comment on the thread it answers (``tandem mail-in``). See docs/MAIL.md."""
