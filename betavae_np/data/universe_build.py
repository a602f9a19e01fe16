"""Building a universe's window set: every symbol's prepared candles and window scales written
into shared arrays, symbol by symbol (:meth:`UniverseWindowSet.from_frames
<betavae_np.data.universe_set.UniverseWindowSet.from_frames>`).
"""

from __future__ import annotations

import ctypes
from collections.abc import MutableMapping

import numpy as np

from .._kernels import scale_index as _x
from ..exceptions import DataError

__all__ = ["build"]


def _trim_heap() -> None:
    """Hand the heap's free pages back to the OS (glibc ``malloc_trim``; nothing elsewhere).

    Frames freed one by one while the window set is written leave free chunks inside the heap,
    which glibc keeps resident until the chunks above them are freed too; without this the
    process holds the released frames and the new arrays at once.
    """
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            _MALLOC_TRIM = ctypes.CDLL(None).malloc_trim
            _MALLOC_TRIM.argtypes, _MALLOC_TRIM.restype = [ctypes.c_size_t], ctypes.c_int
        except (OSError, AttributeError):   # not glibc: nothing to do
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None


class _Times:
    """Candle open times written symbol by symbol: int32 steps of the interval from the first candle
    written while every time sits on that grid within 2**31 steps (4 bytes a candle), else int64 ms."""

    def __init__(self, n: int, step):
        self._step = int(step) if step else 0
        self._t0 = None
        self.off = np.empty(n, dtype=np.int32 if self._step > 0 else np.int64)

    def write(self, at: int, t: np.ndarray) -> None:
        """Times ``t`` (m,) int64 ms of candles ``at .. at+m``."""
        if self.off.dtype == np.int32:
            if self._t0 is None:
                self._t0 = int(t[0])
            d = t - self._t0
            if d.size and ((d % self._step).any() or np.abs(d).max() // self._step >= 2**31 - 1):
                whole = np.empty(self.off.size, dtype=np.int64)   # off the grid: plain ms from here on
                whole[:at] = self._t0 + self.off[:at].astype(np.int64) * self._step
                self.off, self._t0, self._step = whole, 0, 1
            else:
                self.off[at:at + t.size] = d // self._step
                return
        self.off[at:at + t.size] = t

    def parts(self) -> tuple:
        """(t0, step, off): the open time of candle ``i`` is ``t0 + off[i] * step`` ms."""
        if self.off.dtype == np.int64:
            return 0, 1, self.off
        return self._t0, self._step, self.off


def index_dtype(n: int):
    """int32 when every index below ``n`` fits, else int64."""
    return np.int32 if n < 2**31 - 1 else np.int64


def build(windower, frames, *, on_notice=None, provenance=None, release: bool = False):
    """The arrays of a :class:`~betavae_np.data.universe_set.UniverseWindowSet` (see ``from_frames``).

    Returns
    -------
    args : tuple
        The constructor's positional arguments, symbols to candle offsets.
    provenance : dict
        ``provenance`` restricted to the symbols kept.
    """
    items = list(frames.items())
    if not items:
        raise DataError("the universe is empty: give the candles of at least one symbol")
    sizes = []
    for sym, df in items:
        try:
            src, ends = windower._prepare(df, keep_source=True)
        except DataError as exc:
            if on_notice is not None:
                on_notice(f"{sym} skipped: {exc}")
            continue
        sizes.append((sym, src.shape[0], ends.size))
        del src, ends
    if not sizes:
        raise DataError(f"no symbol of the universe ({', '.join(str(s) for s, _ in items[:5])}"
                        f"{', ...' if len(items) > 5 else ''}) has enough candles for one window of "
                        f"{windower.window} with lookback {windower.lookback}; use more candles or a "
                        f"shorter lookback")
    del items
    release = release and isinstance(frames, MutableMapping)
    coff = np.zeros(len(sizes) + 1, dtype=np.int64)
    woff = np.zeros(len(sizes) + 1, dtype=np.int64)
    coff[1:] = np.cumsum([s[1] for s in sizes])
    woff[1:] = np.cumsum([s[2] for s in sizes])
    F, groups = windower.n_features, windower._groups
    Gm = windower._n_groups if windower._mm else 0
    Gz = windower._modes.size - Gm
    N, M = int(coff[-1]), int(woff[-1])
    pos_t = index_dtype(N * F)
    raw = np.empty((N, F), dtype=np.float64)    # (N, F) all symbols, C order
    times = _Times(N, windower._ims)
    filled = None                               # (N,) bool once a candle is inserted
    ends = np.empty(M, dtype=index_dtype(N))   # (M,) last candle, global row
    ilo, ihi = np.empty((M, Gm), dtype=pos_t), np.empty((M, Gm), dtype=pos_t)
    zlo, zhi = np.empty((M, Gz)), np.empty((M, Gz))
    for k, (sym, n, m) in enumerate(sizes):
        raw_k, ends_k, t_k, filled_k, seg_k = windower._prepare(frames[sym])
        if release:
            del frames[sym]
        c0, w0 = int(coff[k]), int(woff[k])
        raw[c0:c0 + n] = raw_k
        times.write(c0, t_k)
        if filled is None and filled_k.any():
            filled = np.zeros(N, dtype=bool)
        if filled is not None:
            filled[c0:c0 + n] = filled_k
        ends[w0:w0 + m] = ends_k + c0
        if Gm:
            work = [np.empty((n, Gm), dtype=pos_t) for _ in range(4)]
            _x.candle_bound_index(work[0], work[1], raw_k, groups)
            _x.rolling_scale_index(ilo[w0:w0 + m], ihi[w0:w0 + m], raw_k, work[0], work[1], ends_k,
                                   windower._need, work[2], work[3])
            ilo[w0:w0 + m] += c0 * F
            ihi[w0:w0 + m] += c0 * F
            del work
        if Gz:
            lo_k, hi_k = windower._scales(raw_k, ends_k, seg_k)   # as Windower.windows
            zlo[w0:w0 + m], zhi[w0:w0 + m] = lo_k[:, Gm:], hi_k[:, Gm:]
            del lo_k, hi_k
        del raw_k, ends_k, t_k, filled_k, seg_k
        if release:
            _trim_heap()
    if release:
        _trim_heap()
    syms = [s[0] for s in sizes]
    prov = {s: provenance[s] for s in syms if provenance and s in provenance}
    return (syms, raw, ilo, ihi, zlo, zhi, groups, ends, windower.window, windower.input_features,
            times.parts(), filled, windower._modes, woff, coff), prov
