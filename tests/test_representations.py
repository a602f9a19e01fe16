"""Input representations (minmax, returns, both): batch, lazy gather and streaming bit for bit,
causality, inverse round trips, the naive twin, records, measures and the training option."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from betavae_np._kernels import returns as R
from betavae_np.analysis.measures import available_measures, window_measures
from betavae_np.data import Windower
from betavae_np.data.universe import load_universe
from betavae_np.data.windows import REPRESENTATIONS, RETURN_FEATURES
from betavae_np.exceptions import ConfigError, InputError
from betavae_np.records import Windowing
from betavae_np.run import REPRESENTATIONS as RUN_REPRESENTATIONS, TrainConfig, cli_fields
from naive import ref_return_features, ref_return_windows
from test_windows import OHLCV, candles
from test_windows_stream import stream


@given(n=st.integers(30, 120), window=st.integers(2, 8), extra=st.integers(1, 20), seed=st.integers(0, 2**31),
       rep=st.sampled_from(REPRESENTATIONS))
def test_batch_gather_and_push_are_bit_identical(n, window, extra, seed, rep):
    lookback = window + extra
    n = max(n, lookback)
    df = candles(n, seed=seed)
    w = Windower(window=window, lookback=lookback, representation=rep)
    X = w.transform(df)
    np.testing.assert_array_equal(w.windows(df).array(), X)
    S, where = stream(Windower.from_dict(w.to_dict()), df, how="array")
    np.testing.assert_array_equal(S, X)
    np.testing.assert_array_equal(where, np.arange(lookback - 1, n))
    assert X.shape[1] == w.n_input == window * len(w.input_features)


@pytest.mark.parametrize("rep", ["returns", "both"])
def test_windows_ending_at_t_ignore_later_candles(rep):
    df = candles(200, seed=3)
    w = Windower(window=8, lookback=40, representation=rep)
    X = w.transform(df)
    t = 120
    later = df.copy()
    later.iloc[t + 1:, :4] *= 1.7        # every later candle changed (prices and volume)
    later.iloc[t + 1:, 4] += 50.0
    Y = w.transform(later)
    k = t - (40 - 1)                     # row of the window ending at t
    np.testing.assert_array_equal(Y[:k + 1], X[:k + 1])
    assert not np.array_equal(Y[k + 1:], X[k + 1:])


def test_returns_matches_naive_twin():
    df = candles(300, seed=5)
    w = Windower(window=6, lookback=50, representation="returns")
    ohlcv = df[list(OHLCV)].to_numpy()
    np.testing.assert_allclose(w.transform(df, dtype=np.float64), ref_return_windows(ohlcv, 6, 50),
                               rtol=0, atol=1e-12)
    feat = np.empty((300, 6))
    seg = np.zeros(300, dtype=bool)
    seg[0] = True
    R.candle_features(feat, np.ascontiguousarray(ohlcv), seg)
    np.testing.assert_allclose(feat, ref_return_features(ohlcv), rtol=1e-15, atol=1e-15)
    np.testing.assert_array_equal(w.transform(df), w.transform(df, dtype=np.float64).astype(np.float32))


def test_both_is_minmax_then_returns_per_candle():
    df = candles(150, seed=6)
    mm = Windower(window=5, lookback=30).transform(df).reshape(-1, 5, 5)
    rt = Windower(window=5, lookback=30, representation="returns").transform(df).reshape(-1, 5, 6)
    both = Windower(window=5, lookback=30, representation="both").transform(df).reshape(-1, 5, 11)
    np.testing.assert_array_equal(both[..., :5], mm)
    np.testing.assert_array_equal(both[..., 5:], rt)


@pytest.mark.parametrize("rep", REPRESENTATIONS)
def test_inverse_round_trip_in_float64(rep):
    df = candles(260, seed=7)
    w = Windower(window=8, lookback=40, representation=rep)
    X = w.transform(df, dtype=np.float64)
    ws = w.windows(df)
    lo, hi = ws.scales
    Y = w.inverse(X, lo, hi, w.anchors(df))
    ref = np.stack([df[list(OHLCV)].to_numpy()[e - 7:e + 1] for e in ws.rows])
    unclipped = ~(np.abs(X) >= 5).reshape(len(X), -1).any(1)
    assert unclipped.sum() > len(X) // 2
    np.testing.assert_allclose(Y[unclipped], ref[unclipped], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(w.inverse(X[-1], lo[-1], hi[-1], w.anchors(df)[-1]), Y[-1], rtol=0, atol=0)


def test_inverse_returns_needs_the_anchor():
    df = candles(100, seed=8)
    w = Windower(window=4, lookback=20, representation="returns")
    lo, hi = w.windows(df).scales
    with pytest.raises(InputError, match="anchor"):
        w.inverse(w.transform(df), lo, hi)
    with pytest.raises(InputError, match="lo, hi"):
        w.inverse(w.transform(df), lo[:, :2], hi[:, :2], 1.0)


def test_returns_restart_after_a_dropped_gap():
    df = candles(160, seed=9)
    gap = df.drop(df.index[70:75])                       # 5 candles missing
    w = Windower(window=4, lookback=20, representation="returns")
    after = w.transform(gap.iloc[70:])                   # the segment after the gap alone
    X = w.transform(gap)
    np.testing.assert_array_equal(X[-len(after):], after)
    S, _ = stream(Windower.from_dict(w.to_dict()), gap, how="series")   # open times: the gap resets
    np.testing.assert_array_equal(S, X)


def test_last_windows_equals_last_transform_row():
    series = [candles(60, seed=s) for s in (1, 2, 3)]
    w = Windower(window=5, lookback=30, representation="both")
    vals = np.stack([df[list(OHLCV)].to_numpy() for df in series])
    got = w.last_windows(vals)
    for i, df in enumerate(series):
        np.testing.assert_array_equal(got[i], w.transform(df)[-1])


def test_universe_windows_equal_each_symbols_own():
    frames = {"AAAUSDT": candles(90, seed=1), "BBBUSDT": candles(120, seed=2)}
    w = Windower(window=6, lookback=30, representation="returns", interval="60")
    u = load_universe(frames).windows(w)
    for s, df in frames.items():
        np.testing.assert_array_equal(u.window_set(s).array(), w.transform(df))


@pytest.mark.parametrize("kwargs, match", [
    ({"representation": "pct"}, "representation must be one of"),
    ({"representation": "returns", "lookback": 8}, "lookback > window"),
    ({"representation": "both", "features": ("close",)}, "needs features"),
    ({"representation": "returns", "norm": "none"}, "norm='rolling'"),
])
def test_windower_rejects_bad_representations(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Windower(**{"window": 8, "lookback": 30, **kwargs})


def test_push_rejects_bad_candles_for_returns():
    w = Windower(window=4, lookback=10, representation="returns")
    with pytest.raises(InputError, match="need 5"):
        w.push_array(np.ones(4))
    with pytest.raises(InputError, match="finite"):
        w.push_array(np.array([1.0, 1.0, 1.0, np.nan, 1.0]))


def test_windowing_record_carries_the_representation():
    w = Windower(window=8, lookback=40, representation="both", interval="60")
    rec = Windowing.from_windower(w)
    assert rec.representation == "both" and rec.input_features == w.input_features
    assert rec.n_input == w.n_input and rec.windower().to_dict() == w.to_dict()
    old = Windowing.from_windower(Windower()).to_dict()
    assert "representation" not in old            # min-max files stay as earlier versions wrote them
    assert Windowing.from_dict(old).representation == "minmax"
    assert Windowing.from_dict(old).windower().representation == "minmax"


def test_train_config_field_and_cli_option():
    assert tuple(RUN_REPRESENTATIONS) == tuple(REPRESENTATIONS)
    assert TrainConfig().features == "both"      # the default the representation study chose
    assert "features" in [f.name for f in cli_fields()]
    with pytest.raises(ConfigError, match="lookback > window"):
        TrainConfig(features="returns", window=32, lookback=32)
    with pytest.raises(ConfigError):
        TrainConfig(features="ohlc")


def test_measures_on_return_features():
    w = Windower(window=6, lookback=30, representation="returns")
    X = w.transform(candles(80, seed=4))
    names = available_measures(RETURN_FEATURES)
    assert names == ["trend", "volatility", "volume", "body"]
    m = window_measures(X, 6, RETURN_FEATURES)
    W = X.reshape(-1, 6, 6).astype(np.float64)
    np.testing.assert_allclose(m["trend"], W[:, :, 0].mean(1))
    np.testing.assert_allclose(m["volatility"], W[:, :, 1].mean(1))
    np.testing.assert_allclose(m["body"], np.abs(W[:, :, 2]).mean(1))
    np.testing.assert_allclose(m["volume"], W[:, :, 5].mean(1))
    both = Windower(window=6, lookback=30, representation="both").input_features
    assert available_measures(both) == available_measures(OHLCV)   # min-max definitions take precedence


def test_train_returns_model_saves_loads_and_is_interpreted(tmp_path):
    import betavae_np as bv
    from betavae_np.analysis.interpret import interpret
    from betavae_np.records import records_of
    from betavae_np.run import train_on_candles

    res = train_on_candles(candles(400, seed=10), features="returns", window=8, lookback=40, epochs=1,
                           batch_size=64, hidden=(16,), latent=3)
    p = str(tmp_path / "m.npz")
    bv.save(res.model, p)
    m = bv.load(p)
    assert records_of(m).windowing.representation == "returns"
    assert TrainConfig.from_model(m).features == "returns"
    interp = interpret(m, res.train)
    assert interp.measures == ["trend", "volatility", "volume", "body"]


def test_returns_fill_gaps_streaming_equals_batch():
    df = candles(120, seed=11)
    gap = df.drop(df.index[50:53])
    w = Windower(window=4, lookback=20, representation="both", gaps="fill")
    X = w.transform(gap)
    ws = w.windows(gap)
    assert ws.n_filled == 3
    S, _ = stream(Windower.from_dict(w.to_dict()), gap, how="series")
    np.testing.assert_array_equal(S, X[~ws.filled[ws.rows]])   # the filled candles' own windows are not returned


def test_cli_train_lists_the_features_option():
    from click.testing import CliRunner

    from betavae_np.cli import main

    res = CliRunner().invoke(main, ["train", "--help"])
    assert res.exit_code == 0 and "--features" in res.output and "returns" in res.output
    bad = CliRunner().invoke(main, ["train", "--features", "pct", "--source", "sample"])
    assert bad.exit_code == 2
