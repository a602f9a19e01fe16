"""The synthetic market: valid candles, the ground-truth interface, the Windower's windows, speed path."""

from __future__ import annotations

import numpy as np
import pytest

import betavae_np.synth as synth_mod
from betavae_np._kernels.synth import VOL_NOISE, synth_candles, synth_windows
from betavae_np.data import Windower, frame_from_arrays
from betavae_np.exceptions import ConfigError, InputError
from betavae_np.synth import FACTOR_GRIDS, OBS_CHUNK, SyntheticMarket
from naive import ref_synth_candles, ref_synth_windows


def _draws(n, L, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, L)), rng.random((n, L)), rng.standard_normal((n, L))


def test_synth_kernel_matches_reference():
    e, u, z = _draws(3, 40, 0)
    rng = np.random.default_rng(1)
    params = np.stack([rng.choice(g, size=(3, 2)) for g in FACTOR_GRIDS.values()], axis=2)
    bounds = np.array([0, 25], dtype=np.int64)
    comp = np.empty((3, 40, 5))
    synth_candles(comp, e, u, z, params, bounds, np.log(100.0))
    ref = ref_synth_candles(e, u, z, params, bounds, np.log(100.0), VOL_NOISE)
    np.testing.assert_allclose(comp, ref, rtol=1e-12)


def test_synth_interface_shapes_and_ranges():
    m = SyntheticMarket(seed=0)
    assert m.num_factors == 5 == len(m.factor_names) == len(m.factors_num_values)
    assert m.factor_names == ("trend", "volatility", "volume", "momentum", "body")
    assert all(2 <= k <= 10 for k in m.factors_num_values)
    f, X = m.sample(300, np.random.default_rng(0))
    assert f.shape == (300, 5) and f.dtype == np.int64
    assert ((f >= 0) & (f < np.array(m.factors_num_values))).all()
    assert X.shape == (300, 160) and X.dtype == np.float32
    assert X.min() >= 0 and X.max() <= 1


def test_synth_is_reproducible_and_seed_dependent():
    m = SyntheticMarket(seed=3)
    f1, X1 = m.sample(50)
    f2, X2 = m.sample(50)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(X1, X2)
    f3, X3 = m.sample(50, rng=4)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("features", [("open", "high", "low", "close", "volume"), ("close", "volume"),
                                      ("volume",), ("high", "low")])
def test_synth_windows_kernel_matches_reference(features):
    e, u, z = _draws(6, 40, 2)
    rng = np.random.default_rng(3)
    params = np.stack([rng.choice(g, size=(6, 2)) for g in FACTOR_GRIDS.values()], axis=2)
    bounds = np.array([0, 28], dtype=np.int64)
    w = Windower(12, lookback=40, features=features)
    cols = np.array([("open", "high", "low", "close", "volume").index(f) for f in features])
    comp = np.empty((6, 12 * len(features)), dtype=np.float32)
    synth_windows(comp, e, u, z, params, bounds, np.log(100.0), cols, w._group, w._modes, True,
                  np.empty(12 * len(features)), np.empty((40 - 12, 7)))
    ref = ref_synth_windows(e, u, z, params, bounds, np.log(100.0), VOL_NOISE, features, 12)
    np.testing.assert_allclose(comp, ref, rtol=0, atol=1e-6)  # np.exp and libm's exp may differ by an ulp


def _regenerate(m, factors, seed):
    """The candles behind sample_observations_from_factors(factors, seed): chunks from one stream."""
    rng = np.random.default_rng(seed)
    params, bounds = m._observation_params(m.factor_values(factors))
    n = factors.shape[0]
    return np.concatenate([m._generate(params[a:a + OBS_CHUNK], bounds, min(OBS_CHUNK, n - a), m.windower.lookback, rng)
                           for a in range(0, n, OBS_CHUNK)])


def test_synth_windows_are_the_windowers_last_windows():
    """Each observation equals Windower.transform's last row on its own series (bit for bit)."""
    m = SyntheticMarket(seed=0)
    f = m.sample_factors(OBS_CHUNK + 76, np.random.default_rng(0))  # two chunks
    X = m.sample_observations_from_factors(f, np.random.default_rng(1))
    candles = _regenerate(m, f, 1)
    np.testing.assert_array_equal(X, m.windower.last_windows(candles))
    L = m.windower.lookback
    for i in (0, 5, OBS_CHUNK, OBS_CHUNK + 75):
        df = frame_from_arrays(np.arange(L) * 3_600_000, candles[i])
        np.testing.assert_array_equal(X[i], Windower(32, lookback=128).transform(df)[-1])


@pytest.mark.parametrize("reference", [True, False])
@pytest.mark.parametrize("features", [("open", "high", "low", "close", "volume"), ("close", "volume"),
                                      ("volume",), ("open", "low")])
def test_synth_windows_scales_are_exact_near_ties(features, reference):
    """Scales from candidate extremes only equal the full min-max, also when features nearly tie
    (no wicks, near-zero returns: most candles are candidates)."""
    grids = {"volatility": (1e-12, 1e-7, 0.01), "body": (1.0, 0.999999, 0.5), "volume": (1e-3, 1.0, 1e6)}
    m = SyntheticMarket(seed=0, features=features, reference=reference, grids=grids)
    f = m.sample_factors(600, np.random.default_rng(2))
    X = m.sample_observations_from_factors(f, 9)
    candles = _regenerate(m, f, 9)
    np.testing.assert_array_equal(X, m.windower.last_windows(candles[:, :, m._cols]))


def test_synth_observations_do_not_depend_on_the_cores(monkeypatch):
    m = SyntheticMarket(seed=0)
    f = m.sample_factors(2 * OBS_CHUNK + 3, np.random.default_rng(0))
    many = m.sample_observations_from_factors(f, 5)
    monkeypatch.setattr(synth_mod.os, "cpu_count", lambda: 1)
    np.testing.assert_array_equal(many, m.sample_observations_from_factors(f, 5))
    assert m.sample_observations_from_factors(f[:0], 5).shape == (0, m.windower.n_input)


def test_windower_last_windows_equals_transform_rows():
    rng = np.random.default_rng(5)
    w = Windower(8, lookback=20)
    c = np.exp(np.cumsum(rng.normal(0, 0.01, (3, 30)), axis=1))
    vals = np.stack([c, c * 1.01, c * 0.99, c, rng.uniform(1, 10, (3, 30))], axis=2)
    got = w.last_windows(vals)
    for i in range(3):
        np.testing.assert_array_equal(got[i], w.transform(frame_from_arrays(np.arange(30) * 60_000, vals[i]))[-1])
    with pytest.raises(InputError):
        w.last_windows(vals[:, :10])


def test_synth_candles_are_valid_and_piecewise():
    m = SyntheticMarket(seed=1)
    df, f = m.candles(3000, segment=500, return_factors=True)
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert df.index.is_monotonic_increasing and df.index.is_unique and str(df.index.tz) == "UTC"
    body_lo = np.minimum(df.open, df.close)
    body_hi = np.maximum(df.open, df.close)
    assert (df.low <= body_lo).all() and (body_hi <= df.high).all() and (df.volume > 0).all()
    np.testing.assert_array_equal(df.open.to_numpy()[1:], df.close.to_numpy()[:-1])
    assert f.shape == (3000, 5)
    assert (np.diff(f[:500], axis=0) == 0).all() and len(np.unique(f[::500], axis=0)) > 1
    assert df.attrs["betavae_np"]["source"] == "synthetic"
    assert len(Windower().windows(df)) == 3000 - 127


def test_synth_factors_shape_the_candles():
    """Each factor moves the statistic it is named for, on long series with one regime."""
    m = SyntheticMarket(seed=0, grids={"trend": (-0.002, 0.002)})
    stats = {}
    rng = np.random.default_rng(0)

    def series(factors):
        vals = m.factor_values(np.array([factors]))
        return m._generate(np.ascontiguousarray(vals[:, None]), np.array([0]), 1, 20_000, rng)[0]

    base = [0, 2, 2, 2, 2]
    for j in range(5):
        lo_f, hi_f = list(base), list(base)
        lo_f[j], hi_f[j] = 0, m.factors_num_values[j] - 1
        stats[j] = (series(lo_f), series(hi_f))
    r = lambda c: np.diff(np.log(c[:, 3]))
    assert r(stats[0][0]).mean() < 0 < r(stats[0][1]).mean()
    assert r(stats[1][0]).std() * 4 < r(stats[1][1]).std()
    assert stats[2][0][:, 4].mean() * 4 < stats[2][1][:, 4].mean()
    ac = lambda x: np.corrcoef(x[:-1], x[1:])[0, 1]
    assert ac(r(stats[3][0])) < -0.4 and ac(r(stats[3][1])) > 0.4
    body = lambda c: np.median(np.abs(c[:, 3] - c[:, 0]) / (c[:, 1] - c[:, 2]))
    np.testing.assert_allclose([body(stats[4][0]), body(stats[4][1])], [0.1, 0.9], rtol=1e-4)  # ratio set in log prices


def test_synth_observations_show_the_factors():
    """The windows (what the metrics see) move with trend, volume level and body ratio."""
    m = SyntheticMarket(seed=0)
    F = len(m.windower.features)

    def windows(j, level):
        f = np.tile([3, 2, 2, 2, 2], (500, 1))
        f[:, j] = level
        return m.sample_observations_from_factors(f, j).reshape(500, -1, F)  # (n, window, OHLCV)

    move = lambda w: np.mean(w[:, -1, 3] - w[:, 0, 0])  # last close - first open, scaled
    assert move(windows(0, 0)) < 0 < move(windows(0, 6))
    assert windows(2, 0)[:, :, 4].mean() + 0.2 < windows(2, 4)[:, :, 4].mean()
    ratio = lambda w: np.median(np.abs(w[:, :, 3] - w[:, :, 0]) / np.maximum(w[:, :, 1] - w[:, :, 2], 1e-9))
    assert ratio(windows(4, 0)) < 0.2 < 0.8 < ratio(windows(4, 4))


def test_synth_rejects_bad_settings_and_factors():
    with pytest.raises(ConfigError):
        SyntheticMarket(grids={"colour": (1, 2)})
    with pytest.raises(ConfigError):
        SyntheticMarket(grids={"body": (0.0, 0.5)})
    m = SyntheticMarket()
    with pytest.raises(InputError):
        m.sample_observations_from_factors(np.array([[0, 0, 0, 0, 9]]))
    with pytest.raises(InputError):
        m.sample_observations_from_factors(np.zeros((2, 4), dtype=int))
