"""BetaVAE public API: buffers and names, encode/decode, validation errors, initialisation."""

from __future__ import annotations

import numpy as np
import pytest

import betavae_np as bv
from betavae_np.exceptions import ConfigError, InputError

CFG = bv.VAEConfig(n_input=20, hidden=(16, 8), n_latent=3)


@pytest.fixture
def model():
    return bv.BetaVAE(CFG, rng=0)


def test_betavae_named_views_share_the_flat_buffers(model):
    names = list(model.named_parameters())
    assert names == ["enc.0.W", "enc.0.b", "enc.1.W", "enc.1.b", "mu.W", "mu.b", "logvar.W",
                     "logvar.b", "dec.0.W", "dec.0.b", "dec.1.W", "dec.1.b", "out.W", "out.b"]
    shapes = {k: v.shape for k, v in model.named_parameters().items()}
    assert shapes["enc.0.W"] == (20, 16) and shapes["mu.W"] == (8, 3)
    assert shapes["dec.0.W"] == (3, 8) and shapes["dec.1.W"] == (8, 16)
    assert shapes["out.W"] == (16, 20)
    assert sum(v.size for v in model.named_parameters().values()) == model.params.size
    assert model.params.dtype == model.grads.dtype == np.float32
    for name, v in model.named_parameters().items():
        assert np.shares_memory(v, model.params), name
    for name, v in model.named_gradients().items():
        assert np.shares_memory(v, model.grads), name
    model.named_parameters()["logvar.b"][:] = 5.0
    assert np.count_nonzero(model.params == 5.0) == 3


def test_betavae_same_seed_same_params_and_generator_accepted():
    a = bv.BetaVAE(CFG, rng=7)
    b = bv.BetaVAE(CFG, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, bv.BetaVAE(CFG, rng=8).params)


@pytest.mark.parametrize("act, rule", [("relu", "he"), ("elu", "he"), ("tanh", "glorot")])
def test_betavae_init_scales_follow_he_and_glorot(act, rule):
    cfg = bv.VAEConfig(n_input=400, hidden=(300, 200), n_latent=50, activation=act,
                       dtype="float64")
    named = bv.BetaVAE(cfg, rng=1).named_parameters()
    for name, v in named.items():
        if name.endswith(".b"):
            assert np.all(v == 0.0), name
            continue
        n_in, n_out = v.shape
        hidden = name.startswith(("enc.", "dec."))
        std = np.sqrt(2.0 / n_in) if (hidden and rule == "he") else np.sqrt(2.0 / (n_in + n_out))
        assert v.std() == pytest.approx(std, rel=0.05), name
        assert abs(v.mean()) < 0.1 * std, name


def test_encode_single_window_equals_batch_row():
    for dtype in ("float32", "float64"):
        m = bv.BetaVAE(bv.VAEConfig(n_input=20, hidden=(16, 8), n_latent=3, dtype=dtype), rng=2)
        X = np.random.default_rng(0).normal(size=(5, 20)).astype(dtype)
        mu, logvar = m.encode(X)
        assert mu.shape == logvar.shape == (5, 3) and mu.dtype == np.dtype(dtype)
        tol = 1e-5 if dtype == "float32" else 1e-12
        for i in range(5):
            m1, l1 = m.encode(X[i])
            assert m1.shape == (3,)
            np.testing.assert_allclose(m1, mu[i], rtol=tol, atol=tol, err_msg=f"{dtype} mu")
            np.testing.assert_allclose(l1, logvar[i], rtol=tol, atol=tol, err_msg=dtype)
            mo, lo = np.empty(3, dtype), np.empty(3, dtype)
            m.encode_into(X[i], mo, lo)
            np.testing.assert_array_equal(mo, m1)
            np.testing.assert_array_equal(lo, l1)


def test_encode_casts_float64_input_for_a_float32_model(model):
    X = np.random.default_rng(1).normal(size=(4, 20))
    mu, _ = model.encode(X)
    np.testing.assert_allclose(mu, model.encode(X.astype(np.float32))[0], rtol=1e-6)
    assert model.encode(X[0])[0].dtype == np.float32


def test_decode_and_reconstruct_shapes(model):
    Z = np.zeros((6, 3), np.float32)
    assert model.decode(Z).shape == (6, 20)
    assert model.decode(Z[0]).shape == (20,)
    np.testing.assert_allclose(model.decode(Z[0]), model.decode(Z)[0], rtol=1e-6)
    X = np.random.default_rng(2).random((4, 20))
    np.testing.assert_allclose(model.reconstruct(X), model.decode(model.encode(X)[0]), rtol=1e-6)


def test_loss_with_zero_noise_matches_reconstruct(model):
    X = np.random.default_rng(3).random((6, 20)).astype(np.float32)
    parts = model.loss(X, np.zeros((6, 3)), 0.0)
    recon = ((model.reconstruct(X) - X) ** 2).sum(axis=1).mean()
    assert parts.recon == pytest.approx(recon, rel=1e-5)
    assert parts.total == parts.recon
    assert parts.kl == pytest.approx(parts.kl_per_dim.sum(), rel=1e-12)


@pytest.mark.parametrize("X, eps, word", [
    (np.zeros((4, 19)), np.zeros((4, 3)), "X must have shape"),
    (np.zeros(20), np.zeros((1, 3)), "X must have shape"),
    (np.zeros((4, 20)), np.zeros((3, 3)), "one row per row"),
    (np.zeros((4, 20)), np.zeros((4, 2)), "eps must have shape"),
    (np.zeros((4, 20), np.int64), np.zeros((4, 3)), "floating-point"),
    (np.full((4, 20), np.nan), np.zeros((4, 3)), "NaN"),
    (np.zeros((4, 20)), np.full((4, 3), np.inf), "eps contains"),
    (np.zeros((0, 20)), np.zeros((0, 3)), "n >= 1"),
])
def test_loss_and_grad_rejects_bad_inputs(model, X, eps, word):
    with pytest.raises(InputError, match=word):
        model.loss_and_grad(X, eps, 1.0)
    with pytest.raises(InputError, match=word):
        model.loss(X, eps, 1.0)


@pytest.mark.parametrize("beta", [-1.0, float("nan"), float("inf"), "big", None])
def test_loss_and_grad_rejects_bad_beta(model, beta):
    with pytest.raises(ConfigError, match="beta"):
        model.loss_and_grad(np.zeros((2, 20)), np.zeros((2, 3)), beta)


def test_encode_rejects_bad_windows(model):
    with pytest.raises(InputError, match="shape"):
        model.encode(np.zeros(19))
    with pytest.raises(InputError, match="NaN"):
        model.encode(np.full(20, np.nan, np.float32))
    with pytest.raises(InputError, match="NaN"):
        model.encode(np.full((2, 20), np.inf))
    with pytest.raises(InputError, match="floating"):
        model.encode(np.zeros(20, bool))
    with pytest.raises(InputError, match="shape"):
        model.decode(np.zeros((2, 4)))


def test_encode_into_rejects_wrong_buffers(model):
    x = np.zeros(20, np.float32)
    ok = np.empty(3, np.float32)
    with pytest.raises(InputError, match="mu_out"):
        model.encode_into(x, np.empty(3, np.float64), ok)
    with pytest.raises(InputError, match="logvar_out"):
        model.encode_into(x, ok, np.empty(4, np.float32))
    with pytest.raises(InputError, match="x must be"):
        model.encode_into(x.astype(np.float64), ok, ok.copy())
    with pytest.raises(InputError, match="x must be"):
        model.encode_into(np.zeros(21, np.float32), ok, ok.copy())


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_workspace_rejects_bad_batch_size(model, bad):
    with pytest.raises(ConfigError, match="batch_size"):
        model.workspace(bad)


def test_betavae_rejects_non_config():
    with pytest.raises(ConfigError, match="VAEConfig"):
        bv.BetaVAE({"n_input": 3})


def test_metadata_defaults_to_empty_dict_and_lossparts_to_dict(model):
    assert model.metadata == {}
    d = model.loss(np.zeros((2, 20)), np.zeros((2, 3)), 1.0).to_dict()
    assert set(d) == {"total", "recon", "kl", "kl_per_dim"} and len(d["kl_per_dim"]) == 3
