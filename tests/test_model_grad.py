"""Gradients of the beta-VAE loss: against the naive backward and central finite differences.

Every named parameter and the input ``X`` are checked in float64 for relu/tanh/elu, depths 0-2,
several latent sizes and beta in {0, 1, 50}. Relu has a kink at 0: examples whose pre-activations
come within 1e-3 of it are discarded (``assume``) rather than hidden behind a loose tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import betavae_np as bv
from naive import central_diff, ref_vae_forward, ref_vae_loss_and_grad

ACTS = ["relu", "tanh", "elu"]


def _setup(n_input, hidden, n_latent, act, seed, B, dtype="float64"):
    cfg = bv.VAEConfig(n_input=n_input, hidden=tuple(hidden), n_latent=n_latent,
                       activation=act, dtype=dtype)
    model = bv.BetaVAE(cfg, rng=seed)
    rng = np.random.default_rng(seed)
    model.params[:] += rng.normal(size=model.params.size) * 0.1   # non-zero biases
    X = rng.normal(size=(B, n_input)).astype(dtype)
    eps = rng.normal(size=(B, n_latent)).astype(dtype)
    return model, X, eps


def _far_from_kinks(model, X, eps, act, n_hidden):
    if act != "relu" or n_hidden == 0:
        return True
    named = model.named_parameters()
    f = ref_vae_forward(named, X, eps, act, n_hidden)
    u = f["enc_u"] + f["dec_u"]
    return min(np.abs(a).min() for a in u) > 1e-3


shapes = dict(n_input=st.integers(1, 5), hidden=st.lists(st.integers(1, 5), max_size=2),
              n_latent=st.integers(1, 3), act=st.sampled_from(ACTS),
              beta=st.sampled_from([0.0, 1.0, 50.0]), B=st.integers(1, 4),
              seed=st.integers(0, 2**31))


@given(**shapes)
def test_loss_and_grad_matches_finite_differences(n_input, hidden, n_latent, act, beta, B,
                                                  seed):
    model, X, eps = _setup(n_input, hidden, n_latent, act, seed, B)
    assume(_far_from_kinks(model, X, eps, act, len(hidden)))
    X0, eps0, p0 = X.copy(), eps.copy(), model.params.copy()
    parts, grads, dX = model.loss_and_grad(X, eps, beta, return_dX=True)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(eps, eps0)
    np.testing.assert_array_equal(model.params, p0)

    def loss():
        return model.loss(X, eps, beta).total

    assert parts.total == pytest.approx(loss(), rel=1e-12, abs=1e-12)
    # central differences carry a rounding error of about eps * |loss| / h (h = 1e-6): ~6e-6
    # for a loss of 6e4, which hypothesis does draw
    atol = 1e-6 + 1e-9 * abs(parts.total)
    for name, view in model.named_parameters().items():
        num = central_diff(loss, view)
        np.testing.assert_allclose(grads[name], num, rtol=1e-5, atol=atol,
                                   err_msg=f"d{name} ({act}, hidden={hidden}, beta={beta})")
    num = central_diff(loss, X)
    np.testing.assert_allclose(dX, num, rtol=1e-5, atol=atol,
                               err_msg=f"dX ({act}, hidden={hidden}, beta={beta})")


@given(**shapes, dtype=st.sampled_from(["float32", "float64"]))
def test_loss_and_grad_matches_naive_backward(n_input, hidden, n_latent, act, beta, B, seed,
                                              dtype):
    model, X, eps = _setup(n_input, hidden, n_latent, act, seed, B, dtype)
    assume(_far_from_kinks(model, X.astype(float), eps.astype(float), act, len(hidden)))
    parts, grads, dX = model.loss_and_grad(X, eps, beta, return_dX=True)
    named = {k: v.astype(np.float64) for k, v in model.named_parameters().items()}
    total, recon, kl, kl_per_dim, g_ref, dX_ref = ref_vae_loss_and_grad(
        named, X.astype(float), eps.astype(float), beta, act, len(hidden))
    rtol, atol = (2e-3, 2e-4) if dtype == "float32" else (1e-10, 1e-12)
    assert parts.recon == pytest.approx(recon, rel=rtol, abs=atol)
    assert parts.kl == pytest.approx(kl, rel=rtol, abs=atol)
    assert parts.total == pytest.approx(total, rel=rtol, abs=atol)
    np.testing.assert_allclose(parts.kl_per_dim, kl_per_dim, rtol=rtol, atol=atol)
    assert list(grads) == list(model.named_parameters())
    for name, g in grads.items():
        scale = max(1.0, float(np.abs(g_ref[name]).max()))
        np.testing.assert_allclose(g, g_ref[name], rtol=rtol, atol=atol * scale,
                                   err_msg=f"d{name}")
    np.testing.assert_allclose(dX, dX_ref, rtol=rtol, atol=atol * max(1.0, np.abs(dX_ref).max()),
                               err_msg="dX")


@pytest.mark.parametrize("hidden", [(), (6,), (7, 5)])
def test_backward_train_fills_model_grads_like_loss_and_grad(hidden):
    model, X, eps = _setup(9, hidden, 3, "tanh", 3, 8)
    _, grads = model.loss_and_grad(X, eps, 2.0)
    assert np.all(model.grads == 0.0), "loss_and_grad must leave model.grads alone"
    ws = model.workspace(8)
    model.grads[:] = np.nan                             # backward_train overwrites, never adds
    model.forward_train(ws, X, eps)
    model.backward_train(ws, 2.0)
    for name, g in model.named_gradients().items():
        np.testing.assert_allclose(g, grads[name], rtol=1e-12, atol=1e-14, err_msg=f"d{name}")


def test_workspace_serves_smaller_batches_with_leading_rows():
    model, X, eps = _setup(9, (6, 4), 3, "elu", 5, 10)
    ws = model.workspace(10)
    model.forward_train(ws, X, eps)
    for B in (3, 10, 1):
        recon, kl = model.forward_train(ws, X[:B], eps[:B])
        model.backward_train(ws, 1.5)
        parts, grads = model.loss_and_grad(X[:B], eps[:B], 1.5)
        assert recon == pytest.approx(parts.recon, rel=1e-12)
        assert kl == pytest.approx(parts.kl, rel=1e-12)
        np.testing.assert_allclose(ws.kl_per_dim, parts.kl_per_dim, rtol=1e-12)
        for name, g in model.named_gradients().items():
            np.testing.assert_allclose(g, grads[name], rtol=1e-12, atol=1e-14,
                                       err_msg=f"d{name} (B={B})")


def test_loss_in_chunks_equals_one_batch():
    model, X, eps = _setup(7, (5,), 2, "relu", 11, 23)
    whole = model.loss_and_grad(X, eps, 3.0)[0]
    chunked = model.loss(X, eps, 3.0, chunk=5)
    assert chunked.total == pytest.approx(whole.total, rel=1e-12)
    assert chunked.kl == pytest.approx(whole.kl, rel=1e-12)
    np.testing.assert_allclose(chunked.kl_per_dim, whole.kl_per_dim, rtol=1e-12)


def test_workspace_exposes_mu_and_logvar_of_the_last_batch():
    model, X, eps = _setup(9, (6,), 3, "relu", 2, 5)
    ws = model.workspace(8)
    model.forward_train(ws, X, eps)
    mu, logvar = model.encode(X)
    np.testing.assert_allclose(ws.mu, mu, rtol=1e-12)
    np.testing.assert_allclose(ws.logvar, logvar, rtol=1e-12)
