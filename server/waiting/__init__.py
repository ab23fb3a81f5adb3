"""What waits on whom (``rules``) and a person's "waiting on you" list (``routes``)."""
