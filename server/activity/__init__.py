"""A project's activity: what changed, recorded with each change and read through the policy (rules), and its routes."""
