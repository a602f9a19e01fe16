"""Windowing kernels: feature preparation, causal rolling min-max scales, window gather, ring push.

Conventions shared by every kernel here:

* ``raw`` (n, F) float64: the prepared feature matrix (volume already ``log1p``-ed when asked).
* ``group`` (F,) int64: the scale group of each feature: 0 for prices (one shared scale so candle
  geometry is kept), 1 for volume. ``G`` (1 or 2) is the number of groups.
* A window ending at candle ``t`` holds candles ``t-window+1 .. t``; its scale for group ``g`` is
  ``lo = min``, ``hi = max`` of the group's per-candle bounds over the ``lookback`` candles ending
  at ``t``. Element ``k*F + f`` of the flattened (time-major) window is

      v = clip((x[t-window+1+k, f] - lo) * (1 / (hi - lo)), 0, 1)    if hi > lo
      v = 0.5                                                      if hi == lo (degenerate)

  computed in float64 and rounded once to float32. Every path (batch, gather, push) calls
  :func:`_scale_value`, so streaming and batch windows are bit-identical.

All kernels use ``JIT_EXACT`` (no fast-math) so the arithmetic is the same in every path.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..config import JIT_EXACT, JIT_EXACT_PARALLEL


#: Scale modes of a group (``modes[g]``): causal rolling min-max, identity, causal z-score.
MODE_ROLLING = 0
MODE_NONE = 1
MODE_ZSCORE = 2

#: z-scored features are clipped to [-ZCLIP, ZCLIP].
ZCLIP = 5.0


@njit(**JIT_EXACT)
def _scale_params(lo, hi, mode):
    """(shift, mul, add, cmin, cmax) of one scale group so that v = clip((x - shift)*mul + add).

    Rolling (mode 0, hi > lo): shift lo, mul 1/(hi - lo), add 0, clip to [0, 1]. Degenerate (hi == lo):
    mul 0, add 0.5 (x finite, so v = 0.5 exactly). Mode 1 (none): identity, no clipping. Mode 2
    (z-score): ``lo`` is the mean and ``hi`` the sd: shift lo, mul 1/hi, clip to [-ZCLIP, ZCLIP]
    (sd 0 gives 0).
    """
    if mode == 1:
        return 0.0, 1.0, 0.0, -np.inf, np.inf
    if mode == 2:
        if hi > 0.0:
            return lo, 1.0 / hi, 0.0, -ZCLIP, ZCLIP
        return 0.0, 0.0, 0.0, -ZCLIP, ZCLIP
    d = hi - lo
    if d > 0.0:
        return lo, 1.0 / d, 0.0, 0.0, 1.0
    return 0.0, 0.0, 0.5, 0.0, 1.0


@njit(**JIT_EXACT)
def _scale_value(x, shift, mul, add, cmin, cmax):
    """The one scaling formula every path uses (bit-identical batch and streaming)."""
    v = (x - shift) * mul + add
    return min(max(v, cmin), cmax)


@njit(**JIT_EXACT)
def prepare_features(raw, src, vol_col, log_volume):
    """raw (n, F) <- src (n, F), with ``log1p`` on column ``vol_col`` when ``log_volume``."""
    n, F = src.shape
    for i in range(n):
        for f in range(F):
            x = src[i, f]
            if f == vol_col and log_volume:
                x = np.log1p(x)
            raw[i, f] = x


@njit(**JIT_EXACT)
def candle_bounds(clo, chi, raw, group):
    """Per-candle group bounds: clo/chi (n, G) <- min/max over features f of group g of raw[i, f]."""
    for i in range(raw.shape[0]):
        _bounds_row(clo, chi, raw, group, i)


@njit(**JIT_EXACT_PARALLEL)
def candle_bounds_parallel(clo, chi, raw, group):
    """:func:`candle_bounds` with the candles split across threads (bit-identical results)."""
    n = raw.shape[0]
    for i in prange(n):
        _bounds_row(clo, chi, raw, group, i)


@njit(**JIT_EXACT)
def _bounds_row(clo, chi, raw, group, i):
    F = raw.shape[1]
    for g in range(clo.shape[1]):
        clo[i, g] = np.inf
        chi[i, g] = -np.inf
    for f in range(F):
        g = group[f]
        x = raw[i, f]
        if x < clo[i, g]:
            clo[i, g] = x
        if x > chi[i, g]:
            chi[i, g] = x


@njit(**JIT_EXACT)
def rolling_scales(lo, hi, clo, chi, ends, lookback, suf_lo, suf_hi):
    """Causal rolling min/max at the window ends (van Herk / Gil-Werman, O(n)).

    lo, hi (m, G) <- min(clo[t-L+1..t, g]), max(chi[t-L+1..t, g]) for t = ends[j], L = lookback.
    ``ends`` ascending with ends[j] >= L-1; suf_lo, suf_hi (n, G) are work buffers.
    """
    n, G = clo.shape
    m = ends.shape[0]
    L = lookback
    # suffix extrema inside blocks [b*L, (b+1)*L)
    for g in range(G):
        for i in range(n - 1, -1, -1):
            if i == n - 1 or (i + 1) % L == 0:
                suf_lo[i, g] = clo[i, g]
                suf_hi[i, g] = chi[i, g]
            else:
                suf_lo[i, g] = min(clo[i, g], suf_lo[i + 1, g])
                suf_hi[i, g] = max(chi[i, g], suf_hi[i + 1, g])
    # prefix extrema inside blocks, walked forward; min over [s, t] = min(suffix[s], prefix[t])
    for g in range(G):
        j = 0
        plo = np.inf
        phi = -np.inf
        for t in range(n):
            if j >= m:
                break
            if t % L == 0:
                plo = clo[t, g]
                phi = chi[t, g]
            else:
                plo = min(plo, clo[t, g])
                phi = max(phi, chi[t, g])
            if t == ends[j]:
                s = t - L + 1
                lo[j, g] = min(suf_lo[s, g], plo)
                hi[j, g] = max(suf_hi[s, g], phi)
                j += 1


@njit(**JIT_EXACT)
def gather_windows(out, raw, lo, hi, group, ends, rows, window, modes, exact):
    """out (r, window*F) <- scaled windows ``rows`` (indices into ends/lo/hi), float32-rounded.

    ``modes`` (G,) int64: each group's scale mode. ``out`` may be float32 or float64; float64
    receives the float32-rounded values exactly, or the unrounded float64 values when ``exact``.
    Rows are written in order; inside a row, feature by feature (the row stays in L1).
    """
    for r in range(rows.shape[0]):
        _gather_row(out, r, raw, lo, hi, group, ends, rows[r], window, modes, exact)


@njit(**JIT_EXACT_PARALLEL)
def gather_windows_parallel(out, raw, lo, hi, group, ends, rows, window, modes, exact):
    """:func:`gather_windows` with the rows split across threads (bit-identical results)."""
    for r in prange(rows.shape[0]):
        _gather_row(out, r, raw, lo, hi, group, ends, rows[r], window, modes, exact)


@njit(**JIT_EXACT)
def _gather_row(out, r, raw, lo, hi, group, ends, w, window, modes, exact):
    """out[r] <- the scaled window ``w``, feature by feature (the row stays in L1)."""
    F = raw.shape[1]
    t0 = ends[w] - window + 1
    for f in range(F):
        g = group[f]
        shift, mul, add, cmin, cmax = _scale_params(lo[w, g], hi[w, g], modes[g])
        for k in range(window):
            v = _scale_value(raw[t0 + k, f], shift, mul, add, cmin, cmax)
            if exact:
                out[r, k * F + f] = v
            else:
                out[r, k * F + f] = np.float32(v)


@njit(**JIT_EXACT)
def transform_windows(out, raw, group, ends, window, lookback, modes, clo, chi, lo, hi, suf_lo, suf_hi, exact):
    """All windows in one call: bounds, rolling scales, then rows written in order.

    out (m, window*F) float32; raw (n, F); ends (m,) ascending; clo, chi, suf_lo, suf_hi (n, G)
    and lo, hi (m, G) are work buffers (lo/hi hold the scales afterwards).
    """
    candle_bounds(clo, chi, raw, group)
    rolling_scales(lo, hi, clo, chi, ends, lookback, suf_lo, suf_hi)
    rows = np.arange(ends.shape[0])
    gather_windows(out, raw, lo, hi, group, ends, rows, window, modes, exact)


@njit(**JIT_EXACT)
def push_candle(out, ring, values, state, group):
    """Streaming update: add one candle to the ring of the last ``lookback`` candles.

    out (window*F,) float32 receives the window ending at this candle when the ring is full.
    ring (lookback, F) float64; values (F,) raw (volume not yet log1p-ed);
    state int64 [pos, count, window, lookback, vol_col, log_volume, none, G]: pos is the next slot,
    count the candles held (capped at lookback). Returns 1 when ``out`` was written, 0 when the
    ring is not full yet, -1 when ``values`` does not hold F values, -2 when one is not finite
    (then nothing is written).
    """
    F = ring.shape[1]
    if values.shape[0] != F or group.shape[0] != F or out.shape[0] != state[2] * F:
        return -1
    for f in range(F):
        if not np.isfinite(values[f]):
            return -2
    pos = state[0]
    count = state[1]
    window = state[2]
    L = state[3]
    vol_col = state[4]
    log_volume = state[5]
    none = state[6]
    for f in range(F):
        x = values[f]
        if f == vol_col and log_volume != 0:
            x = np.log1p(x)
        ring[pos, f] = x
    pos += 1
    if pos == L:
        pos = 0
    if count < L:
        count += 1
    state[0] = pos
    state[1] = count
    need = window if none != 0 else L
    if count < need:
        return 0
    # scales over the whole ring (= the lookback candles ending now); 2 groups at most
    lo0 = np.inf
    hi0 = -np.inf
    lo1 = np.inf
    hi1 = -np.inf
    for i in range(L):
        for f in range(F):
            x = ring[i, f]
            if group[f] == 0:
                if x < lo0:
                    lo0 = x
                if x > hi0:
                    hi0 = x
            else:
                if x < lo1:
                    lo1 = x
                if x > hi1:
                    hi1 = x
    a0, b0, c0, d0, e0 = _scale_params(lo0, hi0, none)
    a1, b1, c1, d1, e1 = _scale_params(lo1, hi1, none)
    start = pos - window
    if start < 0:
        start += L
    for k in range(window):
        i = start + k
        if i >= L:
            i -= L
        for f in range(F):
            if group[f] == 0:
                v = _scale_value(ring[i, f], a0, b0, c0, d0, e0)
            else:
                v = _scale_value(ring[i, f], a1, b1, c1, d1, e1)
            out[k * F + f] = np.float32(v)
    return 1
