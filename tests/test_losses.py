"""Loss family: the likelihoods and the beta-TCVAE estimators against brute force, their exact
gradients (float64 central differences, every parameter and the input), the MSS weights against
their definition, and the specs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import betavae_np as bv
from betavae_np import losses
from betavae_np._kernels.tc import log_weight
from betavae_np.exceptions import ConfigError
from naive import (central_diff, ref_mss_weights, ref_recon_gaussian, ref_tc_terms,
                   ref_vae_forward)

LOSSES = {
    "sse": losses.BetaVAE(),
    "gaussian": losses.BetaVAE(recon="gaussian", sigma=0.3),
    "learned": losses.BetaVAE(recon="gaussian", learn_sigma=True),
    "tc-mws": losses.TCVAE(alpha=0.7, beta=3.0, gamma=1.3, estimator="mws", dataset_size=50),
    "tc-mss": losses.TCVAE(alpha=1.5, beta=2.0, gamma=0.4, estimator="mss", dataset_size=9),
    "tc-mss-gauss": losses.TCVAE(alpha=1.0, beta=5.0, gamma=1.0, estimator="mss", dataset_size=7,
                                 recon="gaussian", learn_sigma=True),
}


def _setup(n_input, hidden, n_latent, act, seed, B, loss, dtype="float64"):
    cfg = bv.VAEConfig(n_input=n_input, hidden=tuple(hidden), n_latent=n_latent,
                       activation=act, dtype=dtype)
    model = bv.BetaVAE(cfg, rng=seed, loss=loss)
    rng = np.random.default_rng(seed)
    model.params[:] += rng.normal(size=model.params.size) * 0.1   # non-zero biases, log-sigmas
    X = rng.normal(size=(B, n_input)).astype(dtype)
    eps = rng.normal(size=(B, n_latent)).astype(dtype)
    return model, X, eps


def _far_from_kinks(model, X, eps, act, n_hidden):
    if act != "relu" or n_hidden == 0:
        return True
    f = ref_vae_forward(model.named_parameters(), X, eps, act, n_hidden)
    return min(np.abs(a).min() for a in f["enc_u"] + f["dec_u"]) > 1e-3


@given(name=st.sampled_from(sorted(LOSSES)), n_input=st.integers(1, 4),
       hidden=st.lists(st.integers(1, 4), max_size=2), n_latent=st.integers(1, 3),
       act=st.sampled_from(["tanh", "elu", "relu"]), B=st.integers(1, 5),
       beta=st.sampled_from([0.0, 1.0, 4.0]), seed=st.integers(0, 2**31))
def test_every_loss_gradient_matches_finite_differences(name, n_input, hidden, n_latent, act, B,
                                                        beta, seed):
    loss = LOSSES[name]
    model, X, eps = _setup(n_input, hidden, n_latent, act, seed, B, loss)
    assume(_far_from_kinks(model, X, eps, act, len(hidden)))
    X0, eps0, p0 = X.copy(), eps.copy(), model.params.copy()
    parts, grads, dX = model.loss_and_grad(X, eps, beta, loss, return_dX=True)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(eps, eps0)
    np.testing.assert_array_equal(model.params, p0)

    def objective():
        return model.loss(X, eps, beta, loss=loss).total

    assert parts.total == pytest.approx(objective(), rel=1e-12, abs=1e-12)
    atol = 1e-6 + 1e-9 * abs(parts.total)
    for pname, view in model.named_parameters().items():
        np.testing.assert_allclose(grads[pname], central_diff(objective, view), rtol=1e-5,
                                   atol=atol, err_msg=f"d{pname} ({name}, {act}, B={B})")
    np.testing.assert_allclose(dX, central_diff(objective, X), rtol=1e-5, atol=atol,
                               err_msg=f"dX ({name}, {act}, B={B})")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_compiled_engine_matches_the_numpy_engine_on_split_batches(name):
    """B = 70 runs as two chunks on the compiled engine: the loss stage sees the whole batch."""
    loss = LOSSES[name]
    if isinstance(loss, losses.TCVAE):
        loss = dataclasses.replace(loss, dataset_size=500)
    model, X, eps = _setup(12, (9, 5), 3, "tanh", 1, 70, loss)
    out = {}
    for eng in ("compiled", "numpy"):
        ws = model.workspace(70, eng, loss=loss)
        model.forward_train(ws, X, eps)
        model.backward_train(ws, 2.5)
        out[eng] = (ws.terms[:5].copy(), model.grads.copy())
    np.testing.assert_allclose(out["compiled"][0], out["numpy"][0], rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(out["compiled"][1], out["numpy"][1], rtol=1e-9, atol=1e-12)


@given(B=st.integers(1, 7), L=st.integers(1, 4), N=st.integers(7, 60),
       estimator=st.sampled_from(["mws", "mss"]), seed=st.integers(0, 2**31))
def test_tc_estimators_match_brute_force(B, L, N, estimator, seed):
    loss = losses.TCVAE(estimator=estimator, dataset_size=N)
    model, X, eps = _setup(5, (4,), L, "tanh", seed, B, loss)
    parts, _ = model.loss_and_grad(X, eps, 1.0, loss)
    f = ref_vae_forward(model.named_parameters(), X, eps, "tanh", 1)
    mi, tc, dw = ref_tc_terms(f["mu"], f["logvar"], f["z"], N, estimator)
    assert parts.mi == pytest.approx(mi, rel=1e-10, abs=1e-10)
    assert parts.tc == pytest.approx(tc, rel=1e-10, abs=1e-10)
    assert parts.dimwise_kl == pytest.approx(dw, rel=1e-10, abs=1e-10)
    # the three terms sum to the Monte Carlo KL: mean log q(z|x) - log p(z)
    mc = np.mean((-0.5 * (f["logvar"] + eps ** 2) + 0.5 * f["z"] ** 2).sum(axis=1))
    assert parts.mi + parts.tc + parts.dimwise_kl == pytest.approx(mc, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("B,N", [(2, 2), (2, 10), (5, 5), (8, 1000), (64, 60_000)])
def test_mss_weights_follow_their_definition(B, N):
    W = np.exp([[log_weight(i, k, B, float(N), True) for k in range(B)] for i in range(B)])
    np.testing.assert_allclose(W, ref_mss_weights(B, N), rtol=1e-12)
    np.testing.assert_allclose(W.sum(axis=1), 1.0, rtol=1e-12)     # each row is a distribution
    np.testing.assert_allclose(np.diag(W), 1.0 / N, rtol=1e-12)    # own component on the diagonal
    if B > 2 and N != B - 1:
        # not the reference code's layout, which puts 1/N down the first column
        assert not np.allclose(W[:, 0], 1.0 / N)


def test_mws_weights_are_one_over_n_b():
    W = np.exp([[log_weight(i, k, 6, 100.0, False) for k in range(6)] for i in range(6)])
    np.testing.assert_allclose(W, 1.0 / 600, rtol=1e-12)


def test_gaussian_recon_is_the_negative_log_likelihood_in_nats():
    loss = losses.BetaVAE(recon="gaussian", sigma=0.25)
    model, X, eps = _setup(6, (5,), 2, "tanh", 3, 4, loss)
    parts = model.loss(X, eps, 1.0, loss=loss)
    f = ref_vae_forward(model.named_parameters(), X, eps, "tanh", 1)
    ref = ref_recon_gaussian(X, f["x_hat"], np.log(0.25)).mean()
    assert parts.recon == pytest.approx(ref, rel=1e-12)
    learned = losses.BetaVAE(recon="gaussian", learn_sigma=True)
    model, X, eps = _setup(6, (5,), 2, "tanh", 3, 4, learned)
    ls = model.named_parameters()["out.logsigma"]
    assert ls.shape == (6,)
    parts = model.loss(X, eps, 1.0)
    f = ref_vae_forward(model.named_parameters(), X, eps, "tanh", 1)
    assert parts.recon == pytest.approx(ref_recon_gaussian(X, f["x_hat"], ls).mean(), rel=1e-12)


def test_logsigma_parameter_exists_only_when_sigma_is_learned():
    cfg = bv.VAEConfig(n_input=6, hidden=(5,), n_latent=2)
    plain = bv.BetaVAE(cfg, rng=0)
    learned = bv.BetaVAE(cfg, rng=0, loss=losses.BetaVAE(recon="gaussian", learn_sigma=True))
    assert "out.logsigma" not in plain.named_parameters()
    assert list(learned.named_parameters())[-1] == "out.logsigma"
    assert learned.n_params == plain.n_params + 6
    np.testing.assert_array_equal(learned.params[:plain.n_params], plain.params)  # same init draws
    assert np.all(learned.named_parameters()["out.logsigma"] == 0.0)              # sigma = 1


def test_fit_trains_the_learned_sigma_towards_the_residual_scale():
    rng = np.random.default_rng(0)
    X = (rng.random((512, 8)) * np.linspace(0.02, 1.0, 8)).astype(np.float32)
    loss = losses.BetaVAE(recon="gaussian", learn_sigma=True)
    model = bv.BetaVAE(bv.VAEConfig(n_input=8, hidden=(16,), n_latent=2), rng=0, loss=loss)
    bv.fit(model, X, epochs=40, batch_size=64, optimizer=bv.Adam(1e-2), rng=0, loss=loss)
    sigma = np.exp(model.named_parameters()["out.logsigma"])
    assert sigma[0] < sigma[-1], "features with small residuals get a small sigma"
    assert np.all(sigma < 1.0)


def test_fit_with_tcvae_fills_in_the_dataset_size_and_records_the_terms():
    rng = np.random.default_rng(1)
    X = rng.random((300, 10)).astype(np.float32)
    model = bv.BetaVAE(bv.VAEConfig(n_input=10, hidden=(8,), n_latent=3), rng=0)
    hist = bv.fit(model, X, epochs=2, batch_size=64, rng=0, loss=losses.TCVAE(beta=4.0,
                                                                             estimator="mss"))
    assert model.loss_spec.dataset_size == 300
    assert len(hist.train_mi) == len(hist.train_tc) == len(hist.train_dimwise_kl) == 2
    assert all(np.isfinite(hist.train_total))



@pytest.mark.parametrize("engine", ["compiled", "numpy"])
def test_backward_with_another_beta_than_the_forward_expected_gives_that_betas_gradient(engine):
    """A TC-VAE forward computes the gradient pass for ws.tc_beta; a backward with another beta
    (a schedule that did not tell the workspace) reruns it: the same bits as a forward told
    that beta, and the workspace keeps the last beta."""
    loss = losses.TCVAE(alpha=0.5, beta=1.0, gamma=2.0, estimator="mss", dataset_size=200)
    model, X, eps = _setup(6, (5,), 3, "tanh", 3, 64, loss, dtype="float32")
    ws = model.workspace(64, engine, loss=loss)
    assert ws.tc_beta == 1.0
    assert np.isnan(model.workspace(64, engine, loss=losses.BetaVAE()).tc_beta)
    got = []
    for told, beta in ((1.0, 3.0), (3.0, 3.0), (3.0, 0.5), (0.5, 0.5)):
        ws.tc_beta = told
        model.forward_train(ws, X, eps)
        model.backward_train(ws, beta)
        assert ws.tc_beta == beta
        got.append(model.grads.copy())
    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_array_equal(got[2], got[3])
    assert np.any(got[1] != got[3])


def test_fit_telling_the_workspace_each_steps_tc_weight_changes_only_the_speed(monkeypatch):
    """fit sets ws.tc_beta to the scheduled weight before each forward (the rows are weighted
    with it once); without that, every backward of a warm-up reruns the rows: same parameters,
    bit for bit."""
    from betavae_np.nn.workspace import Workspace
    X = np.random.default_rng(2).random((96, 6)).astype(np.float32)
    loss = losses.TCVAE(alpha=1.0, beta=3.0, gamma=1.0, estimator="mss")
    sched = bv.schedules.Linear(beta=3.0, warmup=1.0)

    def train():
        model = bv.BetaVAE(bv.VAEConfig(n_input=6, hidden=(5,), n_latent=2), rng=0)
        bv.fit(model, X, epochs=2, batch_size=32, rng=0, loss=loss, schedule=sched)
        return model.params.copy()
    prop, seen = Workspace.tc_beta, []

    def record(ws, b):
        seen.append(b)
        prop.fset(ws, b)
    monkeypatch.setattr(Workspace, "tc_beta", property(prop.fget, record))
    told = train()
    assert len(set(seen)) == len(seen) == 6, "one new weight per step of the warm-up"
    monkeypatch.setattr(Workspace, "tc_beta", property(prop.fget, lambda ws, b: None))
    untold = train()
    np.testing.assert_array_equal(told, untold)

def test_specs_round_trip_and_refuse_bad_values():
    for loss in LOSSES.values():
        assert losses.from_dict(loss.to_dict()) == loss
    with pytest.raises(ConfigError, match="recon must be one of"):
        losses.BetaVAE(recon="l1")
    with pytest.raises(ConfigError, match="sigma"):
        losses.BetaVAE(sigma=0.5)
    with pytest.raises(ConfigError, match="either sigma"):
        losses.BetaVAE(recon="gaussian", sigma=0.5, learn_sigma=True)
    with pytest.raises(ConfigError, match="estimator"):
        losses.TCVAE(estimator="iwae")
    with pytest.raises(ConfigError, match="unknown field"):
        losses.from_dict({"name": "tcvae", "delta": 1})
    model = bv.BetaVAE(bv.VAEConfig(n_input=4, hidden=(3,), n_latent=2))
    with pytest.raises(ConfigError, match="MSS estimator needs dataset_size"):
        model.loss_and_grad(np.zeros((5, 4)), np.zeros((5, 2)), 1.0,
                            losses.TCVAE(estimator="mss", dataset_size=3))
    with pytest.raises(ConfigError, match="learns sigma"):
        model.loss_and_grad(np.zeros((2, 4)), np.zeros((2, 2)), 1.0,
                            losses.BetaVAE(recon="gaussian", learn_sigma=True))


def test_losses_is_reachable_as_bv_losses_in_a_fresh_interpreter():
    import subprocess
    import sys
    code = "import betavae_np as bv; print(bv.losses.TCVAE(beta=6.0, estimator='mss').name)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-1000:]
    assert res.stdout.strip() == "tcvae"
