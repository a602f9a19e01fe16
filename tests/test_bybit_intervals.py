"""Interval codes and aliases, symbols, categories, time parsing and the candle grid."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, strategies as st

from betavae_np.data.intervals import (INTERVALS, ceil_open, count_candles, floor_open, interval_ms,
                                       last_closed_open, next_open, normalize_category,
                                       normalize_interval, normalize_symbol, to_ms)
from betavae_np.exceptions import ConfigError

H = 3_600_000


@pytest.mark.parametrize("code", INTERVALS)
def test_normalize_interval_accepts_every_bybit_code(code):
    assert normalize_interval(code) == code


@pytest.mark.parametrize("alias,code", [
    ("1m", "1"), ("3m", "3"), ("5m", "5"), ("15m", "15"), ("30m", "30"), ("1h", "60"), ("1H", "60"),
    ("2h", "120"), ("4h", "240"), ("6h", "360"), ("12h", "720"), ("1d", "D"), ("1D", "D"), ("d", "D"),
    ("1w", "W"), ("1W", "W"), ("1M", "M"), (60, "60"), (1, "1"), (" 15 ", "15")])
def test_normalize_interval_maps_aliases(alias, code):
    assert normalize_interval(alias) == code


def test_normalize_interval_minute_and_month_differ_by_case():
    assert normalize_interval("1m") == "1"
    assert normalize_interval("1M") == "M"


@pytest.mark.parametrize("bad", ["3d", "2", "90", "1y", "", "hour", None, 1.5, True])
def test_normalize_interval_rejects_unknown(bad):
    with pytest.raises(ConfigError, match="invalid interval"):
        normalize_interval(bad)


def test_interval_ms_values():
    assert interval_ms("1") == 60_000
    assert interval_ms("1h") == H
    assert interval_ms("720") == 12 * H
    assert interval_ms("D") == 24 * H
    assert interval_ms("W") == 7 * 24 * H
    assert interval_ms("M") == 0


def test_normalize_symbol_uppercases_and_rejects_punctuation():
    assert normalize_symbol(" btcusdt ") == "BTCUSDT"
    for bad in ("BTC-USDT", "BTC/USDT", "", "B", 42, "btc usdt"):
        with pytest.raises(ConfigError, match="invalid symbol"):
            normalize_symbol(bad)


def test_normalize_category_accepts_three_and_rejects_others():
    assert [normalize_category(c) for c in ("spot", "LINEAR", "inverse")] == ["spot", "linear", "inverse"]
    with pytest.raises(ConfigError, match="invalid category"):
        normalize_category("option")


def test_to_ms_accepts_every_time_form():
    ms = 1_715_162_400_000  # 2024-05-08T10:00:00Z
    forms = [ms, np.int64(ms), "2024-05-08T10:00:00Z", "2024-05-08 10:00", dt.datetime(2024, 5, 8, 10),
             dt.datetime(2024, 5, 8, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
             pd.Timestamp("2024-05-08 10:00", tz="UTC"), np.datetime64("2024-05-08T10:00")]
    assert [to_ms(f) for f in forms] == [ms] * len(forms)
    assert to_ms(dt.date(2024, 5, 8)) == ms - 10 * H


@pytest.mark.parametrize("bad", ["yesterday-ish", -5, True, [1]])
def test_to_ms_rejects_garbage(bad):
    with pytest.raises(ConfigError):
        to_ms(bad)


def test_floor_ceil_next_on_grids():
    t = to_ms("2024-05-08T10:30:00Z")
    assert floor_open(t, "60") == to_ms("2024-05-08T10:00Z")
    assert ceil_open(t, "60") == to_ms("2024-05-08T11:00Z")
    assert ceil_open(to_ms("2024-05-08T10:00Z"), "60") == to_ms("2024-05-08T10:00Z")
    assert floor_open(t, "W") == to_ms("2024-05-06T00:00Z")  # a Monday
    assert floor_open(t, "M") == to_ms("2024-05-01T00:00Z")
    assert next_open(to_ms("2024-12-01T00:00Z"), "M") == to_ms("2025-01-01T00:00Z")
    assert last_closed_open(t, "60") == to_ms("2024-05-08T10:00Z") - 1


@given(st.integers(0, 2_000_000_000_000), st.sampled_from(INTERVALS))
def test_floor_open_contains_time(ms, code):
    lo = floor_open(ms, code)
    assert lo <= ms < next_open(lo, code)
    assert floor_open(lo, code) == lo


def test_count_candles_inclusive_bounds():
    t0 = to_ms("2024-01-01T00:00Z")
    assert count_candles(t0, t0, "60") == 1
    assert count_candles(t0, t0 + 999 * H, "60") == 1000
    assert count_candles(t0 + 1, t0 + H, "60") == 1
    assert count_candles(t0 + 1, t0 + H - 1, "60") == 0
    assert count_candles(t0, to_ms("2024-12-15"), "M") == 12
