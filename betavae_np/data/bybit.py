"""Asynchronous Bybit v5 kline client: complete backward pagination, pacing, retries, typed errors.

One :class:`BybitClient` owns (or borrows) one ``aiohttp.ClientSession``. Every request passes a
shared token bucket and a concurrency semaphore, and is retried with capped exponential backoff
and jitter when the failure is transient (retCode 10006/10016, HTTP 429/5xx, timeouts, resets,
truncated bodies). Bad requests (retCode 10001) and HTTP 403 fail at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import pandas as pd

from .._version import __version__
from ..exceptions import (BybitBadRequestError, BybitError, BybitForbiddenError, BybitNetworkError,
                          BybitRateLimitError, BybitResponseError, BybitServerError, ConfigError)
from ._parse import COLUMNS, MalformedReply, decode_envelope, kline_arrays, ticker_table
from .frame import find_gaps, frame_from_arrays
from .intervals import (INTERVALS, MAINNET, TESTNET, count_candles, interval_ms, last_closed_open, ms_to_iso,
                        normalize_category, normalize_interval, normalize_symbol, resolve_base_url, to_ms)
from .pacing import Backoff, TokenBucket

__all__ = ["BybitClient", "MAINNET", "TESTNET", "resolve_base_url", "resolve_range", "candles_frame"]

log = logging.getLogger(__name__)

KLINE_PATH = "/v5/market/kline"
TICKERS_PATH = "/v5/market/tickers"
#: Most candles one kline request returns.
MAX_LIMIT = 1000
#: aiohttp >= 3.10 tells a connect timeout apart from a read timeout.
_CONNECT_TIMEOUT = getattr(aiohttp, "ConnectionTimeoutError", ())
_RATE_CODES = (10006, 10018)      # too many visits / IP rate limit
_SERVER_CODES = (10000, 10016)    # server timeout / server error


def resolve_range(start, end, interval: str, now_ms: int) -> tuple[int, int]:
    """``[start, end]`` in ms. Default ``end`` is now; default ``start`` is 1000 candles before ``end``
    (1000 x 31 days for monthly candles)."""
    end_ms = now_ms if end is None else to_ms(end, "end")
    step = interval_ms(interval) or 31 * 86_400_000
    start_ms = max(0, end_ms - MAX_LIMIT * step) if start is None else to_ms(start, "start")
    if start_ms > end_ms:
        raise ConfigError(f"start {ms_to_iso(start_ms)} is after end {ms_to_iso(end_ms)}; swap them")
    return start_ms, end_ms


@dataclass
class _Count:
    """Requests and retries of one call (the client keeps totals too)."""
    requests: int = 0
    retries: int = 0


class _Retryable(Exception):
    def __init__(self, error: BybitError, wait: float | None = None):
        super().__init__(str(error))
        self.error, self.wait = error, wait


def candles_frame(t: np.ndarray, v: np.ndarray, info: dict) -> pd.DataFrame:
    """Candle frame (frame.py convention) with ``attrs["betavae_np"]`` = ``info`` + rows and gaps.

    Parameters
    ----------
    t : ndarray of int64, shape (n,)
        Open times in ms, ascending and unique.
    v : ndarray of float64, shape (n, 6)
        ``open high low close volume turnover``.
    info : dict
        Provenance: source, exchange, category, symbol, interval, start, end, requests, ...
    """
    df = frame_from_arrays(t, v, COLUMNS)
    gaps = find_gaps(t, interval_ms(info["interval"]))
    meta = dict(info)
    meta["rows"] = int(t.size)
    meta["gaps"] = [g.to_dict() for g in gaps]
    meta["missing_candles"] = int(sum(g.missing for g in gaps))
    if t.size == 0:
        meta.setdefault("note", f"Bybit has no closed {info['symbol']} candles in "
                                f"[{info['start']}, {info['end']}]")
    df.attrs["betavae_np"] = meta
    return df


class BybitClient:
    """Asynchronous client of Bybit's public v5 kline endpoint.

    Parameters
    ----------
    base_url : str, optional
        ``https://host``, ``"mainnet"`` or ``"testnet"``; default env ``BETAVAE_NP_BYBIT_URL`` or
        ``https://api.bybit.com``.
    session : aiohttp.ClientSession, optional
        Borrowed session (left open on exit); by default the client opens and closes its own.
    rate : float or None
        Requests per second (token bucket shared by all concurrent requests); ``None`` lifts pacing.
    burst : int
        Token bucket capacity.
    timeout : float
        Seconds for a whole request (connect + answer).
    connect_timeout : float
        Seconds to establish a connection.
    retries : int
        Retries of a transient failure (rate limit, 5xx, timeout, reset, truncated body).
    connect_retries : int
        Retries when no connection can be made at all (DNS, refused): keep small so that an
        unreachable host is reported quickly.
    backoff, backoff_cap : float
        Base and cap of the exponential backoff, seconds.
    reset_wait_cap : float
        Longest sleep honouring ``X-Bapi-Limit-Reset-Timestamp``, seconds.
    max_concurrency : int
        Requests in flight at once (several symbols fetched together).
    limit : int
        Candles per page (1..1000).
    rng : int or numpy.random.Generator, optional
        Jitter source.
    clock : callable, optional
        ``clock() -> int`` ms since the epoch, used for the default ``end`` and to tell whether the
        newest candle is still open (tests pass a fixed clock).
    on_retry : callable, optional
        ``on_retry(attempt, delay, error)`` before each retry's wait: ``attempt`` counts from 1,
        ``delay`` is the wait in seconds, ``error`` the :class:`BybitError` being retried. Lets a
        caller say "retrying..." at the first failure instead of staying silent through the backoff.
    """

    def __init__(self, base_url: str | None = None, session: aiohttp.ClientSession | None = None, *,
                 rate: float | None = 10.0, burst: int = 2, timeout: float = 10.0,
                 connect_timeout: float = 5.0, retries: int = 5, connect_retries: int = 1,
                 backoff: float = 0.5, backoff_cap: float = 16.0, reset_wait_cap: float = 30.0,
                 max_concurrency: int = 4, limit: int = MAX_LIMIT, rng=None, clock=None,
                 trust_env: bool = False, on_retry=None):
        self.base_url = resolve_base_url(base_url)
        self.host = urlsplit(self.base_url).netloc
        if not 1 <= int(limit) <= MAX_LIMIT:
            raise ConfigError(f"invalid limit {limit!r}; Bybit pages hold 1..{MAX_LIMIT} candles")
        if int(retries) < 0 or int(connect_retries) < 0 or int(max_concurrency) < 1:
            raise ConfigError("retries and connect_retries must be >= 0 and max_concurrency >= 1")
        if not timeout > 0 or not connect_timeout > 0:
            raise ConfigError(f"invalid timeout {timeout!r}/{connect_timeout!r}; give seconds > 0")
        self.limit, self.retries, self.connect_retries = int(limit), int(retries), int(connect_retries)
        self.timeout = aiohttp.ClientTimeout(total=float(timeout), sock_connect=float(connect_timeout))
        self._timeout_s, self._connect_s = float(timeout), float(connect_timeout)
        self.bucket = TokenBucket(rate, burst)
        self.backoff = Backoff(backoff, backoff_cap, rng)
        self.reset_wait_cap = float(reset_wait_cap)
        self.max_concurrency = int(max_concurrency)
        self._sem: asyncio.Semaphore | None = None
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.on_retry = on_retry
        self._session, self._owned, self._trust_env = session, session is None, trust_env
        self.requests = 0  # totals over the client's life
        self.retries_done = 0

    async def __aenter__(self) -> "BybitClient":
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": f"betavae-np/{__version__}", "Accept": "application/json"},
                trust_env=self._trust_env)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if the client opened it."""
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None

    # -- one request ---------------------------------------------------------------------------
    async def _get(self, params: dict, count: _Count, path: str = KLINE_PATH, parse=kline_arrays):
        if self._session is None:
            raise RuntimeError("use the client as `async with BybitClient(...) as client:`")
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.max_concurrency)
        url = self.base_url + path
        attempt = 0
        while True:
            budget, wait, cause = self.retries, None, None
            try:
                async with self._sem:  # the token is taken just before sending: queued requests never bunch
                    await self.bucket.acquire()
                    count.requests += 1
                    self.requests += 1
                    async with self._session.get(url, params=params, timeout=self.timeout) as resp:
                        status, headers = resp.status, resp.headers
                        body = await resp.read()
                return self._interpret(status, headers, body, params, path, parse)
            except _Retryable as r:
                err, wait = r.error, r.wait
            except _CONNECT_TIMEOUT as exc:  # before TimeoutError: it is both
                budget, cause = self.connect_retries, exc
                err = BybitNetworkError(f"could not connect to {self.host} within {self._connect_s:g} s")
            except (TimeoutError, asyncio.TimeoutError) as exc:
                cause = exc
                err = BybitNetworkError(f"{self.host} did not answer within {self._timeout_s:g} s")
            except aiohttp.ClientConnectorError as exc:
                budget, cause = self.connect_retries, exc
                err = BybitNetworkError(f"could not connect to {self.host} ({exc.os_error or exc})")
            except aiohttp.ClientError as exc:
                cause = exc
                err = BybitNetworkError(f"connection to {self.host} failed ({type(exc).__name__}: {exc})")
            if attempt >= budget:
                raise err from cause
            delay = self.backoff.delay(attempt) if wait is None else wait
            if wait is not None:  # the server named the reset time: hold every request, not only this one
                self.bucket.hold(wait)
                delay = 0.0  # acquire() waits for the hold
            attempt += 1
            count.retries += 1
            self.retries_done += 1
            log.info("retry %d/%d in %.3f s after: %s", attempt, budget, delay, err)
            if self.on_retry is not None:
                self.on_retry(attempt, delay, err)
            await asyncio.sleep(delay)

    def _reset_wait(self, headers) -> float | None:
        raw = headers.get("X-Bapi-Limit-Reset-Timestamp")
        try:
            reset = int(raw)
        except (TypeError, ValueError):
            return None
        wait = reset / 1000.0 - time.time()
        return None if wait <= 0 else min(self.reset_wait_cap, wait + 0.001)  # past: use the backoff

    def _interpret(self, status: int, headers, body: bytes, params: dict, path: str = KLINE_PATH,
                   parse=kline_arrays):
        what = (f"{params['symbol']} {params['interval']} ({params['category']})" if "interval" in params
                else f"{params.get('symbol', 'the')} tickers ({params['category']})")
        if status == 403:
            raise BybitForbiddenError(
                f"{self.host} answered HTTP 403 Forbidden: this IP is banned for breaching Bybit's rate "
                f"limit (the ban lasts 10 minutes or more) or its region is blocked; wait, or use another "
                f"network or base_url", status=403)
        if status == 429:
            raise _Retryable(BybitRateLimitError(f"{self.host} rate-limited the requests (HTTP 429)",
                                                 status=429), self._reset_wait(headers))
        if status >= 500:
            raise _Retryable(BybitServerError(f"{self.host} answered HTTP {status}", status=status))
        if status != 200:
            raise BybitResponseError(f"{self.host} answered HTTP {status} to {path}; check base_url",
                                     status=status)
        try:
            env = decode_envelope(body)
        except MalformedReply as exc:
            raise _Retryable(BybitResponseError(f"{self.host} sent an unreadable reply for {what}: {exc}",
                                                status=status)) from None
        rc, msg = env["retCode"], str(env.get("retMsg", ""))
        if rc == 0:
            try:
                return parse(env)
            except MalformedReply as exc:
                raise _Retryable(BybitResponseError(f"{self.host} sent a malformed reply for {what}: {exc}",
                                                    status=status)) from None
        if rc == 10001:
            low = msg.lower()
            if "symbol" in low:
                text = (f"Bybit does not list symbol {params.get('symbol')!r} in category {params['category']} "
                        f"({msg!r}); check the name and the category")
            elif "period" in low or "interval" in low:
                text = (f"Bybit rejected interval {params.get('interval')!r} as an invalid interval ({msg!r}); "
                        f"use one of {' '.join(INTERVALS)}")
            else:
                text = f"Bybit rejected the request for {what}: {msg!r} (retCode 10001)"
            raise BybitBadRequestError(text, ret_code=rc, status=status)
        if rc in _RATE_CODES:
            raise _Retryable(BybitRateLimitError(f"Bybit rate-limited the requests (retCode {rc} {msg!r})",
                                                 ret_code=rc, status=status), self._reset_wait(headers))
        if rc in _SERVER_CODES:
            raise _Retryable(BybitServerError(f"Bybit reported a server error (retCode {rc} {msg!r})",
                                              ret_code=rc, status=status))
        raise BybitResponseError(f"Bybit answered retCode {rc} {msg!r} for {what}", ret_code=rc, status=status)

    # -- a whole range -------------------------------------------------------------------------
    async def fetch_range(self, category: str, symbol: str, interval: str, start_ms: int, end_ms: int,
                          count: _Count | None = None, on_progress=None) -> tuple[np.ndarray, np.ndarray]:
        """Every candle with open time in ``[start_ms, end_ms]``, ascending, each once (open one too).

        Pages backwards from ``end_ms`` with ``limit`` candles per request, moving only ``end`` (to
        one ms before the oldest candle received), until a page is empty or reaches ``start_ms``.
        Arguments must already be normalised.

        Returns
        -------
        open_time_ms : ndarray of int64, shape (n,)
        values : ndarray of float64, shape (n, 6)
        """
        count = count if count is not None else _Count()
        expected = max(1, count_candles(start_ms, end_ms, interval))
        ts, vs, fetched, cur_end = [], [], 0, int(end_ms)
        while cur_end >= start_ms:
            params = {"category": category, "symbol": symbol, "interval": interval,
                      "start": str(int(start_ms)), "end": str(cur_end), "limit": str(self.limit)}
            t, v = await self._get(params, count)
            if t.size == 0:
                break
            keep = (t >= start_ms) & (t <= cur_end)
            ts.append(t[keep])
            vs.append(v[keep])
            fetched += int(keep.sum())
            if on_progress is not None:
                on_progress(min(fetched, expected), expected)
            oldest = int(t.min())
            if oldest <= start_ms or oldest > cur_end:
                break
            cur_end = oldest - 1
        if not ts:
            return np.empty(0, np.int64), np.empty((0, 6), np.float64)
        t, v = np.concatenate(ts), np.concatenate(vs)
        t, first = np.unique(t, return_index=True)  # ascending, de-duplicated on start time
        return t, v[first]

    async def klines(self, symbol: str, interval: str | int = "60", start=None, end=None,
                     category: str = "linear", *, include_open: bool = False,
                     on_progress=None) -> pd.DataFrame:
        """Candles of one symbol whose open time lies in ``[start, end]``.

        Parameters
        ----------
        symbol : str
            Bybit symbol (``"BTCUSDT"``; upper-cased).
        interval : str or int
            Bybit code or alias (:func:`~betavae_np.data.intervals.normalize_interval`).
        start, end : datetime, str, int ms or pandas.Timestamp, optional
            Default ``end`` is now, default ``start`` 1000 candles earlier. ``end`` is inclusive.
        category : str
            ``spot``, ``linear`` or ``inverse``.
        include_open : bool
            Keep the newest candle while it is still open (``open_time + interval > now``).
        on_progress : callable, optional
            ``on_progress(fetched, expected)`` after each page, and ``(expected, expected)`` at the end.

        Returns
        -------
        pandas.DataFrame
            Index ``open_time`` (UTC, ascending, unique); float64 ``open high low close volume
            turnover``; ``attrs["betavae_np"]`` provenance (rows, gaps, requests, retries, ...).
            For ``inverse`` contracts volume is in USD contracts and turnover in the base coin.

        Raises
        ------
        ConfigError, BybitBadRequestError, BybitForbiddenError, BybitRateLimitError,
        BybitServerError, BybitNetworkError, BybitResponseError
        """
        category, symbol = normalize_category(category), normalize_symbol(symbol)
        code = normalize_interval(interval)
        now = int(self.clock())
        start_ms, end_ms = resolve_range(start, end, code, now)
        count = _Count()
        t, v = await self.fetch_range(category, symbol, code, start_ms, end_ms, count, on_progress)
        if on_progress is not None:  # the end, even when gaps kept the count below the estimate
            n = max(1, count_candles(start_ms, end_ms, code))
            on_progress(n, n)
        if not include_open and t.size:
            closed = t <= last_closed_open(now, code)
            t, v = t[closed], v[closed]
        info = {"source": "bybit", "exchange": "bybit", "category": category, "symbol": symbol,
                "interval": code, "start": ms_to_iso(start_ms), "end": ms_to_iso(end_ms),
                "requests": count.requests, "retries": count.retries, "from_cache": 0,
                "include_open": bool(include_open), "base_url": self.base_url}
        return candles_frame(t, v, info)

    async def klines_many(self, symbols, interval: str | int = "60", start=None, end=None,
                          category: str = "linear", *, include_open: bool = False,
                          return_exceptions: bool = False) -> dict:
        """:meth:`klines` for several symbols at once (at most ``max_concurrency`` requests in
        flight, all paced by the one token bucket).

        Returns
        -------
        dict of str to DataFrame (or to the exception, with ``return_exceptions=True``)
        """
        names = [normalize_symbol(s) for s in symbols]
        tasks = [self.klines(s, interval, start, end, category, include_open=include_open) for s in names]
        results = await asyncio.gather(*tasks, return_exceptions=return_exceptions)
        return dict(zip(names, results))

    # -- tickers -------------------------------------------------------------------------------
    async def tickers(self, category: str = "linear") -> pd.DataFrame:
        """The latest 24 h statistics of every symbol of a category (``GET /v5/market/tickers``).

        Returns
        -------
        pandas.DataFrame
            Indexed by ``symbol`` in Bybit's order; float64 ``last_price``, ``turnover_24h``,
            ``volume_24h`` (NaN where Bybit sent an empty string). For spot and linear symbols
            turnover is in the quote coin; for inverse contracts turnover is in the base coin and
            volume in USD (Bybit's convention).

        Raises
        ------
        ConfigError, BybitError
            As :meth:`klines`.
        """
        category = normalize_category(category)
        return await self._get({"category": category}, _Count(), TICKERS_PATH, ticker_table)

    async def top_symbols(self, n: int, category: str = "linear", quote: str | None = "auto") -> list[str]:
        """The ``n`` symbols of ``category`` with the largest 24 h turnover, largest first.

        Parameters
        ----------
        n : int
            How many (>= 1); fewer come back when the category lists fewer.
        category : str
            ``linear``, ``spot`` or ``inverse``.
        quote : str or None
            Keep only symbols ending in this quote coin, so that turnovers share a unit: ``"auto"``
            is ``USDT`` for linear and spot, ``USD`` for inverse; ``None`` keeps every symbol.

        Notes
        -----
        Ranked by ``turnover24h`` (quote-coin value traded) for spot and linear, and by
        ``volume24h`` (USD) for inverse contracts, whose turnover is counted in the base coin.
        Symbols that are not plain letters and digits (dated futures such as ``BTC-27DEC24``) are
        left out; ties keep Bybit's order.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError(f"the number of top symbols must be an integer >= 1, got {n!r}")
        category = normalize_category(category)
        table = await self.tickers(category)
        if quote == "auto":
            quote = "USD" if category == "inverse" else "USDT"
        names = table.index.to_series()
        keep = names.str.fullmatch(r"[A-Z0-9]{2,30}")
        if quote:
            keep &= names.str.endswith(str(quote).upper())
        col = "volume_24h" if category == "inverse" else "turnover_24h"
        ranked = table.loc[keep.to_numpy(), col].fillna(-np.inf).sort_values(ascending=False, kind="stable")
        return [str(s) for s in ranked.index[:int(n)]]
