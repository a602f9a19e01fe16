"""Synthetic candle kernels: OHLCV paths from piecewise-constant factor regimes, and the window of
each path's last candle straight from the generator.

Randomness comes in as arrays (``e``, ``u``, ``z``); the kernels draw nothing. For series ``i``,
candle ``t`` in segment ``s`` (``bounds[s] <= t < bounds[s+1]``), with the segment's parameters
``(drift, sigma, volume, phi, body) = params[i, s]``::

    x_t   = phi * x_{t-1} + sqrt(1 - phi^2) * e_t        (x_{-1} = 0, x_0 = e_0: unit variance)
    r_t   = drift + sigma * x_t                          (log return of the candle)
    lo_t  = log open_t = log close_{t-1}  (lo_0 = logp0) ; log close_t = lo_t + r_t
    w_t   = |r_t| * (1 / body - 1)                       (total wick length, log units)
    log high_t = max(lo_t, lc_t) + u_t * w_t ;  log low_t = min(lo_t, lc_t) - (1 - u_t) * w_t
    volume_t = volume * exp(VOL_NOISE * z_t - VOL_NOISE^2 / 2)

so ``body`` is the candle body's share of its range, ``low <= open, close <= high`` and volume > 0.
Both kernels go through the same helpers (:func:`_segment`, :func:`_log_candle`, :func:`_value`),
so a window cut by :func:`synth_windows` equals, bit for bit, the one the
:class:`~betavae_np.data.Windower` cuts from the candles :func:`synth_candles` writes.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..config import JIT_EXACT
from .windowing import _scale_params, _scale_value

#: Standard deviation of the log-normal volume noise around the regime's volume level.
VOL_NOISE = 0.25

#: Log-space margin of :func:`synth_windows`: a candle feature whose log value lies further than
#: this beyond the running extreme of its scale group cannot be the group's min or max.
CANDIDATE_TOL = 1e-6


@njit(**JIT_EXACT)
def _segment(params, i, s):
    """Constants of segment ``s`` of series ``i``: drift, sigma, volume, phi, sqrt(1 - phi^2), 1/body - 1."""
    phi = params[i, s, 3]
    return (params[i, s, 0], params[i, s, 1], params[i, s, 2], phi, math.sqrt(1.0 - phi * phi),
            1.0 / params[i, s, 4] - 1.0)


@njit(**JIT_EXACT)
def _log_candle(t, x, lo, e_t, u_t, drift, sigma, phi, sq, wick):
    """Candle ``t`` in log space after AR state ``x`` and log open ``lo``: (x, log close, log high, log low)."""
    if t == 0:
        x = e_t
    else:
        x = phi * x + sq * e_t
    r = drift + sigma * x
    lc = lo + r
    w = abs(r) * wick
    return x, lc, max(lo, lc) + u_t * w, min(lo, lc) - (1.0 - u_t) * w


@njit(**JIT_EXACT)
def _volume_arg(z_t):
    """The exponent of candle volume noise: VOL_NOISE * z - VOL_NOISE^2 / 2."""
    return VOL_NOISE * z_t - 0.5 * VOL_NOISE * VOL_NOISE


@njit(**JIT_EXACT)
def _value(k, arg, vol, log_volume):
    """Feature ``k`` (0..3 a price, 4 volume) from its log argument: exp(arg), or vol * exp(arg)
    (``log1p`` of it when ``log_volume``)."""
    if k < 4:
        return math.exp(arg)
    v = vol * math.exp(arg)
    if log_volume:
        return np.log1p(v)
    return v


@njit(**JIT_EXACT)
def synth_candles(out, e, u, z, params, bounds, logp0):
    """out (n, L, 5) <- open, high, low, close, volume of ``n`` series of ``L`` candles.

    e, u, z : (n, L) float64 standard normal, uniform [0, 1) and standard normal draws.
    params : (n, S, 5) float64 per series and segment: drift, sigma, volume, phi, body.
    bounds : (S,) int64 first candle of each segment (bounds[0] == 0, ascending).
    logp0 : float, log of the first open.
    """
    n, L = e.shape
    S = bounds.shape[0]
    for i in range(n):
        x = 0.0
        lo = logp0
        s = 0
        drift, sigma, vol, phi, sq, wick = _segment(params, i, 0)
        for t in range(L):
            while s + 1 < S and t >= bounds[s + 1]:
                s += 1
                drift, sigma, vol, phi, sq, wick = _segment(params, i, s)
            x, lc, lh, ll = _log_candle(t, x, lo, e[i, t], u[i, t], drift, sigma, phi, sq, wick)
            out[i, t, 0] = _value(0, lo, vol, False)
            out[i, t, 1] = _value(1, lh, vol, False)
            out[i, t, 2] = _value(2, ll, vol, False)
            out[i, t, 3] = _value(3, lc, vol, False)
            out[i, t, 4] = _value(4, _volume_arg(z[i, t]), vol, False)
            lo = lc


@njit(**JIT_EXACT)
def synth_windows(out, e, u, z, params, bounds, logp0, cols, group, modes, log_volume, work, gmin, gmax):
    """out (n, window*F) float32 <- the min-max window ending at the last of ``L`` candles of each series.

    Row ``i`` equals ``Windower(window, lookback=L, features).transform`` on the candles
    :func:`synth_candles` writes for series ``i``, last row, bit for bit (the same helpers, the
    same scale formula), without storing the series: one pass over its candles keeps each scale
    group's min and max over all ``L`` candles (the lookback) and the features of the last
    ``window`` candles, then scales those.

    e, u, z, params, bounds, logp0 : as :func:`synth_candles`.
    cols : (F,) int64 each window feature's column in OHLCV order (0 open .. 4 volume).
    group : (F,) int64 each feature's scale group; modes : (G,) int64 each group's scale mode.
    log_volume : bool, ``log1p`` on the volume column.
    work : (window*F,) float64 scratch; gmin, gmax : (G,) float64 scratch.

    Notes
    -----
    Before the window only candidates for a group's extremes are exponentiated. Every feature is
    an increasing function of a key: a price is ``exp(key)`` of its log price, the volume increases
    with ``log(volume level) + VOL_NOISE * z``. A feature whose key exceeds the group's running
    minimum key by more than :data:`CANDIDATE_TOL` (1e-6) has a computed value larger than the
    value of the minimum key's feature (relative gap ~1e-6 against rounding errors of ~1e-15), so
    it cannot be the group's minimum; likewise for the maximum. The min and max are taken exactly
    over the values of the remaining candidates, hence equal those over all candles.
    """
    n, L = e.shape
    S = bounds.shape[0]
    F = cols.shape[0]
    W = out.shape[1] // F
    G = gmin.shape[0]
    first = L - W
    kmin = np.empty(G)
    kmax = np.empty(G)
    # which OHLCV columns are features, and the group of prices / volume (-1: none)
    has = np.zeros(5, dtype=np.bool_)
    gp = -1
    gv = -1
    for f in range(F):
        has[cols[f]] = True
        if cols[f] < 4:
            gp = group[f]
        else:
            gv = group[f]
    for i in range(n):
        for g in range(G):
            gmin[g] = np.inf
            gmax[g] = -np.inf
            kmin[g] = np.inf
            kmax[g] = -np.inf
        x = 0.0
        lo = logp0
        s = 0
        drift, sigma, vol, phi, sq, wick = _segment(params, i, 0)
        lv = math.log(vol)
        for t in range(L):
            while s + 1 < S and t >= bounds[s + 1]:
                s += 1
                drift, sigma, vol, phi, sq, wick = _segment(params, i, s)
                lv = math.log(vol)
            x, lc, lh, ll = _log_candle(t, x, lo, e[i, t], u[i, t], drift, sigma, phi, sq, wick)
            inwin = t >= first
            if not inwin:
                # fast path: this candle's extreme keys per group; nothing near a running extreme
                # means no feature of it can be a group's min or max (see Notes)
                near = False
                if gp >= 0:
                    pmin = np.inf
                    pmax = -np.inf
                    if has[0]:
                        pmin = min(pmin, lo)
                        pmax = max(pmax, lo)
                    if has[1]:
                        pmin = min(pmin, lh)
                        pmax = max(pmax, lh)
                    if has[2]:
                        pmin = min(pmin, ll)
                        pmax = max(pmax, ll)
                    if has[3]:
                        pmin = min(pmin, lc)
                        pmax = max(pmax, lc)
                    near = pmin <= kmin[gp] + CANDIDATE_TOL or pmax >= kmax[gp] - CANDIDATE_TOL
                    kmin[gp] = min(kmin[gp], pmin)
                    kmax[gp] = max(kmax[gp], pmax)
                if gv >= 0:
                    vkey = lv + _volume_arg(z[i, t])
                    near = near or vkey <= kmin[gv] + CANDIDATE_TOL or vkey >= kmax[gv] - CANDIDATE_TOL
                    kmin[gv] = min(kmin[gv], vkey)
                    kmax[gv] = max(kmax[gv], vkey)
                if not near:
                    lo = lc
                    continue
            for f in range(F):
                k = cols[f]
                if k == 0:
                    arg = lo
                elif k == 1:
                    arg = lh
                elif k == 2:
                    arg = ll
                elif k == 3:
                    arg = lc
                else:
                    arg = _volume_arg(z[i, t])
                key = lv + arg if k == 4 else arg
                g = group[f]
                # kmin/kmax already hold this candle's keys (fast path) or are updated after: the
                # test against a running extreme that includes the feature itself keeps it too
                if inwin or key <= kmin[g] + CANDIDATE_TOL or key >= kmax[g] - CANDIDATE_TOL:
                    val = _value(k, arg, vol, log_volume)
                    if val < gmin[g]:
                        gmin[g] = val
                    if val > gmax[g]:
                        gmax[g] = val
                    if inwin:
                        work[(t - first) * F + f] = val
                if key < kmin[g]:
                    kmin[g] = key
                if key > kmax[g]:
                    kmax[g] = key
            lo = lc
        for f in range(F):
            g = group[f]
            shift, mul, add, cmin, cmax = _scale_params(gmin[g], gmax[g], modes[g])
            for k in range(W):
                out[i, k * F + f] = np.float32(_scale_value(work[k * F + f], shift, mul, add, cmin, cmax))
