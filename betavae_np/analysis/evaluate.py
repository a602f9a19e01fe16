"""How good is a model on held-out windows, and has it collapsed?"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..exceptions import InputError
from .latent import ACTIVE_THRESHOLD, LatentStats, iter_batches, latent_stats

__all__ = ["EvaluationReport", "evaluate"]


@dataclass
class EvaluationReport:
    """Reconstruction, KL and collapse diagnostics on a set of windows.

    Attributes
    ----------
    n : int
        Windows evaluated.
    recon : float
        Mean over windows of sum_i (x_i - x_hat_i)^2, with x_hat = decode(mu(x)) (no sampling).
    baseline : float
        The same error for the mean predictor (the training mean window when the model file has it).
    r2 : float
        1 - recon / baseline: the share of the window's variation the model reconstructs.
    kl, kl_per_dim : float, list of float
        Mean KL to the prior (nats), total and per dimension.
    stats : LatentStats
        Posterior-mean statistics on these windows (active units).
    n_input : int
        Values per window.
    baseline_kind : str
        What the baseline predicts.
    warnings : list of str
        Plain-language problems: collapse, beta too high, worse than the mean predictor.
    """

    n: int
    recon: float
    baseline: float
    r2: float
    kl: float
    kl_per_dim: list
    stats: LatentStats
    n_input: int = 1
    baseline_kind: str = "training mean window"
    warnings: list = field(default_factory=list)

    @property
    def n_active(self) -> int:
        return self.stats.n_active

    @property
    def collapsed(self) -> bool:
        return self.stats.n_active == 0

    def to_dict(self) -> dict:
        return {"n": self.n, "recon": self.recon, "recon_per_value": self.recon_per_value,
                "baseline": self.baseline, "baseline_kind": self.baseline_kind, "r2": self.r2,
                "kl": self.kl, "kl_per_dim": list(self.kl_per_dim), "active_dims": self.n_active,
                "active": list(self.stats.active), "mu_sd": list(self.stats.sd),
                "collapsed": self.collapsed, "warnings": list(self.warnings)}

    @property
    def recon_per_value(self) -> float:
        """Mean squared error per window value (recon / n_input)."""
        return self.recon / max(1, self.n_input)


def evaluate(model, X, *, train_mean=None, beta=None, threshold: float = ACTIVE_THRESHOLD,
             batch: int = 4096) -> EvaluationReport:
    """Evaluate reconstruction and latent usage on windows (typically the held-out part).

    Parameters
    ----------
    model : BetaVAE
    X : ndarray of shape (n, n_input), or a window source
    train_mean : ndarray of shape (n_input,), optional
        The mean training window, for the mean-predictor baseline. Default: the model's
        ``records.window_stats.mean_window``, else the mean of ``X`` itself (an in-sample baseline,
        reported as such).
    beta : float, optional
        The beta the model was trained with (for the "beta too high" hint); default from the
        model's run record.
    threshold : float
        Active-unit threshold on Var_x(mu_j(x)).

    Returns
    -------
    EvaluationReport

    Notes
    -----
    Active units follow Burda et al. (2016); a dimension whose posterior mean does not vary over the
    data carries no information about the window (posterior collapse, Bowman et al. 2016).
    """
    n = X.shape[0]
    if n < 1:
        raise InputError("no windows to evaluate; the held-out part is empty")
    if X.shape[1] != model.config.n_input:
        raise InputError(f"windows have {X.shape[1]} values; the model expects {model.config.n_input}")
    from ..records import records_of

    rec = records_of(model)
    kind = "training mean window"
    if train_mean is None and rec.window_stats is not None:
        train_mean = np.asarray(rec.window_stats.mean_window, dtype=np.float64)
    sse = sq = 0.0
    col_sum = np.zeros(model.config.n_input)
    for block in iter_batches(X, batch, dtype=model.dtype):   # one pass over the data
        x = block.astype(np.float64)
        sse += float(((x - model.reconstruct(block)) ** 2).sum())
        sq += float((x * x).sum())
        col_sum += x.sum(0)
    if train_mean is None:
        train_mean = col_sum / n
        kind = "mean of the evaluated windows (in-sample)"
    m = np.asarray(train_mean, dtype=np.float64)
    base = sq - 2.0 * float(m @ col_sum) + n * float(m @ m)   # sum_i ||x_i - m||^2
    recon, baseline = sse / n, base / n
    r2 = 1.0 - recon / baseline if baseline > 0 else float("nan")
    stats = latent_stats(model, X, threshold=threshold, batch=batch)
    report = EvaluationReport(n=n, recon=recon, baseline=baseline, r2=r2, kl=float(sum(stats.kl)),
                              kl_per_dim=list(stats.kl), stats=stats, n_input=model.config.n_input,
                              baseline_kind=kind)
    if beta is None and rec.run is not None:
        beta = rec.run.config.get("beta")
    report.warnings = _warnings(report, model.config.n_latent, beta)
    return report


def _warnings(r: EvaluationReport, n_latent: int, beta) -> list[str]:
    out = []
    if r.stats.n_active == 0:
        out.append("posterior collapse: no latent dimension carries information (every posterior mean is "
                   "nearly constant); retrain with a lower --beta or --anneal warmup")
    elif r.stats.n_active <= max(1, n_latent // 4) and beta is not None and beta > 1:
        out.append(f"only {r.stats.n_active} of {n_latent} dimensions are active at beta={beta:g}: beta looks "
                   "too high for this data; try a lower --beta or more --epochs")
    if np.isfinite(r.r2) and r.r2 < 0:
        out.append("reconstructions are worse than predicting the mean window; the model has not learned "
                   "this data (train longer, lower beta, or check the data source)")
    return out
