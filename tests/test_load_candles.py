"""load_candles: default ranges for every interval, gaps and interval of every source, retry notices,
provenance of the data actually returned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st

import betavae_np as bv
from betavae_np.cli import main
from betavae_np.data.frame import infer_interval
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
    assert bv.load(tmp_path / "w.npz").records.provenance.to_dict()["rows"] == 200


@pytest.mark.parametrize("when", ["1600-01-01", "2500-01-01"])
def test_train_start_outside_the_datetime_range_is_misuse(when, tmp_path):
    r = run("train", "BTCUSDT", "--source", "sample", "--start", when, *SMALL, "--out", tmp_path / "m.npz")
    assert r.exit_code == 2 and when in r.stderr and "Traceback" not in r.output


# -- gaps of every source, in one shape ------------------------------------------------------------------
def _write_csv(path, hist, fmt="ms"):
    df = bv.data.frame_from_arrays(hist.t, hist.values[:, :5])
    table = df.reset_index(drop=True)
    times = hist.t if fmt == "ms" else [t.strftime("%Y-%m-%d %H:%M:%S") for t in df.index]
    table.insert(0, "timestamp_ms" if fmt == "ms" else "open_time", times)
    table.to_csv(path, index=False)
    return path


def _truth_gaps(hist, step):
    return [g.to_dict() for g in bv.data.find_gaps(hist.t, step)]


def test_load_candles_csv_reports_gaps_like_bybit(tmp_path):
    t0 = to_ms("2024-01-01")
    hist = make_history(t0, 400, H, seed=3, drop=[(100, 110), (250, 252)])
    df = load_candles("BTCUSDT", source=str(_write_csv(tmp_path / "g.csv", hist)), interval="60")
    meta = df.attrs["betavae_np"]
    assert meta["gaps"] == _truth_gaps(hist, H) and [g["missing"] for g in meta["gaps"]] == [10, 2]
    assert meta["missing_candles"] == 12 and meta["rows"] == len(df) == 388


def test_load_candles_sample_gaps_follow_the_clip():
    df = load_candles("BTCUSDT", source="sample", start="2018-01-01", end="2018-02-01")
    meta = df.attrs["betavae_np"]
    assert meta["rows"] == len(df) and meta["start"].startswith("2018-01-01")
    truth = bv.data.find_gaps(bv.data.index_to_ms(df.index), H)
    assert meta["gaps"] == [g.to_dict() for g in truth] and meta["missing_candles"] == sum(g.missing for g in truth)


def test_train_csv_gaps_reach_the_data_line_and_model_file(tmp_path):
    hist = make_history(to_ms("2024-01-01"), 500, H, seed=3, drop=[(100, 112), (300, 303)])
    csv = _write_csv(tmp_path / "g.csv", hist)
    r = run("train", "BTCUSDT", "--source", csv, *SMALL[:-1], "--out", tmp_path / "m.npz")  # not --quiet
    assert r.exit_code == 0, r.output
    line = next(x for x in r.stderr.splitlines() if x.startswith("data:"))
    assert "2 gaps (15 missing candles; largest 12 from 2024-01-05T04:00 to 2024-01-05T15:00)" in line, line
    meta = bv.load(tmp_path / "m.npz").records.provenance.to_dict()
    assert meta["gaps"] == _truth_gaps(hist, H) and meta["missing_candles"] == 15


def test_train_bybit_data_line_shows_the_data_range_once_named(tmp_path, monkeypatch):
    """The Bybit data: line showed the requested range and said 'Bybit bybit'."""
    monkeypatch.setenv("BETAVAE_NP_CACHE", str(tmp_path / "cache"))
    first = to_ms("2024-01-01T05:00")
    with BybitServer() as srv:
        srv.add("ETHUSDT", "60", make_history(first, 300, H, seed=4, drop=[(50, 53)]))
        r = run("train", "ETHUSDT", "--source", "bybit", "--base-url", srv.url, "--start", "2023-12-30",
                "--end", "2024-02-01", *SMALL[:-1], "--out", tmp_path / "m.npz")
    assert r.exit_code == 0, r.output
    line = next(x for x in r.stderr.splitlines() if x.startswith("data:"))
    assert line.startswith("data: Bybit ETHUSDT interval 60, 297 candles 2024-01-01T05:00 .. 2024-01-13T16:00, "
                           "1 gap (3 missing candles; largest 3 from 2024-01-03T07:00 to 2024-01-03T09:00)"), line
    data = bv.load(tmp_path / "m.npz").records.provenance.to_dict()
    assert data["requested_start"].startswith("2023-12-30") and data["start"].startswith("2024-01-01T05")


# -- the CSV's interval is inferred ----------------------------------------------------------------------
def test_load_candles_infers_a_daily_csv_and_says_so(tmp_path):
    hist = make_history(to_ms("2020-01-01"), 300, STEP["D"], seed=5, drop=[(40, 42)])
    notices = []
    df = load_candles("BTCUSD", source=str(_write_csv(tmp_path / "d.csv", hist, fmt="text")), on_notice=notices.append)
    meta = df.attrs["betavae_np"]
    assert meta["interval"] == "D" and meta["interval_inferred"] is True
    assert notices == ["the CSV's candles are 1 day apart: using interval D"]
    assert [g["missing"] for g in meta["gaps"]] == [2]  # gaps measured in days, not hours


@pytest.mark.parametrize("step,code", [(STEP["1"], "1"), (STEP["240"], "240"), (STEP["W"], "W")])
def test_load_candles_infers_other_intervals(step, code, tmp_path):
    hist = make_history(to_ms("2019-01-07"), 60, step, seed=6, drop=[(10, 13)])
    df = load_candles("BTCUSD", source=str(_write_csv(tmp_path / "c.csv", hist)))
    assert df.attrs["betavae_np"]["interval"] == code


def test_load_candles_infers_monthly_csv(tmp_path):
    months = pd.date_range("2019-01-01", periods=40, freq="MS", tz="UTC")
    hist = make_history(0, 40, 1, seed=7)
    hist.t = bv.data.index_to_ms(months)
    df = load_candles("BTCUSD", source=str(_write_csv(tmp_path / "m.csv", hist)))
    assert df.attrs["betavae_np"]["interval"] == "M" and df.attrs["betavae_np"]["gaps"] == []


def test_load_candles_csv_interval_contradiction_is_one_exact_sentence(tmp_path):
    hist = make_history(to_ms("2020-01-01"), 300, STEP["D"], seed=5)
    csv = _write_csv(tmp_path / "d.csv", hist)
    with pytest.raises(bv.exceptions.ConfigError) as err:
        load_candles("BTCUSD", source=str(csv), interval="60")
    assert str(err.value) == "the CSV's candles are 1 day apart (interval D) but --interval 60 was given"
    r = run("train", "BTCUSD", "--source", csv, "--interval", "60", *SMALL, "--out", tmp_path / "m.npz")
    assert r.exit_code == 2 and "the CSV's candles are 1 day apart (interval D) but --interval 60 was given" \
        in r.stderr and "gap" not in r.stderr
    r = run("train", "BTCUSD", "--source", csv, "--interval", "1d", *SMALL, "--out", tmp_path / "m.npz")
    assert r.exit_code == 0, r.output
    assert bv.load(tmp_path / "m.npz").records.windowing.interval == "D"


def test_load_candles_csv_spacing_that_is_no_bybit_interval(tmp_path):
    hist = make_history(to_ms("2024-01-01"), 50, 10 * STEP["1"], seed=8)
    with pytest.raises(bv.exceptions.DataError, match="10 minutes apart, which is no Bybit interval"):
        load_candles("BTCUSD", source=str(_write_csv(tmp_path / "c.csv", hist)))


# -- retries are announced at the first failure ----------------------------------------------------------
def test_client_on_retry_called_before_each_retry_wait(tmp_path):
    with BybitServer() as srv:
        srv.add("BTCUSDT", "60", make_history(to_ms("2024-01-01"), 50, H))
        srv.fault("502", times=2)
        calls = []
        df = bv.data.fetch_klines("BTCUSDT", "60", "2024-01-01", "2024-01-02T01:00", base_url=srv.url,
                                  cache_dir=tmp_path, rate=None, backoff=0.001, backoff_cap=0.002,
                                  on_retry=lambda a, d, e: calls.append((a, len(srv.log), type(e).__name__)))
    assert len(df) == 26
    assert calls == [(1, 1, "BybitServerError"), (2, 2, "BybitServerError")]  # each before the next request


def test_load_candles_says_retrying_once_at_the_first_failure(tmp_path):
    with BybitServer() as srv:
        srv.add("BTCUSDT", "60", make_history(to_ms("2024-01-01"), 50, H))
        srv.fault("502", times=2)
        notices = []
        df = load_candles("BTCUSDT", source="bybit", start="2024-01-01", end="2024-01-02T01:00", base_url=srv.url,
                          cache_dir=tmp_path, on_notice=lambda m: notices.append((m, len(srv.log))))
    assert len(df) == 26
    assert len(notices) == 1
    message, requests_so_far = notices[0]
    assert message.endswith("; retrying...") and "HTTP 502" in message and requests_so_far == 1


def test_cli_fetch_says_retrying_on_stderr(tmp_path):
    with BybitServer() as srv:
        srv.add("BTCUSDT", "60", make_history(to_ms("2024-01-01"), 50, H))
        srv.fault("502", times=2)
        r = run("fetch", "BTCUSDT", "--base-url", srv.url, "--cache-dir", tmp_path, "--start", "2024-01-01",
                "--end", "2024-01-02T01:00", "--json")
    assert r.exit_code == 0, r.output
    assert r.stderr.count("retrying...") == 1 and "HTTP 502" in r.stderr


@given(code=st.sampled_from(INTERVALS[:-1]), n=st.integers(8, 300), data=st.data())
def test_infer_interval_survives_gaps(code, n, data):
    """Any minority of missing candles leaves the most common spacing, hence the interval, unchanged."""
    step = interval_ms(code)
    drop = data.draw(st.sets(st.integers(1, n - 2), max_size=n // 4))
    t = BYBIT_START_MS + step * np.array([i for i in range(n) if i not in drop], dtype=np.int64)
    assert infer_interval(t) == code


def test_train_daily_csv_without_interval_infers_it_and_names_the_file(tmp_path, monkeypatch):
    hist = make_history(to_ms("2020-01-01"), 300, STEP["D"], seed=5)
    csv = _write_csv(tmp_path / "d.csv", hist)
    monkeypatch.chdir(tmp_path)
    r = run("train", "BTCUSD", "--source", csv, *SMALL)
    assert r.exit_code == 0, r.output
    assert "interval D" in r.stderr and "gap" not in r.stderr.replace("no gaps", "")
    model = bv.load(tmp_path / "betavae-BTCUSD-D.npz")
    assert model.records.windowing.interval == "D"
    assert bv.TrainConfig.from_model(model).interval == "D"
