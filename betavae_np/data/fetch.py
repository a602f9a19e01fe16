"""``fetch_klines``: Bybit candles of any range through the on-disk cache, sync or async."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import numpy as np
import pandas as pd

from .bybit import BybitClient, _Count, candles_frame, resolve_range
from .cache import CandleCache
from ..exceptions import BybitError, BybitForbiddenError, BybitRateLimitError, ConfigError, DataError
from .intervals import (ceil_open, count_candles, floor_open, last_closed_open, ms_to_iso,
                        normalize_category, normalize_interval, normalize_symbol, resolve_base_url)

__all__ = ["fetch_klines", "afetch_klines", "fetch_universe", "afetch_universe", "FetchedUniverse",
           "top_symbols", "atop_symbols"]

log = logging.getLogger(__name__)

#: A candle is cached only once it closed this long ago (ms): Bybit may settle its final values a
#: moment after the close, and the local clock may run ahead of Bybit's. Younger closed candles are
#: returned but asked for again next time.
SETTLE_MS = 15_000


def fetch_klines(symbol: str, interval: str | int = "60", start=None, end=None, category: str = "linear",
                 base_url: str | None = None, cache_dir=None, use_cache: bool = True,
                 include_open: bool = False, on_progress=None, **client_kwargs) -> pd.DataFrame:
    """Every Bybit candle of ``symbol`` with open time in ``[start, end]`` (blocking).

    Parameters
    ----------
    symbol : str
        Bybit symbol, e.g. ``"BTCUSDT"`` (upper-cased; letters and digits only).
    interval : str or int
        Bybit code ``1 3 5 15 30 60 120 240 360 720 D W M`` or alias ``1m 1h 4h 1d 1w 1M``.
    start, end : datetime, str, int ms or pandas.Timestamp, optional
        Default ``end`` now, default ``start`` 1000 candles before ``end``; both inclusive.
    category : str
        ``spot``, ``linear`` (USDT perpetuals, default) or ``inverse``.
    base_url : str, optional
        ``https://host``, ``"testnet"``; default env ``BETAVAE_NP_BYBIT_URL`` or mainnet.
    cache_dir : path, optional
        Cache root (default env ``BETAVAE_NP_CACHE`` or ``~/.cache/betavae-np``); candles are cached
        per API host, so testnet and mainnet candles never mix.
    use_cache : bool
        Read and extend the cache: only ranges never fetched are requested.
    include_open : bool
        Also return the newest candle while still open (never cached).
    on_progress : callable, optional
        ``on_progress(fetched, expected)`` after each page; a last call with
        ``fetched == expected`` marks the end.
    **client_kwargs
        Passed to :class:`~betavae_np.data.bybit.BybitClient` (``rate``, ``retries``,
        ``connect_retries``, ``timeout``, ``connect_timeout``, ``backoff``, ``clock``,
        ``on_retry(attempt, delay, error)`` called before each retry's wait, ...). With
        :func:`afetch_klines`, ``client=`` an open :class:`BybitClient` to use instead (its session,
        token bucket and settings; then no other client settings and no other ``base_url``).

    Returns
    -------
    pandas.DataFrame
        Index ``open_time`` (UTC, ascending, unique); float64 ``open high low close volume
        turnover``. ``attrs["betavae_np"]``: ``source`` "bybit", ``exchange``, ``category``,
        ``symbol``, ``interval``, ``start``/``end`` (ISO), ``rows``, ``gaps`` (list of
        ``{"start", "end", "missing"}``; gaps are reported, never filled), ``missing_candles``,
        ``requests``, ``retries``, ``from_cache`` (rows served from the cache), and ``note`` /
        ``cache_note`` when the result is empty or the cache had to be rebuilt.

    Raises
    ------
    RuntimeError
        Called from inside a running event loop: ``await afetch_klines(...)`` instead.
    ConfigError, BybitError
        See :meth:`BybitClient.klines`. ``BybitNetworkError`` means Bybit could not be reached.
    """
    return _run(afetch_klines(symbol, interval, start, end, category, base_url, cache_dir, use_cache,
                              include_open, on_progress, **client_kwargs), "fetch_klines")


async def afetch_klines(symbol: str, interval: str | int = "60", start=None, end=None,
                        category: str = "linear", base_url: str | None = None, cache_dir=None,
                        use_cache: bool = True, include_open: bool = False, on_progress=None,
                        client: BybitClient | None = None, **client_kwargs) -> pd.DataFrame:
    """Awaitable :func:`fetch_klines` (same parameters and result).

    ``client``: an open :class:`BybitClient` (``async with``) shared by many calls, so that they
    use one session, one token bucket and one concurrency limit; without it each call opens and
    closes its own client (built from ``base_url`` and ``**client_kwargs``).
    """
    category, symbol, code = normalize_category(category), normalize_symbol(symbol), normalize_interval(interval)
    base_url = _check_client(client, base_url, client_kwargs)
    if not use_cache:
        async with _use(client, base_url, client_kwargs) as c:
            return await c.klines(symbol, code, start, end, category, include_open=include_open,
                                  on_progress=on_progress)
    clock = (client.clock if client is not None else None) or client_kwargs.get("clock") \
        or (lambda: int(time.time() * 1000))
    now = int(clock())
    client_kwargs["clock"] = lambda: now  # one "now" for the whole call
    start_ms, end_ms = resolve_range(start, end, code, now)
    cache = CandleCache(cache_dir, base_url)  # each host has its own stores
    store = cache.read(category, symbol, code)
    note = store.note
    closed_until = last_closed_open(now, code)  # candles opening after this are still open
    settled_until = last_closed_open(now - SETTLE_MS, code)  # cache only candles closed a while ago
    parts, empty = [], []  # parts: (a, b) as never fetched, and (a2, b2) snapped onto the candle grid
    for a, b in cache.missing(category, symbol, code, start_ms, end_ms):
        a2, b2 = ceil_open(a, code), floor_open(b, code)
        if a2 <= b2:
            parts.append((a, b, a2, b2))
        elif b <= settled_until:  # no candle can open inside: known empty
            empty.append((a, b))
    expected = sum(count_candles(a2, b2, code) for _, _, a2, b2 in parts)
    count, done, news, open_rows, covered = _Count(), [0], [], [], list(empty)

    def progress(fetched, _exp):
        if on_progress is not None:
            on_progress(min(done[0] + fetched, expected), expected)

    error = None
    if parts:
        async with _use(client, base_url, client_kwargs) as c:
            for a, b, a2, b2 in reversed(parts):  # newest first
                try:
                    t, v = await c.fetch_range(category, symbol, code, a2, b2, count, progress)
                except BaseException as exc:  # keep what completed, then re-raise
                    error = exc
                    break
                done[0] += count_candles(a2, b2, code)
                settled = t <= settled_until
                news.append((t[settled], v[settled]))
                open_rows.append((t[~settled], v[~settled]))
                if a <= min(b, settled_until):
                    covered.append((a, min(b, settled_until)))
    if news or covered:
        new_t = np.concatenate([n[0] for n in news]) if news else np.empty(0, np.int64)
        new_v = np.concatenate([n[1] for n in news]) if news else np.empty((0, 6))
        try:
            store = cache.merge(category, symbol, code, new_t, new_v, covered)
        except OSError as exc:  # a read-only or full disk must not lose the fetched candles
            log.warning("could not write the candle cache under %s (%s)", cache.root, exc)
            t_u, first = np.unique(np.concatenate([store.t, new_t]), return_index=True)
            store.t, store.v = t_u, np.concatenate([store.v, new_v])[first]
    if error is not None:
        raise error
    if on_progress is not None:
        on_progress(expected, expected)
    keep = (store.t >= start_ms) & (store.t <= end_ms)
    t, v = store.t[keep], store.v[keep]
    from_cache = int(keep.sum()) - sum(int(((n[0] >= start_ms) & (n[0] <= end_ms)).sum()) for n in news)
    if open_rows:  # fetched but not cached: just-closed candles, and the open one if asked for
        ot = np.concatenate([o[0] for o in open_rows])
        ov = np.concatenate([o[1] for o in open_rows])
        sel = (ot >= start_ms) & (ot <= end_ms) & ~np.isin(ot, t) & (include_open | (ot <= closed_until))
        t, v = np.concatenate([t, ot[sel]]), np.concatenate([v, ov[sel]])
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
    info = {"source": "bybit", "exchange": "bybit", "category": category, "symbol": symbol,
            "interval": code, "start": ms_to_iso(start_ms), "end": ms_to_iso(end_ms),
            "requests": count.requests, "retries": count.retries, "from_cache": max(0, from_cache),
            "include_open": bool(include_open), "base_url": cache.base_url,
            "cache_path": str(cache.path(category, symbol, code))}
    if note:
        info["cache_note"] = note
    return candles_frame(t, v, info)


def _check_client(client, base_url, client_kwargs):
    """The base URL to use; a borrowed client takes no other settings."""
    if client is None:
        return base_url
    if client_kwargs:
        raise ConfigError(f"give client settings ({', '.join(sorted(client_kwargs))}) to the BybitClient "
                          f"passed as client=, not to the fetch")
    if base_url is not None and resolve_base_url(base_url) != client.base_url:
        raise ConfigError(f"base_url {base_url!r} differs from the client's {client.base_url}")
    return client.base_url


@contextlib.asynccontextmanager
async def _use(client, base_url, client_kwargs):
    """The caller's open client (left open), or a client of our own for this call."""
    if client is not None:
        yield client
        return
    async with BybitClient(base_url, **client_kwargs) as own:
        yield own


# -- many symbols ------------------------------------------------------------------------------------
#: Failures after which fetching the other symbols would only hammer Bybit: they stop the whole fetch.
_FATAL = (BybitForbiddenError, BybitRateLimitError)


class FetchedUniverse(dict):
    """What :func:`fetch_universe` returns: a dict ``symbol -> DataFrame`` of the symbols fetched
    (in the order asked for), plus ``errors``: a dict ``symbol -> exception`` of those that failed
    (an unknown or delisted symbol, no candles in the range, a server error after every retry).

    Attributes
    ----------
    errors : dict of str to Exception
    requested : tuple of str
        Every symbol asked for, normalised, in order.
    """

    def __init__(self, frames=(), errors=None, requested=()):
        super().__init__(frames)
        self.errors = dict(errors or {})
        self.requested = tuple(requested)

    @property
    def ok(self) -> bool:
        """True when every symbol was fetched."""
        return not self.errors


def _run(coro, name: str):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError(f"{name}() was called inside a running event loop; "
                       f"use `await betavae_np.data.fetch.a{name}(...)` there")


def _symbols(symbols) -> list[str]:
    if isinstance(symbols, str):
        symbols = [symbols]
    names, seen = [], set()
    for s in symbols:
        sym = normalize_symbol(s)
        if sym in seen:
            raise ConfigError(f"symbol {sym} is given twice; give each symbol once")
        seen.add(sym)
        names.append(sym)
    if not names:
        raise ConfigError("no symbol given; name at least one symbol")
    return names


def fetch_universe(symbols, interval: str | int = "60", start=None, end=None, category: str = "linear",
                   base_url: str | None = None, cache_dir=None, use_cache: bool = True,
                   include_open: bool = False, *, on_progress=None, on_symbol=None,
                   **client_kwargs) -> FetchedUniverse:
    """Candles of many symbols at once, through one client, one session and one token bucket (blocking).

    Parameters
    ----------
    symbols : iterable of str
        Bybit symbols (each once).
    interval, start, end, category, base_url, cache_dir, use_cache, include_open
        As :func:`fetch_klines`; ``start``/``end`` are resolved once, so every symbol is asked
        for the same range.
    on_progress : callable, optional
        ``on_progress(symbol, fetched, expected)`` after each page of a symbol.
    on_symbol : callable, optional
        ``on_symbol(symbol, result)`` as each symbol finishes: ``result`` is its DataFrame or the
        exception it failed with.
    **client_kwargs
        Settings of the one :class:`BybitClient` (``rate``, ``max_concurrency``, ``retries``...);
        ``max_concurrency`` (default 4) also bounds the symbols fetched at once, and the token bucket
        (``rate``, default 10 requests/s) paces all of them together.

    Returns
    -------
    FetchedUniverse
        ``dict`` symbol -> DataFrame (as :func:`fetch_klines`) of the symbols fetched, and
        ``.errors`` symbol -> exception of those that failed; a failure never stops the others.
        A symbol without a single candle in the range counts as failed (``DataError``).

    Raises
    ------
    ConfigError
        Bad arguments, a symbol given twice, no symbol.
    BybitForbiddenError, BybitRateLimitError
        Bybit banned the IP or kept rate-limiting after every retry: the other symbols are
        cancelled (what completed stays in the cache) rather than hammering on.
    """
    return _run(afetch_universe(symbols, interval, start, end, category, base_url, cache_dir, use_cache,
                                include_open, on_progress=on_progress, on_symbol=on_symbol, **client_kwargs),
                "fetch_universe")


async def afetch_universe(symbols, interval: str | int = "60", start=None, end=None, category: str = "linear",
                          base_url: str | None = None, cache_dir=None, use_cache: bool = True,
                          include_open: bool = False, *, client: BybitClient | None = None, on_progress=None,
                          on_symbol=None, **client_kwargs) -> FetchedUniverse:
    """Awaitable :func:`fetch_universe`; ``client``: an open :class:`BybitClient` to use."""
    names = _symbols(symbols)
    category, code = normalize_category(category), normalize_interval(interval)
    base_url = _check_client(client, base_url, client_kwargs)
    async with _use(client, base_url, client_kwargs) as c:
        now = int(c.clock())
        start_ms, end_ms = resolve_range(start, end, code, now)
        gate = asyncio.Semaphore(c.max_concurrency)
        frames, errors = {}, {}

        async def one(sym):
            prog = None if on_progress is None else (lambda f, e: on_progress(sym, f, e))
            async with gate:
                try:
                    df = await afetch_klines(sym, code, start_ms, end_ms, category, cache_dir=cache_dir,
                                             use_cache=use_cache, include_open=include_open, on_progress=prog,
                                             client=c)
                    if not len(df):
                        raise DataError(f"Bybit has no closed {sym} candles from {ms_to_iso(start_ms)} to "
                                        f"{ms_to_iso(end_ms)} (delisted, or listed later?)")
                except _FATAL:
                    raise
                except (BybitError, DataError) as exc:
                    errors[sym] = exc
                    log.info("%s failed: %s", sym, exc)
                    if on_symbol is not None:
                        on_symbol(sym, exc)
                    return
            frames[sym] = df
            if on_symbol is not None:
                on_symbol(sym, df)

        tasks = [asyncio.ensure_future(one(s)) for s in names]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    return FetchedUniverse({s: frames[s] for s in names if s in frames},
                           {s: errors[s] for s in names if s in errors}, names)


def top_symbols(n: int, category: str = "linear", quote: str | None = "auto", base_url: str | None = None,
                **client_kwargs) -> list[str]:
    """The ``n`` symbols of a category with the largest 24 h turnover (blocking); see
    :meth:`BybitClient.top_symbols` for the ranking and ``quote``."""
    return _run(atop_symbols(n, category, quote, base_url, **client_kwargs), "top_symbols")


async def atop_symbols(n: int, category: str = "linear", quote: str | None = "auto", base_url: str | None = None,
                       *, client: BybitClient | None = None, **client_kwargs) -> list[str]:
    """Awaitable :func:`top_symbols`; ``client``: an open :class:`BybitClient` to use."""
    base_url = _check_client(client, base_url, client_kwargs)
    async with _use(client, base_url, client_kwargs) as c:
        return await c.top_symbols(n, category, quote)
