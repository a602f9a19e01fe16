"""Training throughput on the standard workload (run: ``pytest bench/bench_train.py``).

Windows 32x5 (n_input 160), hidden (128, 64), latent 8, relu, beta 4, Adam(1e-3), float32,
65,536 synthetic windows, batch 256 and 32, one epoch of the real ``bv.fit`` per round (JIT warmed
first), on the compiled engine and on the numpy engine (``np.matmul`` per layer) in the same
run. Samples/s are reported in ``extra_info``; 2 threads are requested through the usual
environment variables before NumPy loads.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import betavae_np as bv  # noqa: E402
from betavae_np.nn.engine import compiled_available  # noqa: E402

N_WINDOWS = 65_536


@pytest.fixture(scope="module")
def windows():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(N_WINDOWS, 160)), axis=1)
    lo, hi = walk.min(1, keepdims=True), walk.max(1, keepdims=True)
    return ((walk - lo) / (hi - lo)).astype(np.float32)


def _model():
    return bv.BetaVAE(bv.VAEConfig(n_input=160, hidden=(128, 64), n_latent=8, activation="relu",
                                   dtype="float32"), rng=0)


@pytest.mark.parametrize("engine", ["compiled", "numpy"])
@pytest.mark.parametrize("batch", [256, 32])
def test_bench_fit_epoch(benchmark, windows, batch, engine, monkeypatch):
    if engine == "compiled" and not compiled_available():
        pytest.skip("numpy's CBLAS is not callable from compiled code here")
    monkeypatch.setenv("BETAVAE_NP_ENGINE", engine)
    model = _model()
    schedule = bv.schedules.Constant(4.0)
    bv.fit(model, windows[:4 * batch], epochs=1, batch_size=batch, schedule=schedule)  # JIT warm-up
    rng = np.random.default_rng(1)

    def epoch():
        return bv.fit(model, windows, epochs=1, batch_size=batch, optimizer=bv.Adam(1e-3),
                      schedule=schedule, rng=rng)

    hist = benchmark.pedantic(epoch, rounds=3, iterations=1, warmup_rounds=0)
    assert np.isfinite(hist.train_total[-1])
    benchmark.extra_info["samples_per_s"] = round(N_WINDOWS / benchmark.stats.stats.min)
    benchmark.extra_info["us_per_step"] = round(benchmark.stats.stats.min / -(-N_WINDOWS // batch) * 1e6, 1)


def test_bench_adam_step(benchmark):
    model = _model()
    opt = bv.Adam(1e-3)
    model.grads[:] = np.random.default_rng(0).normal(size=model.grads.size).astype(np.float32) * 1e-3
    opt.step(model.params, model.grads)
    benchmark(opt.step, model.params, model.grads)
    benchmark.extra_info["n_params"] = int(model.params.size)
