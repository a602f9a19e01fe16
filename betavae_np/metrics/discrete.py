"""Discretisation and discrete mutual information (disentanglement_lib ``evaluation/metrics/utils.py``)."""

from __future__ import annotations

import importlib

import numpy as np

from ..exceptions import InputError

__all__ = ["histogram_discretize", "discrete_mutual_info", "discrete_entropy", "check_codes",
           "check_factors", "require_sklearn"]


def require_sklearn(what: str):
    """Import scikit-learn or raise one clear ImportError naming the extra that installs it."""
    try:
        return importlib.import_module("sklearn")
    except ImportError:
        raise ImportError(f"{what} needs scikit-learn; install it with "
                          f"pip install 'betavae-np[metrics]'") from None


def check_codes(codes, name: str = "codes") -> np.ndarray:
    """Codes as float64 (n, n_codes), finite; InputError otherwise."""
    c = np.asarray(codes, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] < 2 or c.shape[1] < 1:
        raise InputError(f"{name} must have shape (n_samples >= 2, n_codes >= 1), rows are samples; got {c.shape}")
    if not np.isfinite(c).all():
        raise InputError(f"{name} must be finite")
    return c


def check_factors(factors, n: int, name: str = "factors") -> np.ndarray:
    """Factors as int64 (n, n_factors) with values >= 0; InputError otherwise."""
    f = np.asarray(factors)
    if f.ndim != 2 or f.shape[0] != n or f.shape[1] < 1 or f.dtype.kind not in "iu":
        raise InputError(f"{name} must be an integer array of shape ({n}, n_factors), rows are samples; "
                         f"got shape {f.shape} dtype {f.dtype}")
    if (f < 0).any():
        raise InputError(f"{name} must be non-negative integers")
    return f.astype(np.int64, copy=False)


def histogram_discretize(codes, n_bins: int = 20) -> np.ndarray:
    """Each code column to integer bins ``1..n_bins`` of its equal-width histogram.

    Parameters
    ----------
    codes : ndarray, shape (n, n_codes)
    n_bins : int

    Returns
    -------
    ndarray of int64, shape (n, n_codes)

    Notes
    -----
    Per column: ``np.digitize(c, np.histogram(c, n_bins)[1][:-1])``, as disentanglement_lib's
    ``_histogram_discretize``. A constant column falls in a single bin.
    """
    c = check_codes(codes)
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise InputError(f"n_bins must be a positive integer, got {n_bins!r}")
    out = np.empty(c.shape, dtype=np.int64)
    for j in range(c.shape[1]):
        out[:, j] = np.digitize(c[:, j], np.histogram(c[:, j], int(n_bins))[1][:-1])
    return out


def _dense(labels: np.ndarray) -> tuple[np.ndarray, int]:
    u, inv = np.unique(labels, return_inverse=True)
    return inv.reshape(-1), u.size


def _mi(a: np.ndarray, ka: int, b: np.ndarray, kb: int) -> float:
    """MI in nats of two dense label vectors (a in [0, ka), b in [0, kb))."""
    n = a.size
    joint = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(np.float64)
    pa = joint.sum(axis=1)
    pb = joint.sum(axis=0)
    i, j = np.nonzero(joint)
    nij = joint[i, j]
    # sum_ij p_ij log(p_ij / (p_i p_j)) with p = counts / n
    mi = float(np.sum(nij / n * (np.log(nij) + np.log(n) - np.log(pa[i]) - np.log(pb[j]))))
    return max(mi, 0.0)


def discrete_mutual_info(a, b) -> np.ndarray:
    """Mutual information (nats) between every column of ``a`` and every column of ``b``.

    Parameters
    ----------
    a : ndarray of int, shape (n, p)
    b : ndarray of int, shape (n, q)

    Returns
    -------
    ndarray of float64, shape (p, q)
        ``I(a_i; b_j) = sum_xy p(x, y) log(p(x, y) / (p(x) p(y)))`` from the empirical joint
        (what ``sklearn.metrics.mutual_info_score`` computes).
    """
    a, b = np.asarray(a), np.asarray(b)
    da = [_dense(a[:, i]) for i in range(a.shape[1])]
    db = [_dense(b[:, j]) for j in range(b.shape[1])]
    out = np.empty((len(da), len(db)))
    for i, (x, kx) in enumerate(da):
        for j, (y, ky) in enumerate(db):
            out[i, j] = _mi(x, kx, y, ky)
    return out


def discrete_entropy(a) -> np.ndarray:
    """Entropy (nats) of each column of integer labels ``a`` (n, p): ``-sum_x p(x) log p(x)``."""
    a = np.asarray(a)
    out = np.empty(a.shape[1])
    for j in range(a.shape[1]):
        counts = np.bincount(_dense(a[:, j])[0]).astype(np.float64)
        p = counts / counts.sum()
        out[j] = float(-np.sum(p * np.log(p)))
    return out
