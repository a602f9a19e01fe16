"""How good is a model on held-out windows, has it collapsed, and what do its codes measure?

:func:`evaluate`: reconstruction against the mean window, KL, active units. :func:`real_data_measures`:
on real candles, the codes against causal indicators and forward returns, beside PCA and hand
factors. :func:`supervised_measures`: on the synthetic market, disentanglement_lib's metrics for the
model and for PCA.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..exceptions import InputError
from .latent import ACTIVE_THRESHOLD, LatentStats, iter_batches, latent_stats

__all__ = ["EvaluationReport", "evaluate", "encode_windows", "real_data_measures", "supervised_measures",
           "HORIZONS", "SUPERVISED_SIZES"]

#: Forward-return horizons (candles) of the predictive measures.
HORIZONS = (1, 4, 24)

#: Sample sizes of the supervised metrics: disentanglement_lib's defaults, and ``quick`` ones.
SUPERVISED_SIZES = {
    "default": {"num_train": 10_000, "num_test": 5_000, "fv_num_train": 10_000, "fv_num_eval": 5_000,
                "fv_num_variance_estimate": 10_000},
    "quick": {"num_train": 2_000, "num_test": 1_000, "fv_num_train": 1_000, "fv_num_eval": 500,
              "fv_num_variance_estimate": 2_000},
}


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


def encode_windows(model, X, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances of every window, encoded in blocks.

    Returns
    -------
    mu, logvar : ndarray of float64, shape (n, n_latent) each
    """
    k, n = model.config.n_latent, X.shape[0]
    mu, logvar = np.empty((n, k)), np.empty((n, k))
    lo = 0
    for block in iter_batches(X, batch, dtype=model.dtype):
        m, lv = model.encode(block)
        mu[lo:lo + block.shape[0]], logvar[lo:lo + block.shape[0]] = m, lv
        lo += block.shape[0]
    return mu, logvar


def _frame_dict(df) -> dict:
    return {str(i): {str(c): (v.item() if hasattr(v, "item") else v) for c, v in row.items()}
            for i, row in df.iterrows()}


def real_data_measures(model, df, train, held, *, horizons=HORIZONS, k: int = 4, period: int = 720,
                       rng=0) -> dict:
    """The codes of ``held`` against causal indicators and forward returns, with PCA and hand baselines.

    Parameters
    ----------
    model : BetaVAE
        With a windowing record (the indicators use its window and lookback).
    df : pandas.DataFrame
        The candles the windows were cut from.
    train, held : WindowSet
        Training windows (PCA is fitted on them) and the windows measured (typically held out).
    horizons : sequence of int
        Forward-return horizons in candles.
    k : int
        Consecutive periods of :func:`~betavae_np.analysis.ic.stability`.
    period : int
        Windows per period of the per-period ICs (720 hourly windows: 30 days), at most
        ``len(held) // k`` so that a short held-out part still has ``k`` periods.
    rng : int
        Seed of the permuted control.

    Returns
    -------
    dict
        Plain JSON types. ``windows``, ``train_windows``, ``period``, ``k``, ``horizons``,
        ``pca`` (``recon``: mean squared error per window of the PCA reconstruction of ``held``,
        ``explained_variance``), and ``codes``: one entry per representation, ``model`` (the
        posterior means ``z0..``), ``pca`` (``pc0..``, as many components as latents, fitted on
        ``train``) and ``hand`` (:func:`~betavae_np.analysis.baselines.hand_factors`), each with
        ``names``, ``rho`` (code x indicator Spearman), ``best`` (per code: indicator and rho with
        the largest |rho|), ``gap`` (per indicator: best code, its rho, best minus second-best
        |rho|), ``ic`` and ``control`` (:func:`~betavae_np.analysis.ic.predictive_ic` and
        :func:`~betavae_np.analysis.ic.permuted_control`, one record per code and horizon) and
        ``stability`` (per code).

    Notes
    -----
    No look-ahead: codes and indicators at a window use candles up to its last one, forward
    returns the candles after it. An |IC| above ~0.1 on hourly candles is more likely a bug than a
    signal; the permuted control must come out ~0.
    """
    from .baselines import PCA, hand_factors
    from .ic import permuted_control, predictive_ic, stability
    from .proxies import forward_returns, indicator_table, indicators
    from ..records import records_of

    w = records_of(model).windowing
    if w is None:
        raise InputError("the model does not record its windowing; the indicators need its window and lookback")
    n = held.shape[0]
    if n < 3 * k:
        raise InputError(f"{n} windows are too few for the real-data measures ({3 * k} needed for {k} periods)")
    period = int(max(3, min(period, n // k)))
    mu, _ = encode_windows(model, held)
    Xtr = train.array(np.float64) if hasattr(train, "array") else np.asarray(train, np.float64)
    pca = PCA(model.config.n_latent).fit(Xtr)
    Xh = held.array(np.float64) if hasattr(held, "array") else np.asarray(held, np.float64)
    pc = pca.transform(Xh)
    pca_recon = float(np.mean(np.sum((Xh - pca.inverse_transform(pc)) ** 2, axis=1)))
    ends = held.end_times
    hand = hand_factors(df, ends, window=w.window, lookback=w.lookback)
    ind = indicators(df, ends, window=w.window, lookback=w.lookback)
    fwd = forward_returns(df, ends, horizons)
    reps = {"model": (mu, [f"z{j}" for j in range(mu.shape[1])]),
            "pca": (pc, [f"pc{j}" for j in range(pc.shape[1])]),
            "hand": (hand.to_numpy(np.float64), list(hand.columns))}
    codes = {}
    for name, (c, names) in reps.items():
        tab = indicator_table(c, ind, names)
        ic = predictive_ic(c, fwd, period, names).reset_index().rename(columns={"latent": "code"})
        ctrl = permuted_control(c, fwd, period, names, rng=rng).reset_index().rename(columns={"latent": "code"})
        stab = stability(c, ind, fwd, k=k, names=names)
        codes[name] = {"names": names, "rho": _frame_dict(tab["rho"]), "best": _frame_dict(tab["best"]),
                       "gap": _frame_dict(tab["gap"].rename(columns={"latent": "code"})),
                       "ic": ic.to_dict("records"), "control": ctrl.to_dict("records"),
                       "stability": _frame_dict(stab)}
    return {"windows": n, "train_windows": int(Xtr.shape[0]), "period": period, "k": int(k),
            "horizons": [int(h) for h in horizons], "indicators": list(ind.columns),
            "pca": {"components": pca.n_components, "recon": pca_recon,
                    "explained_variance": pca.explained_variance_.tolist()},
            "codes": codes}


def supervised_measures(model, market, train, *, rng=0, quick: bool = False, on_stage=None) -> dict:
    """disentanglement_lib's metrics on the synthetic market for the model and for PCA.

    Parameters
    ----------
    model : BetaVAE
    market : SyntheticMarket
        The market the model's data came from, windowing as the model does
        (:func:`betavae_np.workflow.synthetic_market`).
    train : WindowSet or ndarray, shape (n, n_input)
        Training windows; PCA with ``n_latent`` components is fitted on them.
    rng : int
        Seed: both representations are scored on the same observations.
    quick : bool
        Smaller samples (:data:`SUPERVISED_SIZES` ``"quick"``: rougher numbers, a few seconds).
    on_stage : callable(representation, metric), optional
        Called before each metric (progress for the CLI).

    Returns
    -------
    dict
        ``sizes`` and, for ``model`` and ``pca``: ``mig``, ``dci_disentanglement``,
        ``dci_completeness``, ``dci_informativeness``, ``sap``, ``factor_vae`` (eval accuracy),
        ``factor_vae_active_dims`` and ``seconds``; DCI and SAP are None, and ``missing`` says why,
        when scikit-learn is not installed.
    """
    import time

    from .baselines import PCA
    from ..metrics.discrete import require_sklearn
    from ..metrics.supervised import dci, mig, sap
    from ..metrics.votes import _represent, factor_vae_score

    sizes = SUPERVISED_SIZES["quick" if quick else "default"]
    try:
        require_sklearn("DCI and SAP")
        missing = None
    except ImportError as exc:
        missing = str(exc)
    Xtr = train.array(np.float64) if hasattr(train, "array") else np.asarray(train, np.float64)
    pca = PCA(model.config.n_latent).fit(Xtr)
    reps = {"model": lambda X: model.encode(np.asarray(X, dtype=model.dtype))[0], "pca": pca.transform}
    stage = on_stage or (lambda rep, metric: None)
    out = {"sizes": dict(sizes), "factors": list(market.factor_names), "missing": missing}
    for name, represent in reps.items():
        t0 = time.perf_counter()
        g = np.random.default_rng(rng)   # same draws for both representations
        stage(name, f"sampling {sizes['num_train'] + sizes['num_test']:,} observations")
        f_tr = np.asarray(market.sample_factors(sizes["num_train"], g))
        f_te = np.asarray(market.sample_factors(sizes["num_test"], g))
        z_tr, z_te = _represent(market, represent, f_tr, g), _represent(market, represent, f_te, g)
        r = {"mig": mig(z_tr, f_tr)}
        if missing is None:
            stage(name, "DCI (gradient-boosted trees)")
            d = dci(z_tr, f_tr, z_te, f_te, rng=rng)
            r.update(dci_disentanglement=d["disentanglement"], dci_completeness=d["completeness"],
                     dci_informativeness=d["informativeness"])
            stage(name, "SAP")
            r["sap"] = sap(z_tr, f_tr, z_te, f_te)
        else:
            r.update(dci_disentanglement=None, dci_completeness=None, dci_informativeness=None, sap=None)
        n_obs = (sizes["fv_num_train"] + sizes["fv_num_eval"]) * 64 + sizes["fv_num_variance_estimate"]
        stage(name, f"FactorVAE score ({n_obs:,} observations)")
        fv = factor_vae_score(market, represent, rng=rng, num_train=sizes["fv_num_train"],
                              num_eval=sizes["fv_num_eval"],
                              num_variance_estimate=sizes["fv_num_variance_estimate"])
        r.update(factor_vae=fv["eval_accuracy"], factor_vae_active_dims=fv["num_active_dims"],
                 seconds=time.perf_counter() - t0)
        out[name] = r
    return out
