"""The candle DataFrame convention: validation, CSV reading, gap detection.

Convention (DESIGN.md): index ``open_time`` (UTC ``DatetimeIndex``, ascending, unique), float64
columns ``open high low close volume`` and ``turnover`` when known.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import DataError
from .intervals import INTERVALS, MONTH_MS, interval_ms, interval_of_spacing, spacing_words

__all__ = ["OHLCV", "Gap", "validate_candles", "read_candles_csv", "find_gaps", "frame_from_arrays",
           "index_to_ms", "infer_interval", "candle_facts"]

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


def infer_interval(open_time_ms: np.ndarray, what: str = "candles") -> str:
    """The Bybit interval of candles: their most common spacing, matched to a Bybit code.

    Gaps and a few odd rows do not change the most common spacing; spacings of 28-31 days all
    count as one month.

    Parameters
    ----------
    open_time_ms : ndarray of int64, shape (n,)
        Open times, ascending and unique, n >= 2.
    what : str
        How to name the data in error messages.

    Returns
    -------
    str
        One of :data:`~betavae_np.data.intervals.INTERVALS`.

    Raises
    ------
    DataError
        Fewer than 2 candles, or a most common spacing that is no Bybit interval.
    """
    t = np.asarray(open_time_ms, dtype=np.int64)
    if t.size < 2:
        raise DataError(f"{what}: {t.size} candle(s) are too few to tell the candles' interval")
    step = np.diff(t)
    step = np.where((step >= MONTH_MS[0]) & (step <= MONTH_MS[1]), MONTH_MS[0], step)  # months: one spacing
    values, counts = np.unique(step, return_counts=True)
    common = int(values[np.argmax(counts)])
    code = interval_of_spacing(common)
    if code is None:
        raise DataError(f"{what}: the candles are {spacing_words(common)} apart, which is no Bybit interval "
                        f"({' '.join(INTERVALS)}); resample them to one")
    return code


def candle_facts(df: pd.DataFrame, interval: str) -> dict:
    """What the candles themselves show, for provenance: rows, first/last open time, gaps.

    Returns
    -------
    dict
        ``rows``; ``start``/``end`` (ISO open time of the first and last candle, None when empty);
        ``gaps`` (list of :meth:`Gap.to_dict`, as the Bybit client reports them) and
        ``missing_candles`` (their sum). Monthly candles have no fixed length: no gaps are reported.
    """
    t = index_to_ms(df.index)
    gaps = find_gaps(t, interval_ms(interval))
    return {"rows": int(t.size),
            "start": df.index[0].isoformat() if t.size else None,
            "end": df.index[-1].isoformat() if t.size else None,
            "gaps": [g.to_dict() for g in gaps],
            "missing_candles": int(sum(g.missing for g in gaps))}


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
        for col in TIME_COLUMNS:
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


#: Epoch magnitudes: a time column of plain numbers is read in the largest unit its values fit
#: (1e11 s is the year 5138, so seconds, ms, us and ns of any real candle cannot be confused).
_EPOCH_UNITS = ((1e17, "ns"), (1e14, "us"), (1e11, "ms"), (0.0, "s"))

#: Time columns tried in this order when a frame has no DatetimeIndex.
TIME_COLUMNS = ("timestamp_ms", "open_time", "timestamp", "time", "date")


def _to_datetime(col: pd.Series, what: str) -> pd.DatetimeIndex:
    """A time column as a UTC index: epoch numbers (s, ms, us or ns by magnitude, also when written
    as digit strings) or date/time text (ISO 8601 first, then the format of the first value)."""
    bad = DataError(f"{what}: column {col.name} holds no times to parse; give ISO 8601 text "
                    f"(2024-05-01 00:00:00) or epoch seconds/ms")
    if pd.api.types.is_bool_dtype(col.dtype):
        raise bad
    numeric = col if pd.api.types.is_numeric_dtype(col.dtype) else None
    if numeric is None:
        text = col.astype("string").str.strip()  # pandas 3 reads text as a string dtype, pandas 2 as object
        as_num = pd.to_numeric(text, errors="coerce")
        if text.notna().any() and as_num.notna().sum() == text.notna().sum():
            numeric = as_num  # quoted epoch numbers
    try:
        if numeric is not None:
            if pd.api.types.is_integer_dtype(numeric.dtype) and not numeric.isna().any():
                values = numeric.to_numpy(dtype=np.int64)  # exact, even for ns
            else:
                values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)  # NaN becomes NaT
            finite = np.abs(values[np.isfinite(values)]) if values.dtype.kind == "f" else np.abs(values)
            peak = float(finite.max()) if finite.size else 0.0
            unit = next(u for floor, u in _EPOCH_UNITS if peak >= floor)
            return pd.DatetimeIndex(pd.to_datetime(values, unit=unit, utc=True), name="open_time")
        try:
            out = pd.to_datetime(text, utc=True, format="ISO8601")
        except (ValueError, TypeError):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "could not infer format": we say so below
                out = pd.to_datetime(text, utc=True)
        return pd.DatetimeIndex(out, name="open_time")
    except (ValueError, TypeError, OverflowError):
        pass
    sample = _first_unparseable(col)
    raise DataError(f"{what}: column {col.name} holds times that could not be parsed"
                    + (f" (e.g. {sample!r})" if sample is not None else "")
                    + "; give ISO 8601 text (2024-05-01 00:00:00) or epoch seconds/ms") from None


def _first_unparseable(col: pd.Series):
    """The first value of a time column that parses neither as ISO 8601 text nor as a number."""
    for value in col.dropna().head(100_000):
        text = str(value).strip()
        try:
            float(text)
            continue
        except ValueError:
            pass
        try:
            pd.to_datetime(text, utc=True, format="ISO8601")
        except (ValueError, TypeError, OverflowError):
            return text
    return None


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
