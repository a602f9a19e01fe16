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
def synth_windows(out, e, u, z, params, bounds, logp0, cols, group, modes, log_volume, work, keys):
    """out (n, window*F) float32 <- the min-max window ending at the last of ``L`` candles of each series.

    Row ``i`` equals ``Windower(window, lookback=L, features).transform`` on the candles
    :func:`synth_candles` writes for series ``i``, last row, bit for bit (the same helpers, the
    same scale formula), without storing the candles: one pass over a series keeps the features
    of the last ``window`` candles and the log keys of the earlier ones, whose extremes are then
    found exactly (see Notes); the window is scaled by the min and max of the prices and of the
    volume over all ``L`` candles (the lookback).

    e, u, z, params, bounds, logp0 : as :func:`synth_candles`.
    cols : (F,) int64 each window feature's column in OHLCV order (0 open .. 4 volume).
    group : (F,) int64 each feature's scale group (the prices share one, the volume has its own);
    modes : (G,) int64 each group's scale mode.
    log_volume : bool, ``log1p`` on the volume column.
    work : (window*F,) float64 scratch; keys : (L - window, 7) float64 scratch.

    Notes
    -----
    Before the window only candidates for an extreme are exponentiated. Every feature is an
    increasing function of a key: a price is ``exp(key)`` of its log price, the volume increases
    with ``log(volume level) + VOL_NOISE * z``. A feature whose key exceeds the minimum key of its
    group (over those candles) by more than :data:`CANDIDATE_TOL` (1e-6) has a computed value
    larger than the value of the minimum key's feature (relative gap ~1e-6 against rounding
    errors of ~1e-15), so it cannot be the group's minimum; likewise for the maximum. The min and
    max are taken exactly over the values of the remaining candidates and of the window's
    features, hence equal those over all candles.
    """
    n, L = e.shape
    S = bounds.shape[0]
    F = cols.shape[0]
    W = out.shape[1] // F
    first = L - W
    tol = CANDIDATE_TOL
    has = np.zeros(5, dtype=np.bool_)
    gp = 0
    gv = 0
    for f in range(F):
        has[cols[f]] = True
        if cols[f] == 4:
            gv = group[f]
        else:
            gp = group[f]
    has_p = has[0] or has[1] or has[2] or has[3]
    for i in range(n):
        # key extremes of the candles before the window; exact value extremes, prices and volume
        kpmin = kvmin = pmin = vmin = np.inf
        kpmax = kvmax = pmax = vmax = -np.inf
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
            va = _volume_arg(z[i, t])
            if t < first:
                # keys (lo, lh, ll, lc: log prices; va, log level + va, level): extremes only
                keys[t, 0] = lo
                keys[t, 1] = lh
                keys[t, 2] = ll
                keys[t, 3] = lc
                keys[t, 4] = va
                keys[t, 5] = lv + va
                keys[t, 6] = vol
                if has[2]:
                    kpmin = min(kpmin, ll)      # low <= open, close, high
                elif has[0] or has[3]:
                    kpmin = min(kpmin, min(lo, lc) if has[0] and has[3] else (lo if has[0] else lc))
                else:
                    kpmin = min(kpmin, lh)
                if has[1]:
                    kpmax = max(kpmax, lh)      # high >= open, close, low
                elif has[0] or has[3]:
                    kpmax = max(kpmax, max(lo, lc) if has[0] and has[3] else (lo if has[0] else lc))
                else:
                    kpmax = max(kpmax, ll)
                kvmin = min(kvmin, lv + va)
                kvmax = max(kvmax, lv + va)
            else:
                for f in range(F):  # the window: every feature
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
                        arg = va
                    val = _value(k, arg, vol, log_volume)
                    if k == 4:
                        vmin = min(vmin, val)
                        vmax = max(vmax, val)
                    else:
                        pmin = min(pmin, val)
                        pmax = max(pmax, val)
                    work[(t - first) * F + f] = val
            lo = lc
        # the candidates before the window: features whose key is near a key extreme
        for t in range(first):
            if has_p:
                for k in range(4):
                    a = keys[t, k]
                    if has[k] and (a <= kpmin + tol or a >= kpmax - tol):
                        val = _value(k, a, 0.0, log_volume)
                        pmin = min(pmin, val)
                        pmax = max(pmax, val)
            if has[4] and (keys[t, 5] <= kvmin + tol or keys[t, 5] >= kvmax - tol):
                val = _value(4, keys[t, 4], keys[t, 6], log_volume)
                vmin = min(vmin, val)
                vmax = max(vmax, val)
        for f in range(F):
            if cols[f] == 4:
                shift, mul, add, cmn, cmx = _scale_params(vmin, vmax, modes[gv])
            else:
                shift, mul, add, cmn, cmx = _scale_params(pmin, pmax, modes[gp])
            for k in range(W):
                out[i, k * F + f] = np.float32(_scale_value(work[k * F + f], shift, mul, add, cmn, cmx))
