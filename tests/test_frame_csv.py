"""Candle CSVs: every usual time column parses (under the pandas pip installs today), and what
``betavae-np fetch --out`` writes reads back as the same frame and trains."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import betavae_np as bv
from betavae_np.cli import main
from betavae_np.data.frame import read_candles_csv
from betavae_np.exceptions import DataError

from bybit_server import STEP, BybitServer, make_history

H = STEP["60"]
T0 = 1_714_521_600_000  # 2024-05-01 00:00 UTC


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _frame(n=6):
    hist = make_history(T0, n, H, seed=1)
    return bv.data.frame_from_arrays(hist.t, hist.values[:, :5])


def _times_as(kind: str, t_ms: np.ndarray):
    ts = pd.to_datetime(t_ms, unit="ms", utc=True)
    return {
        "epoch-ms": t_ms,
        "epoch-s": t_ms // 1000,
        "epoch-s-float": t_ms / 1000.0,
        "iso-utc": [x.isoformat() for x in ts],                         # 2024-05-01T00:00:00+00:00
        "iso-z": [x.strftime("%Y-%m-%dT%H:%M:%SZ") for x in ts],          # 2024-05-01T00:00:00Z
        "space": [x.strftime("%Y-%m-%d %H:%M:%S") for x in ts],           # 2024-05-01 00:00:00
        "offset": [x.tz_convert("Europe/Berlin").isoformat() for x in ts],  # 2024-05-01T02:00:00+02:00
        "quoted-ms": [f"{int(v)}" for v in t_ms],
    }[kind]


@pytest.mark.parametrize("column", ["open_time", "timestamp", "time", "date", "Timestamp_ms"])
@pytest.mark.parametrize("kind", ["epoch-ms", "epoch-s", "epoch-s-float", "iso-utc", "iso-z", "space", "offset",
                                  "quoted-ms"])
def test_read_candles_csv_time_formats(kind, column, tmp_path):
    df = _frame()
    t = bv.data.index_to_ms(df.index)
    table = df.reset_index(drop=True)
    table.insert(0, column, _times_as(kind, t))
    path = tmp_path / "c.csv"
    table.to_csv(path, index=False, quoting=1 if kind == "quoted-ms" else 0)
    got = read_candles_csv(path)
    np.testing.assert_array_equal(bv.data.index_to_ms(got.index), t)
    assert str(got.index.tz) == "UTC" and got.index.name == "open_time"
    np.testing.assert_array_equal(got.to_numpy(), df.to_numpy())


def test_read_candles_csv_daily_dates(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("date,open,high,low,close,volume\n2024-05-01,1,2,0.5,1.5,3\n2024-05-02,1.5,2,1,1.2,4\n")
    got = read_candles_csv(path)
    assert list(got.index) == [pd.Timestamp("2024-05-01", tz="UTC"), pd.Timestamp("2024-05-02", tz="UTC")]


def test_read_candles_csv_unparseable_time_names_value(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("open_time,open,high,low,close,volume\n2024-05-01 00:00,1,2,0.5,1.5,3\n"
                    "yesterday,1.5,2,1,1.2,4\n")
    with pytest.raises(DataError, match="'yesterday'"):
        read_candles_csv(path)


def test_fetch_out_csv_round_trips_and_trains(tmp_path, monkeypatch):
    """fetch from the loopback server -> --out f.csv -> read_candles_csv is the same frame -> train works."""
    monkeypatch.setenv("BETAVAE_NP_CACHE", str(tmp_path / "cache"))
    with BybitServer() as srv:
        srv.add("ETHUSDT", "60", make_history(T0, 300, H, seed=7))
        out = tmp_path / "f.csv"
        r = run("fetch", "ETHUSDT", "--base-url", srv.url, "--start", "2024-05-01", "--end", "2024-05-13T11:00",
                "--out", out, "--json")
        assert r.exit_code == 0, r.output
        fetched = bv.data.fetch_klines("ETHUSDT", "60", "2024-05-01", "2024-05-13T11:00", base_url=srv.url)
    got = read_candles_csv(out)
    assert len(got) == 300
    pd.testing.assert_frame_equal(got, fetched, check_index_type=True)
    model = tmp_path / "m.npz"
    r = run("train", "ETHUSDT", "--source", out, "--epochs", "1", "--window", "8", "--lookback", "16",
            "--latent", "2", "--hidden", "8", "--batch-size", "32", "-q", "--out", model, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["data"]["rows"] == 300
    assert bv.load(model).records.provenance.to_dict()["source"] == "csv"
