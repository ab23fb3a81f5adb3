"""People and their access: sign-in sessions, API tokens, passwords, members, invitations, staff."""
