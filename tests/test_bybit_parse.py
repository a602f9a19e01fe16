"""Parsing real Bybit v5 replies (the fixtures) into arrays and candle frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from betavae_np.data._parse import MalformedReply, decode_envelope, kline_arrays
from betavae_np.data.bybit import candles_frame
from betavae_np.data.frame import validate_candles

FIX = Path(__file__).resolve().parent / "fixtures" / "bybit"
KLINES = sorted(p.name for p in FIX.glob("*.json") if "kline" in p.name or "hummingbot" in p.name)


def _parse(raw: bytes):
    env = decode_envelope(raw)
    assert env["retCode"] == 0
    return kline_arrays(env)


@pytest.mark.parametrize("name", KLINES)
def test_kline_arrays_every_fixture_matches_json(name):
    raw = (FIX / name).read_bytes()
    rows = json.loads(raw)["result"]["list"]
    t, v = _parse(raw)
    assert t.dtype == np.int64 and v.dtype == np.float64 and v.shape == (len(rows), 6)
    assert t.tolist() == [int(r[0]) for r in rows]
    np.testing.assert_array_equal(v, np.array([[float(x) for x in r[1:]] for r in rows]))
    assert (np.diff(t) < 0).all()  # Bybit sends newest first


@pytest.mark.parametrize("name", KLINES)
def test_candles_frame_every_fixture_is_a_valid_candle_frame(name):
    t, v = _parse((FIX / name).read_bytes())
    order = np.argsort(t)
    df = candles_frame(t[order], v[order], {"interval": "60", "symbol": "X", "start": "", "end": ""})
    validate_candles(df)
    assert list(df.columns) == ["open", "high", "low", "close", "volume", "turnover"]
    assert str(df.index.tz) == "UTC" and df.index.is_monotonic_increasing
    assert df.attrs["betavae_np"]["rows"] == len(t)


def test_kline_arrays_inverse_volume_in_usd_turnover_in_btc():
    t, v = _parse((FIX / "kline_v5_inverse_BTCUSD_60_official_docs.json").read_bytes())
    # volume = contracts of 1 USD, turnover = BTC: turnover ~ volume / price
    np.testing.assert_allclose(v[:, 5], v[:, 4] / v[:, 3], rtol=0.01)
    assert t[0] == 1670608800000  # the candle opening exactly at `end` is included


def test_kline_arrays_spot_turnover_is_quote_volume():
    t, v = _parse((FIX / "hummingbot__spot_BTCUSDT_60_2024-05-08.json").read_bytes())
    vwap = v[:, 5] / v[:, 4]
    assert ((vwap >= v[:, 2]) & (vwap <= v[:, 1])).all()  # turnover/volume lies within [low, high]


def test_kline_arrays_shared_live_captures(shared_dir):
    for name in ("kline_v5_spot_BTCUSDT_D_live_capture_unattributed.json",
                 "kline_v5_spot_BTCUSDT_1_live_ro-soku_issue3.json"):
        path = shared_dir / "fixtures" / "bybit" / name
        if path.exists():
            t, v = _parse(path.read_bytes())
            assert v.shape == (len(t), 6) and np.isfinite(v).all()


@pytest.mark.parametrize("name", ["error_v5_10001_not_supported_symbols.json",
                                  "error_v5_10001_invalid_period.json", "error_v5_10006_too_many_visits.json"])
def test_decode_envelope_errors_have_no_list(name):
    env = decode_envelope((FIX / name).read_bytes())
    assert env["retCode"] in (10001, 10006) and env["result"] == {}
    with pytest.raises(MalformedReply, match="no result.list"):
        kline_arrays(env)


def test_kline_arrays_rejects_instruments_info_rows():
    env = decode_envelope((FIX / "instruments_info_v5_spot_BTCUSDT_official_docs.json").read_bytes())
    with pytest.raises(MalformedReply):
        kline_arrays(env)


@pytest.mark.parametrize("body", [b"", b"<html>502 Bad Gateway</html>", b'{"retCode":0,"retMsg":"OK","res',
                                  b"[1, 2]", b'{"retMsg": "OK"}'])
def test_decode_envelope_rejects_non_envelopes(body):
    with pytest.raises(MalformedReply):
        decode_envelope(body)


@pytest.mark.parametrize("rows", [[["1", "x", "1", "1", "1", "1", "1"]], [["1", "2"]],
                                  [["1", "1", "1", "1", "1", "1", "1"], ["2", "1"]],
                                  [["1", "nan", "1", "1", "1", "1", "1"]]])
def test_kline_arrays_rejects_bad_rows(rows):
    with pytest.raises(MalformedReply):
        kline_arrays({"retCode": 0, "result": {"list": rows}})


def test_kline_arrays_empty_list_is_empty_arrays():
    t, v = kline_arrays({"retCode": 0, "result": {"list": []}})
    assert t.shape == (0,) and v.shape == (0, 6)


def test_kline_arrays_does_not_mutate_input():
    env = json.loads((FIX / "hummingbot__spot_BTCUSDT_60_2024-05-08.json").read_bytes())
    before = json.dumps(env)
    kline_arrays(env)
    assert json.dumps(env) == before
