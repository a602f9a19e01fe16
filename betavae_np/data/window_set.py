"""Lazy window sets: windows gathered on demand from the prepared candle matrix.

:class:`WindowSet` holds one candle series (made by :meth:`Windower.windows
<betavae_np.data.windows.Windower.windows>`); :class:`UniverseWindowSet` holds many symbols' series
side by side and gathers across them with the same compiled call. Neither ever materialises the
``n_windows x n_input`` array: memory is O(candles x features).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._kernels import windowing as _k
from ..exceptions import ConfigError, DataError, InputError
from .sampler import EpochSampler, window_weights

__all__ = ["WindowSet", "UniverseWindowSet"]


class WindowSet:
    """Windows of a candle series, gathered on demand (memory O(candles x features)).

    Holds the prepared feature matrix, each window's scale (lo/hi per scale group) and each window's
    last candle; :meth:`gather` writes any rows into a caller's buffer with one compiled call.
    Made by :meth:`Windower.windows`; ``fit()`` uses only :attr:`shape` and :meth:`gather`.

    Attributes
    ----------
    shape : tuple of int
        ``(n_windows, window * n_features)``.
    window, features : int, tuple of str
        The windower's settings.
    rows : ndarray of int64, shape (n_windows,)
        Index of each window's last candle in the candle matrix held (:attr:`candle_times`).
    end_times : pandas.DatetimeIndex, shape (n_windows,)
        Open time of each window's last candle.
    candle_times : pandas.DatetimeIndex, shape (n_candles,)
        Open times of the candles held (with ``gaps="fill"``, the inserted candles too).
    filled : ndarray of bool, shape (n_candles,)
        True for candles inserted by ``gaps="fill"``; :attr:`n_filled` counts them.
    """

    def __init__(self, raw, lo, hi, group, ends, window, features, times_ms, filled, modes):
        self._raw, self._lo, self._hi, self._group = raw, lo, hi, group
        self.rows = ends
        self.window = int(window)
        self.features = tuple(features)
        self._times_ms = times_ms
        self.filled = filled
        self._modes = np.asarray(modes, dtype=np.int64)   # (G,) each scale group's mode
        self.shape = (int(ends.shape[0]), self.window * len(self.features))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"WindowSet(n_windows={self.shape[0]}, window={self.window}, features={self.features})"

    @property
    def dtype(self) -> np.dtype:
        """float32: the windows' values are float32 numbers (a float64 gather holds them exactly)."""
        return np.dtype(np.float32)

    @property
    def n_filled(self) -> int:
        """Number of candles inserted by ``gaps="fill"``."""
        return int(np.count_nonzero(self.filled))

    @property
    def end_times(self) -> pd.DatetimeIndex:
        return _times(self._times_ms[self.rows])

    @property
    def candle_times(self) -> pd.DatetimeIndex:
        return _times(self._times_ms)

    @property
    def scales(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-window ``(lo, hi)``, each (n_windows, n_groups): the min-max groups (prices, then volume),
        then for each return feature (``returns``/``both`` representations) its EWMA mean and sd.
        With :meth:`Windower.anchors <betavae_np.data.windows.Windower.anchors>`, the state
        :meth:`Windower.inverse <betavae_np.data.windows.Windower.inverse>` needs."""
        return self._lo.copy(), self._hi.copy()

    def gather(self, rows, out=None) -> np.ndarray:
        """Write windows ``rows`` into ``out`` (one compiled call).

        Parameters
        ----------
        rows : array_like of int, shape (r,)
            Window indices in ``[0, n_windows)``, any order, repeats allowed.
        out : ndarray, shape (r, window*n_features), float32 or float64, C-contiguous, optional
            Destination (allocated as float32 when omitted). Float64 receives the float32 values.

        Returns
        -------
        ndarray, shape (r, window*n_features)
            ``out``.
        """
        rows = _check_rows(rows, self.shape[0])
        out = _check_out(out, rows.size, self.shape[1])
        if rows.size:
            _k.gather_windows(out, self._raw, self._lo, self._hi, self._group, self.rows, rows,
                              self.window, self._modes, False)
        return out

    def array(self, dtype=np.float32) -> np.ndarray:
        """All windows materialised, shape (n_windows, window*n_features); equals ``transform``."""
        return self.gather(np.arange(self.shape[0], dtype=np.int64),
                           np.empty(self.shape, dtype=np.dtype(dtype)))

    def subset(self, start: int | None = None, stop: int | None = None) -> "WindowSet":
        """Windows ``start:stop`` (Python slice rules) as a WindowSet sharing the candle matrix."""
        sl = slice(*slice(start, stop).indices(self.shape[0])[:2])
        return WindowSet(self._raw, self._lo[sl], self._hi[sl], self._group, self.rows[sl], self.window,
                         self.features, self._times_ms, self.filled, self._modes)

    def split(self, fraction: float = 0.2, purge: bool = True) -> tuple["WindowSet", "WindowSet"]:
        """Time-ordered train/validation split: the last ``fraction`` of windows is validation.

        Parameters
        ----------
        fraction : float in (0, 1)
            Share of windows set aside for validation (rounded; at least one window each side).
        purge : bool
            Drop the validation windows that share a candle with a training window (the first
            ``window - 1`` after the boundary on gap-free data), so no candle value is seen in both.

        Returns
        -------
        train, validation : WindowSet

        Notes
        -----
        The validation windows' scales may still use training-period candles in their lookback:
        that is the causal past a live model also sees, not leakage.
        """
        if not isinstance(fraction, (float, int)) or not 0.0 < float(fraction) < 1.0:
            raise ConfigError(f"split fraction must lie strictly between 0 and 1, got {fraction!r}")
        n = self.shape[0]
        n_train = int(round(n * (1.0 - float(fraction))))
        if n_train < 1 or n_train >= n:
            raise DataError(f"cannot split {n} window(s) with fraction {fraction}: one side would be empty")
        first = n_train
        if purge:
            first = int(np.searchsorted(self.rows, self.rows[n_train - 1] + self.window, side="left"))
        if first >= n:
            raise DataError(f"no validation window left after purging the {self.window - 1} windows that "
                            f"overlap training; use a larger fraction or more data")
        return self.subset(0, n_train), self.subset(first, n)


class UniverseWindowSet:
    """Windows of many symbols, each windowed and normalised on its own, gathered on demand.

    The symbols' prepared candle matrices sit one after the other in one ``(n_candles, F)`` array
    and every window keeps its own symbol's scale, so :meth:`gather` is the same compiled call as
    :meth:`WindowSet.gather` and a window never spans two symbols (nor a gap). Memory is
    O(candles x features) for the whole universe; a subset (:meth:`split_at`) adds one int64 per
    window it keeps. Windows are ordered by symbol (in :attr:`symbols` order), then by time.
    Made by :meth:`from_frames` (or :meth:`Universe.windows <betavae_np.data.universe.Universe.windows>`).

    Attributes
    ----------
    shape : tuple of int
        ``(n_windows, window * n_features)``: ``fit()`` needs only this and :meth:`gather`.
    symbols : tuple of str
        The symbols in window order (those skipped for too few candles are absent).
    window, features : int, tuple of str
        The windower's settings (one windower for every symbol).
    provenance : dict of str to dict
        Per symbol what the data was (source, range, candles, gaps), when the builder was given it.
    """

    def __init__(self, symbols, raw, lo, hi, group, ends, window, features, times_ms, filled, modes,
                 win_offsets, candle_offsets, sel=None, provenance=None):
        self.symbols = tuple(symbols)
        self._raw, self._lo, self._hi, self._group, self._ends = raw, lo, hi, group, ends
        self.window = int(window)
        self.features = tuple(features)
        self._times_ms, self._filled = times_ms, filled
        self._modes = np.asarray(modes, dtype=np.int64)   # (G,) each scale group's mode
        self._woff, self._coff = win_offsets, candle_offsets   # (K+1,) int64 each
        self._sel = sel                                        # (n,) int64 into the full set, or None
        self.provenance = dict(provenance or {})
        n = int(ends.shape[0]) if sel is None else int(sel.shape[0])
        self.shape = (n, self.window * len(self.features))

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def from_frames(cls, windower, frames, *, on_notice=None, provenance=None) -> "UniverseWindowSet":
        """Window every symbol's candles with the same ``windower``.

        Parameters
        ----------
        windower : Windower
            One windower for all symbols (its ``interval``, or each frame's inferred one).
        frames : mapping of str to pandas.DataFrame
            Candles per symbol (frame convention); order kept.
        on_notice : callable(str), optional
            Told about each symbol skipped because no window fits (too few candles, or none
            between its gaps): skipping is not an error.
        provenance : mapping of str to dict, optional
            Kept as :attr:`provenance` (entries of skipped symbols dropped).

        Raises
        ------
        DataError
            No symbol at all, or none with a single window.

        Notes
        -----
        Two passes: the first counts candles and windows per symbol, the second writes each
        symbol's prepared candles and scales straight into the shared arrays, so the peak memory
        is the universe's arrays plus one symbol's temporaries (never a second copy of the whole).
        """
        items = list(frames.items())
        if not items:
            raise DataError("the universe is empty: give the candles of at least one symbol")
        sizes = []
        for sym, df in items:
            try:
                raw, ends, _, _, _ = windower._prepare(df)
            except DataError as exc:
                if on_notice is not None:
                    on_notice(f"{sym} skipped: {exc}")
                continue
            sizes.append((sym, df, raw.shape[0], ends.size))
            del raw, ends
        if not sizes:
            raise DataError(f"no symbol of the universe ({', '.join(str(s) for s, _ in items[:5])}"
                            f"{', ...' if len(items) > 5 else ''}) has enough candles for one window of "
                            f"{windower.window} with lookback {windower.lookback}; use more candles or a "
                            f"shorter lookback")
        coff = np.zeros(len(sizes) + 1, dtype=np.int64)
        woff = np.zeros(len(sizes) + 1, dtype=np.int64)
        coff[1:] = np.cumsum([s[2] for s in sizes])
        woff[1:] = np.cumsum([s[3] for s in sizes])
        G, F = windower._modes.size, windower.n_features
        raw = np.empty((coff[-1], F), dtype=np.float64)   # (n_candles, F) all symbols, C order
        times = np.empty(coff[-1], dtype=np.int64)
        filled = np.empty(coff[-1], dtype=bool)
        ends = np.empty(woff[-1], dtype=np.int64)         # (n_windows,) last candle, global row
        lo, hi = np.empty((woff[-1], G)), np.empty((woff[-1], G))
        for k, (sym, df, n, m) in enumerate(sizes):
            raw_k, ends_k, t_k, filled_k, seg_k = windower._prepare(df)
            c0, w0 = coff[k], woff[k]
            raw[c0:c0 + n] = raw_k
            times[c0:c0 + n] = t_k
            filled[c0:c0 + n] = filled_k
            ends[w0:w0 + m] = ends_k + c0
            lo[w0:w0 + m], hi[w0:w0 + m] = windower._scales(raw_k, ends_k, seg_k)   # as Windower.windows
            del raw_k
        syms = [s[0] for s in sizes]
        prov = {s: provenance[s] for s in syms if provenance and s in provenance}
        return cls(syms, raw, lo, hi, windower._groups, ends, windower.window, windower.input_features, times,
                   filled, windower._modes, woff, coff, provenance=prov)

    # -- the WindowSet interface ----------------------------------------------------------------
    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return (f"UniverseWindowSet(n_windows={self.shape[0]}, symbols={len(self.symbols)}, "
                f"window={self.window}, features={self.features})")

    @property
    def dtype(self) -> np.dtype:
        """float32, as :attr:`WindowSet.dtype`."""
        return np.dtype(np.float32)

    def _full(self, rows=None) -> np.ndarray:
        """Indices into the full set's windows of this set's windows ``rows`` (all by default)."""
        if self._sel is None:
            return np.arange(self._ends.shape[0], dtype=np.int64) if rows is None else rows
        return self._sel if rows is None else self._sel[rows]

    @property
    def rows(self) -> np.ndarray:
        """(n_windows,) int64: each window's last candle, as a row of the shared candle matrix."""
        return self._ends[self._full()]

    @property
    def end_times(self) -> pd.DatetimeIndex:
        """(n_windows,) open time of each window's last candle (symbol-major order, not sorted)."""
        return _times(self._times_ms[self.rows])

    @property
    def start_times(self) -> pd.DatetimeIndex:
        """(n_windows,) open time of each window's first candle."""
        return _times(self._times_ms[self.rows - (self.window - 1)])

    @property
    def codes(self) -> np.ndarray:
        """(n_windows,) int32: each window's symbol as an index into :attr:`symbols`."""
        return (np.searchsorted(self._woff, self._full(), side="right") - 1).astype(np.int32)

    @property
    def counts(self) -> np.ndarray:
        """(n_symbols,) int64: windows of each symbol in this set."""
        if self._sel is None:
            return np.diff(self._woff)
        return np.bincount(self.codes, minlength=len(self.symbols)).astype(np.int64)

    def symbol_of(self, idx):
        """Symbol of window ``idx`` (an int -> str), or of each of an array of indices (-> ndarray of str)."""
        arr = np.asarray(idx)
        if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() >= self.shape[0])):
            raise InputError(f"window indices must be integers in [0, {self.shape[0]}), got {idx!r}")
        code = np.searchsorted(self._woff, self._full(arr.astype(np.int64).reshape(-1)), side="right") - 1
        names = np.asarray(self.symbols, dtype=object)[code]
        return str(names[0]) if arr.ndim == 0 else names.reshape(arr.shape)

    def gather(self, rows, out=None) -> np.ndarray:
        """Write windows ``rows`` (any symbols, any order, repeats allowed) into ``out``.

        Same contract as :meth:`WindowSet.gather`: rows int (r,) in ``[0, n_windows)``; ``out``
        (r, window*n_features) float32 or float64 C-contiguous, allocated as float32 when omitted.
        Row ``j`` equals, bit for bit, the window gathered from its own symbol's :class:`WindowSet`.
        """
        rows = _check_rows(rows, self.shape[0])
        out = _check_out(out, rows.size, self.shape[1])
        if rows.size:
            _k.gather_windows(out, self._raw, self._lo, self._hi, self._group, self._ends, self._full(rows),
                              self.window, self._modes, False)
        return out

    def array(self, dtype=np.float32) -> np.ndarray:
        """All windows materialised, (n_windows, window*n_features): for small sets and tests only."""
        return self.gather(np.arange(self.shape[0], dtype=np.int64), np.empty(self.shape, dtype=np.dtype(dtype)))

    # -- per symbol -----------------------------------------------------------------------------
    def window_set(self, symbol: str) -> WindowSet:
        """One symbol's windows of this set as a :class:`WindowSet` (views of the shared arrays)."""
        if symbol not in self.symbols:
            raise InputError(f"{symbol!r} is not in this universe ({', '.join(self.symbols[:8])}"
                             f"{', ...' if len(self.symbols) > 8 else ''})")
        k = self.symbols.index(symbol)
        c0, c1, w0, w1 = self._coff[k], self._coff[k + 1], self._woff[k], self._woff[k + 1]
        if self._sel is None:
            w = slice(w0, w1)
        else:
            w = self._sel[(self._sel >= w0) & (self._sel < w1)]
        return WindowSet(self._raw[c0:c1], self._lo[w], self._hi[w], self._group, self._ends[w] - c0,
                         self.window, self.features, self._times_ms[c0:c1], self._filled[c0:c1], self._modes)

    def _subset(self, keep: np.ndarray) -> "UniverseWindowSet":
        """Windows where ``keep`` (n,) bool is True, sharing the candle arrays."""
        sel = self._full()[keep].astype(np.int64, copy=False)
        return UniverseWindowSet(self.symbols, self._raw, self._lo, self._hi, self._group, self._ends,
                                 self.window, self.features, self._times_ms, self._filled, self._modes,
                                 self._woff, self._coff, sel=np.ascontiguousarray(sel),
                                 provenance=self.provenance)

    # -- splitting ------------------------------------------------------------------------------
    def split_at(self, cutoff, purge: bool = True) -> tuple["UniverseWindowSet", "UniverseWindowSet"]:
        """Split every symbol at one calendar time: training before ``cutoff``, validation from it.

        Parameters
        ----------
        cutoff : datetime, str, int ms or pandas.Timestamp
            Training windows end (last candle's open time) strictly before it; validation windows
            end at or after it, for every symbol alike.
        purge : bool
            Also drop the validation windows that start before ``cutoff`` (they straddle the
            boundary and share candles with training windows), so validation covers the same
            calendar period ``[cutoff, ...)`` for every symbol and no candle is in both parts. On
            gap-free candles this drops exactly the windows :meth:`WindowSet.split` purges.

        Returns
        -------
        train, validation : UniverseWindowSet

        Raises
        ------
        DataError
            One side would be empty.
        """
        from .intervals import ms_to_iso, to_ms

        cut = to_ms(cutoff, "cutoff")
        rows = self.rows
        t_end = self._times_ms[rows]
        train = t_end < cut
        val = ~train
        if purge:
            val &= self._times_ms[rows - (self.window - 1)] >= cut
        span = f"the windows end from {ms_to_iso(int(t_end.min()))} to {ms_to_iso(int(t_end.max()))}"
        if not train.any():
            raise DataError(f"no training window ends before the cutoff {ms_to_iso(cut)} ({span}); "
                            f"choose a later cutoff")
        if not val.any():
            raise DataError(f"no validation window lies after the cutoff {ms_to_iso(cut)} ({span}"
                            + (", and windows straddling the cutoff are purged" if purge else "")
                            + "); choose an earlier cutoff")
        return self._subset(train), self._subset(val)

    def cutoff_for(self, fraction: float) -> pd.Timestamp:
        """The calendar cutoff at which about ``fraction`` of the windows end at or after it.

        Symbols share end times, so the share is approximate (all windows ending at the cutoff
        time go to validation).
        """
        if not isinstance(fraction, (float, int)) or not 0.0 < float(fraction) < 1.0:
            raise ConfigError(f"split fraction must lie strictly between 0 and 1, got {fraction!r}")
        t_end = np.sort(self._times_ms[self.rows])
        n = t_end.size
        k = min(n - 1, max(1, int(round(n * (1.0 - float(fraction))))))
        return pd.Timestamp(int(t_end[k]), unit="ms", tz="UTC")

    def split(self, fraction: float = 0.2, purge: bool = True):
        """:meth:`split_at` the :meth:`cutoff_for` ``fraction`` (the WindowSet.split interface)."""
        return self.split_at(self.cutoff_for(fraction), purge=purge)

    # -- sampling -------------------------------------------------------------------------------
    def sampling_weights(self, weighting: str = "proportional") -> np.ndarray:
        """(n_windows,) float64 probability of drawing each window (see :func:`.sampler.window_weights`)."""
        return window_weights(self.codes, len(self.symbols), weighting)

    def sampler(self, weighting: str = "proportional") -> EpochSampler:
        """An :class:`~betavae_np.data.sampler.EpochSampler` over this set's windows (how training uses it:
        see there)."""
        return EpochSampler(self.counts, weighting)


def _check_rows(rows, n: int) -> np.ndarray:
    """Window indices as int64 (r,), each in [0, n)."""
    rows = np.asarray(rows)
    if rows.ndim != 1 or not (rows.dtype.kind in "iu" or rows.size == 0):
        raise InputError(f"rows must be a 1-D integer array, got shape {rows.shape} dtype {rows.dtype}")
    rows = rows.astype(np.int64, copy=False)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise InputError(f"rows must lie in [0, {n}), got {rows.min()}..{rows.max()}")
    return rows


def _check_out(out, r: int, n_input: int) -> np.ndarray:
    """A gather destination (r, n_input): ``out`` checked, or a new float32 array."""
    if out is None:
        return np.empty((r, n_input), dtype=np.float32)
    if (not isinstance(out, np.ndarray) or out.shape != (r, n_input)
            or out.dtype not in (np.float32, np.float64) or not out.flags.c_contiguous
            or not out.flags.writeable):
        raise InputError(f"out must be a writeable C-contiguous float32/float64 array of shape {(r, n_input)}")
    return out


def _times(ms: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(ms, unit="ms", utc=True), name="open_time")
