"""History's per-epoch beta-TCVAE terms on the validation set (val_mi, val_tc, val_dimwise_kl)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import betavae_np as bv
from betavae_np import losses
from betavae_np.fitting import VALIDATION_SEED

CFG = bv.VAEConfig(n_input=10, hidden=(8,), n_latent=3, dtype="float64")
TC = losses.TCVAE(alpha=0.5, beta=3.0, gamma=2.0, estimator="mss")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    return rng.random((300, 10)), rng.random((150, 10))


@pytest.fixture(scope="module")
def tc_run(data):
    X, X_val = data
    model = bv.BetaVAE(CFG, rng=0)
    hist = bv.fit(model, X, epochs=3, batch_size=64, rng=0, loss=TC, validation=X_val)
    return model, hist


def test_history_val_tc_terms_match_the_estimators_on_the_validation_chunks(data, tc_run):
    _, X_val = data
    model, hist = tc_run
    assert len(hist.val_mi) == len(hist.val_tc) == len(hist.val_dimwise_kl) == 3
    eps = np.random.default_rng(VALIDATION_SEED).standard_normal((len(X_val), CFG.n_latent))
    spec = model.loss_spec                                 # dataset_size = 300, filled in by fit
    assert spec.dataset_size == 300
    sums = np.zeros(3)
    for lo in range(0, len(X_val), 64):                    # chunks of the batch size: 64, 64, 22
        parts, _ = model.loss_and_grad(X_val[lo:lo + 64], eps[lo:lo + 64], spec.beta, spec)
        sums += np.array([parts.mi, parts.tc, parts.dimwise_kl]) * len(X_val[lo:lo + 64])
    mi, tc, dw = sums / len(X_val)
    assert hist.val_mi[-1] == pytest.approx(mi, rel=1e-9, abs=1e-12)
    assert hist.val_tc[-1] == pytest.approx(tc, rel=1e-9, abs=1e-12)
    assert hist.val_dimwise_kl[-1] == pytest.approx(dw, rel=1e-9, abs=1e-12)


def test_history_val_total_is_the_tcvae_objective_of_the_val_terms(tc_run):
    _, hist = tc_run
    for e in range(hist.epochs):
        want = (hist.val_recon[e] + TC.alpha * hist.val_mi[e] + hist.beta[e] * hist.val_tc[e]
                + TC.gamma * hist.val_dimwise_kl[e])
        assert hist.val_total[e] == pytest.approx(want, rel=1e-12)
    assert hist.val_mi != hist.train_mi                    # measured on other data


def test_history_val_tc_terms_round_trip_through_json_and_a_model_file(tc_run, tmp_path):
    model, hist = tc_run
    d = json.loads(json.dumps(hist.to_dict()))
    assert {"val_mi", "val_tc", "val_dimwise_kl"} <= set(d)
    assert bv.History.from_dict(d) == hist
    from dataclasses import replace

    from betavae_np.records import records_of
    model.records = replace(records_of(model), history=hist)
    bv.save(model, tmp_path / "tc.npz")
    back = bv.load(tmp_path / "tc.npz").records.history
    assert back.val_tc == hist.val_tc and back.val_mi == hist.val_mi


def test_history_val_tc_terms_are_none_for_betavae_and_without_validation(data):
    X, X_val = data
    hist = bv.fit(bv.BetaVAE(CFG, rng=0), X, epochs=1, batch_size=64, rng=0, validation=X_val)
    assert hist.val_mi is None and hist.val_tc is None and hist.val_dimwise_kl is None
    assert not {"val_mi", "val_tc", "val_dimwise_kl", "train_mi"} & set(hist.to_dict())
    hist = bv.fit(bv.BetaVAE(CFG, rng=0), X, epochs=1, batch_size=64, rng=0, loss=TC)
    assert len(hist.train_tc) == 1 and hist.val_tc is None and hist.val_total is None


def test_history_from_a_dict_written_before_the_val_tc_terms():
    old = {"train_total": [2.0], "train_recon": [1.5], "train_kl": [0.5], "val_total": [2.1],
           "val_recon": [1.6], "val_kl": [0.5], "beta": [3.0], "kl_per_dim": [[0.2, 0.3]], "steps": [5],
           "seconds": [0.1], "train_mi": [0.1], "train_tc": [0.2], "train_dimwise_kl": [0.3],
           "stopped_early": False, "best_epoch": 0}
    h = bv.History.from_dict(old)
    assert h.train_tc == [0.2] and h.val_tc is None
    assert h.to_dict() == old
