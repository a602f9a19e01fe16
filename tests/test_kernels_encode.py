"""The single-window encoder kernel against the naive forward pass."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import betavae_np as bv
from betavae_np._kernels.encode import encode_one
from naive import ref_vae_forward

ACTS = ["relu", "tanh", "elu", "leaky_relu"]


def _scratch(model):
    return np.zeros(model._n_scratch, model.dtype)


@given(n_input=st.integers(1, 23), hidden=st.lists(st.integers(1, 13), max_size=3),
       n_latent=st.integers(1, 5), act=st.sampled_from(ACTS),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**31))
def test_encode_one_matches_naive_forward(n_input, hidden, n_latent, act, dtype, seed):
    cfg = bv.VAEConfig(n_input=n_input, hidden=tuple(hidden), n_latent=n_latent,
                       activation=act, dtype=dtype)
    model = bv.BetaVAE(cfg, rng=seed)
    rng = np.random.default_rng(seed)
    model.params[:] = rng.normal(size=model.params.size) * 0.5   # non-zero biases too
    x = rng.normal(size=n_input).astype(dtype)
    x0, p0 = x.copy(), model.params.copy()
    mu, logvar = np.empty(n_latent, dtype), np.empty(n_latent, dtype)
    code = encode_one(mu, logvar, _scratch(model), x, model.params, model._enc_table, model._act)
    assert code == 0
    named = {k: v.astype(np.float64) for k, v in model.named_parameters().items()}
    f = ref_vae_forward(named, x[None, :].astype(np.float64), np.zeros((1, n_latent)), act,
                        len(hidden))
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == "float32" else dict(rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(mu, f["mu"][0], **tol, err_msg="mu")
    np.testing.assert_allclose(logvar, f["logvar"][0], **tol, err_msg="logvar")
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(model.params, p0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_encode_one_reports_non_finite_input_and_writes_nothing(bad):
    model = bv.BetaVAE(bv.VAEConfig(n_input=6, hidden=(4,), n_latent=2))
    x = np.ones(6, np.float32)
    x[3] = bad
    mu = np.full(2, 7.0, np.float32)
    lv = np.full(2, 7.0, np.float32)
    assert encode_one(mu, lv, _scratch(model), x, model.params, model._enc_table, model._act) == 1
    assert np.all(mu == 7.0) and np.all(lv == 7.0)


def test_encode_one_reports_size_mismatch():
    model = bv.BetaVAE(bv.VAEConfig(n_input=6, hidden=(4,), n_latent=2))
    mu = np.empty(2, np.float32)
    lv = np.empty(2, np.float32)
    code = encode_one(mu, lv, _scratch(model), np.ones(5, np.float32), model.params,
                      model._enc_table, model._act)
    assert code == 2
    code = encode_one(np.empty(3, np.float32), np.empty(3, np.float32), _scratch(model),
                      np.ones(6, np.float32), model.params, model._enc_table, model._act)
    assert code == 2


def test_encode_one_refuses_a_scratch_shorter_than_two_layer_outputs():
    model = bv.BetaVAE(bv.VAEConfig(n_input=6, hidden=(9,), n_latent=2))
    mu = np.full(2, 7.0, np.float32)
    lv = np.full(2, 7.0, np.float32)
    short = np.zeros(model._n_scratch - 1, np.float32)
    code = encode_one(mu, lv, short, np.ones(6, np.float32), model.params, model._enc_table,
                      model._act)
    assert code == 2 and np.all(mu == 7.0) and np.all(lv == 7.0)
