"""Unsupervised measures of a representation, for data without ground truth (real candles).

As disentanglement_lib ``evaluation/metrics/unsupervised_metrics.py`` (Gaussian total correlation,
mean pairwise mutual information of binned codes) plus active units (Burda et al. 2016).
Rows are samples: codes (n, n_codes).
"""

from __future__ import annotations

import numpy as np

from ..exceptions import InputError
from .discrete import check_codes, discrete_mutual_info, histogram_discretize

__all__ = ["gaussian_total_correlation", "mutual_info_matrix", "mean_pairwise_mi", "active_units"]


def gaussian_total_correlation(codes) -> float:
    """Total correlation of a Gaussian with the codes' covariance, in nats.

    Parameters
    ----------
    codes : ndarray, shape (n, n_codes)

    Returns
    -------
    float
        ``0.5 * (sum_i log Sigma_ii - log det Sigma)`` with ``Sigma = cov(codes)`` (ddof=1);
        0 for independent codes, +inf when a code is constant or codes are collinear.
    """
    c = check_codes(codes)
    cov = np.atleast_2d(np.cov(c, rowvar=False, ddof=1))
    diag = np.diag(cov)
    if (diag <= 0).any():
        return float("inf")
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return float("inf")
    return float(0.5 * (np.sum(np.log(diag)) - logdet))


def mutual_info_matrix(codes, n_bins: int = 20) -> np.ndarray:
    """Mutual information (nats) between every pair of binned codes, (n_codes, n_codes).

    Codes are binned as :func:`~betavae_np.metrics.histogram_discretize`; the diagonal holds each
    code's binned entropy.
    """
    d = histogram_discretize(codes, n_bins)
    return discrete_mutual_info(d, d)


def mean_pairwise_mi(codes, n_bins: int = 20) -> float:
    """Mean of :func:`mutual_info_matrix` off the diagonal (disentanglement_lib's ``mutual_info_score``)."""
    m = mutual_info_matrix(codes, n_bins)
    k = m.shape[0]
    if k < 2:
        raise InputError("mean pairwise mutual information needs at least two codes")
    return float((m.sum() - np.trace(m)) / (k * k - k))


def active_units(mu, threshold: float = 0.01) -> int:
    """Number of latent dimensions whose posterior mean varies across windows.

    Parameters
    ----------
    mu : ndarray, shape (n, n_latent)
        Posterior means.
    threshold : float
        A unit is active when ``Var_x(mu_j(x)) > threshold`` (Burda et al. 2016: 0.01).

    Returns
    -------
    int
    """
    c = check_codes(mu, "mu")
    return int(np.count_nonzero(np.var(c, axis=0, ddof=1) > threshold))
