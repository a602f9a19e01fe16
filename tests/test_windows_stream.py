"""Windower.push: streaming windows are bit-identical to batch windows; gaps in streaming."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from betavae_np.data import Windower
from betavae_np.exceptions import DataError, InputError
from test_windows import HOUR, OHLCV, T0, candles


def stream(w, df, how="series"):
    """Push every candle of df; return the stacked windows and the positions that produced them."""
    rows, where = [], []
    vals = df[list(w.features)].to_numpy()
    for i in range(len(df)):
        if how == "series":
            out = w.push(df.iloc[i])
        elif how == "array":
            out = w.push_array(np.ascontiguousarray(vals[i]))
        else:
            out = w.push(list(vals[i]))
        if out is not None:
            assert out.dtype == np.float32 and out.shape == (w.n_input,)
            rows.append(out)
            where.append(i)
    return np.array(rows).reshape(len(rows), w.n_input), np.array(where, dtype=np.int64)


@given(n=st.integers(20, 160), window=st.integers(2, 12), extra=st.integers(0, 30),
       seed=st.integers(0, 2**31), subset=st.sampled_from([OHLCV, ("close", "volume"), ("high", "low")]),
       log_volume=st.booleans())
def test_push_equals_transform(n, window, extra, seed, subset, log_volume):
    lookback = window + extra
    if n < lookback:
        n = lookback
    df = candles(n, seed=seed)
    w = Windower(window=window, lookback=lookback, features=subset, log_volume=log_volume)
    X = w.transform(df)
    S, where = stream(Windower.from_dict(w.to_dict()), df, how="array")
    np.testing.assert_array_equal(S, X)  # bit-identical float32
    np.testing.assert_array_equal(where, np.arange(lookback - 1, n))


@pytest.mark.parametrize("how", ["series", "array", "sequence"])
def test_push_input_forms_agree(how):
    df = candles(80, seed=11)
    w = Windower(window=6, lookback=24)
    S, _ = stream(w, df, how=how)
    np.testing.assert_array_equal(S, w.transform(df))


def test_push_mapping_and_reset():
    df = candles(40, seed=12)
    w = Windower(window=4, lookback=10)
    first = [w.push({**df.iloc[i].to_dict(), "open_time": df.index[i]}) for i in range(10)]
    assert all(o is None for o in first[:9]) and first[9] is not None
    w.reset()
    assert w.push(df.iloc[10]) is None


def test_push_gap_drop_matches_batch():
    t = T0 + HOUR * np.r_[np.arange(50), np.arange(55, 120)]
    df = candles(115, seed=13, times=t)
    w = Windower(window=5, lookback=20, interval="1h")
    S, where = stream(w, df)
    np.testing.assert_array_equal(S, w.transform(df))
    assert where[0] == 19 and where[31] == 50 + 19  # restarts after the lookback refills


def test_push_gap_fill_matches_batch():
    t = T0 + HOUR * np.r_[np.arange(50), np.arange(54, 120)]
    df = candles(116, seed=14, times=t)
    w = Windower(window=5, lookback=20, gaps="fill", interval="1h")
    ws = w.windows(df)
    S, where = stream(Windower(window=5, lookback=20, gaps="fill", interval="1h"), df)
    keep = ~ws.filled[ws.rows]  # push returns only windows ending at real candles
    np.testing.assert_array_equal(S, ws.array()[keep])


def test_push_interval_none_uses_smallest_step():
    t = T0 + HOUR * np.r_[np.arange(50), np.arange(60, 100)]
    df = candles(90, seed=15, times=t)
    S, _ = stream(Windower(window=5, lookback=20), df)
    np.testing.assert_array_equal(S, Windower(window=5, lookback=20).transform(df))


def test_push_rejects_bad_candles():
    w = Windower(window=4, lookback=8)
    with pytest.raises(InputError, match="lacks feature"):
        w.push({"open": 1.0})
    with pytest.raises(InputError, match="has 2 values, need 5"):
        w.push([1.0, 2.0])
    with pytest.raises(InputError, match="finite"):
        w.push([1.0, 2.0, 0.5, np.nan, 1.0])
    w.push({"open": 1, "high": 2, "low": 1, "close": 1, "volume": 1, "open_time": T0 + HOUR})
    with pytest.raises(DataError, match="not after"):
        w.push({"open": 1, "high": 2, "low": 1, "close": 1, "volume": 1, "open_time": T0})


def test_push_does_not_mutate_input():
    w = Windower(window=4, lookback=8)
    vals = np.array([1.0, 2.0, 0.5, 1.5, 10.0])
    keep = vals.copy()
    for _ in range(10):
        w.push_array(vals)
        w.push(vals)
    np.testing.assert_array_equal(vals, keep)


def test_push_on_sample_equals_transform_tail():
    from betavae_np.data import load_sample
    df = load_sample().iloc[:600]
    w = Windower()
    S, _ = stream(w, df, how="array")
    np.testing.assert_array_equal(S, w.transform(df))
