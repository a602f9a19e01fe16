"""Supervised disentanglement metrics on (codes, factors) samples: MIG, DCI, SAP.

Definitions and defaults follow disentanglement_lib (``evaluation/metrics/mig.py``, ``dci.py``,
``sap_score.py``). Rows are samples: codes (n, n_codes), factors (n, n_factors) integers;
disentanglement_lib holds them transposed.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import InputError
from .discrete import (check_codes, check_factors, discrete_entropy, discrete_mutual_info,
                       histogram_discretize, require_sklearn)

__all__ = ["mig", "mig_matrix", "dci", "dci_importance", "dci_scores", "sap", "sap_matrix"]


def _pair(codes, factors, what):
    c = check_codes(codes, f"{what} codes")
    return c, check_factors(factors, c.shape[0], f"{what} factors")


def _seed(rng) -> int:
    """An int seed for scikit-learn estimators from an int or a Generator."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**31 - 1))
    return int(rng)


# -- MIG -----------------------------------------------------------------------------------------
def mig_matrix(codes, factors, n_bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Discrete mutual information of every code with every factor, and the factors' entropies.

    Returns
    -------
    mi : ndarray, shape (n_codes, n_factors)
        ``I(bin(code_i); factor_j)`` in nats, codes binned by :func:`histogram_discretize`.
    entropy : ndarray, shape (n_factors,)
        ``H(factor_j)`` in nats.
    """
    c, f = _pair(codes, factors, "mig")
    return discrete_mutual_info(histogram_discretize(c, n_bins), f), discrete_entropy(f)


def mig(codes, factors, n_bins: int = 20) -> float:
    """Mutual Information Gap (Chen et al. 2018).

    Parameters
    ----------
    codes : ndarray, shape (n, n_codes)
        Representations (usually the posterior means), rows are samples.
    factors : ndarray of int, shape (n, n_factors)
        Ground-truth factors of the same samples; each must take at least two values.
    n_bins : int
        Equal-width histogram bins per code (disentanglement_lib's default 20).

    Returns
    -------
    float
        In [0, 1]: 1 when each factor is captured by one code alone.

    Notes
    -----
    ``MIG = mean_j (I_(1)j - I_(2)j) / H(v_j)`` with ``I_(1)j >= I_(2)j`` the two largest
    ``I(bin(z_i); v_j)`` over codes (a single code gives ``I_(2)j = 0``). disentanglement_lib
    ``_compute_mig``; its default sample size is 10,000.
    """
    mi, h = mig_matrix(codes, factors, n_bins)
    if (h <= 0).any():
        raise InputError(f"factor(s) {np.flatnonzero(h <= 0).tolist()} take a single value in this sample; "
                         f"MIG divides by each factor's entropy")
    top = np.sort(mi, axis=0)[::-1]
    second = top[1] if top.shape[0] > 1 else np.zeros(top.shape[1])
    return float(np.mean((top[0] - second) / h))


# -- DCI -----------------------------------------------------------------------------------------
def dci_importance(codes_train, factors_train, codes_test, factors_test, rng=0, n_jobs=None):
    """Importance matrix of gradient-boosted trees predicting each factor from all codes.

    Parameters
    ----------
    n_jobs : int, optional
        Factors fitted at once on threads (scikit-learn builds trees without the GIL); default:
        every factor at once, so the operating system spreads them over the cores (factors with
        more values cost more: 7 + 4 x 5 classes on 2 cores would leave one core idle for the last
        5 classes' worth with one thread per core). The result does not depend on it (each
        factor's classifier has its own seed).

    Returns
    -------
    importance : ndarray, shape (n_codes, n_factors)
        ``|feature_importances_|`` of one ``GradientBoostingClassifier()`` (scikit-learn defaults)
        per factor.
    train_accuracy, test_accuracy : float
        Mean over factors.
    """
    require_sklearn("dci")
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.ensemble import GradientBoostingClassifier

    ctr, ftr = _pair(codes_train, factors_train, "train")
    cte, fte = _pair(codes_test, factors_test, "test")
    if cte.shape[1] != ctr.shape[1] or fte.shape[1] != ftr.shape[1]:
        raise InputError("train and test codes/factors must have the same numbers of columns")
    seed = _seed(rng)

    def one(j):
        model = GradientBoostingClassifier(random_state=seed + j)
        model.fit(ctr, ftr[:, j])
        return (np.abs(model.feature_importances_), np.mean(model.predict(ctr) == ftr[:, j]),
                np.mean(model.predict(cte) == fte[:, j]))

    workers = max(1, min(ftr.shape[1], n_jobs or ftr.shape[1]))
    with ThreadPoolExecutor(workers) as pool:
        fitted = list(pool.map(one, range(ftr.shape[1])))
    imp = np.stack([f[0] for f in fitted], axis=1) if fitted else np.zeros((ctr.shape[1], 0))
    acc_tr, acc_te = [f[1] for f in fitted], [f[2] for f in fitted]
    return imp, float(np.mean(acc_tr)), float(np.mean(acc_te))


def _one_minus_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """``1 - H(p_k) / log(base)`` per row ``k`` of non-negative weights (normalised per row)."""
    q = p + 1e-11
    q = q / q.sum(axis=1, keepdims=True)
    return 1.0 - (-np.sum(q * np.log(q), axis=1) / np.log(base))


def dci_scores(importance) -> tuple[float, float]:
    """(disentanglement, completeness) of an importance matrix (n_codes, n_factors).

    Notes
    -----
    Eastwood & Williams (2018), as disentanglement_lib: ``D = sum_i rho_i (1 - H_K(P_i.))`` with
    ``P_ij = R_ij / sum_k R_ik`` and ``rho_i = sum_j R_ij / sum R``; ``C = sum_j rho_j (1 - H_D(P_.j))``
    with the column normalisation. Entropies use log base n_factors (D) / n_codes (C) and
    ``R + 1e-11``; an all-zero matrix counts as all ones. One code (or one factor) gives C (or D)
    of ``1 - 0/0``: taken as 1.
    """
    r = np.asarray(importance, dtype=np.float64)
    if r.sum() == 0:
        r = np.ones_like(r)
    n_codes, n_factors = r.shape
    per_code = _one_minus_entropy(r, n_factors) if n_factors > 1 else np.ones(n_codes)
    per_factor = _one_minus_entropy(r.T, n_codes) if n_codes > 1 else np.ones(n_factors)
    d = float(np.sum(per_code * r.sum(axis=1) / r.sum()))
    c = float(np.sum(per_factor * r.sum(axis=0) / r.sum()))
    return d, c


def dci(codes_train, factors_train, codes_test, factors_test, rng=0) -> dict:
    """Disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    Parameters
    ----------
    codes_train, codes_test : ndarray, shape (n_train, n_codes), (n_test, n_codes)
    factors_train, factors_test : ndarray of int, shape (n_train, n_factors), (n_test, n_factors)
    rng : int or numpy.random.Generator
        Seeds the trees (``random_state``; disentanglement_lib leaves it unset).

    Returns
    -------
    dict
        ``{"disentanglement", "completeness", "informativeness"}``; informativeness is the mean
        test accuracy over factors (disentanglement_lib's ``informativeness_test``), and
        ``"informativeness_train"`` is kept too.

    Notes
    -----
    Needs scikit-learn (``pip install 'betavae-np[metrics]'``). disentanglement_lib's defaults:
    10,000 training and 5,000 test samples.
    """
    imp, acc_tr, acc_te = dci_importance(codes_train, factors_train, codes_test, factors_test, rng)
    d, c = dci_scores(imp)
    return {"disentanglement": d, "completeness": c, "informativeness": acc_te,
            "informativeness_train": acc_tr}


# -- SAP -----------------------------------------------------------------------------------------
def sap_matrix(codes_train, factors_train, codes_test, factors_test, continuous_factors: bool = False):
    """Score of every code for every factor (n_codes, n_factors).

    Discrete factors: test accuracy of ``LinearSVC(C=0.01, class_weight="balanced")`` trained on the
    one code. Continuous factors: squared correlation on the training sample (0 when the code's
    variance is at most 1e-12).
    """
    ctr, ftr = _pair(codes_train, factors_train, "train")
    cte, fte = _pair(codes_test, factors_test, "test")
    out = np.zeros((ctr.shape[1], ftr.shape[1]))
    if continuous_factors:
        for i in range(ctr.shape[1]):
            for j in range(ftr.shape[1]):
                cov = np.cov(ctr[:, i], ftr[:, j].astype(np.float64), ddof=1)
                if cov[0, 0] > 1e-12:
                    out[i, j] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1])
        return out
    require_sklearn("sap")
    from sklearn.svm import LinearSVC

    for i in range(ctr.shape[1]):
        for j in range(ftr.shape[1]):
            model = LinearSVC(C=0.01, class_weight="balanced")
            model.fit(ctr[:, i:i + 1], ftr[:, j])
            out[i, j] = np.mean(model.predict(cte[:, i:i + 1]) == fte[:, j])
    return out


def sap(codes_train, factors_train, codes_test, factors_test, continuous_factors: bool = False) -> float:
    """Separated Attribute Predictability (Kumar et al. 2018).

    Parameters
    ----------
    codes_train, codes_test : ndarray, shape (n, n_codes)
    factors_train, factors_test : ndarray of int, shape (n, n_factors)
    continuous_factors : bool
        False (default, disentanglement_lib's): per-code linear SVM accuracies; True: squared
        correlations.

    Returns
    -------
    float
        ``mean_j (S_(1)j - S_(2)j)``, the gap between the two best codes' scores per factor.

    Notes
    -----
    disentanglement_lib ``_compute_sap`` (10,000 train, 5,000 test samples by default). Needs
    scikit-learn for discrete factors. With one code the gap is that code's score.
    """
    m = np.sort(sap_matrix(codes_train, factors_train, codes_test, factors_test, continuous_factors), axis=0)
    second = m[-2] if m.shape[0] > 1 else np.zeros(m.shape[1])
    return float(np.mean(m[-1] - second))
