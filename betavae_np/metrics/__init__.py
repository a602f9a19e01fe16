"""Disentanglement metrics with disentanglement_lib's definitions and defaults (Locatello et al. 2019).

Rows are samples everywhere: codes ``(n, n_codes)`` float, factors ``(n, n_factors)`` int.
disentanglement_lib stores both transposed (``(n_codes, n)``); the numbers are the same.
"""

from .._lazy import attach

_EXPORTS = {
    "mig": ".supervised",
    "dci": ".supervised",
    "sap": ".supervised",
    "factor_vae_score": ".votes",
    "beta_vae_score": ".votes",
    "gaussian_total_correlation": ".unsupervised",
    "mutual_info_matrix": ".unsupervised",
    "mean_pairwise_mi": ".unsupervised",
    "active_units": ".unsupervised",
    "synthetic_report": ".report",
    "histogram_discretize": ".discrete",
    "discrete_mutual_info": ".discrete",
    "discrete_entropy": ".discrete",
}

__getattr__, __dir__ = attach(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
