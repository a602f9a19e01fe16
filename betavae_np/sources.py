"""Candles for a run from a source: Bybit (through the cache), the bundled sample, a CSV or the synthetic market.

:func:`load_candles` gives one symbol's candles, :func:`load_universe_candles` many symbols' as a
:class:`~betavae_np.data.Universe`; :func:`synthetic_candles`, :func:`synthetic_market` and
:func:`synthetic_factors` are the synthetic source and read its provenance back. Every name here is
also importable from :mod:`betavae_np.workflow`, where it used to live.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Callable

import numpy as np
import pandas as pd

from .exceptions import BybitError, ConfigError, DataError, InputError

__all__ = ["SOURCES", "DEFAULT_CANDLES", "SYNTHETIC_CANDLES", "SYNTHETIC_SEGMENT", "load_candles",
           "load_universe_candles", "synthetic_candles", "synthetic_market", "synthetic_factors"]

# The logger keeps its name from before these functions moved out of workflow.py.
log = logging.getLogger("betavae_np.workflow")

#: The named data sources; anything else is a path to a CSV file.
SOURCES = ("auto", "bybit", "sample", "synthetic")

#: Candles of ``source="synthetic"`` (one series from SyntheticMarket.candles) and its regime length.
SYNTHETIC_CANDLES = 20_000
SYNTHETIC_SEGMENT = 256

#: Candles requested from Bybit when no --start is given (about 2.3 years of hourly candles).
DEFAULT_CANDLES = 20_000

#: Bybit errors after which ``source="auto"`` falls back to the cache or the bundled sample.
_UNREACHABLE = ("BybitNetworkError", "BybitForbiddenError", "BybitRateLimitError", "BybitServerError",
                "BybitResponseError")


def _notice(on_notice, message: str) -> None:
    log.info(message)
    if on_notice is not None:
        on_notice(message)


def _is_btc(symbol: str) -> bool:
    return re.sub(r"[^A-Z]", "", symbol.upper()).startswith(("BTC", "XBT"))


def _to_utc(value, name: str):
    """A user's time as a UTC Timestamp (see :func:`betavae_np.data.intervals.to_utc`)."""
    from .data.intervals import to_utc

    return to_utc(value, name)


def _clip(df: pd.DataFrame, start, end) -> pd.DataFrame:
    out = df
    if start is not None:
        out = out[out.index >= start]
    if end is not None:
        out = out[out.index <= end]
    out = out.copy()
    out.attrs = dict(df.attrs)
    return out


def _sample(symbol: str, interval: str, start, end, why: str | None, on_notice) -> pd.DataFrame:
    from .data.frame import candle_facts
    from .data.sample import load_sample

    if not _is_btc(symbol):
        raise DataError(f"the bundled sample holds BTC-USD candles only, not {symbol}"
                        + (f" ({why})" if why else "") + "; fetch with --source bybit or give a CSV path")
    if interval != "60":
        raise DataError(f"the bundled sample is hourly (interval 60), not interval {interval}"
                        + (f" ({why})" if why else "") + "; use --interval 60 or another source")
    df = load_sample()
    prov = dict(df.attrs.get("betavae_np", {}))
    if why:
        _notice(on_notice, f"{why}; using the bundled real sample instead: {prov.get('exchange', 'coinbase')} "
                           f"{prov.get('pair', 'BTC-USD')} 1h candles {prov.get('start', '?')[:10]} .. "
                           f"{prov.get('end', '?')[:10]} ({prov.get('rows', len(df))} rows), not Bybit {symbol}")
    out = _clip(df, start, end)
    prov.update(requested_symbol=symbol, fallback_reason=why, **candle_facts(out, interval))
    out.attrs["betavae_np"] = prov
    return out


def load_candles(symbol: str, *, source: str = "auto", interval: str | None = None, start=None, end=None,
                 category: str = "linear", base_url: str | None = None, cache_dir=None,
                 on_notice: Callable[[str], None] | None = None,
                 on_progress: Callable[[int, int], None] | None = None, seed: int = 0) -> pd.DataFrame:
    """Candles for a symbol from Bybit (through the cache), the bundled sample, a CSV file or the synthetic market.

    Parameters
    ----------
    symbol : str
        Bybit symbol, e.g. ``"BTCUSDT"``.
    source : {"auto", "bybit", "sample", "synthetic"} or path
        ``auto``: the cache, then Bybit, and when Bybit cannot be reached the cached candles or, for
        BTC hourly, the bundled real sample (with a notice naming what is used). ``bybit``: Bybit
        through the cache, errors are errors. ``sample``: the bundled sample. ``synthetic``:
        :data:`SYNTHETIC_CANDLES` hourly candles of :class:`~betavae_np.synth.SyntheticMarket`
        (``symbol`` is not used; see :func:`synthetic_candles`). A path: a candle CSV.
    interval : str, optional
        Bybit interval code or alias (``60``, ``1h``, ``D``...). None: for a CSV, inferred from its
        most common candle spacing (with a notice); otherwise ``"60"``. A CSV whose spacing differs
        from an interval given explicitly is an error.
    start, end : date-like, optional
        Range of candle open times (UTC). Default for Bybit: the last 20,000 candles, but none before
        2018 (:data:`~betavae_np.data.intervals.BYBIT_START_MS`).
    on_notice : callable(str), optional
        Receives notices: fallbacks, an inferred interval, and ``"...; retrying..."`` at the first
        failed Bybit request (the library never prints).
    on_progress : callable(fetched, expected), optional
        Fetch progress.
    seed : int
        Seed of the synthetic market (``source="synthetic"`` only).

    Returns
    -------
    pandas.DataFrame
        The candle convention, with ``attrs["betavae_np"]`` holding the provenance. Whatever the
        source, ``rows``, ``start``/``end`` (first and last open time of the candles returned),
        ``interval``, ``gaps`` (list of ``{"start", "end", "missing"}``) and ``missing_candles``
        describe the data itself; Bybit sources keep the range asked for as ``requested_start``/
        ``requested_end``.

    Raises
    ------
    ConfigError
        Bad interval or times, or a CSV whose spacing contradicts ``interval``.
    DataError, BybitError
        Unusable data; Bybit failures (with ``source="auto"`` only those that are not a fallback).
    """
    from .data.frame import candle_facts, index_to_ms, infer_interval, read_candles_csv
    from .data.intervals import candles_before, normalize_interval, spacing_words, to_ms

    given = interval
    interval = None if interval is None else normalize_interval(interval)
    start, end = _to_utc(start, "start"), _to_utc(end, "end")
    if start is not None and end is not None and start >= end:
        raise ConfigError(f"start {start.isoformat()} is not before end {end.isoformat()}")
    if source == "sample":
        return _sample(symbol, interval or "60", start, end, None, on_notice)
    if source == "synthetic":
        if interval not in (None, "60"):
            raise ConfigError(f"the synthetic market's candles are hourly (interval 60), not interval {given}")
        return synthetic_candles(seed, start=start, end=end)
    if source not in SOURCES:
        if not os.path.exists(source):
            raise DataError(f"source {source!r} is neither auto, bybit, sample nor an existing CSV file")
        raw = read_candles_csv(source)
        found = infer_interval(index_to_ms(raw.index), what=os.path.basename(source))
        if interval is None:
            _notice(on_notice, f"the CSV's candles are {spacing_words(interval=found)} apart: using interval {found}")
        elif interval != found:
            raise ConfigError(f"the CSV's candles are {spacing_words(interval=found)} apart (interval {found}) "
                              f"but --interval {str(given).strip()} was given")
        df = _clip(raw, start, end)
        df.attrs["betavae_np"] = {"source": "csv", "path": os.path.abspath(source), "symbol": symbol,
                                  "interval": found, "interval_inferred": interval is None,
                                  **candle_facts(df, found)}
        return df
    interval = interval or "60"
    if start is None:  # the last DEFAULT_CANDLES candles, but nothing before Bybit existed
        anchor = to_ms(end if end is not None else pd.Timestamp.now(tz="UTC"), "end")
        start = pd.Timestamp(candles_before(anchor, interval, DEFAULT_CANDLES), unit="ms", tz="UTC")
    from .data.fetch import fetch_klines

    retried = []

    def on_retry(attempt, delay, error):  # say so at the first failure, not after the whole backoff
        if not retried:
            retried.append(error)
            _notice(on_notice, f"{error}; retrying...")

    kwargs = {"on_retry": on_retry}
    if source == "auto":
        kwargs["timeout"] = 10.0  # unreachable hosts fail fast (connect_retries); 10006/429/5xx still retry
    try:
        df = fetch_klines(symbol, interval=interval, start=start, end=end, category=category,
                          base_url=base_url, cache_dir=cache_dir, on_progress=on_progress, **kwargs)
    except BybitError as exc:
        if source == "bybit" or type(exc).__name__ not in _UNREACHABLE:
            raise
        why = f"Bybit could not be reached ({exc})"
    else:
        prov = df.attrs["betavae_np"]
        prov.update(requested_start=prov.get("start"), requested_end=prov.get("end"), **candle_facts(df, interval))
        return df
    cached = _cached(symbol, interval, category, start, end, cache_dir, base_url)
    if cached is not None and len(cached):
        _notice(on_notice, f"{why}; using {len(cached)} cached Bybit candles of {symbol} "
                           f"({cached.index[0].isoformat()} .. {cached.index[-1].isoformat()})")
        return cached
    if start is not None and end is None and _is_btc(symbol) and interval == "60":
        start = None  # the default window is 'recent candles', which the sample cannot honour
    return _sample(symbol, interval, start, end, why, on_notice)


def synthetic_candles(seed: int = 0, *, n_candles: int = SYNTHETIC_CANDLES, segment: int = SYNTHETIC_SEGMENT,
                      grids=None, start=None, end=None) -> pd.DataFrame:
    """One hourly series of :class:`~betavae_np.synth.SyntheticMarket` (what ``--source synthetic`` trains on).

    The factors are redrawn every ``segment`` candles (:meth:`~betavae_np.synth.SyntheticMarket.candles`).
    The provenance (``attrs["betavae_np"]``) records everything that regenerates the same candles:
    ``source="synthetic"``, ``seed``, ``n_candles``, ``segment``, ``grids`` and ``factor_names``;
    :func:`synthetic_market` and :func:`synthetic_factors` read it back.

    Returns
    -------
    pandas.DataFrame, shape (n_candles, 5)
        Clipped to ``start``/``end`` when given.
    """
    from .data.frame import candle_facts
    from .synth import SyntheticMarket

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"the synthetic market's seed must be a non-negative integer, got {seed!r}")
    market = SyntheticMarket(seed=int(seed), grids=grids)
    df = market.candles(n_candles, segment=segment)
    prov = dict(df.attrs["betavae_np"])
    prov.update(n_candles=int(n_candles), grids={k: list(v) for k, v in market.grids.items()},
                factor_names=list(market.factor_names))
    out = _clip(df, _to_utc(start, "start"), _to_utc(end, "end"))
    if not len(out):
        raise DataError("no synthetic candles between the given start and end; the series starts "
                        f"{df.index[0].isoformat()} and ends {df.index[-1].isoformat()}")
    prov.update(candle_facts(out, "60"))
    out.attrs["betavae_np"] = prov
    return out


def _synthetic_prov(prov) -> dict:
    get = prov.get
    return {"seed": get("seed") or 0, "n_candles": get("n_candles") or SYNTHETIC_CANDLES,
            "segment": get("segment") or SYNTHETIC_SEGMENT, "grids": get("grids")}


def synthetic_market(prov, windowing=None):
    """The :class:`~betavae_np.synth.SyntheticMarket` of synthetic candles' provenance.

    Parameters
    ----------
    prov : dict or Provenance
        ``df.attrs["betavae_np"]`` of :func:`synthetic_candles`, or a model's provenance record.
    windowing : Windower or Windowing, optional
        Window observations exactly as this windower does (a model's own: its representation,
        ``minmax``, ``returns`` or ``both``, and its normalisation settings); default the market's
        (min-max OHLCV).

    Returns
    -------
    SyntheticMarket
        Same seed and grids as the candles, so the supervised metrics sample the same market.
    """
    from .synth import SyntheticMarket

    p = _synthetic_prov(prov)
    if windowing is None:
        return SyntheticMarket(seed=int(p["seed"]), grids=p["grids"])
    w = windowing.windower() if hasattr(windowing, "windower") else windowing
    market = SyntheticMarket(seed=int(p["seed"]), window=w.window, lookback=w.lookback, features=w.features,
                             reference=bool(prov.get("reference", True)), grids=p["grids"],
                             representation=w.representation)
    market.windower = w   # the model's own normalisation settings (norm, log volume) too
    return market


def synthetic_factors(prov, end_times) -> np.ndarray:
    """The synthetic market's factors at each window's last candle.

    Parameters
    ----------
    prov : dict or Provenance
        Provenance of :func:`synthetic_candles` (regenerates the series from its seed).
    end_times : pandas.DatetimeIndex, shape (n,)

    Returns
    -------
    ndarray of int64, shape (n, num_factors)
        Grid index of each factor (order ``prov["factor_names"]``).
    """
    from .synth import SyntheticMarket

    p = _synthetic_prov(prov)
    df, factors = SyntheticMarket(seed=int(p["seed"]), grids=p["grids"]).candles(
        int(p["n_candles"]), segment=int(p["segment"]), return_factors=True)
    pos = df.index.get_indexer(pd.DatetimeIndex(end_times))
    if (pos < 0).any():
        raise InputError("some windows end at times the synthetic series does not have")
    return factors[pos]


def _cached(symbol, interval, category, start, end, cache_dir, base_url=None):
    from .data.cache import CandleCache

    try:
        df = CandleCache(cache_dir, base_url).load(category, symbol.upper(), interval, start=start, end=end)
    except (OSError, DataError):
        return None
    if df is None or not len(df):
        return None
    from .data.frame import candle_facts

    prov = df.attrs.setdefault("betavae_np", {})
    prov.update(source="bybit-cache", exchange="bybit", symbol=symbol.upper(), category=category,
                interval=interval, requested_start=prov.get("start"), requested_end=prov.get("end"),
                **candle_facts(df, interval))
    return df


def load_universe_candles(symbols=None, *, source: str = "auto", interval: str | None = None, start=None,
                          end=None, category: str = "linear", base_url: str | None = None, cache_dir=None,
                          on_notice: Callable[[str], None] | None = None, on_progress=None):
    """Candles of many symbols: a directory of CSV files, or Bybit through the cache, as one Universe.

    Parameters
    ----------
    symbols : sequence of str, optional
        The symbols (needed for Bybit; for a directory, a selection of its files).
    source : {"auto", "bybit"} or directory
        ``auto``/``bybit``: :func:`~betavae_np.data.fetch_universe` (one client, through the cache);
        a symbol that fails is skipped with a notice, and with ``auto`` a symbol Bybit cannot serve
        comes from the cache when it holds candles. A directory: :func:`~betavae_np.data.load_universe`.
    interval, start, end, category, base_url, cache_dir, on_notice
        As :func:`load_candles` (the default Bybit range is the last 20,000 candles).
    on_progress : callable(symbol, fetched, expected), optional

    Returns
    -------
    Universe

    Raises
    ------
    DataError, ConfigError, BybitError
        An empty universe (every symbol failed or was skipped), mixed intervals, a symbol given
        twice; with ``bybit`` a ban or rate limit that stopped every symbol.
    """
    from .data.frame import candle_facts
    from .data.universe import Universe, load_universe

    start, end = _to_utc(start, "start"), _to_utc(end, "end")
    if source not in ("auto", "bybit"):
        uni = load_universe(source, interval=interval, symbols=symbols, on_notice=on_notice)
        if start is None and end is None:
            return uni
        frames, prov, skipped = {}, {}, dict(uni.skipped)
        for sym, df in uni.frames.items():
            df = _clip(df, start, end)
            if len(df) < 2:
                skipped[sym] = f"{sym} skipped: {len(df)} candle(s) between --start and --end, too few to use"
                _notice(on_notice, skipped[sym])
                continue
            frames[sym] = df
            prov[sym] = {**uni.provenance[sym], **candle_facts(df, uni.interval)}
        if not frames:
            raise DataError(f"the universe is empty: no symbol of {uni.source} has candles between "
                            f"{start} and {end}")
        return Universe(frames, uni.interval, prov, skipped, uni.source)
    if not symbols:
        raise ConfigError("name the symbols to fetch (symbols=...), or give a directory of CSV files as source")
    from .data.fetch import fetch_universe
    from .data.intervals import candles_before, normalize_interval, to_ms

    code = normalize_interval(interval or "60")
    if start is None:
        anchor = to_ms(end if end is not None else pd.Timestamp.now(tz="UTC"), "end")
        start = pd.Timestamp(candles_before(anchor, code, DEFAULT_CANDLES), unit="ms", tz="UTC")
    kw = {"timeout": 10.0} if source == "auto" else {}
    try:
        got = fetch_universe(symbols, code, start, end, category, base_url=base_url, cache_dir=cache_dir,
                             on_progress=on_progress, **kw)
        frames, errors = dict(got), dict(got.errors)
    except BybitError as exc:
        if source == "bybit" or type(exc).__name__ not in _UNREACHABLE:
            raise
        frames, errors = {}, {s.upper(): exc for s in symbols}
    for sym, exc in errors.items():
        cached = None
        if source == "auto" and type(exc).__name__ in _UNREACHABLE:
            cached = _cached(sym, code, category, start, end, cache_dir, base_url)
        if cached is not None and len(cached) >= 2:
            _notice(on_notice, f"{sym}: Bybit could not be reached ({exc}); using {len(cached)} cached candles")
            frames[sym] = cached
        else:
            _notice(on_notice, f"{sym} skipped: {exc}")
    if not frames:
        raise DataError(f"the universe is empty: none of the {len(errors)} symbols could be fetched "
                        f"(first: {next(iter(errors.values()), 'no symbol')})")
    order = [s.upper() for s in symbols]
    frames = {s: frames[s] for s in order if s in frames}
    for sym, df in frames.items():
        prov = df.attrs.setdefault("betavae_np", {})
        prov.setdefault("requested_start", prov.get("start"))
        prov.setdefault("requested_end", prov.get("end"))
    uni = load_universe(frames, interval=code, on_notice=on_notice)
    for sym, df in frames.items():   # keep what the fetch said (range asked for...) beside the candle facts
        extra = {k: v for k, v in df.attrs.get("betavae_np", {}).items() if k not in uni.provenance[sym]}
        uni.provenance[sym].update(extra)
    uni.source = source
    return uni
