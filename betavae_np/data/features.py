"""Input representations of a candle window: their names, constants, their input columns and scales,
and the inverse back to candles.

:class:`~betavae_np.data.windows.Windower` ``representation``:

* ``"minmax"``: the rolling min-max OHLCV of the seed (values in [0, 1]);
* ``"returns"``: per candle :data:`RETURN_FEATURES`, z-scored by causal EWMA statistics with a
  half-life of :data:`HALF_LIFE` candles, seeded from a warm-up of ``lookback`` candles, clipped to
  [-:data:`CLIP`, :data:`CLIP`] (the kernels: :mod:`betavae_np._kernels.returns`);
* ``"both"``: per candle the min-max columns, then the return features.
"""

from __future__ import annotations

import numpy as np

from .._kernels import returns as _r
from .._kernels import windowing as _k
from .._kernels.windowing import ZCLIP
from ..exceptions import InputError

__all__ = ["REPRESENTATIONS", "RETURN_FEATURES", "HALF_LIFE", "CLIP", "inverse"]

#: Input representations: rolling min-max OHLCV, standardised return features, or both per candle.
REPRESENTATIONS = ("minmax", "returns", "both")
#: The per-candle features of the ``returns`` representation, in input order.
RETURN_FEATURES = ("log_return", "log_range", "body", "upper_wick", "lower_wick", "log_volume")
#: Half-life in candles of the EWMA mean and sd that standardise the return features.
HALF_LIFE = 500.0
#: The EWMA weight of a new candle: 1 - 2**(-1/HALF_LIFE).
ALPHA = 1.0 - 2.0 ** (-1.0 / HALF_LIFE)
#: z-scored return features are clipped to [-CLIP, CLIP].
CLIP = ZCLIP


def inverse(w, X, lo, hi, anchor=None) -> np.ndarray:
    """:meth:`Windower.inverse <betavae_np.data.windows.Windower.inverse>` of windower ``w`` (see there)."""
    X = np.asarray(X, dtype=np.float64)
    one = X.ndim == 1
    X = np.atleast_2d(X)
    lo, hi = np.atleast_2d(np.asarray(lo, dtype=np.float64)), np.atleast_2d(np.asarray(hi, dtype=np.float64))
    n, G = X.shape[0], w._modes.size
    if X.shape[1] != w.n_input or lo.shape != (n, G) or hi.shape != (n, G):
        raise InputError(f"inverse needs X (n, {w.n_input}) and lo, hi (n, {G}); got {X.shape}, "
                         f"{lo.shape}, {hi.shape}")
    W = X.reshape(n, w.window, w.n_features)
    if w._mm:
        F = len(w.features)
        g = w._group
        out = np.empty((n, w.window, F))
        for f in range(F):
            a, b = lo[:, g[f]][:, None], hi[:, g[f]][:, None]
            if w.norm == "none":
                out[:, :, f] = W[:, :, f]
            else:
                out[:, :, f] = np.where(b > a, a + W[:, :, f] * (b - a), a)
        if w._vol_col >= 0 and w.log_volume:
            out[:, :, w._vol_col] = np.expm1(out[:, :, w._vol_col])
        return out[0] if one else out
    if anchor is None:
        raise InputError("the returns representation needs each window's anchor close (Windower.anchors)")
    anchor = np.broadcast_to(np.asarray(anchor, dtype=np.float64), (n,))
    x = lo[:, None, :] + W * hi[:, None, :]                       # (n, window, 6)
    r, q = x[..., 0], np.exp(x[..., 1])
    body, up, dn = x[..., 2], x[..., 3], x[..., 4]
    c = anchor[:, None] * np.exp(np.cumsum(r, axis=1))
    top, bot = up + np.maximum(-body, 0.0), dn + np.maximum(body, 0.0)
    den = top + q * bot
    R = np.divide(c * (q - 1.0), den, out=np.zeros_like(c), where=den > 0)
    out = np.stack([c - body * R, c + top * R, c - bot * R, c, np.expm1(x[..., 5])], axis=-1)
    return out[0] if one else out


def raw_inputs(w, src, seg) -> np.ndarray:
    """The prepared input columns (n, n_features) float64 of source values (n, len(features)) for
    windower ``w`` (its representation's columns; :meth:`Windower._raw`)."""
    if w._mm:
        mm = np.empty(src.shape, dtype=np.float64)
        _k.prepare_features(mm, src, w._vol_col, w.log_volume)
        if not w._rt:
            return mm
    feat = np.empty((src.shape[0], _r.NR))
    _r.candle_features(feat, src, seg)   # src is OHLCV here (checked in __init__)
    return feat if not w._mm else np.ascontiguousarray(np.hstack([mm, feat]))


def scales(w, raw, ends, seg):
    """Per-window scales lo, hi (m, G) of windower ``w``: min-max groups (lo, hi), then return groups
    (mean, sd) (:meth:`Windower._scales`)."""
    n, m = raw.shape[0], ends.size
    G_mm = w._n_groups if w._mm else 0
    lo, hi = np.empty((m, w._modes.size)), np.empty((m, w._modes.size))
    if w._mm:
        F = len(w.features)
        part = raw if not w._rt else np.ascontiguousarray(raw[:, :F])
        clo, chi, s_lo, s_hi = (np.empty((n, G_mm)) for _ in range(4))
        l0, h0 = np.empty((m, G_mm)), np.empty((m, G_mm))
        _k.candle_bounds(clo, chi, part, w._group)
        _k.rolling_scales(l0, h0, clo, chi, ends, w._need, s_lo, s_hi)
        lo[:, :G_mm], hi[:, :G_mm] = l0, h0
    if w._rt:
        feat = raw if not w._mm else np.ascontiguousarray(raw[:, len(w.features):])
        mean, sd = np.empty((m, _r.NR)), np.empty((m, _r.NR))
        _r.ewma_stats(mean, sd, feat, seg, ends, w.lookback, ALPHA)
        lo[:, G_mm:], hi[:, G_mm:] = mean, sd
    return lo, hi
