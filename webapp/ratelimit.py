"""A small in-process token-bucket rate limiter per client address (per worker: a soft limit, by design)."""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from .errors import ApiError

_MAX_CLIENTS = 10_000  # forget the least recently seen clients beyond this, so memory stays bounded


class TokenBucketLimiter:
    """`rate` tokens per second up to `burst`; each request takes one token or is refused with a retry delay."""

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate limit needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float | None = None) -> float:
        """Take a token for client; return 0 when allowed, else the seconds to wait."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > _MAX_CLIENTS:
                self._buckets.popitem(last=False)
        return wait

    def check(self, client: str) -> None:
        """Raise a 429 ApiError with Retry-After when client is over its limit."""
        wait = self.take(client)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise ApiError(429, "rate_limited", f"too many requests; retry in {retry} s",
                           {"Retry-After": str(retry)})
