"""Mail: sending (``outgoing``: SMTP, or the log in development), and replies by email: signed reply addresses on
outgoing mail (``tokens``, ``addresses``) and the inbound SMTP server that turns a reply into a comment on the thread
it answers (``server``, ``handler``, ``reply``; ``tandem mail-in``). See docs/MAIL.md."""
