"""Both training engines at the standard layer sizes, against the naive NumPy reference.

``fit`` runs whichever engine ``BETAVAE_NP_ENGINE`` (or the machine) selects: CI runs this file
once on the default engine and once with ``BETAVAE_NP_ENGINE=numpy``, the engine macOS, Windows
and MKL users get. The numpy engine's transposed input-gradient branch (``nn/model.py``, batches up
to ``_TRANSPOSED_DX_MAX_B`` on large layers) is checked explicitly on both sides of its threshold.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import betavae_np as bv
from betavae_np import schedules as S
from betavae_np.nn import engine
from betavae_np.nn import numpy_engine
from naive import ref_vae_loss_and_grad

#: The standard workload's layer sizes (window 32 x 5 features).
REAL = dict(n_input=160, hidden=(128, 64), n_latent=8, activation="tanh", dtype="float64")


def _engines():
    return ["numpy", pytest.param("compiled", marks=pytest.mark.skipif(
        not engine.compiled_available(), reason="the compiled engine is not available here"))]


def _scatter(model, named_grads):
    """The named gradients as one flat vector in ``model.params`` order."""
    flat = bv.BetaVAE(model.config, rng=0)
    for name, view in flat.named_parameters().items():
        view[...] = named_grads[name]
    return flat.params.copy()


@pytest.mark.parametrize("eng", _engines())
@pytest.mark.parametrize("B", [16, 32, 33, 64])
def test_standard_size_gradients_match_naive_on_both_sides_of_the_transposed_branch(eng, B):
    model = bv.BetaVAE(bv.VAEConfig(**REAL), rng=0)
    rng = np.random.default_rng(B)
    X, eps = rng.random((B, 160)), rng.standard_normal((B, 8))
    ws = model.workspace(B, engine=eng)
    assert ws.engine == eng
    model.forward_train(ws, X, eps)
    model.backward_train(ws, 4.0)
    # the numpy engine took the transposed dX branch exactly when the batch is small
    took = bool(ws.__dict__.get("_dx_t"))
    assert took == (eng == "numpy" and B <= numpy_engine._TRANSPOSED_DX_MAX_B)
    *_, g_ref, _ = ref_vae_loss_and_grad(model.named_parameters(), X, eps, 4.0, "tanh", 2)
    for name, g in model.named_gradients().items():
        np.testing.assert_allclose(g, g_ref[name], rtol=1e-10, atol=1e-12, err_msg=f"d{name}")


@pytest.mark.parametrize("B", [32, 64])
def test_fit_at_standard_size_equals_adam_on_the_naive_gradient(B):
    """Two epochs of fit (full and partial batches) == the same steps on the naive gradients."""
    want = os.environ.get("BETAVAE_NP_ENGINE", "").strip().lower()
    cfg = bv.VAEConfig(**REAL)
    model, ref = bv.BetaVAE(cfg, rng=0), bv.BetaVAE(cfg, rng=0)
    if want in ("numpy", "compiled"):
        assert model.workspace(B).engine == want     # the engine CI asked for is the one that runs
    n = 2 * B + 5
    X = np.random.default_rng(5).random((n, 160))
    bv.fit(model, X, epochs=2, batch_size=B, optimizer=bv.Adam(1e-3), schedule=S.Constant(2.0), rng=7)

    rng, opt = np.random.default_rng(7), bv.Adam(1e-3)
    perm = np.arange(n, dtype=np.int64)
    named = ref.named_parameters()
    for _ in range(2):
        rng.shuffle(perm)
        E = rng.standard_normal((n, 8))              # one draw per epoch = the per-step stream
        for lo in range(0, n, B):
            rows = perm[lo:lo + B]
            *_, g, _ = ref_vae_loss_and_grad(named, X[rows], E[lo:lo + B], 2.0, "tanh", 2)
            opt.step(ref.params, _scatter(ref, g))
    assert not np.array_equal(ref.params, bv.BetaVAE(cfg, rng=0).params)
    np.testing.assert_allclose(model.params, ref.params, rtol=1e-9, atol=1e-10)
