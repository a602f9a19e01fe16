"""Synthetic candle kernel: OHLCV paths from piecewise-constant factor regimes.

Randomness comes in as arrays (``e``, ``u``, ``z``); the kernel draws nothing. For series ``i``,
candle ``t`` in segment ``s`` (``bounds[s] <= t < bounds[s+1]``), with the segment's parameters
``(drift, sigma, volume, phi, body) = params[i, s]``::

    x_t   = phi * x_{t-1} + sqrt(1 - phi^2) * e_t        (x_{-1} = 0, x_0 = e_0: unit variance)
    r_t   = drift + sigma * x_t                          (log return of the candle)
    lo_t  = log open_t = log close_{t-1}  (lo_0 = logp0) ; log close_t = lo_t + r_t
    w_t   = |r_t| * (1 / body - 1)                       (total wick length, log units)
    log high_t = max(lo_t, lc_t) + u_t * w_t ;  log low_t = min(lo_t, lc_t) - (1 - u_t) * w_t
    volume_t = volume * exp(VOL_NOISE * z_t - VOL_NOISE^2 / 2)

so ``body`` is the candle body's share of its range, ``low <= open, close <= high`` and volume > 0.
"""

from __future__ import annotations

import math

from numba import njit

from ..config import JIT_EXACT

#: Standard deviation of the log-normal volume noise around the regime's volume level.
VOL_NOISE = 0.25


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
        for t in range(L):
            while s + 1 < S and t >= bounds[s + 1]:
                s += 1
            drift = params[i, s, 0]
            sigma = params[i, s, 1]
            vol = params[i, s, 2]
            phi = params[i, s, 3]
            body = params[i, s, 4]
            if t == 0:
                x = e[i, t]
            else:
                x = phi * x + math.sqrt(1.0 - phi * phi) * e[i, t]
            r = drift + sigma * x
            lc = lo + r
            w = abs(r) * (1.0 / body - 1.0)
            top = max(lo, lc)
            bot = min(lo, lc)
            out[i, t, 0] = math.exp(lo)
            out[i, t, 1] = math.exp(top + u[i, t] * w)
            out[i, t, 2] = math.exp(bot - (1.0 - u[i, t]) * w)
            out[i, t, 3] = math.exp(lc)
            out[i, t, 4] = vol * math.exp(VOL_NOISE * z[i, t] - 0.5 * VOL_NOISE * VOL_NOISE)
            lo = lc
