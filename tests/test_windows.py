"""Windower batch path and WindowSet: kernels vs tests/naive.py, causality, gaps, gather, split, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, strategies as st

from betavae_np._kernels import windowing as K
from betavae_np.data import Windower, WindowSet, load_sample
from betavae_np.exceptions import ConfigError, DataError, InputError
from naive import ref_rolling_minmax, ref_windows
from betavae_np.data.frame import frame_from_arrays

OHLCV = ("open", "high", "low", "close", "volume")

HOUR = 3_600_000
T0 = 1_600_000_000_000 - 1_600_000_000_000 % HOUR


def candles(n, seed=0, times=None, flat_from=None):
    """n random consistent hourly candles (optionally with given open times in ms)."""
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.r_[c[0], c[:-1]]
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.005, n))
    lo = np.minimum(o, c) * (1 - rng.uniform(0, 0.005, n))
    v = rng.lognormal(3, 1, n) * (rng.random(n) > 0.05)
    vals = np.c_[o, h, lo, c, v, v * c]
    if flat_from is not None:
        vals[flat_from:, :4] = vals[flat_from, 3]
        vals[flat_from:, 4:] = 0.0
    t = T0 + HOUR * np.arange(n) if times is None else np.asarray(times, dtype=np.int64)
    return frame_from_arrays(t, vals, columns=("open", "high", "low", "close", "volume", "turnover"))


@pytest.mark.parametrize("features", [OHLCV, ("close", "volume"), ("high", "low"), ("close",),
                                      ("volume",), ("volume", "close", "open")])
@pytest.mark.parametrize("log_volume", [True, False])
def test_transform_matches_reference(features, log_volume):
    df = candles(300, seed=1)
    w = Windower(window=8, features=features, lookback=20, log_volume=log_volume)
    X = w.transform(df)
    ref = ref_windows(df[list(features)].to_numpy(), 8, 20, features, log_volume)
    assert X.dtype == np.float32 and X.shape == (300 - 19, 8 * len(features))
    np.testing.assert_array_equal(X, ref)


@given(n=st.integers(2, 200), lookback=st.integers(1, 64), seed=st.integers(0, 2**31))
def test_rolling_scales_matches_reference(n, lookback, seed):
    rng = np.random.default_rng(seed)
    clo = rng.normal(size=(n, 2))
    chi = clo + rng.uniform(0, 1, size=(n, 2))
    ends = np.flatnonzero(rng.random(n) < 0.5)
    ends = ends[ends >= lookback - 1].astype(np.int64)
    lo, hi = np.empty((ends.size, 2)), np.empty((ends.size, 2))
    K.rolling_scales(lo, hi, clo, chi, ends, lookback, np.empty((n, 2)), np.empty((n, 2)))
    for g in range(2):
        rlo, _ = ref_rolling_minmax(clo[:, g], lookback)
        _, rhi = ref_rolling_minmax(chi[:, g], lookback)
        np.testing.assert_array_equal(lo[:, g], rlo[ends], err_msg="lo")
        np.testing.assert_array_equal(hi[:, g], rhi[ends], err_msg="hi")


def test_transform_values_in_unit_interval_on_sample():
    df = load_sample()
    X = Windower().transform(df)
    assert X.shape == (len(df) - 127, 160)
    assert np.isfinite(X).all() and X.min() == 0.0 and X.max() == 1.0


def test_transform_no_look_ahead():
    df = candles(400, seed=2)
    w = Windower(window=16, lookback=40)
    X = w.transform(df)
    cut = 250
    later = df.copy()
    later.iloc[cut + 1:, :4] *= 3.0
    later.iloc[cut + 1:, 4] += 1000.0
    Y = w.transform(later)
    n_before = cut - 40 + 2  # windows ending at candles 39..cut
    np.testing.assert_array_equal(X[:n_before], Y[:n_before])
    assert not np.array_equal(X[n_before], Y[n_before])


def test_transform_degenerate_scale_is_half():
    df = candles(100, seed=3, flat_from=20)
    X = Windower(window=4, lookback=10).transform(df)
    assert (X[-1] == 0.5).all()  # flat prices and zero volume throughout the lookback


def test_transform_norm_none_gives_raw_values():
    df = candles(50, seed=4)
    X = Windower(window=5, lookback=30, norm="none", log_volume=False).transform(df)
    assert X.shape == (46, 25)
    np.testing.assert_array_equal(X[0], df[list(OHLCV)].to_numpy()[:5].astype(np.float32).ravel())


def test_windows_gather_equals_array_rows():
    df = candles(500, seed=5)
    ws = Windower(window=10, lookback=30).windows(df)
    X = Windower(window=10, lookback=30).transform(df)
    assert isinstance(ws, WindowSet) and ws.shape == X.shape and len(ws) == X.shape[0]
    np.testing.assert_array_equal(ws.array(), X)
    rows = np.random.default_rng(0).integers(0, len(ws), 77)
    out32 = ws.gather(rows, np.empty((77, X.shape[1]), np.float32))
    np.testing.assert_array_equal(out32, X[rows])
    out64 = ws.gather(rows, np.empty((77, X.shape[1]), np.float64))
    np.testing.assert_array_equal(out64, X[rows].astype(np.float64))
    assert ws.end_times.equals(df.index[29:])
    np.testing.assert_array_equal(ws.rows, np.arange(29, 500))


def test_gather_rejects_bad_rows_and_out():
    ws = Windower(window=4, lookback=8).windows(candles(50))
    with pytest.raises(InputError):
        ws.gather(np.array([0, 43]))
    with pytest.raises(InputError):
        ws.gather(np.array([-1]))
    with pytest.raises(InputError):
        ws.gather(np.array([0.5]))
    with pytest.raises(InputError):
        ws.gather(np.array([0, 1]), np.empty((2, 20), np.float16))
    with pytest.raises(InputError):
        ws.gather(np.array([0, 1]), np.empty((20, 2), np.float32).T)


def test_gaps_drop_leaves_out_windows_spanning_a_gap():
    t = T0 + HOUR * np.r_[np.arange(60), np.arange(70, 150)]  # 10 missing candles after the 60th
    df = candles(140, seed=6, times=t)
    w = Windower(window=5, lookback=20, interval="1h")
    ws = w.windows(df)
    assert len(ws) == (60 - 19) + (80 - 19)
    X = w.transform(df)
    vals = df[list(OHLCV)].to_numpy()
    ref = np.r_[ref_windows(vals[:60], 5, 20, OHLCV), ref_windows(vals[60:], 5, 20, OHLCV)]
    np.testing.assert_array_equal(X, ref)
    # the first window after the gap ends once the lookback has refilled
    assert ws.end_times[41] == pd.Timestamp(T0 + HOUR * (70 + 19), unit="ms", tz="UTC")
    assert Windower(window=5, lookback=20).windows(df).shape == ws.shape  # interval inferred


def test_gaps_fill_inserts_flat_candles():
    t = T0 + HOUR * np.r_[np.arange(40), np.arange(43, 80)]
    df = candles(77, seed=7, times=t)
    ws = Windower(window=5, lookback=20, gaps="fill").windows(df)
    assert ws.n_filled == 3 and ws.filled.sum() == 3 and ws.filled[40:43].all()
    assert len(ws) == 80 - 19
    full = df.reindex(pd.date_range(df.index[0], periods=80, freq="h", name="open_time"))
    prev = df["close"].iloc[39]
    full.loc[full["open"].isna(), ["open", "high", "low", "close"]] = prev
    full = full.fillna({"volume": 0.0, "turnover": 0.0})
    np.testing.assert_array_equal(ws.array(), Windower(window=5, lookback=20).transform(full))


def test_no_window_between_gaps_is_an_error():
    t = T0 + HOUR * np.r_[np.arange(15), np.arange(20, 35)]
    with pytest.raises(DataError, match="longest gap-free run: 15"):
        Windower(window=5, lookback=20, interval=60).transform(candles(30, times=t))


def test_split_last_part_is_validation_and_purged():
    ws = Windower(window=8, lookback=16).windows(candles(200, seed=8))
    train, val = ws.split(0.25)
    n_train = int(round(len(ws) * 0.75))
    assert len(train) == n_train and len(val) == len(ws) - n_train - 7
    assert train.end_times[-1] < val.end_times[0]
    assert val.rows[0] - 8 + 1 > train.rows[-1]  # no candle in both
    np.testing.assert_array_equal(val.array(), ws.array()[n_train + 7:])
    _, val_all = ws.split(0.25, purge=False)
    assert len(val_all) == len(ws) - n_train
    with pytest.raises(ConfigError):
        ws.split(1.0)
    with pytest.raises(DataError):
        ws.subset(0, 5).split(0.5)


def test_subset_uses_slice_rules():
    ws = Windower(window=4, lookback=8).windows(candles(60))
    np.testing.assert_array_equal(ws.subset(10, 20).array(), ws.array()[10:20])
    np.testing.assert_array_equal(ws.subset(-5).array(), ws.array()[-5:])


@pytest.mark.parametrize("kwargs, match", [
    ({"window": 1}, "window must be an integer >= 2"),
    ({"window": 32, "lookback": 16}, "lookback must be"),
    ({"features": ("close", "rsi")}, "features must be"),
    ({"features": ("close", "close")}, "features must be"),
    ({"norm": "zscore"}, "norm must be"),
    ({"gaps": "skip"}, "gaps must be"),
    ({"interval": "7h"}, "invalid interval"),
    ({"interval": 7}, "invalid interval"),
])
def test_windower_rejects_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Windower(**kwargs)


def test_transform_too_short_says_how_many():
    with pytest.raises(DataError, match="need at least 128 candles for one window of 32 with lookback 128, got 50"):
        Windower().transform(candles(50))


def test_transform_does_not_mutate_input():
    df = candles(300, seed=9)
    before = df.copy(deep=True)
    w = Windower(window=8, lookback=32, gaps="fill")
    w.transform(df)
    w.windows(df).gather(np.arange(3))
    pd.testing.assert_frame_equal(df, before)


def test_to_dict_round_trip():
    w = Windower(window=16, features=("close", "volume"), lookback=64, log_volume=False, gaps="fill",
                 interval="1h")
    d = json.loads(json.dumps(w.to_dict()))
    assert d["interval"] == "60"
    w2 = Windower.from_dict(d)
    assert w2.to_dict() == w.to_dict() and w2.n_input == 32 and w2.n_features == 2
    with pytest.raises(ConfigError, match="unknown windower setting"):
        Windower.from_dict({**d, "stride": 2})


def test_interval_forms_agree():
    assert Windower(interval="1h")._ims == Windower(interval=60)._ims == Windower(interval=3_600_000)._ims


def test_transform_parallel_path_is_bit_identical_to_serial(monkeypatch):
    """Large outputs are written by every core; the values must not change by one bit."""
    from betavae_np.data import windows as W

    rng = np.random.default_rng(7)
    n = 3000
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.r_[100.0, c[:-1]]
    df = pd.DataFrame({"open": o, "high": np.maximum(o, c) * 1.002, "low": np.minimum(o, c) * 0.998,
                       "close": c, "volume": rng.uniform(0, 50, n)},
                      index=pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"))
    w = Windower(window=16, lookback=64)
    monkeypatch.setattr(W, "PARALLEL_WINDOWS", 10**12)
    serial = w.transform(df)
    monkeypatch.setattr(W, "PARALLEL_WINDOWS", 1)
    parallel = w.transform(df)
    assert parallel.dtype == np.float32 and np.array_equal(serial, parallel)
