"""Returns-representation kernels: per-candle return features and their causal EWMA statistics.

Per candle ``t`` (with ``o h l c v`` its prices and volume, ``R = h - l``) the six features are

    log_return  = log(c_t / c_{t-1})
    log_range   = log(h_t / l_t)
    body        = (c_t - o_t) / R           (0 when R == 0)
    upper_wick  = (h_t - max(o_t, c_t)) / R (0 when R == 0)
    lower_wick  = (min(o_t, c_t) - l_t) / R (0 when R == 0)
    log_volume  = log1p(v_t)

The first candle of a segment (a series start, after :func:`reset`-like restarts or a dropped gap)
has no previous close: its row is left 0 and no window or statistic uses it.

Statistics at candle ``t`` (``n = t - seg`` candles with features since the segment start ``seg``,
``L`` the warm-up length, ``a = 1 - 2**(-1/half_life)``):

    n == L - 1: mean = (1/(L-1)) sum_{s=seg+1..t} x_s, var = (1/(L-1)) sum (x_s - mean)^2 (seed)
    n >  L - 1: var  = (1 - a) * (var + a * (x_t - mean)^2);  mean = mean + a * (x_t - mean)

(the exponentially weighted mean and variance, updated in this order with the old mean). Only
candles up to ``t`` enter them. Batch (:func:`ewma_stats`) and streaming (:func:`push_returns`)
do the same operations in the same order, so their values are bit-identical.

All kernels use ``JIT_EXACT``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..config import JIT_EXACT
from .windowing import _scale_params, _scale_value

#: Features per candle.
NR = 6


@njit(**JIT_EXACT)
def _candle_row(x, o, h, l, c, v, prev_c):
    """x (6,) <- the features of one candle given the previous close."""
    x[0] = np.log(c / prev_c)
    x[1] = np.log(h / l)
    rng = h - l
    if rng > 0.0:
        x[2] = (c - o) / rng
        x[3] = (h - max(o, c)) / rng
        x[4] = (min(o, c) - l) / rng
    else:
        x[2] = 0.0
        x[3] = 0.0
        x[4] = 0.0
    x[5] = np.log1p(v)


@njit(**JIT_EXACT)
def candle_features(feat, ohlcv, seg):
    """feat (n, 6) <- per-candle features of ohlcv (n, 5); rows where seg (n,) bool is True are 0."""
    for i in range(ohlcv.shape[0]):
        if seg[i] or i == 0:
            for f in range(NR):
                feat[i, f] = 0.0
        else:
            _candle_row(feat[i], ohlcv[i, 0], ohlcv[i, 1], ohlcv[i, 2], ohlcv[i, 3], ohlcv[i, 4],
                        ohlcv[i - 1, 3])


@njit(**JIT_EXACT)
def _seed(mean, var, rows, first, count, size):
    """mean, var (6,) <- plain mean and population variance of ``count`` rows of ``rows`` taken in
    order from ``first`` (indices modulo ``size``: a ring, or a matrix with size >= first+count)."""
    for f in range(NR):
        s = 0.0
        for k in range(count):
            s += rows[(first + k) % size, f]
        m = s / count
        q = 0.0
        for k in range(count):
            d = rows[(first + k) % size, f] - m
            q += d * d
        mean[f] = m
        var[f] = q / count


@njit(**JIT_EXACT)
def _update(mean, var, x, a):
    """One EWMA step of mean, var (6,) with the candle's features x (6,)."""
    for f in range(NR):
        d = x[f] - mean[f]
        var[f] = (1.0 - a) * (var[f] + a * d * d)
        mean[f] = mean[f] + a * d


@njit(**JIT_EXACT)
def ewma_stats(mean_out, sd_out, feat, seg, ends, warmup, a):
    """Causal statistics at the window ends: mean_out, sd_out (m, 6) at t = ends[j].

    feat (n, 6) from :func:`candle_features`; seg (n,) bool segment starts (row 0 is one);
    ends (m,) ascending, each at least ``warmup - 1`` candles after its segment start.
    """
    n = feat.shape[0]
    mean = np.zeros(NR)
    var = np.zeros(NR)
    start = 0
    j = 0
    m = ends.shape[0]
    for t in range(n):
        if j >= m:
            break
        if t == 0 or seg[t]:
            start = t
            continue
        k = t - start        # candles with features in this segment, this one included
        if k == warmup - 1:
            _seed(mean, var, feat, start + 1, k, n)
        elif k > warmup - 1:
            _update(mean, var, feat[t], a)
        if t == ends[j]:
            for f in range(NR):
                mean_out[j, f] = mean[f]
                sd_out[j, f] = np.sqrt(var[f])
            j += 1


@njit(**JIT_EXACT)
def push_returns(out, ring, values, state, fstate, mean, var, x):
    """Streaming update of the returns features with one candle (OHLCV values (5,), raw).

    ring (L, 6) float64: the features of the last candles; state int64 [pos, count, has_prev,
    window, L]: next slot, candles with features held (capped at L), whether a previous close is
    known; fstate float64 [prev_close, a, seeded]; mean, var (6,) the running statistics; x (6,) work.
    out (window*6,) receives the window ending here (float32-rounded values) once ``L - 1``
    candles with features are held. Returns 1 (written), 0 (not yet), -1 (not 5 values),
    -2 (a value not finite).
    """
    if values.shape[0] != 5:
        return -1
    for f in range(5):
        if not np.isfinite(values[f]):
            return -2
    c = values[3]
    if state[2] == 0:
        state[2] = 1
        fstate[0] = c
        return 0
    _candle_row(x, values[0], values[1], values[2], c, values[4], fstate[0])
    fstate[0] = c
    L = state[4]
    window = state[3]
    pos = state[0]
    for f in range(NR):
        ring[pos, f] = x[f]
    pos += 1
    if pos == L:
        pos = 0
    state[0] = pos
    k = state[1] + 1      # candles with features since the start (only compared up to L)
    if k > L:
        k = L
    state[1] = k
    if k < L - 1:
        return 0
    if fstate[2] == 0.0:   # the warm-up just completed: seed from it
        first = pos - k
        if first < 0:
            first += L
        _seed(mean, var, ring, first, k, L)
        fstate[2] = 1.0
    else:
        _update(mean, var, x, fstate[1])
    start = pos - window
    if start < 0:
        start += L
    for f in range(NR):
        shift, mul, add, cmin, cmax = _scale_params(mean[f], np.sqrt(var[f]), 2)
        for kk in range(window):
            i = start + kk
            if i >= L:
                i -= L
            out[kk * NR + f] = np.float32(_scale_value(ring[i, f], shift, mul, add, cmin, cmax))
    return 1
