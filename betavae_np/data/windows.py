"""Candle windows for the VAE: causal rolling min-max normalisation (or causally standardised return
features: ``representation``), lazy window sets, live ring buffer, and the inverse back to candles.

:class:`WindowSet` lives in :mod:`.window_set` (re-exported here); the live ring buffer
(:meth:`Windower.push`, :meth:`Windower.push_array`, :meth:`Windower.reset`) in :mod:`.stream`, and
each representation's input columns and scales in :mod:`.features`.

A window ending at candle ``t`` holds candles ``t-window+1 .. t``, flattened time-major
(``idx = k*n_features + f``). It is scaled by the ``lookback`` candles ending at ``t`` only, so
nothing at time ``t`` depends on later candles; the same windows come from :meth:`Windower.transform`
(batch), :meth:`Windower.windows` (lazy, for training) and :meth:`Windower.push` (live, one candle at
a time), bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .._kernels import returns as _r
from .._kernels import windowing as _k
from ..exceptions import ConfigError, DataError, InputError
from . import features as _features
from .features import HALF_LIFE, REPRESENTATIONS, RETURN_FEATURES
from .frame import OHLCV, index_to_ms, validate_candles
from .intervals import INTERVALS, interval_ms, normalize_interval
from .stream import StreamMixin
from .window_set import WindowSet

#: From this many windows on, :meth:`Windower.transform` writes rows on every core.
PARALLEL_WINDOWS = 100_000

__all__ = ["Windower", "WindowSet", "PRICE_FEATURES", "REPRESENTATIONS", "RETURN_FEATURES", "HALF_LIFE"]

#: Features that share the price scale.
PRICE_FEATURES = ("open", "high", "low", "close")
_NORMS = ("rolling", "none")
_GAPS = ("drop", "fill")
_KEYS = ("window", "features", "norm", "lookback", "log_volume", "gaps", "interval", "representation")


class Windower(StreamMixin):
    """Cut candles into causally normalised windows (batch, lazy, or one candle at a time).

    Parameters
    ----------
    window : int
        Candles per window (>= 2).
    features : sequence of str
        Subset of ``open high low close volume``, in output order.
    norm : {"rolling", "none"}
        ``"rolling"``: causal rolling min-max to [0, 1] (see Notes). ``"none"``: raw values
        (``log1p(volume)`` when ``log_volume``); windows then start at candle ``window - 1``.
    lookback : int
        Candles that set each window's scale (>= window).
    log_volume : bool
        Use ``log1p(volume)`` instead of volume.
    gaps : {"drop", "fill"}
        ``"drop"``: a window whose lookback (hence the window) spans a gap is left out, so windows
        restart ``lookback`` candles after a gap. ``"fill"``: missing candles are inserted as flat
        candles (open = high = low = close = previous close, volume 0) and flagged
        (:attr:`WindowSet.filled`).
    interval : str, int or None
        Candle length: a Bybit code or alias (``"60"``, ``"1h"``, ``"D"``), or an int: a Bybit
        minute code (``60``) or ms (``>= 60000``, e.g. ``3_600_000``). ``None`` infers the most common
        step of each frame; in streaming, the smallest step seen since :meth:`reset`.
    representation : {"minmax", "returns", "both"}
        What each candle becomes (:attr:`input_features`). ``"minmax"`` (default): the rolling
        min-max ``features`` below. ``"returns"``: the six :data:`RETURN_FEATURES` z-scored by causal
        EWMA statistics (see Notes). ``"both"``: per candle the min-max ``features`` first, then the
        six return features. ``returns`` and ``both`` read all of OHLCV (``features`` must be OHLCV),
        need ``norm="rolling"`` and ``lookback > window``.

    Notes
    -----
    For the window ending at candle ``t`` and lookback ``L``, with prices ``P`` the price features
    present and ``V = log1p(volume)`` (or volume)::

        lo_p = min_{s=t-L+1..t} min_{f in P} x[s, f]      hi_p = max_{s=t-L+1..t} max_{f in P} x[s, f]
        lo_v = min_{s=t-L+1..t} V[s]                      hi_v = max_{s=t-L+1..t} V[s]
        window[k, f] = clip((x[t-window+1+k, f] - lo) / (hi - lo), 0, 1)

    (computed as ``(x - lo) * (1 / (hi - lo))`` in float64, rounded to float32). With high and low
    among the features, ``lo_p``/``hi_p`` are ``min(low)``/``max(high)``; otherwise the min/max of the
    price features present. The four prices share one scale, so candle geometry is kept. A degenerate
    scale (``hi == lo``: a flat market, or zero volume throughout) gives 0.5. A window exists only
    when its full lookback is available (``t >= L - 1`` and no gap inside with ``gaps="drop"``).

    The ``returns`` features of candle ``s`` (``R = h - l``): ``log(c_s/c_{s-1})``, ``log(h/l)``,
    ``(c-o)/R``, ``(h-max(o,c))/R``, ``(min(o,c)-l)/R`` (the last three 0 when ``R == 0``) and
    ``log1p(volume)``. The window ending at ``t`` z-scores each of them with the mean and sd at ``t``:
    seeded with the plain mean and variance of the ``lookback - 1`` warm-up candles that follow a
    series start (the first candle has no previous close), then updated candle by candle as an EWMA
    with half-life :data:`HALF_LIFE` (500) candles. Only candles up to ``t`` enter them; they are
    long-horizon, so a turbulent or heavy-volume window stands out against the calm ones. Values
    are ``clip((x - mean) * (1/sd), -5, 5)`` (0 when sd is 0). See :mod:`betavae_np._kernels.returns`
    and :meth:`inverse`.
    """

    def __init__(self, window: int = 32, features=OHLCV, norm: str = "rolling", lookback: int = 128,
                 log_volume: bool = True, gaps: str = "drop", interval=None, representation: str = "minmax"):
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
            raise ConfigError(f"window must be an integer >= 2, got {window!r}")
        if isinstance(lookback, bool) or not isinstance(lookback, (int, np.integer)) or lookback < window:
            raise ConfigError(f"lookback must be an integer >= window ({window}), got {lookback!r}")
        if isinstance(features, str):
            features = (features,)
        features = tuple(features)
        bad = [f for f in features if f not in OHLCV]
        if not features or bad or len(set(features)) != len(features):
            raise ConfigError(f"features must be distinct names from {', '.join(OHLCV)}, got {features!r}")
        if norm not in _NORMS:
            raise ConfigError(f"norm must be one of {', '.join(_NORMS)}, got {norm!r}")
        if gaps not in _GAPS:
            raise ConfigError(f"gaps must be one of {', '.join(_GAPS)}, got {gaps!r}")
        if representation not in REPRESENTATIONS:
            raise ConfigError(f"representation must be one of {', '.join(REPRESENTATIONS)}, got {representation!r}")
        if representation != "minmax":
            if features != OHLCV or norm != "rolling" or lookback <= window:
                raise ConfigError(f"representation={representation!r} needs features={'/'.join(OHLCV)}, "
                                  f"norm='rolling' and lookback > window (the warm-up of its statistics)")
        self.representation = representation
        self.window, self.lookback = int(window), int(lookback)
        self.features, self.norm, self.gaps = features, norm, gaps
        self.log_volume = bool(log_volume)
        self.interval, self._ims = _parse_interval(interval)
        has_p = any(f in PRICE_FEATURES for f in features)
        self._group = np.array([0 if f in PRICE_FEATURES or not has_p else 1 for f in features], np.int64)
        self._n_groups = int(self._group.max()) + 1
        self._vol_col = features.index("volume") if "volume" in features else -1
        self._need = self.window if norm == "none" else self.lookback
        # scale groups of the input columns: min-max groups first, then one z-score group per return feature
        self._mm = representation != "returns"
        self._rt = representation != "minmax"
        g_mm = self._n_groups if self._mm else 0
        groups = list(self._group) if self._mm else []
        modes = [_k.MODE_NONE if norm == "none" else _k.MODE_ROLLING] * g_mm
        if self._rt:
            groups += [g_mm + f for f in range(_r.NR)]
            modes += [_k.MODE_ZSCORE] * _r.NR
        self._groups = np.array(groups, dtype=np.int64)   # (n_features,) every input column's group
        self._modes = np.array(modes, dtype=np.int64)     # (G,) each group's scale mode
        self._init_stream()   # the live ring buffer: push, push_array, reset (.stream.StreamMixin)

    # -- settings -----------------------------------------------------------------------------
    @property
    def input_features(self) -> tuple:
        """Names of the per-candle model inputs, in order (``features`` for ``minmax``;
        :data:`RETURN_FEATURES` for ``returns``; both, min-max first, for ``both``)."""
        return (self.features if self._mm else ()) + (RETURN_FEATURES if self._rt else ())

    @property
    def n_features(self) -> int:
        """Inputs per candle: ``len(input_features)``."""
        return len(self.input_features)

    @property
    def n_input(self) -> int:
        """Length of one flattened window: ``window * n_features``."""
        return self.window * self.n_features

    def to_dict(self) -> dict:
        """JSON-able settings (stored in model files); :meth:`from_dict` rebuilds the windower.

        ``representation`` is written only when it is not ``minmax``, so min-max settings (and model
        files) stay exactly what earlier versions wrote and read."""
        return {"window": self.window, "features": list(self.features), "norm": self.norm,
                "lookback": self.lookback, "log_volume": self.log_volume, "gaps": self.gaps,
                "interval": self.interval,
                **({} if self.representation == "minmax" else {"representation": self.representation})}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Windower":
        """Rebuild from :meth:`to_dict` output (ConfigError on unknown keys)."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"windower settings must be a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            raise ConfigError(f"unknown windower setting(s) {', '.join(map(str, unknown))}; "
                              f"known: {', '.join(_KEYS)}")
        return cls(**d)

    def __repr__(self) -> str:
        return "Windower(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"

    # -- batch --------------------------------------------------------------------------------
    def transform(self, df: pd.DataFrame, dtype=np.float32) -> np.ndarray:
        """All windows of a candle frame.

        Parameters
        ----------
        df : pandas.DataFrame
            Candles per the frame convention (not modified).
        dtype : float32 or float64
            float32 (default): the values every path gives, rounded once. float64: the same values
            before that rounding (for :meth:`inverse` round trips).

        Returns
        -------
        ndarray, shape (n_windows, window*n_features)
            Row ``j`` is the window ending at the ``j``-th valid candle, time-major; min-max values
            in [0, 1], return features in [-5, 5].

        Raises
        ------
        DataError
            Invalid candles, too few candles, or no window fits between the gaps.
        """
        raw, ends, times, filled, seg = self._prepare(df)
        exact = np.dtype(dtype) == np.float64
        if not exact and np.dtype(dtype) != np.float32:
            raise InputError(f"dtype must be float32 or float64, got {dtype!r}")
        out = np.empty((ends.size, self.n_input), dtype=np.dtype(dtype))
        if self.representation != "minmax":
            lo, hi = self._scales(raw, ends, seg)
            gather = _k.gather_windows if ends.size < PARALLEL_WINDOWS else _k.gather_windows_parallel
            gather(out, raw, lo, hi, self._groups, ends, np.arange(ends.size), self.window, self._modes, exact)
            return out
        n, G = raw.shape[0], self._n_groups
        lo, hi = np.empty((ends.size, G)), np.empty((ends.size, G))
        work = [np.empty((n, G)) for _ in range(4)]
        if ends.size < PARALLEL_WINDOWS:
            _k.transform_windows(out, raw, self._group, ends, self.window, self._need,
                                 self._modes, work[0], work[1], lo, hi, work[2], work[3], exact)
        else:  # large outputs: rows written by every core
            _k.candle_bounds_parallel(work[0], work[1], raw, self._group)
            _k.rolling_scales(lo, hi, work[0], work[1], ends, self._need, work[2], work[3])
            _k.gather_windows_parallel(out, raw, lo, hi, self._group, ends, np.arange(ends.size), self.window,
                                       self._modes, exact)
        return out

    def windows(self, df: pd.DataFrame) -> WindowSet:
        """A lazy :class:`WindowSet` over a candle frame (same windows as :meth:`transform`)."""
        raw, ends, times, filled, seg = self._prepare(df)
        lo, hi = self._scales(raw, ends, seg)
        return WindowSet(raw, lo, hi, self._groups, ends, self.window, self.input_features, times, filled,
                         self._modes)

    def _scales(self, raw, ends, seg):
        """Per-window scales lo, hi (m, G): min-max groups (lo, hi), then return groups (mean, sd)."""
        return _features.scales(self, raw, ends, seg)

    def _raw(self, src, seg):
        """The prepared input columns (n, n_features) float64 of source values (n, len(features))."""
        return _features.raw_inputs(self, src, seg)

    def _prepare(self, df, keep_source: bool = False):
        """Validated frame -> raw (n, F) float64, ends (m,) int64, times (n,) ms, filled (n,) bool,
        seg (n,) bool (segment starts: the first candle and the first after each dropped gap)."""
        df = validate_candles(df, what="candles")
        need = self._need
        if len(df) < need:
            raise DataError(f"need at least {need} candles for one window of {self.window} with lookback "
                            f"{self.lookback}, got {len(df)}")
        t = index_to_ms(df.index)
        ims = self._ims if self._ims is not None else _infer_step(t)
        src = df[list(self.features)].to_numpy(dtype=np.float64)
        filled = np.zeros(t.size, dtype=bool)
        if self.gaps == "fill" and ims > 0 and t.size > 1 and (np.diff(t) > ims).any():
            t, src, filled = self._fill(t, src, df["close"].to_numpy(dtype=np.float64), ims)
        idx = np.arange(t.size, dtype=np.int64)
        brk = np.ones(t.size, dtype=bool)
        if ims > 0:
            brk[1:] = np.diff(t) > ims
        else:
            brk[1:] = False
        seg_start = np.maximum.accumulate(np.where(brk, idx, 0))
        ends = np.flatnonzero(idx - seg_start >= need - 1).astype(np.int64)
        if ends.size == 0:
            longest = int(np.max(np.diff(np.append(np.flatnonzero(brk), t.size))))
            raise DataError(f"no window of {self.window} with lookback {self.lookback} fits between the gaps "
                            f"(longest gap-free run: {longest} candles); use gaps='fill' or more data")
        if keep_source:
            return src, ends
        raw = self._raw(src, brk)  # C order: a window is one contiguous slice
        return raw, ends, t, filled, brk

    def anchors(self, df: pd.DataFrame) -> np.ndarray:
        """(n_windows,) float64: the close of the candle just before each window's first candle.

        With :attr:`scales <betavae_np.data.window_set.WindowSet.scales>` this is the state
        :meth:`inverse` needs to turn ``returns`` windows back into prices. Needs a ``close`` feature.
        """
        if "close" not in self.features:
            raise ConfigError("anchors need a close feature")
        src, ends = self._prepare(df, keep_source=True)
        return src[ends - self.window, self.features.index("close")].copy()

    def inverse(self, X, lo, hi, anchor=None) -> np.ndarray:
        """Windows back to candle values: the inverse of the normalisation, given each window's state.

        Parameters
        ----------
        X : ndarray, shape (n, n_input) or (n_input,)
            Windows of this windower (float64 and unclipped for an exact round trip: see
            :meth:`transform` ``dtype``), or decoded windows.
        lo, hi : ndarray, shape (n, G) or (G,)
            Each window's scales (:attr:`WindowSet.scales <betavae_np.data.window_set.WindowSet.scales>`):
            min-max groups ``lo``/``hi``, then for the return features their EWMA mean and sd.
        anchor : ndarray, shape (n,) or float, optional
            Needed by ``returns``: the close before each window's first candle (:meth:`anchors`).

        Returns
        -------
        ndarray of float64, shape (n, window, len(features)) (or (window, len(features)))
            The candles in :attr:`features` order (volume undone from ``log1p`` when ``log_volume``).
            ``minmax`` and ``both`` invert the min-max columns (``x = lo + v * (hi - lo)``, ``lo`` for a
            degenerate scale); ``returns`` rebuilds prices from the anchor (see Notes).

        Notes
        -----
        ``returns``: with ``x = mean + z * sd`` per feature, ``c_k = c_{k-1} * exp(log_return_k)``
        from ``c_{-1} = anchor``; with ``q = exp(log_range)``, ``b+ = max(body, 0)``,
        ``b- = max(-body, 0)``: ``R = c (q - 1) / ((upper + b-) + q (lower + b+))``,
        ``h = c + (upper + b-) R``, ``l = c - (lower + b+) R``, ``o = c - body R``; volume
        ``expm1(log_volume)``. Exact for consistent, unclipped features; a clipped value (|z| = 5)
        cannot be undone.
        """
        return _features.inverse(self, X, lo, hi, anchor)

    def _fill(self, t, src, close, ims):
        off = t - t[0]
        if (off % ims).any():
            raise DataError(f"candle times are not on a regular {ims} ms grid, so gaps cannot be filled; "
                            f"use gaps='drop'")
        pos = off // ims
        N = int(pos[-1]) + 1
        present = np.zeros(N, dtype=bool)
        present[pos] = True
        last = np.maximum.accumulate(np.where(present, np.arange(N), -1))
        prev_close = np.empty(N)
        prev_close[pos] = close
        prev_close = prev_close[last]
        full = np.empty((N, src.shape[1]))
        for f, name in enumerate(self.features):
            full[:, f] = 0.0 if name == "volume" else prev_close
        full[pos] = src
        return t[0] + np.arange(N, dtype=np.int64) * ims, full, ~present

    def last_windows(self, values: np.ndarray) -> np.ndarray:
        """The window ending at the last candle of each of many independent, gap-free series.

        Parameters
        ----------
        values : ndarray of float64, shape (n_series, n_candles, n_features)
            Candle values in :attr:`features` order, ``n_candles >= lookback`` (``window`` with
            ``norm="none"``); not validated (finite, positive prices are the caller's duty).

        Returns
        -------
        ndarray of float32, shape (n_series, n_input)
            Row ``i`` equals the last row of :meth:`transform` on series ``i`` alone, bit for bit
            (the same kernels, without building a DataFrame per series).
        """
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 3 or v.shape[2] != len(self.features) or v.shape[1] < self._need:
            raise InputError(f"values must have shape (n_series, >= {self._need}, {len(self.features)}), "
                             f"got {v.shape}")
        n, L, F = v.shape
        ends = np.arange(n, dtype=np.int64) * L + (L - 1)
        out = np.empty((n, self.n_input), dtype=np.float32)
        src = np.ascontiguousarray(v).reshape(n * L, F)
        if self.representation != "minmax":
            seg = np.zeros(n * L, dtype=bool)
            seg[::L] = True
            raw = self._raw(src, seg)
            lo, hi = self._scales(raw, ends, seg)
            _k.gather_windows(out, raw, lo, hi, self._groups, ends, np.arange(n), self.window, self._modes, False)
            return out
        raw = np.empty((n * L, F))
        _k.prepare_features(raw, src, self._vol_col, self.log_volume)
        G = self._n_groups
        work = [np.empty((n * L, G)) for _ in range(4)]
        lo, hi = np.empty((n, G)), np.empty((n, G))
        _k.transform_windows(out, raw, self._group, ends, self.window, self._need, self._modes,
                             work[0], work[1], lo, hi, work[2], work[3], False)
        return out


def _infer_step(t: np.ndarray) -> int:
    """The most common step between open times (the smallest on ties); 0 with fewer than 2."""
    if t.size < 2:
        return 0
    steps, counts = np.unique(np.diff(t), return_counts=True)
    return int(steps[np.argmax(counts)])


def _parse_interval(interval):
    """-> (value kept in to_dict, ms or None)."""
    if interval is None:
        return None, None
    if isinstance(interval, (int, np.integer)) and not isinstance(interval, bool):
        if str(int(interval)) in INTERVALS:
            code = str(int(interval))
            return code, interval_ms(code)
        if interval >= 60_000:
            return int(interval), int(interval)
        raise ConfigError(f"invalid interval {interval!r}; give a Bybit code (60), an alias (1h) or ms (>= 60000)")
    code = normalize_interval(interval)
    return code, interval_ms(code)
