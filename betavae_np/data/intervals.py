"""Bybit kline intervals, symbols, categories, base URLs and time bounds: parsing and candle-grid arithmetic.

Bybit v5 interval codes are ``1 3 5 15 30 60 120 240 360 720`` (minutes), ``D``, ``W`` and ``M``.
Aliases such as ``"1h"`` or ``"1d"`` map to them. Case matters only where it must: ``"1m"`` is one
minute and ``"1M"`` one month; every other alias is case-insensitive.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from ..exceptions import ConfigError

__all__ = ["INTERVALS", "CATEGORIES", "normalize_interval", "interval_ms", "normalize_symbol", "to_utc",
           "normalize_category", "to_ms", "ms_to_iso", "floor_open", "ceil_open", "next_open",
           "last_closed_open", "count_candles", "BYBIT_START_MS", "candles_before", "interval_of_spacing", "spacing_words", "MAINNET", "TESTNET", "resolve_base_url"]

MAINNET = "https://api.bybit.com"
TESTNET = "https://api-testnet.bybit.com"

#: Every interval code Bybit v5 accepts, shortest first.
INTERVALS = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")
#: Market categories served by ``/v5/market/kline``.
CATEGORIES = ("spot", "linear", "inverse")

_MINUTE = 60_000
_DAY = 86_400_000
#: Weekly candles open on Monday 00:00 UTC; the epoch (1970-01-01) was a Thursday.
_WEEK_OFFSET = 4 * _DAY

_ALIASES = {
    "1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30",
    "1h": "60", "2h": "120", "4h": "240", "6h": "360", "12h": "720",
    "60m": "60", "120m": "120", "240m": "240", "360m": "360", "720m": "720",
    "1d": "D", "d": "D", "1w": "W", "w": "W", "1mo": "M", "1mon": "M", "mo": "M",
}
#: No Bybit candle opens before this (2018-01-01 UTC; the exchange launched in 2018): default ranges
#: reaching further back stop here instead of asking for centuries of weekly or monthly candles.
BYBIT_START_MS = 1_514_764_800_000
_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")


def normalize_interval(interval: str | int) -> str:
    """Return Bybit's code for an interval given as a code or an alias.

    Parameters
    ----------
    interval : str or int
        A Bybit code (``"60"``, ``60``, ``"D"``) or an alias (``"1h"``, ``"4h"``, ``"1d"``,
        ``"1w"``, ``"1M"``). ``"1m"`` is one minute, ``"1M"`` one month.

    Returns
    -------
    str
        One of :data:`INTERVALS`.

    Raises
    ------
    ConfigError
        Unknown interval.
    """
    if isinstance(interval, bool) or not isinstance(interval, (str, int, np.integer)):
        raise ConfigError(f"invalid interval {interval!r}; use one of {' '.join(INTERVALS)} or 1m 1h 4h 1d 1w 1M")
    text = str(interval).strip()
    if text in INTERVALS:
        return text
    if text in ("1M", "M"):
        return "M"
    low = text.lower()
    if low in ("d", "w"):
        return low.upper()
    if low in _ALIASES:
        return _ALIASES[low]
    raise ConfigError(f"invalid interval {interval!r}; use one of {' '.join(INTERVALS)} or 1m 1h 4h 1d 1w 1M")


def interval_ms(interval: str | int) -> int:
    """Length of one candle in ms (``0`` for ``"M"``: months have no fixed length)."""
    code = normalize_interval(interval)
    if code == "D":
        return _DAY
    if code == "W":
        return 7 * _DAY
    if code == "M":
        return 0
    return int(code) * _MINUTE


def resolve_base_url(base_url: str | None = None) -> str:
    """Base URL: the argument, else env ``BETAVAE_NP_BYBIT_URL``, else mainnet; ``"testnet"`` and
    ``"mainnet"`` are aliases."""
    url = base_url if base_url else os.environ.get("BETAVAE_NP_BYBIT_URL") or MAINNET
    alias = {"mainnet": MAINNET, "testnet": TESTNET}.get(url.strip().lower())
    url = alias or url.strip().rstrip("/")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ConfigError(f"invalid base_url {url!r}; give http(s)://host[:port], 'mainnet' or 'testnet'")
    return url


def normalize_symbol(symbol: str) -> str:
    """Upper-case a symbol and check it is 2-30 letters/digits (``"btcusdt"`` -> ``"BTCUSDT"``).

    Raises
    ------
    ConfigError
        Not a string, or characters other than A-Z and 0-9.
    """
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol.strip().upper()):
        raise ConfigError(f"invalid symbol {symbol!r}; use Bybit's name in letters and digits, e.g. BTCUSDT")
    return symbol.strip().upper()


def normalize_category(category: str) -> str:
    """Check a market category (``spot``, ``linear`` or ``inverse``, case-insensitive)."""
    cat = str(category).strip().lower()
    if cat not in CATEGORIES:
        raise ConfigError(f"invalid category {category!r}; use one of {', '.join(CATEGORIES)}")
    return cat


def to_utc(value, name: str = "time"):
    """A user's time (date, ISO text, ms as an int or digits) as a UTC Timestamp; None stays None."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return pd.Timestamp(to_ms(value, name), unit="ms", tz="UTC")


def to_ms(when, what: str = "time") -> int:
    """Convert a time to integer ms since the epoch (UTC).

    Parameters
    ----------
    when : int, datetime.datetime, datetime.date, str, numpy.datetime64 or pandas.Timestamp
        Integers are ms since the epoch. Naive datetimes and strings without a zone are UTC.
    what : str
        How to name the value in the error message.

    Raises
    ------
    ConfigError
        Unparseable or negative.
    """
    if isinstance(when, bool):
        raise ConfigError(f"invalid {what} {when!r}; give a date, an ISO string or ms since the epoch")
    if isinstance(when, (int, np.integer)):
        ms = int(when)
    elif isinstance(when, float) and np.isfinite(when):
        ms = int(when)
    else:
        try:
            if isinstance(when, _dt.date) and not isinstance(when, _dt.datetime):
                when = _dt.datetime(when.year, when.month, when.day)
            ts = pd.Timestamp(when)
        except (ValueError, TypeError, OverflowError):
            raise ConfigError(f"invalid {what} {when!r}; give a date, an ISO string or ms since the epoch") from None
        if ts is pd.NaT or pd.isna(ts):
            raise ConfigError(f"invalid {what} {when!r}; give a date, an ISO string or ms since the epoch")
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        try:
            ms = int(ts.value) // 1_000_000  # Timestamp.value is ns whatever the unit
        except OverflowError:  # pandas >= 3 holds times outside 1677..2262 in coarser units
            raise ConfigError(f"invalid {what} {when!r}: give a time between 1970 and 2262") from None
    if ms < 0:
        raise ConfigError(f"invalid {what} {when!r}: before 1970")
    return ms


def ms_to_iso(ms: int) -> str:
    """ISO 8601 text of a ms timestamp (UTC)."""
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").isoformat()


def _month_start(ms: int, months_ahead: int = 0) -> int:
    ts = pd.Timestamp(int(ms), unit="ms", tz="UTC")
    y, m = ts.year, ts.month - 1 + months_ahead
    y, m = y + m // 12, m % 12 + 1
    return int(pd.Timestamp(year=y, month=m, day=1, tz="UTC").value) // 1_000_000


def floor_open(ms: int, interval: str) -> int:
    """Open time of the candle that contains ``ms`` (candles lie on Bybit's grid)."""
    code = normalize_interval(interval)
    if code == "M":
        return _month_start(ms)
    step = interval_ms(code)
    off = _WEEK_OFFSET if code == "W" else 0
    return (int(ms) - off) // step * step + off


def ceil_open(ms: int, interval: str) -> int:
    """Smallest candle open time ``>= ms``."""
    lo = floor_open(ms, interval)
    return lo if lo == int(ms) else next_open(lo, interval)


def next_open(open_ms: int, interval: str) -> int:
    """Open time of the candle after the one opening at ``open_ms`` (= its close time)."""
    code = normalize_interval(interval)
    if code == "M":
        return _month_start(open_ms, 1)
    return int(open_ms) + interval_ms(code)


def last_closed_open(now_ms: int, interval: str) -> int:
    """Largest time ``t`` such that every candle opening at or before ``t`` is closed at ``now_ms``."""
    return floor_open(now_ms, interval) - 1


def count_candles(start_ms: int, end_ms: int, interval: str) -> int:
    """Number of grid candles whose open time lies in ``[start_ms, end_ms]`` (months estimated)."""
    if end_ms < start_ms:
        return 0
    code = normalize_interval(interval)
    first = ceil_open(start_ms, code)
    if first > end_ms:
        return 0
    if code == "M":
        a, b = pd.Timestamp(first, unit="ms"), pd.Timestamp(end_ms, unit="ms")
        return (b.year - a.year) * 12 + b.month - a.month + 1
    return (int(end_ms) - first) // interval_ms(code) + 1


def candles_before(end_ms: int, interval: str, n: int, earliest_ms: int = BYBIT_START_MS) -> int:
    """Start of a default range: ``n`` candles before ``end_ms``, but not before ``earliest_ms``.

    Parameters
    ----------
    end_ms : int
        End of the range (ms since the epoch).
    interval : str
        Bybit code or alias; a month counts as 31 days here.
    n : int
        Candles wanted.
    earliest_ms : int
        Floor (default :data:`BYBIT_START_MS`); an ``end_ms`` before it is its own floor.

    Returns
    -------
    int
        ``max(end_ms - n * interval, min(earliest_ms, end_ms))`` in ms, computed in Python integers (no
        overflow for weeks or months), never negative.
    """
    step = interval_ms(interval) or 31 * _DAY
    start = int(end_ms) - int(n) * step
    return max(0, start, min(int(earliest_ms), int(end_ms)))


#: Bounds of a calendar month, ms: spacings in this range are monthly candles.
MONTH_MS = (28 * _DAY, 31 * _DAY)


def interval_of_spacing(step_ms: int) -> str | None:
    """The Bybit interval whose candles are ``step_ms`` apart (28-31 days: ``"M"``), or None."""
    step = int(step_ms)
    if MONTH_MS[0] <= step <= MONTH_MS[1]:
        return "M"
    for code in INTERVALS[:-1]:
        if interval_ms(code) == step:
            return code
    return None


def spacing_words(step_ms: int | None = None, interval: str | None = None) -> str:
    """A spacing in words: ``"1 hour"``, ``"4 hours"``, ``"1 day"``, ``"10 minutes"``, ``"1 month"``.

    Give either ``step_ms`` or ``interval`` (a Bybit code or alias).
    """
    if interval is not None:
        if normalize_interval(interval) == "M":
            return "1 month"
        step_ms = interval_ms(interval)
    step = int(step_ms)
    if MONTH_MS[0] <= step <= MONTH_MS[1]:
        return "1 month"
    for unit, ms in (("week", 7 * _DAY), ("day", _DAY), ("hour", 60 * _MINUTE), ("minute", _MINUTE),
                     ("second", 1000), ("millisecond", 1)):
        if step >= ms and step % ms == 0:
            n = step // ms
            return f"{n} {unit}" + ("s" if n != 1 else "")
    return f"{step} milliseconds"
