"""Baselines for latent codes: PCA fitted on training windows and hand-made market factors.

Every table of latent measures should carry these rows: a latent that does no better than PCA
with as many components, or than a few hand factors, has not found anything new.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import ConfigError, InputError

__all__ = ["PCA", "hand_factors", "HAND_FACTORS"]

#: Names of :func:`hand_factors`' columns.
HAND_FACTORS = ("past_return", "last_return", "realised_vol", "volume_z")


class PCA:
    """Principal components by a thin SVD of the centred training windows (NumPy only).

    Parameters
    ----------
    n_components : int
        Number of components (the model's ``n_latent`` for a like-for-like baseline).

    Attributes
    ----------
    mean_ : ndarray, shape (n_input,)
    components_ : ndarray, shape (n_components, n_input)
        Orthonormal rows, by decreasing explained variance; each row's sign is fixed so that its
        largest-magnitude entry is positive (reproducible across platforms).
    explained_variance_ : ndarray, shape (n_components,)
        Variance (ddof=1) of the training windows along each component.
    """

    def __init__(self, n_components: int):
        if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or n_components < 1:
            raise ConfigError(f"n_components must be a positive integer, got {n_components!r}")
        self.n_components = int(n_components)

    def fit(self, X) -> "PCA":
        """Fit on windows ``X`` (n, n_input), n >= 2 and n_input >= n_components."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < self.n_components:
            raise InputError(f"PCA needs windows of shape (n >= 2, n_input >= {self.n_components}), got {X.shape}")
        self.mean_ = X.mean(axis=0)
        _, s, vt = np.linalg.svd(X - self.mean_, full_matrices=False)
        vt = vt[:self.n_components]
        sign = np.sign(vt[np.arange(vt.shape[0]), np.argmax(np.abs(vt), axis=1)])
        self.components_ = vt * sign[:, None]
        self.explained_variance_ = s[:self.n_components] ** 2 / (X.shape[0] - 1)
        return self

    def transform(self, X) -> np.ndarray:
        """Codes (n, n_components) = (X - mean) @ components.T."""
        return (np.asarray(X, dtype=np.float64) - self.mean_) @ self.components_.T

    def inverse_transform(self, Z) -> np.ndarray:
        """Windows (n, n_input) reconstructed from codes."""
        return np.asarray(Z, dtype=np.float64) @ self.components_ + self.mean_


def hand_factors(df: pd.DataFrame, end_times, window: int = 32, lookback: int = 128) -> pd.DataFrame:
    """Four hand-made factors at each window's last candle (causal).

    Parameters
    ----------
    df : pandas.DataFrame
        Candles (the frame convention).
    end_times : pandas.DatetimeIndex, shape (n,)
        Open time of each window's last candle (:attr:`~betavae_np.data.WindowSet.end_times`).
    window, lookback : int
        The windower's settings.

    Returns
    -------
    pandas.DataFrame, shape (n, 4), index end_times
        ``past_return = log(close_t / close_{t-window})``, ``last_return = log(close_t / close_{t-1})``,
        ``realised_vol`` and ``volume_z`` as in :func:`~betavae_np.analysis.proxies.indicators`.
        NaN where the history is too short or ``t`` is not a candle of ``df``.
    """
    from .proxies import indicators

    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ConfigError(f"window must be an integer >= 2, got {window!r}")
    lc = np.log(df["close"].to_numpy(dtype=np.float64))
    past = pd.Series(lc - np.roll(lc, window), index=df.index)
    past.iloc[:window] = np.nan
    last = pd.Series(np.append(np.nan, np.diff(lc)), index=df.index)
    ind = indicators(df, end_times, window=window, lookback=lookback)
    out = pd.DataFrame({"past_return": past.reindex(end_times).to_numpy(),
                        "last_return": last.reindex(end_times).to_numpy(),
                        "realised_vol": ind["realised_vol"].to_numpy(),
                        "volume_z": ind["volume_z"].to_numpy()}, index=pd.DatetimeIndex(end_times))
    return out
