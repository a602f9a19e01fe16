"""The windows of a universe: many symbols' candles side by side, gathered on demand.

:class:`UniverseWindowSet` keeps, for the whole universe, the prepared candle matrix (float64, the
values every window is computed from), each candle's open time, and per window only its last
candle and its scale. A rolling min-max scale is one of the candle values of its lookback, so it is
kept as that value's position in the candle matrix (int32 while the universe holds fewer than
2**31 values) rather than as a float64 copy; the z-scored return features' (mean, sd) are kept as
values. Gathers compute the same numbers as each symbol's own :class:`~.window_set.WindowSet`, bit
for bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._kernels import scale_index as _x
from ..exceptions import ConfigError, DataError, InputError
from .sampler import EpochSampler, window_weights
from .universe_build import index_dtype
from .window_set import WindowSet, _check_out, _check_rows, _times

__all__ = ["UniverseWindowSet"]

#: Windows per block when a whole set's end times are scanned (bounds the temporaries).
_BLOCK = 1 << 16


class UniverseWindowSet:
    """Windows of many symbols, each windowed and normalised on its own, gathered on demand.

    The symbols' prepared candle matrices sit one after the other in one ``(n_candles, F)`` array
    and every window keeps its own symbol's scale, so a window never spans two symbols (nor a gap)
    and :meth:`gather` gives, bit for bit, what the symbol's own :class:`WindowSet` gives. Memory
    per candle: its F float64 values and its open time (int32 steps of the interval when the times
    sit on one grid, else int64 ms), plus a fill flag once ``gaps="fill"`` inserted one; per window:
    its last candle (int32) and its scale (int32 positions of the min-max bounds, float64 mean and
    sd of return features); a subset (:meth:`split_at`) adds one int32 per window it keeps. Windows are ordered by symbol (in
    :attr:`symbols` order), then by time. Made by :meth:`from_frames` (or :meth:`Universe.windows
    <betavae_np.data.universe.Universe.windows>`).

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

    def __init__(self, symbols, raw, ilo, ihi, zlo, zhi, group, ends, window, features, times, filled,
                 modes, win_offsets, candle_offsets, sel=None, provenance=None):
        self.symbols = tuple(symbols)
        self._raw, self._group, self._ends = raw, group, ends   # (N, F) f64, (F,), (M,) int32/64
        self._ilo, self._ihi = ilo, ihi      # (M, Gm) positions in raw.flat of min-max bounds
        self._zlo, self._zhi = zlo, zhi      # (M, Gz) float64 mean, sd of the z-score groups
        self.window = int(window)
        self.features = tuple(features)
        self._t0, self._tstep, self._toff = times   # open time (ms) of candle i: t0 + toff[i] * tstep
        self._filled = filled                       # (N,) bool, or None when no candle was inserted
        self._modes = np.asarray(modes, dtype=np.int64)   # (G,) each scale group's mode
        self._woff, self._coff = win_offsets, candle_offsets   # (K+1,) int64 each
        self._sel = sel                                        # (n,) ascending, into the full set, or None
        self.provenance = dict(provenance or {})
        n = int(ends.shape[0]) if sel is None else int(sel.shape[0])
        self.shape = (n, self.window * len(self.features))

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def from_frames(cls, windower, frames, *, on_notice=None, provenance=None,
                    release: bool = False) -> "UniverseWindowSet":
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
        release : bool
            Remove each symbol's frame from ``frames`` (a mutable mapping) as soon as its candles
            are written, so the frames and the window set are never held in full together.

        Raises
        ------
        DataError
            No symbol at all, or none with a single window.

        Notes
        -----
        Two passes: the first counts candles and windows per symbol, the second writes each
        symbol's prepared candles and scales straight into the shared arrays (pages are touched as
        they are written), so the peak memory is the universe's arrays plus one symbol's
        temporaries, plus the frames not yet released.
        """
        from .universe_build import build

        args, prov = build(windower, frames, on_notice=on_notice, provenance=provenance, release=release)
        return cls(*args, provenance=prov)

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

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays this set holds (the candle matrix and per-window state it shares with its
        subsets, plus its own selection)."""
        arrays = (self._raw, self._ilo, self._ihi, self._zlo, self._zhi, self._ends, self._toff,
                  self._filled, self._sel)
        return int(sum(a.nbytes for a in arrays if a is not None))

    def _full(self, rows=None) -> np.ndarray:
        """Indices into the full set's windows of this set's windows ``rows`` (all by default)."""
        if self._sel is None:
            return np.arange(self._ends.shape[0], dtype=np.int64) if rows is None else rows
        return self._sel if rows is None else self._sel[rows]

    def _end_ms(self, full=None) -> np.ndarray:
        """(r,) int64 open time (ms) of the last candle of full-set windows ``full`` (this set's all)."""
        if full is None:
            full = self._sel
        return self._ms(self._ends if full is None else self._ends[full])

    def _ms(self, candles) -> np.ndarray:
        """int64 open times (ms) of candles ``candles`` (an index array or a slice) of the shared matrix."""
        off = self._toff[candles]
        if self._tstep == 1 and self._t0 == 0:
            return off.astype(np.int64, copy=False)
        return self._t0 + off.astype(np.int64) * self._tstep

    @property
    def rows(self) -> np.ndarray:
        """(n_windows,) int64: each window's last candle, as a row of the shared candle matrix."""
        return self._ends[self._full()].astype(np.int64)

    @property
    def end_times(self) -> pd.DatetimeIndex:
        """(n_windows,) open time of each window's last candle (symbol-major order, not sorted)."""
        return _times(self._end_ms())

    @property
    def start_times(self) -> pd.DatetimeIndex:
        """(n_windows,) open time of each window's first candle."""
        return _times(self._ms(self.rows - (self.window - 1)))

    def end_times_of(self, idx) -> pd.DatetimeIndex:
        """Open time of the last candle of this set's windows ``idx`` (int array (r,))."""
        return _times(self._end_ms(self._full(_check_rows(idx, self.shape[0]))))

    def end_time_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Earliest and latest open time of a window's last candle (scanned in blocks)."""
        lo, hi = None, None
        for a in range(0, self.shape[0], _BLOCK):
            t = self._end_ms(self._full(np.arange(a, min(a + _BLOCK, self.shape[0]))))
            lo = t.min() if lo is None else min(lo, t.min())
            hi = t.max() if hi is None else max(hi, t.max())
        return pd.Timestamp(int(lo), unit="ms", tz="UTC"), pd.Timestamp(int(hi), unit="ms", tz="UTC")

    @property
    def codes(self) -> np.ndarray:
        """(n_windows,) int32: each window's symbol as an index into :attr:`symbols`."""
        return np.repeat(np.arange(len(self.symbols), dtype=np.int32), self.counts)

    @property
    def counts(self) -> np.ndarray:
        """(n_symbols,) int64: windows of each symbol in this set."""
        if self._sel is None:
            return np.diff(self._woff)
        return np.diff(np.searchsorted(self._sel, self._woff)).astype(np.int64)

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
            full = self._full(rows).astype(np.int64, copy=False)
            _x.gather_indexed(out, self._raw, self._ilo, self._ihi, self._zlo, self._zhi, self._group,
                              self._ends, full, self.window, self._modes, False)
        return out

    def array(self, dtype=np.float32) -> np.ndarray:
        """All windows materialised, (n_windows, window*n_features): for small sets and tests only."""
        return self.gather(np.arange(self.shape[0], dtype=np.int64), np.empty(self.shape, dtype=np.dtype(dtype)))

    def _scales(self, full) -> tuple[np.ndarray, np.ndarray]:
        """lo, hi (r, G) float64 of full-set windows ``full``, as :attr:`WindowSet.scales` holds them."""
        flat = self._raw.reshape(-1)
        lo = np.concatenate([flat[self._ilo[full]], self._zlo[full]], axis=1)
        hi = np.concatenate([flat[self._ihi[full]], self._zhi[full]], axis=1)
        return lo, hi

    # -- per symbol -----------------------------------------------------------------------------
    def window_set(self, symbol: str) -> WindowSet:
        """One symbol's windows of this set as a :class:`WindowSet` (views of the shared candles,
        its scales as values)."""
        if symbol not in self.symbols:
            raise InputError(f"{symbol!r} is not in this universe ({', '.join(self.symbols[:8])}"
                             f"{', ...' if len(self.symbols) > 8 else ''})")
        k = self.symbols.index(symbol)
        c0, c1, w0, w1 = self._coff[k], self._coff[k + 1], self._woff[k], self._woff[k + 1]
        if self._sel is None:
            w = np.arange(w0, w1, dtype=np.int64)
        else:
            w = self._sel[(self._sel >= w0) & (self._sel < w1)]
        lo, hi = self._scales(w)
        return WindowSet(self._raw[c0:c1], lo, hi, self._group, self._ends[w].astype(np.int64) - c0,
                         self.window, self.features, self._ms(slice(c0, c1)),
                         np.zeros(c1 - c0, dtype=bool) if self._filled is None else self._filled[c0:c1], self._modes)

    def _subset(self, keep: np.ndarray) -> "UniverseWindowSet":
        """Windows where ``keep`` (n,) bool is True, sharing the candle arrays."""
        where = np.flatnonzero(keep)
        sel = (where if self._sel is None else self._sel[where]).astype(index_dtype(self._ends.shape[0]))
        return UniverseWindowSet(self.symbols, self._raw, self._ilo, self._ihi, self._zlo, self._zhi,
                                 self._group, self._ends, self.window, self.features,
                                 (self._t0, self._tstep, self._toff), self._filled, self._modes, self._woff, self._coff, sel=sel,
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
        n = self.shape[0]
        train, val = np.empty(n, dtype=bool), np.empty(n, dtype=bool)
        t_min, t_max = None, None
        for a in range(0, n, _BLOCK):   # in blocks: no n-long int64 temporaries
            b = min(a + _BLOCK, n)
            full = self._full(np.arange(a, b))
            last = self._ends[full]
            t_end = self._ms(last)
            np.less(t_end, cut, out=train[a:b])
            np.logical_not(train[a:b], out=val[a:b])
            if purge:
                val[a:b] &= self._ms(last - (self.window - 1)) >= cut
            t_min = t_end.min() if t_min is None else min(t_min, t_end.min())
            t_max = t_end.max() if t_max is None else max(t_max, t_end.max())
        span = f"the windows end from {ms_to_iso(int(t_min))} to {ms_to_iso(int(t_max))}"
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
        t_end = self._end_ms()
        n = t_end.size
        k = min(n - 1, max(1, int(round(n * (1.0 - float(fraction))))))
        t_end.partition(k)   # in place: the k-th smallest end time lands at k
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
