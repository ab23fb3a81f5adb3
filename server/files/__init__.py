"""Files: where contents live (``storage``) and upload, download and versions (``routes``)."""
