"""Search across everything a person may see (``routes``)."""
