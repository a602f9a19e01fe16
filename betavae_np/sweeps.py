"""Sweeps: many :class:`~betavae_np.train_config.TrainConfig` jobs on any ``concurrent.futures``-style executor.

``bv.sweep(configs, executor=...)`` trains every configuration (in this process, on a process pool
it starts with ``workers=N``, on a ``spawn``/``forkserver`` ``ProcessPoolExecutor`` of yours, or
on a Dask ``Client``), measures each model (:func:`betavae_np.sweep_job.measure`) and returns one row per job. With
``out_dir`` every model is written there under its job key with its configuration, and a rerun with
the same directory skips the finished jobs. :mod:`betavae_np.sweep_elbow` turns the rows into the
mean/spread table and picks beta.

The module is named ``sweeps`` (not ``sweep``) so that the function ``bv.sweep`` is never shadowed
by a module of the same name.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import logging
import os
import time
from typing import Callable, Iterable

from .exceptions import ConfigError, InputError
from .sweep_job import job_key, read_finished, run_job, start_worker, warm_job

__all__ = ["sweep", "grid", "process_pool", "varying_fields", "DASK_WORKER_CONFIG", "dask_training_config"]

log = logging.getLogger(__name__)


def grid(base=None, *, betas=(1.0,), seeds=1, **axes) -> list:
    """The configurations of a sweep: ``base`` with every combination of the values given.

    Parameters
    ----------
    base : TrainConfig, optional
        The fixed settings (default ``TrainConfig()``).
    betas : sequence of float
    seeds : int or sequence of int
        ``3`` means seeds ``base.seed, base.seed + 1, base.seed + 2``.
    **axes : sequence
        More fields to vary (``latent=(4, 8)``, ``anneal=("linear", "warmup")``).

    Returns
    -------
    list of TrainConfig
        Ordered by the axes (betas, then the others in the order given), seeds innermost.
    """
    import itertools

    from .train_config import TrainConfig

    base = TrainConfig() if base is None else base
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"seeds must be at least 1, got {seeds}.")
        seeds = [base.seed + i for i in range(seeds)]
    names = ["beta", *axes, "seed"]
    values = [list(betas), *[list(v) for v in axes.values()], list(seeds)]
    for n, v in zip(names, values):
        if not v:
            raise ConfigError(f"the sweep needs at least one value of {n}.")
    return [dataclasses.replace(base, **dict(zip(names, combo))) for combo in itertools.product(*values)]


def process_pool(workers: int | None = None):
    """A ``ProcessPoolExecutor`` whose workers are started with ``spawn`` (never ``fork``: Numba's
    OpenMP layer is not fork-safe). ``workers`` defaults to the machine's cores."""
    import multiprocessing as mp   # only its "spawn" context is used

    n = workers or os.cpu_count() or 1
    return cf.ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"))


#: Dask settings for workers that run CPU-bound training tasks. With Dask's defaults a worker
#: trained about 11% slower than a pool process (one LocalCluster worker against one spawn worker,
#: same jobs): its statistical profiler samples the task's stack every 10 ms, its event loop ticks
#: every 20 ms and checks memory every 100 ms (each wake-up takes the GIL from the training loop),
#: and ``MALLOC_TRIM_THRESHOLD_`` makes glibc hand small allocations back to the OS. These keep the
#: thread caps of Dask's ``pre-spawn-environ``, turn the profiler off and the ticks down, and also
#: switch off memory spilling/pausing/terminating (a training job holds little memory; note that a
#: runaway job is then not killed) and work stealing (the scheduler's queue already balances the
#: jobs); with them the worker trained at the pool's speed.
DASK_WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1},
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.target": False,
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.pause": False,
    "distributed.worker.memory.terminate": False,
    "distributed.scheduler.work-stealing": False,
}


def dask_training_config():
    """``dask.config.set(DASK_WORKER_CONFIG)``: start a ``LocalCluster`` for training jobs inside it.

    Workers of an existing cluster take the same settings from their own configuration (e.g. the
    environment: ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``, see the README)."""
    import dask

    return dask.config.set(DASK_WORKER_CONFIG)


def varying_fields(configs) -> list:
    """The configuration fields whose values differ between ``configs`` (``beta`` and ``seed`` always)."""
    dicts = [c.to_dict() for c in configs]
    names = list(dicts[0]) if dicts else []
    out = [n for n in names if len({repr(d[n]) for d in dicts}) > 1]
    for must in ("beta", "seed"):
        if must not in out:
            out.append(must)
    return [n for n in names if n in out]


def _fingerprint(df) -> str:
    import numpy as np

    h = hashlib.sha256()
    h.update(np.ascontiguousarray(df.index.asi8).tobytes())
    h.update(",".join(map(str, df.columns)).encode())
    h.update(np.ascontiguousarray(df.to_numpy(dtype=np.float64)).tobytes())
    return h.hexdigest()[:16]


def _is_dask(executor) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed"


def _as_completed(futures):
    futures = list(futures)
    if all(isinstance(f, cf.Future) for f in futures):
        yield from cf.as_completed(futures)
        return
    try:
        from distributed import as_completed
    except ImportError:   # any other futures type: poll
        pending = list(futures)
        while pending:
            done = [f for f in pending if f.done()]
            pending = [f for f in pending if not f.done()]
            yield from done
            if pending and not done:
                time.sleep(0.05)
        return
    yield from as_completed(futures)


def _warm(executor, spec: dict, pool_owned: bool) -> None:
    """Compile the kernels once per machine, under the jobs' thread caps, before the jobs start."""
    if _is_dask(executor):
        info = executor.scheduler_info()
        hosts = {}
        for addr, w in info.get("workers", {}).items():
            hosts.setdefault(w.get("host", addr), addr)
        futs = [executor.submit(warm_job, spec, workers=[a], pure=False, allow_other_workers=False)
                for a in hosts.values()] or [executor.submit(warm_job, spec, pure=False)]
        executor.gather(futs)
        return
    warm = executor.submit(warm_job, spec)
    # a spawn pool starts a worker per submit while none is idle: start the others now, importing only
    # (compiling is left to the one warm job), so they are ready when the jobs arrive
    others = [executor.submit(start_worker) for _ in range(max(0, (spec.get("workers") or 1) - 1))] if pool_owned else []
    warm.result()
    for f in others:
        f.result()


def _error_row(key: str, exc: BaseException) -> dict:
    text = str(exc).strip() or type(exc).__name__
    return {"key": key, "error": f"{type(exc).__name__}: {text}"}


def sweep(configs: Iterable, executor=None, *, workers: int | None = None, out_dir=None, threads: int = 1,
          candles=None, metric_samples: int = 10_000, base_url: str | None = None, cache_dir=None,
          warm: bool = True, retries: int = 2, on_job: Callable[[dict], None] | None = None):
    """Train every configuration, measure each model, and return one row per job.

    Parameters
    ----------
    configs : iterable of TrainConfig (or dicts of its fields)
        The jobs; duplicates run once. :func:`grid` builds the usual beta x seed grid.
    executor : optional
        Anything with ``submit(fn, arg) -> future`` whose futures have ``result()`` (a
        ``ProcessPoolExecutor`` started with ``spawn``/``forkserver``, a Dask ``Client``). None:
        the jobs run one after another in this process, or on a pool of ``workers`` processes.
    workers : int, optional
        With no executor: start a ``spawn`` process pool of this many workers (:func:`process_pool`)
        and shut it down afterwards; if a worker dies, the pool is restarted and the unfinished
        jobs are resubmitted (up to ``retries`` times).
    out_dir : str or PathLike, optional
        Where each job writes ``<key>.npz`` (the model, which records its configuration) and
        ``<key>.json`` (configuration and row). Jobs already finished there are not run again.
    threads : int
        Numba and BLAS threads inside each job on an executor (set inside the task). Give
        ``workers x threads <= cores``. Jobs run in this process keep the current settings.
    candles : pandas.DataFrame, optional
        Train every job on these candles (their ``source``/``symbol``/dates are then unused);
        candles from :meth:`~betavae_np.synth.SyntheticMarket.candles` get the supervised metrics.
    metric_samples : int
        Observations for the supervised metrics on the synthetic market (half as many for testing).
    base_url, cache_dir : optional
        Where Bybit and the candle cache are, for jobs that load their data.
    warm : bool
        Before jobs go to an executor, run one small job per machine that compiles (or loads) every
        kernel, so that workers do not compile the same kernels at once.
    retries : int
        Restarts of a broken pool of our own (``workers``). A Dask scheduler retries the tasks of
        a worker that died by itself (its ``allowed-failures`` setting).
    on_job : callable(dict), optional
        Called with each row as its job finishes (or is found finished, or fails).

    Returns
    -------
    pandas.DataFrame
        One row per job, in the order of ``configs``: ``key``, the varying fields (beta and seed
        always), ``status`` (``done``, ``resumed`` or ``failed``), ``error``, the measures
        (:func:`~betavae_np.sweep_job.measure`), ``windows_trained``, ``train_seconds``, ``model``.
        ``attrs["varying"]`` names the varying fields.

    Notes
    -----
    A job's key is a hash of its full configuration (plus the candles' fingerprint when
    ``candles`` is given), so the same configuration gives the same file name in any sweep. The
    results do not depend on the executor: every job seeds its own run, and the training step's
    split of a batch depends on the batch size only, never on the thread count.
    """
    import pandas as pd

    from .train_config import TrainConfig

    cfgs = []
    for c in configs:
        cfgs.append(TrainConfig.from_dict(c) if isinstance(c, dict) else c)
        if not isinstance(cfgs[-1], TrainConfig):
            raise InputError(f"a sweep takes TrainConfig objects, got {type(c).__name__}.")
    if not cfgs:
        raise InputError("the sweep has no configurations.")
    if executor is not None and workers is not None:
        raise ConfigError("give either an executor or workers, not both.")
    if threads is not None and int(threads) < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}.")
    data = _fingerprint(candles) if candles is not None else None
    measures = {"metric_samples": int(metric_samples)}
    keys, unique = [], {}
    for c in cfgs:
        k = job_key(c.to_dict(), data, measures)
        keys.append(k)
        unique.setdefault(k, c)
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    rows = {}
    varying = varying_fields(cfgs)

    def report(row):
        rows[row["key"]] = row
        if on_job is not None:
            d = unique[row["key"]].to_dict()
            on_job(dict(row, **{f: d[f] for f in varying}))

    pending = []
    for k, c in unique.items():
        old = read_finished(out_dir, k) if out_dir is not None else None
        if old is not None:
            report(dict(old, status="resumed"))
        else:
            pending.append(k)
    specs = {k: {"config": unique[k].to_dict(), "key": k, "out_dir": None if out_dir is None else os.fspath(out_dir),
                 "threads": threads, "candles": candles, "metric_samples": int(metric_samples),
                 "base_url": base_url, "cache_dir": cache_dir} for k in pending}
    if pending:
        if executor is None and workers is None:
            for k in pending:
                try:
                    row = run_job(dict(specs[k], threads=None))
                except Exception as exc:   # a failed job is a row with its error; the rest go on
                    report(dict(_error_row(k, exc), status="failed"))
                else:
                    report(dict(row, status="done"))
        else:
            variants = sorted({(unique[k].dtype, unique[k].batch_size) for k in pending})
            _run_on(executor, workers, specs, pending, report,
                    warm and {"threads": threads, "variants": variants, "workers": workers}, retries)
    return _table(cfgs, keys, rows, pd)


def _run_on(executor, workers, specs, pending, report, warm_spec, retries) -> None:
    from concurrent.futures.process import BrokenProcessPool

    owned = executor is None
    left = list(pending)
    attempt = 0
    while left:
        pool = process_pool(workers) if owned else executor
        try:
            if warm_spec:
                _warm(pool, warm_spec, owned)
                warm_spec = None
            if _is_dask(pool) and specs[left[0]].get("candles") is not None:
                # the candles go to every worker once, not with every task (the task gets them back)
                shared = pool.scatter(specs[left[0]]["candles"], broadcast=True, hash=False)
                specs = {k: dict(v, candles=shared) for k, v in specs.items()}
            futures = {pool.submit(run_job, specs[k]): k for k in left}
            broken = []
            for fut in _as_completed(futures):
                k = futures[fut]
                try:
                    row = fut.result()
                except BrokenProcessPool as exc:
                    if owned and attempt < retries:
                        broken.append(k)
                        continue
                    report(dict(_error_row(k, exc), status="failed"))
                except Exception as exc:   # the job's own error (or the engine's): reported, the rest go on
                    report(dict(_error_row(k, exc), status="failed"))
                else:
                    report(dict(row, status="done"))
            left = [k for k in left if k in broken]
            if left:
                attempt += 1
                log.warning("a sweep worker died; restarting the pool for %d unfinished job(s)", len(left))
        except BaseException:
            if owned:
                pool.shutdown(wait=False, cancel_futures=True)
            else:
                for f in list(locals().get("futures", {})):
                    f.cancel()
            raise
        else:
            if owned:
                pool.shutdown(wait=True)


def _table(cfgs, keys, rows, pd):
    varying = varying_fields(cfgs)
    seen, records = set(), []
    for c, k in zip(cfgs, keys):
        if k in seen:
            continue
        seen.add(k)
        d = c.to_dict()
        rec = {"key": k}
        rec.update({f: (tuple(d[f]) if isinstance(d[f], list) else d[f]) for f in varying})
        row = dict(rows.get(k, {"error": "not run", "status": "failed"}))
        row.pop("key", None)
        rec["status"] = row.pop("status", "done")
        rec["error"] = row.pop("error", None)
        rec.update(row)
        records.append(rec)
    out = pd.DataFrame.from_records(records)
    out.attrs["varying"] = varying
    if "latent" not in varying:
        out.attrs["latent"] = cfgs[0].latent
    return out
