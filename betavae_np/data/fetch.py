"""``fetch_klines``: Bybit candles of any range through the on-disk cache, sync or async."""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
import pandas as pd

from .bybit import BybitClient, _Count, candles_frame, resolve_range
from .cache import CandleCache
from .intervals import (ceil_open, count_candles, floor_open, last_closed_open, ms_to_iso,
                        normalize_category, normalize_interval, normalize_symbol)

__all__ = ["fetch_klines", "afetch_klines"]

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
        ``on_retry(attempt, delay, error)`` called before each retry's wait, ...).

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
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("fetch_klines() was called inside a running event loop; "
                           "use `await betavae_np.data.fetch.afetch_klines(...)` there")
    return asyncio.run(afetch_klines(symbol, interval, start, end, category, base_url, cache_dir, use_cache,
                                     include_open, on_progress, **client_kwargs))


async def afetch_klines(symbol: str, interval: str | int = "60", start=None, end=None,
                        category: str = "linear", base_url: str | None = None, cache_dir=None,
                        use_cache: bool = True, include_open: bool = False, on_progress=None,
                        **client_kwargs) -> pd.DataFrame:
    """Awaitable :func:`fetch_klines` (same parameters and result)."""
    category, symbol, code = normalize_category(category), normalize_symbol(symbol), normalize_interval(interval)
    if not use_cache:
        async with BybitClient(base_url, **client_kwargs) as client:
            return await client.klines(symbol, code, start, end, category, include_open=include_open,
                                       on_progress=on_progress)
    clock = client_kwargs.get("clock") or (lambda: int(time.time() * 1000))
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
        async with BybitClient(base_url, **client_kwargs) as client:
            for a, b, a2, b2 in reversed(parts):  # newest first
                try:
                    t, v = await client.fetch_range(category, symbol, code, a2, b2, count, progress)
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
