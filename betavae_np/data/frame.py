"""The candle DataFrame convention: validation, CSV reading, gap detection.

Convention (DESIGN.md): index ``open_time`` (UTC ``DatetimeIndex``, ascending, unique), float64
columns ``open high low close volume`` and ``turnover`` when known.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import DataError

__all__ = ["OHLCV", "Gap", "validate_candles", "read_candles_csv", "find_gaps", "frame_from_arrays",
           "index_to_ms"]

#: The required columns, in order.
OHLCV = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Gap:
    """Missing candles between two present ones.

    Attributes
    ----------
    start, end : pandas.Timestamp
        Open time of the first and of the last missing candle (UTC).
    missing : int
        How many candles are missing.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    missing: int

    def to_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "missing": self.missing}


def find_gaps(open_time_ms: np.ndarray, interval_ms: int) -> list[Gap]:
    """Find runs of missing candles in ascending open times.

    Parameters
    ----------
    open_time_ms : ndarray of int64, shape (n,)
        Candle open times in ms since the epoch, ascending and unique.
    interval_ms : int
        The candle length in ms; a step larger than this is a gap. Monthly candles have no fixed
        length: pass 0 to skip gap detection.

    Returns
    -------
    list of Gap
    """
    t = np.asarray(open_time_ms, dtype=np.int64)
    if interval_ms <= 0 or t.size < 2:
        return []
    step = np.diff(t)
    where = np.flatnonzero(step > interval_ms)
    gaps = []
    for i in where:
        first = int(t[i]) + interval_ms
        last = int(t[i + 1]) - interval_ms
        gaps.append(Gap(pd.Timestamp(first, unit="ms", tz="UTC"), pd.Timestamp(last, unit="ms", tz="UTC"),
                        int((t[i + 1] - t[i]) // interval_ms) - 1))
    return gaps


def index_to_ms(index: pd.DatetimeIndex) -> np.ndarray:
    """Open times of a UTC ``DatetimeIndex`` as int64 ms since the epoch, whatever its resolution.

    Returns
    -------
    ndarray of int64, shape (n,)
    """
    return np.asarray(pd.DatetimeIndex(index).as_unit("ms").asi8, dtype=np.int64)


def frame_from_arrays(open_time_ms: np.ndarray, values: np.ndarray, columns=OHLCV) -> pd.DataFrame:
    """Build a conventional candle frame from open times (ms) and a (n, k) float array."""
    index = pd.DatetimeIndex(pd.to_datetime(np.asarray(open_time_ms, dtype=np.int64), unit="ms", utc=True),
                             name="open_time")
    return pd.DataFrame(np.asarray(values, dtype=np.float64), index=index, columns=list(columns))


def validate_candles(df: pd.DataFrame, *, min_rows: int = 1, what: str = "candle data") -> pd.DataFrame:
    """Check a frame against the candle convention and return it with float64 columns.

    Parameters
    ----------
    df : pandas.DataFrame
        Candles with a UTC ``DatetimeIndex`` (or an ``open_time``/``timestamp_ms`` column).
    min_rows : int
        Fewer rows than this is an error (e.g. fewer candles than one window).
    what : str
        How to name the data in error messages (a file name, a symbol).

    Raises
    ------
    DataError
        Missing columns, NaN or non-positive prices, negative volume, high below low,
        unsorted or duplicated times, too few rows. One sentence each.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(df.index, pd.DatetimeIndex):
        for col in ("open_time", "timestamp_ms", "timestamp", "time", "date"):
            if col in df.columns:
                df = df.set_index(_to_datetime(df[col], what)).drop(columns=[col])
                break
        else:
            raise DataError(f"{what}: no time index; give a DatetimeIndex or an open_time/timestamp_ms column")
    missing = [c for c in OHLCV if c not in df.columns]
    if missing:
        raise DataError(f"{what}: missing column(s) {', '.join(missing)}; need {', '.join(OHLCV)}")
    idx = df.index
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    else:
        idx = idx.tz_convert("UTC")
    idx = idx.rename("open_time")
    if idx.hasnans:
        raise DataError(f"{what}: some timestamps are missing or unparseable")
    if idx.has_duplicates:
        dup = idx[idx.duplicated()][0]
        raise DataError(f"{what}: duplicated timestamp {dup.isoformat()}; remove duplicate candles")
    if not idx.is_monotonic_increasing:
        raise DataError(f"{what}: timestamps are not sorted ascending; sort the candles by time")
    cols = list(OHLCV) + (["turnover"] if "turnover" in df.columns else [])
    try:
        out = pd.DataFrame(df[cols].to_numpy(dtype=np.float64), index=idx, columns=cols)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what}: non-numeric values in the price/volume columns ({exc})") from None
    if len(out) < min_rows:
        raise DataError(f"{what}: {len(out)} candle(s), need at least {min_rows}")
    prices = out[["open", "high", "low", "close"]].to_numpy()
    if not np.isfinite(prices).all():
        bad = out.index[~np.isfinite(prices).all(axis=1)][0]
        raise DataError(f"{what}: NaN or infinite price at {bad.isoformat()}; clean or drop that candle")
    if (prices <= 0).any():
        bad = out.index[(prices <= 0).any(axis=1)][0]
        raise DataError(f"{what}: non-positive price at {bad.isoformat()}")
    vol = out["volume"].to_numpy()
    if not np.isfinite(vol).all() or (vol < 0).any():
        bad = out.index[~(np.isfinite(vol) & (vol >= 0))][0]
        raise DataError(f"{what}: NaN or negative volume at {bad.isoformat()}")
    hi, lo = out["high"].to_numpy(), out["low"].to_numpy()
    body_hi = np.maximum(out["open"].to_numpy(), out["close"].to_numpy())
    body_lo = np.minimum(out["open"].to_numpy(), out["close"].to_numpy())
    bad_geo = (hi < lo) | (hi < body_hi * (1 - 1e-9)) | (lo > body_lo * (1 + 1e-9))
    if bad_geo.any():
        bad = out.index[bad_geo][0]
        raise DataError(f"{what}: inconsistent candle at {bad.isoformat()} (high/low do not bound open/close)")
    return out


def _to_datetime(col: pd.Series, what: str) -> pd.DatetimeIndex:
    try:
        if np.issubdtype(col.dtype, np.number):
            unit = "ms" if np.nanmax(np.abs(col.to_numpy(dtype=np.float64))) > 1e11 else "s"
            return pd.DatetimeIndex(pd.to_datetime(col.to_numpy(), unit=unit, utc=True), name="open_time")
        return pd.DatetimeIndex(pd.to_datetime(col, utc=True), name="open_time")
    except (ValueError, TypeError, OverflowError):
        raise DataError(f"{what}: timestamps could not be parsed") from None


def read_candles_csv(path: str | os.PathLike, *, min_rows: int = 1) -> pd.DataFrame:
    """Read a candle CSV (``timestamp_ms`` or ``open_time`` column, OHLCV[+turnover]) and validate it.

    Raises
    ------
    DataError
        Unreadable file, or any problem :func:`validate_candles` names.
    """
    name = os.fspath(path)
    try:
        raw = pd.read_csv(name)
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, IsADirectoryError) as exc:
        raise DataError(f"{name}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    return validate_candles(raw, min_rows=min_rows, what=os.path.basename(name))
