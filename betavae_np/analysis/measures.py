"""What a (decoded) window looks like, in numbers a trader reads: trend, volatility, volume...

Every measure is computed on normalised windows (see :class:`~betavae_np.data.Windower`), so they
compare windows with each other, not prices across years. Min-max OHLCV inputs (values in [0, 1]) use
the definitions of :data:`MEASURES`; windows of the ``returns`` representation (no OHLCV columns) use
those of :data:`RETURN_MEASURES` on its z-scored features, under the same names; ``both`` has the OHLCV
columns, so the min-max definitions apply.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MEASURES", "RETURN_MEASURES", "window_measures", "available_measures"]

#: Measure name -> (features it needs, one-line meaning). Order is the table order.
MEASURES = {
    "level": (("close",), "mean close: where the window sits in its lookback range (0 bottom, 1 top)"),
    "trend": (("close",), "least-squares slope of the close per candle (returns inputs: mean z-scored log return)"),
    "volatility": (("high", "low"), "mean high-low range (returns inputs: mean z-scored log(high/low))"),
    "volume": (("volume",), "mean (scaled) volume (returns inputs: mean z-scored log volume)"),
    "momentum": (("close",), "last close minus first close"),
    "body": (("open", "high", "low", "close"), "total |close-open| / total candle range: 1 = all body, 0 = all wick "
                                               "(returns inputs: mean |z-scored body|)"),
}

#: The same measures on the ``returns`` representation's features: name -> (feature it needs, meaning).
RETURN_MEASURES = {
    "trend": ("log_return", "mean z-scored log return"),
    "volatility": ("log_range", "mean z-scored log(high/low)"),
    "volume": ("log_volume", "mean z-scored log volume"),
    "body": ("body", "mean |z-scored signed body|"),
}


def _minmax_measures(have) -> list[str]:
    return [name for name, (need, _) in MEASURES.items() if set(need) <= have]


def available_measures(features) -> list[str]:
    """Names of the measures that ``features`` supports, in table order.

    With OHLCV columns the min-max definitions; otherwise, with return features, those of
    :data:`RETURN_MEASURES`.
    """
    have = set(features)
    mm = _minmax_measures(have)
    return [name for name in MEASURES if name in mm
            or (name in RETURN_MEASURES and RETURN_MEASURES[name][0] in have)]


def window_measures(X: np.ndarray, window: int, features) -> dict[str, np.ndarray]:
    """Compute every available measure of flattened windows.

    Parameters
    ----------
    X : ndarray, shape (..., window * n_features)
        Windows flattened time-major (``idx = t * n_features + f``).
    window : int
        Candles per window.
    features : sequence of str
        Feature names in order (``open high low close volume`` by default).

    Returns
    -------
    dict of str to ndarray, each of shape (...)
        One array per measure of :func:`available_measures`.

    Notes
    -----
    level = mean_t c_t; trend = sum_t (t - tbar)(c_t - cbar) / sum_t (t - tbar)^2; volatility = mean_t (h_t - l_t);
    momentum = c_{T-1} - c_0; body = sum_t |c_t - o_t| / sum_t (max(o,h,l,c)_t - min(o,h,l,c)_t)
    (0 when the range is 0), in [0, 1] even for decoded candles whose high/low do not bound them.
    On return features (no OHLCV column): trend = mean_t log_return_t, volatility = mean_t log_range_t,
    volume = mean_t log_volume_t, body = mean_t |body_t| (z-scored units).
    """
    feats = list(features)
    X = np.asarray(X, dtype=np.float64)
    W = X.reshape(X.shape[:-1] + (window, len(feats)))  # (..., window, F)
    col = {name: W[..., feats.index(name)] for name in feats}  # each (..., window)
    out: dict[str, np.ndarray] = {}
    names = _minmax_measures(set(feats))
    for name in available_measures(feats):
        if name not in names:   # a return-feature measure: the mean over the window (|body| for body)
            x = col[RETURN_MEASURES[name][0]]
            out[name] = (np.abs(x) if name == "body" else x).mean(-1)
    if "level" in names:
        out["level"] = col["close"].mean(-1)
    if "trend" in names:
        t = np.arange(window, dtype=np.float64) - (window - 1) / 2.0
        out["trend"] = (col["close"] * t).sum(-1) / (t * t).sum()
    if "volatility" in names:
        out["volatility"] = (col["high"] - col["low"]).mean(-1)
    if "volume" in names:
        out["volume"] = col["volume"].mean(-1)
    if "momentum" in names:
        out["momentum"] = col["close"][..., -1] - col["close"][..., 0]
    if "body" in names:
        # decoded candles need not be consistent (high below open...): measure against their envelope
        o, h, lo, c = col["open"], col["high"], col["low"], col["close"]
        top = np.maximum(np.maximum(o, c), np.maximum(h, lo))
        bottom = np.minimum(np.minimum(o, c), np.minimum(h, lo))
        rng = (top - bottom).sum(-1)
        body = np.abs(c - o).sum(-1)
        out["body"] = np.divide(body, rng, out=np.zeros_like(body), where=rng > 0)
    return out
