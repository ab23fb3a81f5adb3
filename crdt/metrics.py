"""Prometheus metrics of the note rooms: open rooms, the stored size of notes as they load, compactions."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROOMS_OPEN = Gauge("tandem_note_rooms_open", "Note rooms loaded on this node.")
NOTE_SIZE_BYTES = Histogram(
    "tandem_note_size_bytes",
    "Stored size of a note (snapshot plus log) when its room loads.",
    buckets=(1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216),
)
COMPACTIONS = Counter(
    "tandem_note_compactions_total", "Compactions of a note's log into its snapshot, by outcome.", ["outcome"]
)
