"""load_candles: default ranges for every interval, gaps and interval of every source, retry notices,
provenance of the data actually returned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import betavae_np as bv
from betavae_np.cli import main
from betavae_np.data.intervals import BYBIT_START_MS, INTERVALS, candles_before, interval_ms, to_ms
from betavae_np.workflow import DEFAULT_CANDLES, load_candles

from bybit_server import STEP, BybitServer, make_history

H = STEP["60"]
W = STEP["W"]
SMALL = ["--window", "8", "--lookback", "16", "--latent", "2", "--hidden", "8", "--batch-size", "16",
         "--epochs", "1", "--quiet"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# -- item: the default range is sane for every interval ------------------------------------------------
@pytest.mark.parametrize("code", INTERVALS)
def test_candles_before_every_interval_is_within_bybit_history(code):
    end = to_ms("2026-11-29T12:00")
    start = candles_before(end, code, DEFAULT_CANDLES)
    assert BYBIT_START_MS <= start <= end
    if interval_ms(code) and end - DEFAULT_CANDLES * interval_ms(code) > BYBIT_START_MS:
        assert start == end - DEFAULT_CANDLES * interval_ms(code)  # hourly: exactly 20,000 candles back


def test_candles_before_an_end_before_bybit_is_that_end():
    end = to_ms("2015-01-01")
    assert candles_before(end, "W", 10**6) == end  # Bybit has nothing there: an empty range, not 1677
    assert candles_before(to_ms("2018-03-05"), "W", 4) == to_ms("2018-02-05")


def test_train_weekly_without_start_uses_a_sane_range(tmp_path, monkeypatch):
    """--interval W without --start was an OverflowError traceback (20,000 weeks is before 1677)."""
    monkeypatch.setenv("BETAVAE_NP_CACHE", str(tmp_path / "cache"))
    first = to_ms("2019-01-07")  # a Monday: weekly candles open on Mondays
    with BybitServer() as srv:
        srv.add("BTCUSDT", "W", make_history(first, 200, W, seed=2))
        r = run("train", "BTCUSDT", "--interval", "1w", "--source", "bybit", "--base-url", srv.url, *SMALL,
                "--out", tmp_path / "w.npz")
        assert r.exit_code == 0, r.output
        starts = [int(e["params"]["start"]) for e in srv.log]
    assert min(starts) >= BYBIT_START_MS
    assert bv.load(tmp_path / "w.npz").metadata["data"]["rows"] == 200


@pytest.mark.parametrize("when", ["1600-01-01", "2500-01-01"])
def test_train_start_outside_the_datetime_range_is_misuse(when, tmp_path):
    r = run("train", "BTCUSDT", "--source", "sample", "--start", when, *SMALL, "--out", tmp_path / "m.npz")
    assert r.exit_code == 2 and when in r.stderr and "Traceback" not in r.output
