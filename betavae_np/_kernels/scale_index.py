"""Window scales kept as positions in the candle matrix instead of values (universe window sets).

A rolling min-max scale ``lo``/``hi`` is one of the prepared candle values ``raw[s, f]`` of its
lookback, so a window set can keep the flat position ``s*F + f`` of each (4 bytes as int32, instead
of 8 for the float64 value) and read the value back when it gathers. These kernels find the same
values as :func:`~betavae_np._kernels.windowing.candle_bounds` and
:func:`~betavae_np._kernels.windowing.rolling_scales` (the same comparisons, so ties pick the same
side) and gather with the same :func:`~betavae_np._kernels.windowing._scale_params` /
:func:`~betavae_np._kernels.windowing._scale_value`, so the windows are bit-identical.

Conventions as in :mod:`betavae_np._kernels.windowing`: ``raw`` (n, F) float64 C order, ``group``
(F,) each column's scale group; the first ``Gm`` groups are min-max groups (positions), the rest
z-score groups whose (mean, sd) are stored as values.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..config import JIT_EXACT
from .windowing import _scale_params, _scale_value


@njit(**JIT_EXACT)
def candle_bound_index(cilo, cihi, raw, group):
    """cilo, cihi (n, Gm) <- flat positions ``i*F + f`` of the min / max of ``raw[i, f]`` over the
    columns ``f`` of group ``g`` (the first such column on ties, as ``candle_bounds`` keeps it)."""
    n, F = raw.shape
    Gm = cilo.shape[1]
    for i in range(n):
        for g in range(Gm):
            cilo[i, g] = -1
            cihi[i, g] = -1
        for f in range(F):
            g = group[f]
            if g >= Gm:
                continue
            x = raw[i, f]
            k = i * F + f
            if cilo[i, g] < 0:
                cilo[i, g] = k
                cihi[i, g] = k
                continue
            a = cilo[i, g]
            if x < raw[a // F, a % F]:
                cilo[i, g] = k
            b = cihi[i, g]
            if x > raw[b // F, b % F]:
                cihi[i, g] = k


@njit(**JIT_EXACT)
def _vmin(raw, F, a, b):
    """Position of ``min(value(a), value(b))``: ``b`` when strictly smaller, else ``a`` (Python's min)."""
    if raw[b // F, b % F] < raw[a // F, a % F]:
        return b
    return a


@njit(**JIT_EXACT)
def _vmax(raw, F, a, b):
    """Position of ``max(value(a), value(b))``: ``b`` when strictly larger, else ``a`` (Python's max)."""
    if raw[b // F, b % F] > raw[a // F, a % F]:
        return b
    return a


@njit(**JIT_EXACT)
def rolling_scale_index(ilo, ihi, raw, cilo, cihi, ends, lookback, suf_lo, suf_hi):
    """Causal rolling arg-min/arg-max at the window ends (van Herk / Gil-Werman, O(n)).

    ilo, ihi (m, Gm) <- positions of min(clo[t-L+1..t, g]) and max(chi[t-L+1..t, g]) for
    t = ends[j], where clo/chi are the values at cilo/cihi (n, Gm); the order of comparisons is
    that of :func:`~betavae_np._kernels.windowing.rolling_scales`. ``ends`` ascending with
    ends[j] >= L-1; suf_lo, suf_hi (n, Gm) integer work buffers.
    """
    n, Gm = cilo.shape
    F = raw.shape[1]
    m = ends.shape[0]
    L = lookback
    for g in range(Gm):
        for i in range(n - 1, -1, -1):
            if i == n - 1 or (i + 1) % L == 0:
                suf_lo[i, g] = cilo[i, g]
                suf_hi[i, g] = cihi[i, g]
            else:
                suf_lo[i, g] = _vmin(raw, F, cilo[i, g], suf_lo[i + 1, g])
                suf_hi[i, g] = _vmax(raw, F, cihi[i, g], suf_hi[i + 1, g])
    for g in range(Gm):
        j = 0
        plo = 0
        phi = 0
        for t in range(n):
            if j >= m:
                break
            if t % L == 0:
                plo = cilo[t, g]
                phi = cihi[t, g]
            else:
                plo = _vmin(raw, F, plo, cilo[t, g])
                phi = _vmax(raw, F, phi, cihi[t, g])
            if t == ends[j]:
                s = t - L + 1
                ilo[j, g] = _vmin(raw, F, suf_lo[s, g], plo)
                ihi[j, g] = _vmax(raw, F, suf_hi[s, g], phi)
                j += 1


@njit(**JIT_EXACT)
def gather_indexed(out, raw, ilo, ihi, zlo, zhi, group, ends, rows, window, modes, exact):
    """out (r, window*F) <- scaled windows ``rows``, as ``windowing.gather_windows`` writes them.

    Window ``w`` ends at candle ``ends[w]``; a min-max group ``g < Gm`` has ``lo = raw.flat[ilo[w, g]]``
    and ``hi = raw.flat[ihi[w, g]]``, a z-score group ``g >= Gm`` has ``(zlo, zhi)[w, g - Gm]``.
    ``out`` float32 or float64 (float32-rounded values unless ``exact``).

    Two passes over the rows: the first reads every row's scale (and the first value of its window)
    while nothing depends on the loads, so the cache misses of rows spread over a large universe
    overlap instead of queueing one window at a time; the second scales and writes. Returns the sum
    of those first values (meaningless; returning it keeps the reads).
    """
    F = raw.shape[1]
    Gm = ilo.shape[1]
    G = modes.shape[0]
    R = rows.shape[0]
    lohi = np.empty((R, G, 2))     # (r, G, lo/hi) the rows' scales
    touch = 0.0
    for r in range(R):
        w = rows[r]
        for g in range(Gm):
            a = ilo[w, g]
            b = ihi[w, g]
            lohi[r, g, 0] = raw[a // F, a % F]
            lohi[r, g, 1] = raw[b // F, b % F]
        for g in range(Gm, G):
            lohi[r, g, 0] = zlo[w, g - Gm]
            lohi[r, g, 1] = zhi[w, g - Gm]
        touch += raw[ends[w] - window + 1, 0]
    for r in range(R):
        t0 = ends[rows[r]] - window + 1
        for f in range(F):
            g = group[f]
            shift, mul, add, cmin, cmax = _scale_params(lohi[r, g, 0], lohi[r, g, 1], modes[g])
            for k in range(window):
                v = _scale_value(raw[t0 + k, f], shift, mul, add, cmin, cmax)
                if exact:
                    out[r, k * F + f] = v
                else:
                    out[r, k * F + f] = np.float32(v)
    return touch
