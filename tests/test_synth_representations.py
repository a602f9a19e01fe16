"""The synthetic market's observations in every input representation (minmax, returns, both)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import betavae_np as bv
from betavae_np._kernels.synth import VOL_NOISE, synth_candles
from betavae_np.data import Windower, frame_from_arrays
from betavae_np.exceptions import ConfigError
from betavae_np.sources import synthetic_market
from betavae_np.synth import OBS_CHUNK, SyntheticMarket
from naive import ref_return_windows, ref_synth_candles, ref_windows

REPRESENTATIONS = ("minmax", "returns", "both")
OHLCV = ("open", "high", "low", "close", "volume")
#: Tiny samples for the supervised metrics, so the end-to-end tests take seconds (rough numbers).
TINY = {"num_train": 300, "num_test": 200, "fv_num_train": 40, "fv_num_eval": 20, "fv_num_variance_estimate": 300}


def _stream_candles(m, factors, seed):
    """The candles behind ``m.sample_observations_from_factors(factors, seed)``, with the random
    stream written out here: per chunk of OBS_CHUNK series a normal e, a uniform u and a normal z,
    each (chunk, lookback), in this order."""
    rng = np.random.default_rng(seed)
    params, bounds = m._observation_params(m.factor_values(factors))
    n, L = factors.shape[0], m.windower.lookback
    out = np.empty((n, L, 5))
    for a in range(0, n, OBS_CHUNK):
        k = min(OBS_CHUNK, n - a)
        e, u, z = rng.standard_normal((k, L)), rng.random((k, L)), rng.standard_normal((k, L))
        synth_candles(out[a:a + k], e, u, z, params[a:a + k], bounds, np.log(100.0))
    return out


@pytest.mark.parametrize("representation", REPRESENTATIONS)
def test_synth_observations_are_the_windowers_last_window_in_every_representation(representation):
    """Bit for bit the last row of Windower.transform on each observation's own series of
    lookback candles (two chunks of the stream; lookback candles give exactly one window)."""
    m = SyntheticMarket(seed=0, representation=representation)
    f = m.sample_factors(OBS_CHUNK + 40, np.random.default_rng(0))
    X = m.sample_observations_from_factors(f, np.random.default_rng(1))
    candles = _stream_candles(m, f, 1)
    w = Windower(32, lookback=128, representation=representation)
    np.testing.assert_array_equal(X, w.last_windows(candles))
    for i in (0, 7, OBS_CHUNK, OBS_CHUNK + 39):
        rows = w.transform(frame_from_arrays(np.arange(128) * 3_600_000, candles[i]))
        assert rows.shape[0] == 1
        np.testing.assert_array_equal(X[i], rows[0])


@pytest.mark.parametrize("representation", ["returns", "both"])
@pytest.mark.parametrize("reference", [True, False])
def test_synth_observations_match_the_naive_definition(representation, reference):
    """Against the naive candles and the naive returns (and min-max) windows from their definitions."""
    W, L = 8, 24
    m = SyntheticMarket(seed=0, window=W, lookback=L, representation=representation, reference=reference)
    f = m.sample_factors(40, np.random.default_rng(3))
    X = m.sample_observations_from_factors(f, 4)
    rng = np.random.default_rng(4)
    e, u, z = rng.standard_normal((40, L)), rng.random((40, L)), rng.standard_normal((40, L))
    params, bounds = m._observation_params(m.factor_values(f))
    candles = ref_synth_candles(e, u, z, params, bounds, np.log(100.0), VOL_NOISE)
    for i in range(40):
        rt = ref_return_windows(candles[i], W, L)[-1].reshape(W, 6)
        if representation == "both":
            mm = ref_windows(candles[i], W, L, OHLCV, ends=[L - 1])[0].reshape(W, 5)
            rt = np.concatenate([mm, rt], axis=1)
        np.testing.assert_allclose(X[i], rt.reshape(-1), rtol=0, atol=1e-5, err_msg=f"series {i}")


def test_synth_observation_shapes_per_representation():
    for rep, per_candle in (("minmax", 5), ("returns", 6), ("both", 11)):
        m = SyntheticMarket(seed=1, representation=rep)
        _, X = m.sample(100, 0)
        assert m.representation == rep and f"representation={rep!r}" in repr(m)
        assert X.shape == (100, 32 * per_candle) == (100, *m.observation_shape) and X.dtype == np.float32
        assert np.isfinite(X).all() and X.min() >= (0.0 if rep == "minmax" else -5.0) and X.max() <= (
            1.0 if rep == "minmax" else 5.0)
    assert m.sample_observations_from_factors(np.zeros((0, 5), dtype=np.int64), 0).shape == (0, 32 * 11)


def test_synth_minmax_stream_ignores_the_new_setting():
    """An explicit minmax market gives the default market's windows (the compiled min-max path)."""
    f = SyntheticMarket(seed=0).sample_factors(300, 2)
    np.testing.assert_array_equal(SyntheticMarket(seed=0).sample_observations_from_factors(f, 5),
                                  SyntheticMarket(seed=0, representation="minmax").sample_observations_from_factors(f, 5))


def test_synth_returns_rejects_what_its_windower_rejects():
    with pytest.raises(ConfigError, match="representation"):
        SyntheticMarket(representation="prices")
    with pytest.raises(ConfigError, match="lookback > window"):
        SyntheticMarket(representation="returns", features=("close", "volume"))
    with pytest.raises(ConfigError, match="lookback > window"):
        SyntheticMarket(representation="both", window=16, lookback=16)


@pytest.mark.parametrize("representation", ["returns", "both"])
def test_synthetic_market_of_a_model_follows_its_representation(representation):
    """sources.synthetic_market(prov, windowing) windows as the model's windower does."""
    from betavae_np.records import Windowing

    w = Windower(16, lookback=48, interval="60", representation=representation)
    prov = {"source": "synthetic", "seed": 2}
    want = SyntheticMarket(seed=2, window=16, lookback=48, representation=representation).sample(500, 9)
    for windowing in (w, Windowing.from_windower(w)):
        market = synthetic_market(prov, windowing)
        assert market.representation == representation and market.observation_shape == (w.n_input,)
        got = market.sample(500, 9)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.fixture
def tiny_sizes(monkeypatch):
    import importlib

    ev = importlib.import_module("betavae_np.analysis.evaluate")
    monkeypatch.setitem(ev.SUPERVISED_SIZES, "quick", TINY)


@pytest.fixture
def no_sklearn(monkeypatch):
    """DCI and SAP left out (their boosted trees take seconds even on tiny samples; they read only
    codes and factors, so the representation does not reach them)."""
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)


@pytest.fixture(scope="module")
def returns_result():
    """A returns model trained one epoch on the synthetic source (seconds)."""
    return bv.train(source="synthetic", features="returns", epochs=1, window=8, lookback=16, latent=3,
                    hidden=(16,), batch_size=256, seed=0)


@pytest.mark.parametrize("with_dci", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_returns_model_on_the_synthetic_market_gets_finite_supervised_scores(with_dci, returns_result, tiny_sizes,
                                                                             request):
    from betavae_np.analysis.evaluate import supervised_measures

    if not with_dci:
        request.getfixturevalue("no_sklearn")
    result = returns_result
    rec = result.model.records
    market = synthetic_market(rec.provenance, rec.windowing)
    assert market.representation == "returns" and market.observation_shape == (8 * 6,)
    out = supervised_measures(result.model, market, result.train, quick=True)
    assert (out["missing"] is None) == with_dci
    for rep in ("model", "pca"):
        for key in ("mig", "factor_vae", *(("dci_disentanglement", "sap") if with_dci else ())):
            assert np.isfinite(out[rep][key]) and 0.0 <= out[rep][key] <= 1.0, (rep, key)


def test_sweep_scores_a_returns_model_on_returns_windows(returns_result):
    from betavae_np.sweep_job import _synthetic_measures

    out = _synthetic_measures(returns_result, 100, classifiers=False)
    assert np.isfinite(out["mig"]) and 0.0 <= out["mig"] <= 1.0


def test_cli_evaluate_of_a_both_model_on_the_synthetic_market(tmp_path, tiny_sizes, no_sklearn):
    from betavae_np.cli import main

    path = tmp_path / "s.npz"
    r = CliRunner().invoke(main, ["train", "--source", "synthetic", "--features", "both", "--window", "8",
                                  "--lookback", "16", "--latent", "3", "--hidden", "16", "--epochs", "1",
                                  "--quiet", "--out", str(path)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["evaluate", str(path), "--quick", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)["supervised"]
    assert s["sizes"] == TINY
    assert 0.0 <= s["model"]["mig"] <= 1.0 and 0.0 <= s["model"]["factor_vae"] <= 1.0
