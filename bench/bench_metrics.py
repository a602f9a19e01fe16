"""Metric speed: MIG and the unsupervised measures on 10,000 x 10 codes; one model's full synthetic
evaluation; synthetic observations per second (pytest-benchmark).

Run with ``pytest bench/bench_metrics.py`` (not collected by the default test run). Targets: MIG and
the unsupervised measures well under 1 s; the full evaluation (MIG, DCI, SAP, FactorVAE and BetaVAE
scores, unsupervised, all at disentanglement_lib's default sizes) of the default architecture
under a minute on 2 cores. The ``seconds`` per metric of the full run, its total and the load
average around it (the machine may be shared) land in ``extra_info`` and are printed (``-s``).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import betavae_np as bv
from betavae_np import metrics
from betavae_np.metrics.report import synthetic_report
from betavae_np.synth import SyntheticMarket


@pytest.fixture(scope="module")
def codes():
    rng = np.random.default_rng(0)
    f = np.stack([rng.integers(0, k, 10_000) for k in (7, 5, 5, 5, 5)], axis=1)
    z = np.c_[f + rng.normal(0, 0.3, f.shape), rng.normal(size=(10_000, 5))]
    return z, f


def test_bench_mig(benchmark, codes):
    z, f = codes
    value = benchmark(metrics.mig, z, f)
    assert 0.0 <= value <= 1.0
    print(f"\nMIG on 10,000 x 10 codes: {benchmark.stats.stats.min * 1e3:.1f} ms (best)")


def test_bench_unsupervised(benchmark, codes):
    z, _ = codes

    def run():
        return (metrics.gaussian_total_correlation(z), metrics.mean_pairwise_mi(z), metrics.active_units(z))

    benchmark(run)
    print(f"\nTC + mean pairwise MI + active units on 10,000 x 10: {benchmark.stats.stats.min * 1e3:.1f} ms (best)")


def test_bench_synthetic_observations(benchmark):
    m = SyntheticMarket(seed=0)
    m.sample(100, 0)  # warm the JIT
    f = m.sample_factors(16_384, np.random.default_rng(0))
    benchmark.pedantic(m.sample_observations_from_factors, args=(f, 1), rounds=3, iterations=1)
    rate = f.shape[0] / benchmark.stats.stats.min
    benchmark.extra_info["observations_per_s"] = rate
    print(f"\nsynthetic observations: {rate / 1e3:.0f} k windows/s (lookback 128, {os.cpu_count()} cores)")


def test_bench_full_synthetic_evaluation(benchmark):
    pytest.importorskip("sklearn")
    m = SyntheticMarket(seed=0)
    _, X = m.sample(4096, 0)
    model = bv.BetaVAE(bv.VAEConfig(n_input=160, hidden=(128, 64), n_latent=8), rng=0)
    bv.fit(model, X, epochs=3, batch_size=256, rng=0)
    represent = lambda W: model.encode(W)[0]
    synthetic_report(m, represent, rng=1, num_train=200, num_test=100, factor_vae=False,
                     beta_vae=False)  # warm: imports, JIT
    load = os.getloadavg()
    cpu = time.process_time()
    out = benchmark.pedantic(synthetic_report, args=(m, represent), kwargs={"rng": 0}, rounds=1, iterations=1)
    cpu = time.process_time() - cpu
    total = benchmark.stats.stats.min
    info = {"seconds": out["seconds"], "total": total, "process_cpu_seconds": cpu, "cores": os.cpu_count(),
            "load_before": load[0], "load_after": os.getloadavg()[0]}
    benchmark.extra_info.update(info)
    print("\nfull synthetic evaluation: " + ", ".join(f"{k} {v:.1f} s" for k, v in out["seconds"].items())
          + f"; total {total:.1f} s (target < 60 s), process CPU {cpu:.1f} s on {info['cores']} cores; "
          f"1-min load {info['load_before']:.2f} before, {info['load_after']:.2f} after")
