"""Co-edited notes: metadata routes (``routes``); their live side is ``server/live/notes_ws.py``."""
