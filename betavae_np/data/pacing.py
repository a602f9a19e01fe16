"""Politeness: a token bucket that paces requests, and capped exponential backoff with jitter."""

from __future__ import annotations

import asyncio
import math
import time

import numpy as np

from ..exceptions import ConfigError

__all__ = ["TokenBucket", "Backoff"]


class TokenBucket:
    """Asynchronous token bucket shared by every request of one client.

    Parameters
    ----------
    rate : float or None
        Tokens added per second (requests per second in the long run). ``None`` or ``inf`` lifts
        pacing altogether.
    burst : int
        Bucket capacity: at most this many requests go out back to back after a quiet spell.
    clock : callable, optional
        Monotonic clock in seconds (default :func:`time.monotonic`).

    Notes
    -----
    ``tokens(t) = min(burst, tokens(t0) + rate * (t - t0))``; a request takes one token and waits
    ``(1 - tokens) / rate`` when fewer than one is left. Waiters are served in arrival order (an
    :class:`asyncio.Lock` is held while waiting), so N requests need at least ``(N - burst) / rate``
    seconds. Same scheme as ccxt's throttler.
    """

    def __init__(self, rate: float | None = 10.0, burst: int = 2, *, clock=time.monotonic):
        if rate is not None and not (isinstance(rate, (int, float)) and rate > 0):
            raise ConfigError(f"invalid rate {rate!r}; give requests per second > 0, or None for no pacing")
        if not isinstance(burst, (int, np.integer)) or burst < 1:
            raise ConfigError(f"invalid burst {burst!r}; give an integer >= 1")
        self.rate = None if rate is None or math.isinf(rate) else float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock: asyncio.Lock | None = None
        self._hold_until = float("-inf")
        self.waited = 0.0  # total seconds spent waiting for tokens or holds

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def hold(self, seconds: float) -> None:
        """Let no request start for ``seconds`` (the server said the limit resets then)."""
        self._hold_until = max(self._hold_until, self._clock() + max(0.0, float(seconds)))

    async def acquire(self) -> None:
        """Wait until a token is available (and any hold is over) and take it."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            pause = self._hold_until - self._clock()
            if pause > 0:
                self.waited += pause
                await asyncio.sleep(pause)
            if self.rate is None:
                return
            self._refill()
            if self._tokens < 1.0:
                wait = (1.0 - self._tokens) / self.rate
                self.waited += wait
                await asyncio.sleep(wait)
                self._refill()
            self._tokens -= 1.0


class Backoff:
    """Capped exponential backoff with "equal jitter".

    Parameters
    ----------
    base : float
        Delay before the first retry, seconds.
    cap : float
        Largest delay, seconds.
    rng : int, numpy.random.Generator or None
        Source of the jitter (a seed or a Generator, for reproducible tests).

    Notes
    -----
    ``d_k = min(cap, base * 2**k)``; the delay drawn is uniform in ``[d_k / 2, d_k]`` (AWS
    architecture blog, "Exponential Backoff and Jitter", 2015), so clients that failed together do
    not retry together.
    """

    def __init__(self, base: float = 0.5, cap: float = 16.0, rng=None):
        if not base >= 0 or not cap >= 0:
            raise ConfigError(f"invalid backoff base {base!r} / cap {cap!r}; give seconds >= 0")
        self.base, self.cap = float(base), float(cap)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        d = min(self.cap, self.base * 2.0 ** min(attempt, 60))
        return float(d * (0.5 + 0.5 * self.rng.random()))
