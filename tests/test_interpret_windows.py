"""Readings over many windows: batched traversals, mean effect, spread, sign agreement, naming, plot."""

from __future__ import annotations

import numpy as np
import pytest

import betavae_np as bv
from betavae_np.analysis.interpret import AGREEMENT, WEAK_EFFECT, _name, interpret, spread_rows
from betavae_np.analysis.latent import LatentStats
from betavae_np.analysis.measures import available_measures
from betavae_np.analysis.traversal import traverse, traverse_windows
from betavae_np.exceptions import ConfigError, InputError
from betavae_np.records import ModelRecords, WindowStats, Windowing

from naive import ref_window_reading

FEATURES = ("open", "high", "low", "close", "volume")
WINDOW = 6
N_INPUT = WINDOW * len(FEATURES)
SCALE = {"level": 0.3, "trend": 0.01, "volatility": 0.05, "volume": 0.1, "momentum": 0.2, "body": 0.1}


def _random_model(rng=0, n_latent=3):
    cfg = bv.VAEConfig(n_input=N_INPUT, hidden=(8,), n_latent=n_latent, activation="tanh", dtype="float64")
    m = bv.BetaVAE(cfg, rng=rng)
    sd = np.random.default_rng(rng).uniform(0.3, 1.5, n_latent)
    m.records = ModelRecords(
        windowing=Windowing(window=WINDOW, features=FEATURES, lookback=WINDOW),
        latent_stats=LatentStats(mean=[0.0] * n_latent, sd=sd.tolist(), kl=[1.0] * n_latent,
                                 active=[True] * n_latent),
        window_stats=WindowStats(measure_scale=dict(SCALE), mean_window=()))
    return m


def _windows(n, seed=1):
    return np.random.default_rng(seed).uniform(0, 1, (n, N_INPUT))


def _abs_model():
    """A hand-built decoder: z0 bends the closes by |z0| (a trend whose sign is the sign of the window's
    own code mu0 = 5 (x[0] - 0.5)), z1 lifts volume linearly (the same sign on every window)."""
    cfg = bv.VAEConfig(n_input=N_INPUT, hidden=(3,), n_latent=2, activation="relu", dtype="float64")
    m = bv.BetaVAE(cfg, rng=0)
    p = m.named_parameters()
    for v in p.values():
        v[...] = 0.0
    p["enc.0.W"][0, 0] = 1.0          # h0 = x[0] (inputs are >= 0)
    p["enc.0.W"][4, 1] = 1.0          # h1 = x[4]
    p["mu.W"][0, 0], p["mu.b"][0] = 5.0, -2.5
    p["mu.W"][1, 1] = 1.0
    p["logvar.b"][...] = -4.0
    p["dec.0.W"][0, 0], p["dec.0.W"][0, 1] = 1.0, -1.0   # relu(z0) + relu(-z0) = |z0|
    p["dec.0.W"][1, 2], p["dec.0.b"][2] = 1.0, 100.0     # relu(z1 + 100) = z1 + 100: linear
    t = np.arange(WINDOW) - (WINDOW - 1) / 2
    p["out.b"][...] = np.tile([0.5, 0.6, 0.4, 0.5, 0.3 - 5.0], WINDOW)
    for k in range(WINDOW):
        for f in range(4):
            p["out.W"][0, k * 5 + f] = p["out.W"][1, k * 5 + f] = 0.02 * t[k]
        p["out.W"][2, k * 5 + 4] = 0.05
    m.records = ModelRecords(
        windowing=Windowing(window=WINDOW, features=FEATURES, lookback=WINDOW),
        latent_stats=LatentStats(mean=[0.0, 0.0], sd=[1.0, 1.0], kl=[1.0, 1.0], active=[True, True]),
        window_stats=WindowStats(measure_scale=dict(SCALE), mean_window=()))
    return m


# -- batching ------------------------------------------------------------------------------------------
def test_traverse_windows_equals_traverse_of_each_window():
    m = _random_model()
    X = _windows(9)
    seen = []
    for start, stop, grid, recon in traverse_windows(m, X, dims=[2, 0], span=2.0, steps=5, chunk_rows=25):
        assert grid.shape == (stop - start, 2, 5, N_INPUT) and recon.shape == (stop - start, N_INPUT)
        for w in range(stop - start):
            np.testing.assert_allclose(grid[w], traverse(m, X[start + w], dims=[2, 0], span=2.0, steps=5),
                                       rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(recon[w], m.reconstruct(X[start + w][None])[0], rtol=1e-12, atol=1e-12)
        seen.append((start, stop))
    assert seen[0][0] == 0 and seen[-1][1] == 9 and len(seen) == 5  # 25 codes: two windows (2*5+1 each) a chunk
    assert all(a[1] == b[0] for a, b in zip(seen, seen[1:]))


def test_traverse_windows_chunks_bound_the_decoder_calls():
    m = _random_model()
    calls = []
    decode = m.decode
    m.decode = lambda Z: (calls.append(len(Z)), decode(Z))[1]
    list(traverse_windows(m, _windows(50), steps=7, chunk_rows=100))  # 3 dims x 7 steps + 1 = 22 codes/window
    assert max(calls) <= 100 and sum(calls) == 50 * 22 and len(calls) == -(-50 // (100 // 22))


def test_traverse_windows_rejects_bad_input():
    m = _random_model()
    with pytest.raises(InputError, match="expected"):
        list(traverse_windows(m, np.zeros(N_INPUT)))
    with pytest.raises(ConfigError):
        list(traverse_windows(m, _windows(2), chunk_rows=0))


# -- the reading against a naive loop over windows ---------------------------------------------------------
def test_reading_matches_a_naive_loop_over_windows():
    m = _random_model(rng=3)
    X = _windows(40, seed=4)
    sd = m.records.latent_stats.sd
    res = interpret(m, X, span=2.5, steps=5, chunk_rows=30)  # many chunks
    E, mean, spread, agreement, size = ref_window_reading(m, X, [0, 1, 2], 2.5, 5, sd, SCALE, WINDOW)
    names = available_measures(FEATURES)
    assert res.n_windows == 40 and res.window_effects.shape == (40, 3, len(names))
    for w in range(40):
        for i in range(3):
            for q, k in enumerate(names):
                assert res.window_effects[w, i, q] == pytest.approx(E[w][i][k], rel=1e-9, abs=1e-9), (w, i, k)
    for i, r in enumerate(res.readings):
        for k in names:
            assert r.effects[k] == pytest.approx(mean[i][k], rel=1e-9, abs=1e-12), k
            assert r.spread[k] == pytest.approx(spread[i][k], rel=1e-9, abs=1e-12), k
            assert r.agreement[k] == agreement[i][k], k
            assert r.size[k] == pytest.approx(size[i][k], rel=1e-9, abs=1e-12), k
    # the agreement is a real share here, not a trivial 0 or 1
    assert any(0 < r.agreement[k] < 1 for r in res.readings for k in names)


def test_reading_does_not_depend_on_the_chunk_size():
    m = _random_model(rng=5)
    X = _windows(23, seed=6)
    a = interpret(m, X, chunk_rows=1)
    b = interpret(m, X)
    np.testing.assert_allclose(a.window_effects, b.window_effects, rtol=1e-12, atol=1e-12)
    assert [r.label for r in a.readings] == [r.label for r in b.readings]


def test_change_profile_is_measured_from_each_windows_reconstruction():
    m = _random_model(rng=7)
    X = _windows(5, seed=8)
    res = interpret(m, X, steps=5)
    for r in res.readings:
        for k in res.measures:
            assert r.change[k][2] == pytest.approx(0.0, abs=1e-12)  # the middle step decodes mu(x) itself
            assert r.change_spread[k][2] == pytest.approx(0.0, abs=1e-12)
            end_to_end = (r.change[k][-1] - r.change[k][0])
            assert end_to_end == pytest.approx(r.effects[k], rel=1e-9, abs=1e-12)


def test_reading_does_not_mutate_the_windows():
    m = _random_model()
    X = _windows(12)
    before = X.copy()
    interpret(m, X)
    np.testing.assert_array_equal(X, before)


# -- naming ----------------------------------------------------------------------------------------------
def test_a_dimension_with_the_same_sign_on_every_window_is_named_with_agreement_one():
    m = _abs_model()
    res = interpret(m, _windows(200, seed=9), dims=[1])
    r = res.readings[0]
    assert r.label == "volume +" and r.dominant == "volume" and r.sign == 1
    assert r.agreement["volume"] == 1.0 and r.spread["volume"] == pytest.approx(0.0, abs=1e-9)
    assert r.effects["volume"] == pytest.approx(0.05 * 6 / SCALE["volume"], rel=1e-9)


def test_a_dimension_whose_effect_flips_sign_across_windows_is_mixed():
    m = _abs_model()
    X = _windows(200, seed=10)
    r = interpret(m, X, dims=[0]).readings[0]
    assert r.dominant == "mixed" and r.sign == 0 and r.also == []
    assert r.label.startswith("mixed") and "trend" in r.mixed and "momentum" in r.mixed
    assert 0.3 < r.agreement["trend"] < 0.7 and r.size["trend"] > 1.0
    # on the windows whose own code mu0 is positive the same dimension reads consistently
    pos = X[X[:, 0] > 0.55]
    r = interpret(m, pos, dims=[0]).readings[0]
    assert r.label == "trend +" and r.agreement["trend"] == r.agreement["momentum"] == 1.0  # momentum: 1/4 of trend
    # and on one window it reads whatever that window says: the single-window reading
    one = interpret(m, X[np.argmin(X[:, 0])], dims=[0]).readings[0]
    assert one.label == "trend -" and one.n_windows == 1


@pytest.mark.parametrize("agree,expected", [(AGREEMENT, "trend"), (AGREEMENT - 0.01, "mixed")])
def test_naming_threshold_is_the_documented_agreement(agree, expected):
    names = ["trend", "volume"]
    mean, size = np.array([2.0, 0.01]), np.array([2.5, 0.01])
    dominant, sign, also, mixed = _name(names, mean, np.array([agree, 1.0]), size, True, WEAK_EFFECT, AGREEMENT)
    assert dominant == expected
    assert (mixed == ["trend"]) == (expected == "mixed")


def test_weak_and_inactive_keep_their_meaning():
    names = ["trend"]
    assert _name(names, np.array([0.0]), np.array([0.0]), np.array([0.05]), True, 0.1, 0.8)[0] == "weak"
    assert _name(names, np.array([3.0]), np.array([1.0]), np.array([3.0]), False, 0.1, 0.8)[0] == "inactive"
    # a consistent sign whose mean is below the weak threshold names nothing, though the windows move
    assert _name(names, np.array([0.05]), np.array([0.9]), np.array([0.5]), True, 0.1, 0.8)[0] == "mixed"


def test_one_window_as_a_row_reads_like_the_single_window_call():
    m = _random_model(rng=11)
    x = _windows(1, seed=12)[0]
    single, row = interpret(m, x), interpret(m, x[None])
    assert single.grid.shape == (3, 7, N_INPUT) and row.grid is None
    for a, b in zip(single.readings, row.readings):
        assert a.label == b.label
        for k in single.measures:
            assert a.effects[k] == pytest.approx(b.effects[k], rel=1e-12, abs=1e-12)
            assert a.profile[k] == pytest.approx(b.profile[k], rel=1e-12, abs=1e-12)
            assert a.spread[k] == 0.0


def test_interpret_spreads_n_windows_over_a_window_set():
    df = bv.data.load_sample().iloc[:400]
    w = bv.data.Windower(window=WINDOW, lookback=12)
    ws = w.windows(df)
    m = _random_model(rng=13)
    res = interpret(m, ws, n_windows=10)
    rows = spread_rows(ws.shape[0], 10)
    np.testing.assert_array_equal(res.rows, rows)
    ref = interpret(m, ws.array(np.float64)[rows])
    np.testing.assert_allclose(res.window_effects, ref.window_effects, rtol=1e-12, atol=1e-12)
    assert interpret(m, ws).n_windows == min(256, ws.shape[0])


def test_spread_rows_cover_the_data_evenly():
    r = spread_rows(1000, 256)
    assert r[0] == 0 and r[-1] == 999 and r.size == 256 and np.all(np.diff(r) > 0)
    assert np.diff(r).max() - np.diff(r).min() <= 1
    np.testing.assert_array_equal(spread_rows(5, 256), np.arange(5))
    np.testing.assert_array_equal(spread_rows(5, None), np.arange(5))
    np.testing.assert_array_equal(spread_rows(7, 1), [6])


def test_to_dict_has_the_window_reading_fields():
    m = _abs_model()
    d = interpret(m, _windows(30, seed=14)).to_dict()
    assert d["n_windows"] == 30 and d["thresholds"] == {"agreement": AGREEMENT, "weak": WEAK_EFFECT}
    for dim in d["dimensions"]:
        assert set(dim) >= {"effects", "spread", "agreement", "size", "mixed", "change", "change_spread",
                            "profile", "label", "dominant", "n_windows"}
        assert all(0.0 <= v <= 1.0 for v in dim["agreement"].values())
        assert all(len(v) == 7 for v in dim["change"].values())


def test_interpret_rejects_bad_agreement_and_empty_windows():
    m = _random_model()
    with pytest.raises(ConfigError):
        interpret(m, _windows(3), agreement=0.4)
    with pytest.raises(InputError):
        interpret(m, np.zeros((0, N_INPUT)))


# -- the plot --------------------------------------------------------------------------------------------
def test_plot_leaves_inactive_dimensions_out_unless_asked(tmp_path):
    pytest.importorskip("matplotlib")
    from betavae_np.analysis.plot import plot_interpretation, plotted_readings

    m = _random_model(rng=15)
    m.records.latent_stats.active = [True, False, True]
    res = interpret(m, _windows(20, seed=16))
    assert [r.dim for r in plotted_readings(res)] == [0, 2]
    assert [r.dim for r in plotted_readings(res, include_inactive=True)] == [0, 1, 2]
    for name, kw in (("a.png", {}), ("b.png", {"include_inactive": True})):
        path = plot_interpretation(res, str(tmp_path / name), **kw)
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    m.records.latent_stats.active = [False, False, False]
    path = plot_interpretation(interpret(m, _windows(5)), str(tmp_path / "none.svg"))
    assert open(path, "rb").read(5) == b"<?xml"  # a figure that says so, not a crash


def test_window_measures_work_on_any_leading_shape():
    from betavae_np.analysis.measures import window_measures

    X = _windows(24, seed=17)
    flat = window_measures(X, WINDOW, FEATURES)
    deep = window_measures(X.reshape(2, 3, 4, N_INPUT), WINDOW, FEATURES)
    for k, v in flat.items():
        assert deep[k].shape == (2, 3, 4)
        np.testing.assert_array_equal(deep[k].reshape(-1), v)
