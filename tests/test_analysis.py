"""Interpretation: measures, traversals, latent statistics, evaluation, naming of dimensions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import betavae_np as bv
from betavae_np.analysis.interpret import interpret
from betavae_np.analysis.latent import latent_stats
from betavae_np.analysis.measures import available_measures, window_measures
from betavae_np.analysis.traversal import parse_dims, traverse
from betavae_np.analysis.latent import LatentStats
from betavae_np.exceptions import ConfigError, InputError
from betavae_np.records import ModelRecords, WindowStats, Windowing

FEATURES = ("open", "high", "low", "close", "volume")
WINDOW = 6


def ref_measures(w):
    """Straight from the definitions, one window (window, 5) at a time."""
    o, h, l, c, v = (w[:, i] for i in range(5))
    t = np.arange(len(c))
    rng = (np.max([o, h, l, c], axis=0) - np.min([o, h, l, c], axis=0)).sum()
    return {"level": c.mean(), "trend": np.polyfit(t, c, 1)[0], "volatility": (h - l).mean(), "volume": v.mean(),
            "momentum": c[-1] - c[0], "body": np.abs(c - o).sum() / rng if rng > 0 else 0.0}


@given(hnp.arrays(np.float64, (3, WINDOW * 5), elements=st.floats(0, 1)))
def test_measures_match_definitions(X):
    before = X.copy()
    got = window_measures(X, WINDOW, FEATURES)
    for i in range(X.shape[0]):
        ref = ref_measures(X[i].reshape(WINDOW, 5))
        for name, value in ref.items():
            assert got[name][i] == pytest.approx(value, abs=1e-9), name
    np.testing.assert_array_equal(X, before)


def test_measures_need_their_features():
    assert available_measures(("close",)) == ["level", "trend", "momentum"]
    assert available_measures(FEATURES) == ["level", "trend", "volatility", "volume", "momentum", "body"]


@pytest.mark.parametrize("dims,expected", [(None, [0, 1, 2]), ("0,2", [0, 2]), (1, [1]), ([2, 0], [2, 0])])
def test_parse_dims_accepts_forms(dims, expected):
    assert parse_dims(dims, 3) == expected


@pytest.mark.parametrize("dims,words", [("0,3", "out of range"), ("a", "integers"), ([1, 1], "twice"), ([], "empty")])
def test_parse_dims_rejects_bad(dims, words):
    with pytest.raises(ConfigError, match=words):
        parse_dims(dims, 3)


def _model(n_latent=3, dtype="float64", hidden=(), rng=0):
    cfg = bv.VAEConfig(n_input=WINDOW * 5, hidden=hidden, n_latent=n_latent, activation="tanh", dtype=dtype)
    return bv.BetaVAE(cfg, rng=rng)


def test_traverse_moves_only_the_chosen_dimension():
    m = _model()
    x = np.random.default_rng(1).uniform(0, 1, WINDOW * 5)
    grid = traverse(m, x, dims=[1], span=2.0, steps=5, scale=[1.0, 0.5, 1.0])
    assert grid.shape == (1, 5, WINDOW * 5)
    mu, _ = m.encode(x[None])
    for s, off in enumerate(np.linspace(-2, 2, 5)):
        z = mu[0].copy()
        z[1] += off * 0.5
        np.testing.assert_allclose(grid[0, s], m.decode(z[None])[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grid[0, 2], m.reconstruct(x[None])[0], rtol=1e-12, atol=1e-12)


def test_traverse_rejects_bad_arguments():
    m = _model()
    x = np.zeros(WINDOW * 5)
    with pytest.raises(ConfigError):
        traverse(m, x, span=0)
    with pytest.raises(ConfigError):
        traverse(m, x, steps=1)
    with pytest.raises(InputError):
        traverse(m, np.zeros(7))


def test_latent_stats_match_direct_computation():
    m = _model(n_latent=4)
    X = np.random.default_rng(2).uniform(0, 1, (1000, WINDOW * 5))
    s = latent_stats(m, X, batch=128)  # several blocks: the running update must equal one pass
    mu, logvar = m.encode(X)
    np.testing.assert_allclose(s.mean, mu.mean(0), rtol=1e-10)
    np.testing.assert_allclose(s.sd, mu.std(0), rtol=1e-9)
    kl = (-0.5 * (1 + logvar - mu ** 2 - np.exp(logvar))).mean(0)
    np.testing.assert_allclose(s.kl, kl, rtol=1e-10)
    assert s.active == [bool(v) for v in mu.var(0) > 0.01] and s.n == 1000


def _trend_model():
    """A hand-built model: latent 0 tilts the closes (a trend), latent 1 is dead, latent 2 lifts volume."""
    m = _model(n_latent=3)
    p = m.named_parameters()
    for name in p:
        p[name][...] = 0.0
    t = np.arange(WINDOW) - (WINDOW - 1) / 2
    base = np.tile([0.5, 0.6, 0.4, 0.5, 0.3], WINDOW)  # a flat window
    p["out.b"][...] = base
    for k in range(WINDOW):
        p["out.W"][0, k * 5 + 0] = 0.02 * t[k]   # open follows close
        p["out.W"][0, k * 5 + 1] = 0.02 * t[k]
        p["out.W"][0, k * 5 + 2] = 0.02 * t[k]
        p["out.W"][0, k * 5 + 3] = 0.02 * t[k]
        p["out.W"][2, k * 5 + 4] = -0.05          # raising z2 lowers volume
    p["mu.W"][0, 0] = 1.0  # the encoder uses inputs so that mu varies for dims 0 and 2
    p["mu.W"][4, 2] = 1.0
    p["logvar.b"][...] = -4.0
    m.records = ModelRecords(
        windowing=Windowing(window=WINDOW, features=FEATURES, lookback=WINDOW),
        latent_stats=LatentStats(mean=[0, 0, 0], sd=[1, 1, 1], kl=[1.0, 0.0, 1.0], active=[True, False, True]),
        # in real windows momentum spreads much wider than the slope (it sums window-1 steps)
        window_stats=WindowStats(measure_scale={"level": 1.0, "trend": 0.01, "momentum": 0.2, "volatility": 0.05,
                                                "volume": 0.1, "body": 0.1}, mean_window=()))
    return m


def test_interpret_names_the_factor_each_dimension_controls():
    m = _trend_model()
    x = np.tile([0.5, 0.6, 0.4, 0.5, 0.3], WINDOW)
    res = interpret(m, x, span=3, steps=7)
    labels = [r.label for r in res.readings]
    assert labels[0] == "trend +"
    assert labels[1] == "inactive"
    assert labels[2] == "volume -"
    assert res.readings[0].effects["trend"] == pytest.approx(0.02 * 6 / 0.01, rel=1e-9)
    assert res.readings[0].effects["momentum"] == pytest.approx(0.02 * 6 * (WINDOW - 1) / 0.2, rel=1e-9)
    assert res.readings[2].effects["volume"] == pytest.approx(-0.05 * 6 / 0.1, rel=1e-9)
    assert res.grid.shape == (3, 7, WINDOW * 5)
    d = res.to_dict()
    assert d["dimensions"][0]["profile"]["trend"][3] == pytest.approx(0.02 * x[0], abs=1e-12)  # at mu(x)


def test_interpret_calls_a_dimension_that_moves_nothing_weak():
    m = _trend_model()
    m.records.latent_stats.active = [True, True, True]
    res = interpret(m, np.full(WINDOW * 5, 0.5), dims=[1])
    assert res.readings[0].label == "weak"


def test_evaluate_reports_baseline_and_collapse():
    m = _trend_model()
    X = np.random.default_rng(3).uniform(0, 1, (400, WINDOW * 5))
    rep = bv.evaluate(m, X, train_mean=X.mean(0))
    xhat = m.reconstruct(X)
    assert rep.recon == pytest.approx(((X - xhat) ** 2).sum(1).mean(), rel=1e-9)
    assert rep.baseline == pytest.approx(((X - X.mean(0)) ** 2).sum(1).mean(), rel=1e-9)
    # R^2 from the windows themselves, not from the report's own recon/baseline fields
    r2 = 1 - ((X - xhat) ** 2).sum() / ((X - X.mean(0)) ** 2).sum()
    assert r2 < 0 and rep.r2 == pytest.approx(r2, rel=1e-9)
    assert any("worse than predicting the mean" in w for w in rep.warnings)
    # a model that reconstructs better than the mean: R^2 in (0, 1], no such warning
    Y = xhat + 0.01 * (X - xhat)
    rep2 = bv.evaluate(m, Y, train_mean=X.mean(0))
    r2_y = 1 - ((Y - m.reconstruct(Y)) ** 2).sum() / ((Y - X.mean(0)) ** 2).sum()
    assert 0 < r2_y <= 1 and rep2.r2 == pytest.approx(r2_y, rel=1e-9)
    assert not any("worse than predicting the mean" in w for w in rep2.warnings)
    dead = _model(n_latent=2)
    for v in dead.named_parameters().values():
        v[...] = 0.0
    rep = bv.evaluate(dead, X)
    assert rep.collapsed and rep.n_active == 0 and "posterior collapse" in rep.warnings[0]
    assert rep.baseline_kind.startswith("mean of the evaluated windows")


def test_evaluate_rejects_wrong_width():
    with pytest.raises(InputError, match="expects"):
        bv.evaluate(_model(), np.zeros((3, 7)))


def test_workflow_train_on_real_sample_gives_active_named_factors():
    """The whole pipeline on real candles: a short run already uses several dimensions."""
    from betavae_np.workflow import reference_window, train_on_candles

    df = bv.data.load_sample().iloc[:3000]
    res = train_on_candles(df, window=16, lookback=64, latent=4, hidden=(32,), epochs=15, batch_size=64,
                           beta=0.5, seed=1)
    rec = res.model.records
    assert sum(rec.latent_stats.active) >= 2
    assert rec.split.train_end < rec.split.validation_start
    assert res.history.val_recon[-1] < res.history.val_recon[0]
    x, end = reference_window(res.model)
    assert end == df.index[-1].isoformat() and x.shape == (16 * 11,)   # the default input: both (5 + 6 per candle)
    interp = bv.interpret(res.model, x)
    assert any(r.dominant not in ("inactive", "weak") for r in interp.readings)


def test_interpret_names_a_second_measure_moved_nearly_as_much():
    m = _trend_model()
    m.records.window_stats.measure_scale["momentum"] = 0.06  # now momentum moves 0.6/0.06 = 10 sd vs trend's 12
    res = interpret(m, np.full(WINDOW * 5, 0.5), dims=[0])
    r = res.readings[0]
    assert r.label == "trend +, momentum +" and r.also[0] == ("momentum", 1)
    assert res.to_dict()["dimensions"][0]["also"] == [{"measure": "momentum", "sign": 1}]
