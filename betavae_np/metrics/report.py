"""Every metric of one representation on a ground-truth data source, with disentanglement_lib's sizes."""

from __future__ import annotations

import time

import numpy as np

from .supervised import dci, mig, sap
from .unsupervised import active_units, gaussian_total_correlation, mean_pairwise_mi
from .votes import _represent, _rng, beta_vae_score, factor_vae_score

__all__ = ["synthetic_report"]


def synthetic_report(data, represent, rng=0, num_train: int = 10_000, num_test: int = 5_000,
                     factor_vae: bool = True, beta_vae: bool = True) -> dict:
    """MIG, DCI, SAP, FactorVAE and BetaVAE scores and the unsupervised measures of ``represent``.

    Parameters
    ----------
    data : ground-truth data source (e.g. :class:`~betavae_np.synth.SyntheticMarket`)
    represent : callable
        Observations (m, ...) -> codes (m, n_codes).
    rng : int or numpy.random.Generator
    num_train, num_test : int
        Samples for MIG (train), DCI and SAP (train/test); disentanglement_lib's 10,000 / 5,000.
    factor_vae, beta_vae : bool
        Also run the FactorVAE / BetaVAE score (with their own default sample sizes: they generate
        about 1 and 2 million observations).

    Returns
    -------
    dict
        Flat JSON-able numbers: ``mig``, ``dci_disentanglement``, ``dci_completeness``,
        ``dci_informativeness``, ``sap``, ``factor_vae``, ``factor_vae_active_dims``, ``beta_vae``,
        ``total_correlation``, ``mean_pairwise_mi``, ``active_units``, and ``seconds`` per metric.
    """
    rng = _rng(rng)
    sec = {}
    t = time.perf_counter()
    f_tr = np.asarray(data.sample_factors(num_train, rng))
    f_te = np.asarray(data.sample_factors(num_test, rng))
    z_tr = _represent(data, represent, f_tr, rng)
    z_te = _represent(data, represent, f_te, rng)
    sec["sample"] = time.perf_counter() - t
    out = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        v = fn()
        sec[name] = time.perf_counter() - t0
        return v

    out["mig"] = timed("mig", lambda: mig(z_tr, f_tr))
    d = timed("dci", lambda: dci(z_tr, f_tr, z_te, f_te, rng))
    out.update({"dci_disentanglement": d["disentanglement"], "dci_completeness": d["completeness"],
                "dci_informativeness": d["informativeness"]})
    out["sap"] = timed("sap", lambda: sap(z_tr, f_tr, z_te, f_te))
    if factor_vae:
        fv = timed("factor_vae", lambda: factor_vae_score(data, represent, rng))
        out["factor_vae"] = fv["eval_accuracy"]
        out["factor_vae_active_dims"] = fv["num_active_dims"]
    if beta_vae:
        out["beta_vae"] = timed("beta_vae", lambda: beta_vae_score(data, represent, rng))["eval_accuracy"]
    out["total_correlation"] = timed("total_correlation", lambda: gaussian_total_correlation(z_tr))
    out["mean_pairwise_mi"] = timed("mean_pairwise_mi", lambda: mean_pairwise_mi(z_tr))
    out["active_units"] = timed("active_units", lambda: active_units(z_tr))
    out["seconds"] = sec
    return out
