"""Customer feedback: its rules (``rules``) and routes (``routes``)."""
