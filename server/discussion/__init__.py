"""Task threads: comments, mentions, reactions, read state (``rules``, ``routes``) and safe comment HTML
(``rendering``)."""
