"""Sweep throughput: a 6-beta x 3-seed sweep on the bundled sample, three ways.

Run: ``python bench/bench_sweep.py [--epochs 2] [--betas 0.25,0.5,1,2,4,8] [--seeds 3]``.

* ``sequential``: one process trains the configurations one after another with two threads
  (Numba and BLAS), ``bv.sweep(configs)`` with no executor;
* ``workers2``: ``bv.sweep(configs, workers=2)``, a spawn pool of two processes x one thread;
* ``dask_local2``: the same jobs on a Dask ``LocalCluster`` of two process workers x one thread,
  started as ``sweep --dask local`` starts it (``betavae_np.sweeps.dask_training_config``).

Throughput is windows/s summed over jobs (training windows x epochs run, over the wall time of the
whole sweep, from submitting the first job to the last row, kernels warmed first). Every mode writes
to its own fresh directory, so nothing is resumed. Prints one JSON object with the hardware.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

sys.path.insert(0, os.path.dirname(__file__))


def _run(name, configs, candles, **kw):
    from betavae_np.sweeps import sweep

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        table = sweep(configs, out_dir=d, candles=candles, **kw)
        wall = time.perf_counter() - t0
    ok = table[table["status"] == "done"]
    windows = int(ok["windows_trained"].sum())
    return {"mode": name, "jobs": len(table), "failed": int((table["status"] == "failed").sum()),
            "wall_s": round(wall, 2), "windows": windows, "windows_per_s": round(windows / wall, 1),
            "train_only_windows_per_s": round(windows / float(ok["train_seconds"].sum()), 1),
            "recon": [round(float(v), 6) for v in table["recon"]]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--betas", default="0.25,0.5,1,2,4,8")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--modes", default="sequential,workers2,dask_local2", help="Comma-separated modes to run.")
    a = p.parse_args(argv)

    import numba

    import betavae_np as bv
    from betavae_np.sweep_job import warm_job
    from betavae_np.sweeps import grid
    from conftest import hardware_info

    candles = bv.data.load_sample()
    # min-max inputs and the squared error: the model the README's figures were measured with
    configs = grid(bv.TrainConfig(epochs=a.epochs, features="minmax", recon="sse"), betas=[float(b) for b in a.betas.split(",")], seeds=a.seeds)
    numba.set_num_threads(2)
    warm_job({"threads": 2, "variants": [("float32", 256)]})          # this process's kernels
    out = {"hardware": hardware_info(), "epochs": a.epochs, "jobs": len(configs), "results": []}
    modes = a.modes.split(",")
    if "sequential" in modes:
        out["results"].append(_run("sequential", configs, candles))
    if "workers2" in modes:
        out["results"].append(_run("workers2", configs, candles, workers=2, threads=1))
    if "dask_local2" in modes:
        from distributed import Client, LocalCluster

        from betavae_np.sweeps import dask_training_config

        with dask_training_config(), LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                  dashboard_address=None, silence_logs=40) as cluster, \
                Client(cluster) as client:
            out["results"].append(_run("dask_local2", configs, candles, executor=client, threads=1))
    res = {r["mode"]: r for r in out["results"]}
    out["same_results"] = len({tuple(r["recon"]) for r in out["results"]}) == 1
    if "sequential" in res and "workers2" in res:
        out["workers2_vs_sequential"] = round(res["workers2"]["windows_per_s"] / res["sequential"]["windows_per_s"], 3)
    if "dask_local2" in res and "workers2" in res:
        out["dask_overhead_vs_workers2"] = round(res["dask_local2"]["wall_s"] / res["workers2"]["wall_s"] - 1, 3)
    for r in out["results"]:
        r.pop("recon")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
