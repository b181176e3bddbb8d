"""A token bucket: the storm opens connections at R per second, in small bursts.

`take(now, limit)` returns how many tokens (connects) may start now. Time is passed in (an
injected clock), so the bucket is pure and tested without sleeping.
"""

from __future__ import annotations


class TokenBucket:
    """Refills `rate` tokens per second up to `burst`; rate 0 means unlimited."""

    __slots__ = ("rate", "burst", "_tokens", "_last")

    def __init__(self, rate: float, burst: float | None = None, *, now: float = 0.0) -> None:
        if rate < 0:
            raise ValueError("rate must be >= 0")
        self.rate = float(rate)
        # Default burst: 10 ms worth of tokens, at least one.
        self.burst = float(burst) if burst is not None else max(1.0, self.rate / 100.0)
        self._tokens = min(1.0, self.burst) if self.rate else 0.0
        self._last = now

    def take(self, now: float, limit: int) -> int:
        """Take up to `limit` whole tokens available at time `now`."""
        if limit <= 0:
            return 0
        if self.rate == 0:
            return limit
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
        n = min(limit, int(self._tokens))
        self._tokens -= n
        return n

    def wait_time(self, now: float) -> float:
        """Seconds until the next whole token (0 when one is ready or the rate is unlimited)."""
        if self.rate == 0:
            return 0.0
        tokens = min(self.burst, self._tokens + max(0.0, now - self._last) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
