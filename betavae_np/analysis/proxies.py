"""Causal market indicators at each window's last candle, and how latents line up with them.

Every indicator at candle ``t`` uses candles ``<= t`` only (tests change later candles and check
nothing moves). Indicators are computed on the candle rows in order: across a gap in the data
the previous row counts as the previous candle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from ..data.frame import validate_candles
from ..exceptions import ConfigError, InputError

__all__ = ["INDICATORS", "indicator_frame", "indicators", "forward_returns", "spearman", "indicator_table"]

#: Indicator names, in column order.
INDICATORS = ("rsi_14", "atr_14", "obv_slope", "sma20_slope", "close_sma50", "realised_vol", "volume_z")


def _wilder(x: np.ndarray, n: int) -> np.ndarray:
    """Wilder's smoothing of x[1:] (x[0] unused): seeded by the mean of x[1..n] at index n, then
    ``a_t = a_{t-1} + (x_t - a_{t-1}) / n``; NaN before index n."""
    out = np.full(x.size, np.nan)
    if x.size <= n:
        return out
    s = pd.Series(x[n:].copy())
    s.iloc[0] = x[1:n + 1].mean()
    out[n:] = s.ewm(alpha=1.0 / n, adjust=False).mean().to_numpy()
    return out


def _rolling(x: np.ndarray, w: int, fn) -> np.ndarray:
    """fn over each trailing block x[t-w+1..t] (axis -1), NaN for t < w-1."""
    out = np.full(x.size, np.nan)
    if x.size >= w:
        out[w - 1:] = fn(sliding_window_view(x, w))
    return out


def _slope(y: np.ndarray) -> np.ndarray:
    """OLS slope of each row of y (m, w) on 0..w-1."""
    k = np.arange(y.shape[-1], dtype=np.float64)
    k -= k.mean()
    return (y @ k) / (k @ k)


def indicator_frame(df: pd.DataFrame, window: int = 32, lookback: int = 128) -> pd.DataFrame:
    """The :data:`INDICATORS` at every candle of ``df`` (causal).

    Parameters
    ----------
    df : pandas.DataFrame
        Candles (the frame convention).
    window, lookback : int
        The windower's settings: realised volatility and OBV slope use the ``window`` candles
        ending at ``t``; the volume z-score the ``lookback`` candles.

    Returns
    -------
    pandas.DataFrame, shape (n_candles, 7), same index
        ``rsi_14``: Wilder's RSI(14) in [0, 100]; ``atr_14``: Wilder's ATR(14) / close;
        ``obv_slope``: OLS slope of on-balance volume over the window / mean volume of the window;
        ``sma20_slope``: SMA20_t / SMA20_{t-1} - 1; ``close_sma50``: close / SMA50 - 1;
        ``realised_vol``: sd (ddof=1) of the ``window`` log returns ending at t;
        ``volume_z``: (log1p(v_t) - mean) / sd (ddof=1) of log1p(volume) over the lookback.
        NaN until the history is long enough.

    Notes
    -----
    Wilder (1978): ``RSI = 100 - 100 / (1 + avg_gain / avg_loss)`` (100 when avg_loss = 0, 50 when
    both are 0); ``TR_t = max(h - l, |h - c_{t-1}|, |l - c_{t-1}|)``; both averages seeded by the
    simple mean of the first 14 values. OBV (Granville): ``OBV_t = OBV_{t-1} + sign(c_t - c_{t-1}) v_t``.
    """
    for name, v in (("window", window), ("lookback", lookback)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 2:
            raise ConfigError(f"{name} must be an integer >= 2, got {v!r}")
    df = validate_candles(df, what="candles")
    o, h, l, c, v = (df[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close", "volume"))
    dc = np.append(0.0, np.diff(c))
    gain = _wilder(np.maximum(dc, 0.0), 14)
    loss = _wilder(np.maximum(-dc, 0.0), 14)
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = np.where(loss > 0, 100.0 - 100.0 / (1.0 + gain / loss), np.where(gain > 0, 100.0, 50.0))
    rsi[np.isnan(gain)] = np.nan
    prev = np.append(np.nan, c[:-1])
    tr = np.maximum(h - l, np.maximum(np.abs(h - prev), np.abs(l - prev)))
    atr = _wilder(tr, 14) / c
    obv = np.cumsum(np.sign(dc) * v)
    with np.errstate(divide="ignore", invalid="ignore"):
        obv_slope = _rolling(obv, window, _slope) / _rolling(v, window, lambda b: b.mean(axis=-1))
    sma20 = _rolling(c, 20, lambda b: b.mean(axis=-1))
    sma20_slope = sma20 / np.append(np.nan, sma20[:-1]) - 1.0
    close_sma50 = c / _rolling(c, 50, lambda b: b.mean(axis=-1)) - 1.0
    r = np.append(np.nan, np.diff(np.log(c)))
    rv = _rolling(r, window, lambda b: b.std(axis=-1, ddof=1))
    lv = np.log1p(v)
    mean = _rolling(lv, lookback, lambda b: b.mean(axis=-1))
    sd = _rolling(lv, lookback, lambda b: b.std(axis=-1, ddof=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        vz = np.where(sd > 0, (lv - mean) / sd, np.nan)
    return pd.DataFrame({"rsi_14": rsi, "atr_14": atr, "obv_slope": obv_slope, "sma20_slope": sma20_slope,
                         "close_sma50": close_sma50, "realised_vol": rv, "volume_z": vz}, index=df.index)


def _at(frame: pd.DataFrame, end_times) -> pd.DataFrame:
    idx = pd.DatetimeIndex(end_times)
    out = frame.reindex(idx)
    out.index = idx
    return out


def indicators(df: pd.DataFrame, end_times, window: int = 32, lookback: int = 128) -> pd.DataFrame:
    """:func:`indicator_frame` at each window's last candle.

    Parameters
    ----------
    df : pandas.DataFrame
        The candles the windows were cut from.
    end_times : pandas.DatetimeIndex, shape (n,)
        :attr:`~betavae_np.data.WindowSet.end_times`.

    Returns
    -------
    pandas.DataFrame, shape (n, 7), index end_times (NaN rows for times not in ``df``)
    """
    return _at(indicator_frame(df, window, lookback), end_times)


def forward_returns(df: pd.DataFrame, end_times, horizons=(1, 4, 24)) -> pd.DataFrame:
    """Forward log returns ``log(close_{t+h} / close_t)`` from each window's last candle ``t``.

    Uses candles ``t+1..t+h`` (rows of ``df``) only; NaN where ``t+h`` is past the data.

    Returns
    -------
    pandas.DataFrame, shape (n, len(horizons)), columns ``fwd_{h}``, index end_times
    """
    hs = [int(h) for h in horizons]
    if not hs or min(hs) < 1:
        raise ConfigError(f"horizons must be positive candle counts, got {horizons!r}")
    df = validate_candles(df, what="candles")
    lc = pd.Series(np.log(df["close"].to_numpy(dtype=np.float64)), index=df.index)
    frame = pd.DataFrame({f"fwd_{h}": lc.shift(-h) - lc for h in hs})
    return _at(frame, end_times)


def _ranks(x: np.ndarray) -> np.ndarray:
    return pd.DataFrame(x).rank(axis=0, method="average").to_numpy(dtype=np.float64, copy=True)


def spearman(a, b) -> np.ndarray:
    """Spearman rank correlation of every column of ``a`` with every column of ``b``.

    Parameters
    ----------
    a : array_like, shape (n, p)
    b : array_like, shape (n, q)
        Rows with a NaN in ``a`` or ``b`` are left out (same rows for every pair).

    Returns
    -------
    ndarray, shape (p, q)
        Pearson correlation of the average ranks; NaN for a constant column or < 3 rows.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if b.ndim == 1:
        b = b[:, None]
    if a.shape[0] != b.shape[0]:
        raise InputError(f"spearman needs the same rows on both sides, got {a.shape[0]} and {b.shape[0]}")
    keep = ~(np.isnan(a).any(axis=1) | np.isnan(b).any(axis=1))
    if keep.sum() < 3:
        return np.full((a.shape[1], b.shape[1]), np.nan)
    ra, rb = _ranks(a[keep]), _ranks(b[keep])
    ra -= ra.mean(axis=0)
    rb -= rb.mean(axis=0)
    na, nb = np.sqrt((ra ** 2).sum(axis=0)), np.sqrt((rb ** 2).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (ra.T @ rb) / np.outer(na, nb)


def indicator_table(codes, ind: pd.DataFrame, names=None) -> dict:
    """How each latent lines up with the indicators.

    Parameters
    ----------
    codes : array_like, shape (n, n_latent)
        Latent means (or a baseline's codes), one row per window.
    ind : pandas.DataFrame, shape (n, n_indicators)
        :func:`indicators` for the same windows.
    names : sequence of str, optional
        Latent names (default ``z0, z1, ...``).

    Returns
    -------
    dict
        ``rho``: DataFrame (n_latent x n_indicators) of Spearman correlations;
        ``best``: DataFrame per latent (``indicator``, ``rho``) with the largest |rho|;
        ``gap``: DataFrame per indicator (``latent``, ``rho``, ``gap``): its best latent and the
        best minus second-best |rho| across latents (an MIG-like gap: one latent alone tracks it).
    """
    c = np.asarray(codes, dtype=np.float64)
    names = list(names) if names is not None else [f"z{i}" for i in range(c.shape[1])]
    rho = pd.DataFrame(spearman(c, ind.to_numpy(dtype=np.float64)), index=names, columns=list(ind.columns))
    a = rho.abs().fillna(-1.0).to_numpy()
    j = np.argmax(a, axis=1)
    best = pd.DataFrame({"indicator": rho.columns[j], "rho": rho.to_numpy()[np.arange(len(names)), j]},
                        index=names)
    order = np.argsort(-a, axis=0)
    top = np.abs(rho.to_numpy()[order[0], np.arange(a.shape[1])])
    second = np.abs(rho.to_numpy()[order[1], np.arange(a.shape[1])]) if len(names) > 1 else np.zeros_like(top)
    gap = pd.DataFrame({"latent": [names[i] for i in order[0]],
                        "rho": rho.to_numpy()[order[0], np.arange(a.shape[1])], "gap": top - second},
                       index=list(ind.columns))
    return {"rho": rho, "best": best, "gap": gap}
