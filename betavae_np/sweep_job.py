"""One sweep job, as it runs on a worker: cap the threads, train, measure, write the model.

:func:`run_job` is the task :func:`betavae_np.sweeps.sweep` hands to an executor (a process pool,
a Dask worker). It takes a plain dict (picklable, no live objects) and returns a plain dict (one
row of the results table). Each finished job leaves two files in the sweep directory, both
written atomically: ``<key>.npz`` (the model, whose records carry its configuration) and
``<key>.json`` (the configuration and the row), the second one last, so a job counts as finished
only when both are complete.

Notes
-----
Thread caps are set inside the task, not through environment variables: a Dask worker or a pool
process reads those once when it starts, and Numba's ``set_num_threads`` is per thread (a Dask
worker runs tasks on its own threads). With one thread Numba runs the training step's row chunks
one after the other (:mod:`betavae_np.nn.engine`), which gives the same bits as the parallel run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

__all__ = ["run_job", "job_key", "warm_job", "start_worker", "read_finished", "MEASURE_VERSION", "GROUPS"]

#: Bumped when the measures of a row change meaning, so old rows are not mixed with new ones.
MEASURE_VERSION = 1

#: Indicator groups for the coverage measures on real data (columns of analysis.proxies.indicators).
GROUPS = {"volatility": ("atr_14", "realised_vol"),
          "trend": ("sma20_slope", "close_sma50", "rsi_14"),
          "volume": ("obv_slope", "volume_z")}


def job_key(config: dict, data: str | None = None, measures: dict | None = None) -> str:
    """16 hex digits of the SHA-256 of a job's configuration, data fingerprint and measure settings."""
    payload = {"config": config, "data": data, "measures": measures or {}, "version": MEASURE_VERSION}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_finished(out_dir, key: str) -> dict | None:
    """The stored row of a finished job, or None when the job has not finished (or its files are bad)."""
    base = Path(out_dir)
    meta, model = base / f"{key}.json", base / f"{key}.npz"
    if not (meta.is_file() and model.is_file()):
        return None
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key or not isinstance(data.get("row"), dict):
        return None
    return dict(data["row"], model=os.path.abspath(model))   # where it is now (the folder may have moved)


class _Caps:
    """Numba and BLAS thread counts for the duration of a task (restored afterwards)."""

    def __init__(self, threads):
        self.threads = threads

    def __enter__(self):
        self._numba = self._blas = None
        if self.threads is None:
            return self
        import numba

        from ._blas import blas_threads

        self._numba = numba.get_num_threads()
        numba.set_num_threads(max(1, min(int(self.threads), numba.config.NUMBA_NUM_THREADS)))
        self._blas = blas_threads(int(self.threads))
        self._blas.__enter__()
        return self

    def __exit__(self, *exc):
        if self._blas is not None:
            self._blas.__exit__(*exc)
        if self._numba is not None:
            import numba

            numba.set_num_threads(self._numba)
        return False


def run_job(spec: dict) -> dict:
    """Train one configuration, measure it on its held-out windows, and write it to the sweep directory.

    Parameters
    ----------
    spec : dict
        ``config`` (:meth:`TrainConfig.to_dict`), ``key``, ``out_dir`` (None: write nothing),
        ``threads`` (Numba and BLAS threads inside the task; None leaves them alone), ``candles``
        (a DataFrame to train on instead of loading ``config["source"]``, or None),
        ``metric_samples`` (samples for the supervised metrics), ``base_url``, ``cache_dir``.

    Returns
    -------
    dict
        One row: ``key``, ``model`` (path or None), the measures (see :func:`measure`),
        ``train_windows``, ``epochs_run``, ``windows_trained`` (train windows x epochs run),
        ``train_seconds``, ``seconds`` (the whole job), ``source`` and ``warnings``.
    """
    from .run import TrainConfig, train, train_on_candles

    t0 = time.perf_counter()
    cfg = TrainConfig.from_dict(dict(spec["config"]))
    with _Caps(spec.get("threads")):
        seen = {}
        if spec.get("candles") is not None:
            df = spec["candles"]
            result = train_on_candles(df, cfg)
        else:
            result = train(cfg, base_url=spec.get("base_url"), cache_dir=spec.get("cache_dir"),
                           on_data=lambda d: seen.setdefault("df", d))
            df = seen["df"]
        row = measure(result, df, metric_samples=spec.get("metric_samples", 10_000))
        row.update(_threads_now())
    rec = result.model.records
    row.update(key=spec["key"], train_windows=int(result.train.shape[0]), epochs_run=int(rec.run.epochs_run),
               windows_trained=int(result.train.shape[0]) * int(rec.run.epochs_run),
               train_seconds=float(result.seconds), warnings=list(result.warnings),
               source=(rec.provenance.source if rec.provenance is not None else None))
    row["model"] = None
    if spec.get("out_dir") is not None:
        row["model"] = _write(result.model, cfg, row, spec["out_dir"], spec["key"])
    row["seconds"] = time.perf_counter() - t0
    return row


def _threads_now() -> dict:
    """The Numba and BLAS thread counts in force (for the row: what the job actually ran with)."""
    import numba

    from ._blas import get_threads

    return {"numba_threads": int(numba.get_num_threads()), "blas_threads": get_threads()}


def _write(model, cfg, row, out_dir, key) -> str:
    from .io import atomic_path, save

    base = Path(out_dir)
    path = base / f"{key}.npz"
    save(model, path)
    row = dict(row, model=os.path.abspath(path))
    text = json.dumps({"key": key, "config": cfg.to_dict(), "row": row}, indent=1, default=_plain)
    with atomic_path(base / f"{key}.json", "sweep record") as tmp:
        Path(tmp).write_text(text)
    return os.path.abspath(path)


def _plain(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def is_synthetic(result, df) -> bool:
    """Whether the run trained on the synthetic market (its factors are then known)."""
    prov = dict(getattr(df, "attrs", {}).get("betavae_np", {}))
    return prov.get("source") == "synthetic" or result.config.source == "synthetic"


def measure(result, df, metric_samples: int = 10_000) -> dict:
    """The measures of one trained run, on its held-out windows (training windows when none are held out).

    Returns
    -------
    dict
        Always: ``recon`` (mean sum of squared errors per window of decode(mu), held out), ``r2``,
        ``kl`` (nats), ``active_units``, ``heldout`` (True when measured on held-out windows).
        Synthetic market: ``mig``, ``sap``, ``dci_disentanglement``, ``dci_completeness``,
        ``dci_informativeness`` (NaN without scikit-learn) on fresh observations.
        Real candles: ``alignment`` (mean over active latents of the best |Spearman rho| with an
        indicator), ``coverage_volatility``/``_trend``/``_volume`` (the best |rho| of any latent
        with the group's indicators) and ``coverage`` (their mean), and the predictive IC with the
        largest non-overlapping |t| over latents and horizons 1, 4, 24: ``ic``, ``ic_t``, ``ic_horizon``.
    """
    from .analysis.evaluate import evaluate

    model = result.model
    heldout = result.validation is not None
    X = result.validation if heldout else result.train
    rep = evaluate(model, X)
    out = {"recon": float(rep.recon), "r2": float(rep.r2), "kl": float(rep.kl),
           "active_units": int(rep.n_active), "heldout": heldout}
    if is_synthetic(result, df):
        out.update(_synthetic_measures(result, metric_samples))
    else:
        out.update(_real_measures(result, df, X, rep.stats.active))
    return out


def _synthetic_measures(result, n: int, classifiers: bool = True) -> dict:
    """MIG, SAP and DCI on ``n`` fresh observations (``n // 2`` for testing); ``classifiers=False``
    leaves out SAP and DCI (scikit-learn fits, no compiled kernels: the warm-up job skips them)."""
    import numpy as np

    from .metrics.discrete import require_sklearn
    from .metrics.supervised import dci, mig, sap
    from .synth import SyntheticMarket

    cfg = result.config
    market = SyntheticMarket(seed=cfg.seed, window=cfg.window, lookback=cfg.lookback, representation=cfg.features)
    rng = np.random.default_rng([cfg.seed, 14])
    n_tr, n_te = int(n), max(2, int(n) // 2)
    f_tr, x_tr = market.sample(n_tr, rng)
    f_te, x_te = market.sample(n_te, rng)
    z_tr, z_te = result.model.encode(x_tr)[0], result.model.encode(x_te)[0]
    out = {"mig": float(mig(z_tr, f_tr))}
    if not classifiers:
        return out
    out["sap"] = float(sap(z_tr, f_tr, z_te, f_te))
    try:
        require_sklearn("dci")
    except ImportError:   # the metrics extra is optional: DCI is then missing, not an error
        d = {"disentanglement": float("nan"), "completeness": float("nan"), "informativeness": float("nan")}
    else:
        d = dci(z_tr, f_tr, z_te, f_te, rng)
    out.update({f"dci_{k}": float(v) for k, v in d.items()})
    return out


def _real_measures(result, df, X, active) -> dict:
    import numpy as np

    from .analysis.ic import predictive_ic
    from .analysis.latent import iter_batches
    from .analysis.proxies import forward_returns, indicators, spearman

    cfg = result.config
    model = result.model
    mu = np.concatenate([model.encode(b)[0] for b in iter_batches(X, dtype=model.dtype)])  # (n, L)
    ind = indicators(df, X.end_times, cfg.window, cfg.lookback)
    rho = np.abs(spearman(mu, ind.to_numpy(dtype=np.float64)))                          # (L, n_ind)
    act = np.asarray(active, dtype=bool)
    best = np.nanmax(np.where(np.isnan(rho), -1.0, rho), axis=1)
    out = {"alignment": float(best[act].mean()) if act.any() else float("nan")}
    cols = list(ind.columns)
    for g, names in GROUPS.items():
        j = [cols.index(c) for c in names if c in cols]
        block = rho[np.ix_(act, j)] if act.any() and j else np.empty((0, 0))
        out[f"coverage_{g}"] = float(np.nanmax(block)) if block.size and not np.isnan(block).all() else float("nan")
    cov = [out[f"coverage_{g}"] for g in GROUPS]
    out["coverage"] = float(np.mean(cov)) if not any(np.isnan(cov)) else float("nan")
    out.update(ic=float("nan"), ic_t=float("nan"), ic_horizon=None)
    if act.any():
        ic = predictive_ic(mu[:, act], forward_returns(df, X.end_times), period=max(3, min(720, len(X) // 2)))
        t = ic["t_nonoverlap"].abs()
        if t.notna().any():
            (latent, h) = t.idxmax()
            out.update(ic=float(ic.loc[(latent, h), "ic_nonoverlap"]), ic_t=float(ic.loc[(latent, h), "t_nonoverlap"]),
                       ic_horizon=int(h))
    return out


def warm_job(spec: dict) -> float:
    """Compile (or load from the on-disk cache) every kernel a job runs, on a few hundred synthetic candles.

    Run once per machine before the jobs, under the jobs' thread caps, so that workers do not all
    compile the same kernels at once (concurrent first compiles race in Numba's cache). ``spec``
    holds ``threads`` and ``variants``: (dtype, batch_size) pairs. Returns the seconds it took.
    """
    import dataclasses

    from .run import TrainConfig, train_on_candles
    from .synth import SyntheticMarket

    t0 = time.perf_counter()
    with _Caps(spec.get("threads")):
        for dtype, batch in spec["variants"]:
            cfg = TrainConfig(window=8, lookback=16, latent=2, hidden=(4,), epochs=1, batch_size=int(batch),
                              dtype=dtype, val_fraction=0.2)
            n = 16 + int(batch * 1.3) + 64
            df = SyntheticMarket(seed=0, window=8, lookback=16).candles(n, rng=0)
            result = train_on_candles(df, cfg)
            _synthetic_measures(result, 64, classifiers=False)
            real = df.copy()
            real.attrs["betavae_np"] = dict(df.attrs["betavae_np"], source="csv")
            measure(dataclasses.replace(result, config=cfg), real, metric_samples=64)
    return time.perf_counter() - t0


def start_worker(_=None) -> int:
    """Import what a job needs (no kernel is loaded), so a pool worker is ready when its first job comes.

    Submitted next to :func:`warm_job` to the other workers of a fresh pool: they start and import
    while one worker compiles, instead of starting only when the jobs arrive. Returns the process id.
    """
    import numba  # noqa: F401
    import pandas  # noqa: F401

    from . import run  # noqa: F401
    from .analysis import evaluate, ic, proxies  # noqa: F401

    return os.getpid()
