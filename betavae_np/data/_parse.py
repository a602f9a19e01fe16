"""Parsing Bybit v5 kline replies: the JSON envelope, then the rows in one NumPy conversion."""

from __future__ import annotations

import json
from itertools import chain

import numpy as np

__all__ = ["MalformedReply", "decode_envelope", "kline_arrays", "ticker_table", "COLUMNS"]

#: Value columns of a Bybit kline row after ``startTime``. For ``inverse`` contracts ``volume`` is
#: counted in contracts (USD) and ``turnover`` in the base coin (BTC); for spot/linear ``volume``
#: is in the base coin and ``turnover`` in the quote coin.
COLUMNS = ("open", "high", "low", "close", "volume", "turnover")


class MalformedReply(ValueError):
    """The body is not a Bybit envelope (truncated JSON, HTML, wrong shape): worth a retry."""


def decode_envelope(body: bytes | str) -> dict:
    """Decode a reply body into its envelope ``{"retCode", "retMsg", "result", ...}``.

    Raises
    ------
    MalformedReply
        Not JSON, not an object, or no integer ``retCode``.
    """
    try:
        env = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedReply(f"reply is not JSON ({exc.__class__.__name__}: {str(exc)[:80]})") from None
    if not isinstance(env, dict) or not isinstance(env.get("retCode"), int):
        raise MalformedReply("reply is JSON but not a Bybit envelope (no integer retCode)")
    return env


def kline_arrays(env: dict) -> tuple[np.ndarray, np.ndarray]:
    """Candles of a successful (``retCode`` 0) kline envelope, newest first as Bybit sends them.

    Parameters
    ----------
    env : dict
        Decoded envelope whose ``result.list`` is a list of
        ``[startTime, open, high, low, close, volume, turnover]`` strings.

    Returns
    -------
    open_time_ms : ndarray of int64, shape (n,)
    values : ndarray of float64, shape (n, 6)
        Columns :data:`COLUMNS`; ``turnover`` is NaN when rows carry only six fields.

    Raises
    ------
    MalformedReply
        Missing ``list``, ragged or non-numeric rows, non-finite prices.

    Notes
    -----
    All values go through one ``np.fromiter(map(float, ...))`` pass (``float`` is correctly
    rounded, and faster than NumPy's string-to-float ``astype``); about 2-3 ms per 1000-candle
    page including ``json.loads`` (bench/bench_fetch.py).
    """
    result = env.get("result")
    rows = result.get("list") if isinstance(result, dict) else None
    if not isinstance(rows, list):
        raise MalformedReply("kline reply has no result.list")
    if not rows:
        return np.empty(0, np.int64), np.empty((0, 6), np.float64)
    width = len(rows[0]) if type(rows[0]) is list else 0
    if width not in (6, 7) or not all(type(r) is list and len(r) == width for r in rows):
        raise MalformedReply("kline rows are not lists of [time, o, h, l, c, volume, turnover]")
    try:
        flat = np.fromiter(map(float, chain.from_iterable(rows)), np.float64, count=len(rows) * width)
    except (ValueError, TypeError, OverflowError) as exc:
        raise MalformedReply(f"kline rows hold non-numeric values ({exc})") from None
    flat = flat.reshape(len(rows), width)
    if not (np.isfinite(flat[:, 0]).all() and (flat[:, 0] >= 0).all()):
        raise MalformedReply("kline rows hold invalid start times")
    t = flat[:, 0].astype(np.int64)  # ms < 2**53: exact in float64
    vals = np.ascontiguousarray(flat[:, 1:])
    if vals.shape[1] == 5:
        vals = np.concatenate([vals, np.full((vals.shape[0], 1), np.nan)], axis=1)
    if not np.isfinite(vals[:, :5]).all():
        raise MalformedReply("kline rows hold non-finite prices or volumes")
    return t, vals


#: Ticker fields kept by :func:`ticker_table`, and their column names.
TICKER_FIELDS = {"lastPrice": "last_price", "turnover24h": "turnover_24h", "volume24h": "volume_24h"}


def ticker_table(env: dict):
    """The tickers of a successful ``/v5/market/tickers`` envelope as a DataFrame.

    Parameters
    ----------
    env : dict
        Decoded envelope whose ``result.list`` is a list of objects with a ``symbol`` and string
        fields (``lastPrice``, ``turnover24h``, ``volume24h``, ...).

    Returns
    -------
    pandas.DataFrame
        Index ``symbol`` (Bybit's order); float64 columns ``last_price turnover_24h volume_24h``,
        NaN for an empty or absent field.

    Raises
    ------
    MalformedReply
        Missing ``list``, entries that are not objects with a string ``symbol``, non-numeric fields.
    """
    import pandas as pd

    result = env.get("result")
    rows = result.get("list") if isinstance(result, dict) else None
    if not isinstance(rows, list):
        raise MalformedReply("tickers reply has no result.list")
    if not all(isinstance(r, dict) and isinstance(r.get("symbol"), str) for r in rows):
        raise MalformedReply("tickers entries are not objects with a symbol")
    cols = {}
    for field, name in TICKER_FIELDS.items():
        try:
            cols[name] = np.array([float(r[field]) if r.get(field) not in (None, "") else np.nan for r in rows],
                                  dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise MalformedReply(f"tickers field {field} holds a non-numeric value ({exc})") from None
    index = pd.Index([r["symbol"] for r in rows], name="symbol", dtype=object)
    return pd.DataFrame(cols, index=index)
