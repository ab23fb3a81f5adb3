"""A token bucket: how fast one client may send frames (``/ws`` text frames, ``/yjs`` binary messages)."""

from __future__ import annotations


class TokenBucket:
    """Allows ``burst`` events at once and ``rate`` per second sustained.

    Guarantees: over any interval of ``t`` seconds at most ``burst + rate * t`` events are allowed.
    """

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = 0.0

    def take(self, now: float) -> bool:
        """Take one token at time ``now`` (a monotonic clock in seconds); False when none is left."""
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
