"""Model benchmarks: single-window encode and one training step (forward_train + backward_train).

Standard workload: n_input 160 (32 candles x 5 features), hidden (128, 64), latent 8, relu,
float32. Run with ``pytest bench/bench_model.py``; JIT is warmed before timing.
"""

from __future__ import annotations

import numpy as np
import pytest

import betavae_np as bv

CFG = bv.VAEConfig(n_input=160, hidden=(128, 64), n_latent=8, activation="relu",
                   dtype="float32")


@pytest.fixture(scope="module")
def model():
    return bv.BetaVAE(CFG, rng=0)


def test_bench_encode_single_window(benchmark, model):
    x = np.random.default_rng(0).random(160, dtype=np.float32)
    mu = np.empty(8, np.float32)
    logvar = np.empty(8, np.float32)
    model.encode_into(x, mu, logvar)                       # warm the JIT
    benchmark(model.encode_into, x, mu, logvar)


@pytest.mark.parametrize("batch", [256, 32])
def test_bench_train_step(benchmark, model, batch):
    rng = np.random.default_rng(1)
    X = rng.random((batch, 160), dtype=np.float32)
    eps = rng.standard_normal((batch, 8), dtype=np.float32)
    ws = model.workspace(batch)

    def step():
        model.forward_train(ws, X, eps)
        model.backward_train(ws, 4.0)

    step()                                                 # warm the JIT
    benchmark(step)
    benchmark.extra_info["samples_per_s"] = batch / benchmark.stats.stats.min
