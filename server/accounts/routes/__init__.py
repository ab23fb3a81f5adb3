"""HTTP routes of accounts: sign-in, profile, members and invitations, sessions, password reset, sign-in links,
API tokens, staff, preferences."""
