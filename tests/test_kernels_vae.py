"""Heads (reparameterisation), the closed-form KL and the reconstruction kernels against naive twins."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from betavae_np import losses
from betavae_np._kernels.loss import kl_block, recon_block
from betavae_np._kernels.vae import heads_backward, heads_sample
from naive import ref_heads_backward, ref_heads_forward, ref_recon_forward


def heads_forward(Z, S, kl_per_dim, H, hb, eps):
    """The forward phase's sampling followed by the loss stage's KL, as one step runs them."""
    heads_sample(Z, S, H, hb, eps)
    return kl_block(H, S, kl_per_dim)


def recon_forward(Y, b, X, scale):
    """The output bias (forward phase) followed by the loss stage's squared error."""
    Y += b
    lc, lw = losses.BetaVAE().codes()
    return recon_block(lc, lw, Y, X, scale, np.zeros(1, Y.dtype), np.zeros(0), np.zeros(0))


def _no_add(B, L, dtype):
    return np.zeros((B, 3 * L), dtype), False

DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return dict(rtol=2e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


def _heads_inputs(rng, B, L, dtype):
    H = rng.normal(size=(B, 2 * L)).astype(dtype)
    hb = rng.normal(size=2 * L).astype(dtype)
    eps = rng.normal(size=(B, L)).astype(dtype)
    return H, hb, eps


@given(B=st.integers(1, 9), L=st.integers(1, 6), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**31))
def test_heads_forward_matches_naive(B, L, dtype, seed):
    rng = np.random.default_rng(seed)
    H, hb, eps = _heads_inputs(rng, B, L, dtype)
    H0, hb0, eps0 = H.copy(), hb.copy(), eps.copy()
    Z, S = np.empty((B, L), dtype), np.empty((B, L), dtype)
    kl_per_dim = np.full(L, np.nan)
    kl = heads_forward(Z, S, kl_per_dim, H, hb, eps)
    z, s, mu, logvar, kl_ref = ref_heads_forward(H0, hb0, eps0)
    np.testing.assert_allclose(Z, z, **_tol(dtype), err_msg="z")
    np.testing.assert_allclose(S, s, **_tol(dtype), err_msg="s")
    np.testing.assert_allclose(H[:, :L], mu, **_tol(dtype), err_msg="mu")
    np.testing.assert_allclose(H[:, L:], logvar, **_tol(dtype), err_msg="logvar")
    np.testing.assert_allclose(kl_per_dim, kl_ref, **_tol(dtype), err_msg="kl_per_dim")
    assert kl == pytest.approx(kl_ref.sum(), rel=1e-5, abs=1e-6)
    np.testing.assert_array_equal(hb, hb0)
    np.testing.assert_array_equal(eps, eps0)


@given(B=st.integers(1, 9), L=st.integers(1, 6), dtype=st.sampled_from(DTYPES),
       beta=st.sampled_from([0.0, 1.0, 50.0]), seed=st.integers(0, 2**31))
def test_heads_backward_matches_naive(B, L, dtype, beta, seed):
    rng = np.random.default_rng(seed)
    H, hb, eps = _heads_inputs(rng, B, L, dtype)
    Z, S = np.empty((B, L), dtype), np.empty((B, L), dtype)
    heads_forward(Z, S, np.empty(L), H, hb, eps)
    dZ = rng.normal(size=(B, L)).astype(dtype)
    ins = [a.copy() for a in (dZ, H, S, eps)]
    dH = np.full((B, 2 * L), np.nan, dtype)
    dhb = np.full(2 * L, np.nan, dtype)
    heads_backward(dH, dhb, dZ, H, S, eps, beta, 1.0 / B, *_no_add(B, L, dtype))
    ref = ref_heads_backward(ins[0].astype(float), ins[1][:, :L].astype(float),
                             ins[1][:, L:].astype(float), ins[3].astype(float), beta, B)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(dH[:, :L], ref[:, :L], **tol, err_msg="dmu")
    np.testing.assert_allclose(dH[:, L:], ref[:, L:], **tol, err_msg="dlogvar")
    np.testing.assert_allclose(dhb, ref.sum(axis=0), **tol, err_msg="db heads")
    for a, a0 in zip((dZ, H, S, eps), ins):
        np.testing.assert_array_equal(a, a0)


def test_kl_and_its_gradient_are_exactly_zero_at_the_prior():
    B, L = 4, 3
    H = np.zeros((B, 2 * L))
    Z, S, kl_per_dim = np.empty((B, L)), np.empty((B, L)), np.empty(L)
    eps = np.zeros((B, L))
    kl = heads_forward(Z, S, kl_per_dim, H, np.zeros(2 * L), eps)
    assert kl == 0.0
    assert np.all(kl_per_dim == 0.0)
    dH, dhb = np.empty((B, 2 * L)), np.empty(2 * L)
    heads_backward(dH, dhb, np.zeros((B, L)), H, S, eps, 50.0, 1.0 / B, *_no_add(B, L, float))
    assert np.all(dH == 0.0), "dmu/dlogvar of the KL at mu=0, logvar=0"
    assert np.all(dhb == 0.0)


def test_reparameterisation_scales_noise_by_exp_half_logvar():
    # logvar = 2 -> std = e (not e^2, the classic exp(logvar) bug)
    H = np.array([[1.0, 2.0]])
    Z, S = np.empty((1, 1)), np.empty((1, 1))
    heads_forward(Z, S, np.empty(1), H, np.zeros(2), np.array([[1.0]]))
    assert Z[0, 0] == pytest.approx(1.0 + np.e, rel=1e-14)
    assert S[0, 0] == pytest.approx(np.e, rel=1e-14)


@given(B=st.integers(1, 9), n=st.integers(1, 17), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**31))
def test_recon_forward_matches_naive(B, n, dtype, seed):
    rng = np.random.default_rng(seed)
    Y = rng.normal(size=(B, n)).astype(dtype)
    b = rng.normal(size=n).astype(dtype)
    X = rng.normal(size=(B, n)).astype(dtype)
    Y0, b0, X0 = Y.copy(), b.copy(), X.copy()
    recon = recon_forward(Y, b, X, 1.0 / B)
    g_ref, recon_ref = ref_recon_forward(Y0.astype(float), b0.astype(float), X0.astype(float),
                                         1.0 / B)
    np.testing.assert_allclose(Y, g_ref, **_tol(dtype), err_msg="dx_hat")
    assert recon == pytest.approx(recon_ref, rel=1e-5)
    np.testing.assert_array_equal(b, b0)
    np.testing.assert_array_equal(X, X0)
