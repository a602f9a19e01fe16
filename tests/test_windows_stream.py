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


# -- push/push_array validate what the compiled ring update would read -------------------------
def _full_ring(w):
    """A windower whose ring is full, so every valid push returns a window."""
    df = candles(w.lookback + 2, seed=21)
    vals = df[list(w.features)].to_numpy()
    for row in vals:
        w.push_array(np.ascontiguousarray(row))
    return vals


@pytest.mark.parametrize("n", [0, 2, 4, 6, 50])
def test_push_array_refuses_another_number_of_values(n):
    w = Windower(window=4, lookback=10)
    _full_ring(w)
    state = w._state.copy()
    with pytest.raises(InputError, match=f"has {n} values, need 5"):
        w.push_array(np.ones(n))
    np.testing.assert_array_equal(w._state, state)   # nothing was pushed


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_push_array_refuses_non_finite_values_and_pushes_nothing(bad):
    w = Windower(window=4, lookback=10)
    vals = _full_ring(w)
    ring, state = w._ring.copy(), w._state.copy()
    row = vals[-1].copy()
    row[2] = bad
    with pytest.raises(InputError, match="finite"):
        w.push_array(row)
    np.testing.assert_array_equal(w._ring, ring)
    np.testing.assert_array_equal(w._state, state)


def test_push_array_converts_other_real_dtypes_and_layouts_exactly():
    df = candles(30, seed=22)
    vals = df[list(OHLCV)].to_numpy()
    a, b = Windower(window=4, lookback=10), Windower(window=4, lookback=10)
    for row in vals:
        ref = a.push_array(np.ascontiguousarray(row))
        strided = np.repeat(row, 2)[::2]                # non-contiguous float64 view
        got = b.push_array(strided)
        assert (ref is None) == (got is None)
        if ref is not None:
            np.testing.assert_array_equal(got, ref)
    w = Windower(window=2, lookback=2, features=("close", "volume"))
    w.push_array(np.array([5, 7], np.int64))
    out = w.push_array(np.array([6.0, 8.0], np.float32))
    assert out is not None and np.isfinite(out).all()


@pytest.mark.parametrize("bad", [np.array(["1", "2", "3", "4", "5"]), np.ones(5, complex),
                                 np.ones((5, 1)), [1.0, 2.0, 3.0, 4.0, "x"]])
def test_push_array_refuses_non_real_or_misshaped_input(bad):
    w = Windower(window=4, lookback=10)
    with pytest.raises(InputError):
        w.push_array(bad)


@pytest.mark.parametrize("candle", [[1.0, 2.0, "abc", 4.0, 5.0], [1.0, None, 3.0, 4.0, 5.0],
                                    {"open": 1.0, "high": 2.0, "low": "x", "close": 1.0,
                                     "volume": 3.0},
                                    [1.0, 2.0, 1j, 4.0, 5.0]])
def test_push_refuses_values_that_are_not_real_numbers(candle):
    w = Windower(window=4, lookback=10)
    with pytest.raises(InputError, match="real numbers"):
        w.push(candle)
