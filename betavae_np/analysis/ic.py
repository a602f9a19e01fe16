"""Predictive power of latents: Spearman IC with forward returns, a permuted control, stability.

Forward returns of overlapping horizons are autocorrelated, so a pooled IC over every window
overstates its own significance. Two corrections are reported: the IC on non-overlapping samples
(every h-th window) with its t-statistic, and ICs per period of consecutive windows (the last ``h``
windows of each period are dropped so no forward return reaches into the next period) with mean,
sd, ICIR and ``t = mean / (sd / sqrt(n_periods))``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import ConfigError, InputError
from .proxies import spearman

__all__ = ["predictive_ic", "permuted_control", "stability"]


def _names(c, names):
    return list(names) if names is not None else [f"z{i}" for i in range(c.shape[1])]


def _horizon(col: str) -> int:
    try:
        return int(str(col).rsplit("_", 1)[-1])
    except ValueError:
        raise InputError(f"forward return columns must be named fwd_<h>, got {col!r}") from None


def predictive_ic(codes, fwd: pd.DataFrame, period: int = 720, names=None) -> pd.DataFrame:
    """Spearman IC of each latent with each forward return.

    Parameters
    ----------
    codes : array_like, shape (n, n_latent)
        One row per window, in time order.
    fwd : pandas.DataFrame, shape (n, n_horizons)
        :func:`~betavae_np.analysis.proxies.forward_returns` (columns ``fwd_<h>``).
    period : int
        Windows per period for the per-period ICs (720 hourly windows: 30 days).
    names : sequence of str, optional

    Returns
    -------
    pandas.DataFrame
        One row per (latent, horizon): ``ic`` (all windows), ``ic_nonoverlap`` and ``t_nonoverlap``
        (every h-th window; ``t = ic sqrt((m - 2) / (1 - ic^2))``), ``n_nonoverlap``, ``ic_mean``,
        ``ic_sd``, ``icir`` (mean / sd), ``t_periods`` and ``n_periods``.
    """
    c = np.asarray(codes, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != len(fwd):
        raise InputError(f"codes must have shape (n, n_latent) with n = {len(fwd)} windows, got {c.shape}")
    if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or period < 3:
        raise ConfigError(f"period must be an integer >= 3, got {period!r}")
    names = _names(c, names)
    rows = []
    for col in fwd.columns:
        h = _horizon(col)
        y = fwd[col].to_numpy(dtype=np.float64)
        ic = spearman(c, y)[:, 0]
        sub = slice(None, None, h)
        keep = ~np.isnan(y[sub])
        m = int(keep.sum())
        ic_no = spearman(c[sub], y[sub])[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            t_no = ic_no * np.sqrt((m - 2) / (1.0 - ic_no ** 2))
        per = []
        for a in range(0, c.shape[0] - period + 1, period):
            b = a + period - h  # drop the last h windows: their forward returns reach the next period
            if b - a >= 3:
                per.append(spearman(c[a:b], y[a:b])[:, 0])
        per = np.array(per).reshape(-1, c.shape[1])
        P = per.shape[0]
        mean = per.mean(axis=0) if P else np.full(c.shape[1], np.nan)
        sd = per.std(axis=0, ddof=1) if P > 1 else np.full(c.shape[1], np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            icir = mean / sd
        for i, name in enumerate(names):
            rows.append({"latent": name, "horizon": h, "ic": ic[i], "ic_nonoverlap": ic_no[i],
                         "t_nonoverlap": t_no[i], "n_nonoverlap": m, "ic_mean": mean[i], "ic_sd": sd[i],
                         "icir": icir[i], "t_periods": icir[i] * np.sqrt(P), "n_periods": P})
    return pd.DataFrame(rows).set_index(["latent", "horizon"])


def permuted_control(codes, fwd: pd.DataFrame, period: int = 720, names=None, rng=0) -> pd.DataFrame:
    """:func:`predictive_ic` with each forward-return column randomly permuted across windows.

    Breaks any link between codes and the future while keeping both marginals: every IC here
    should be ~0 (|t| mostly below 2); a larger one points at a bug in the pipeline, not a signal.
    """
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    shuffled = fwd.copy()
    for col in fwd.columns:
        shuffled[col] = g.permutation(fwd[col].to_numpy())
    return predictive_ic(codes, shuffled, period, names)


def stability(codes, ind: pd.DataFrame, fwd: pd.DataFrame | None = None, k: int = 4, names=None) -> pd.DataFrame:
    """Whether each latent's reading holds over ``k`` consecutive periods.

    Parameters
    ----------
    codes : array_like, shape (n, n_latent)
    ind : pandas.DataFrame, shape (n, n_indicators)
    fwd : pandas.DataFrame, optional
        Forward returns; adds the per-period IC with each horizon.
    k : int
        Number of consecutive, equal periods (>= 2).

    Returns
    -------
    pandas.DataFrame, one row per latent
        ``indicator``: the latent's best indicator on all windows, ``rho``: that correlation,
        ``rho_p0..rho_p{k-1}``: the same correlation per period, ``sign_agreement``: the share of
        periods whose sign matches ``rho``; with ``fwd``, ``ic_<h>_p*`` and ``ic_<h>_sign_agreement``
        (against the all-window IC).
    """
    c = np.asarray(codes, dtype=np.float64)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ConfigError(f"k must be an integer >= 2, got {k!r}")
    if c.shape[0] < 3 * k:
        raise InputError(f"{c.shape[0]} windows are too few for {k} periods")
    names = _names(c, names)
    X = ind.to_numpy(dtype=np.float64)
    full = spearman(c, X)
    j = np.argmax(np.nan_to_num(np.abs(full), nan=-1.0), axis=1)
    bounds = np.linspace(0, c.shape[0], k + 1).astype(int)
    out = pd.DataFrame({"indicator": [ind.columns[a] for a in j],
                        "rho": full[np.arange(len(names)), j]}, index=names)
    per = np.array([spearman(c[a:b], X[a:b])[np.arange(len(names)), j]
                    for a, b in zip(bounds[:-1], bounds[1:])])  # (k, n_latent)
    for p in range(k):
        out[f"rho_p{p}"] = per[p]
    out["sign_agreement"] = np.mean(np.sign(per) == np.sign(out["rho"].to_numpy()), axis=0)
    if fwd is not None:
        for col in fwd.columns:
            h = _horizon(col)
            y = fwd[col].to_numpy(dtype=np.float64)
            ic = spearman(c, y)[:, 0]
            per = np.array([spearman(c[a:b], y[a:b])[:, 0] for a, b in zip(bounds[:-1], bounds[1:])])
            for p in range(k):
                out[f"ic_{h}_p{p}"] = per[p]
            out[f"ic_{h}_sign_agreement"] = np.mean(np.sign(per) == np.sign(ic), axis=0)
    return out
