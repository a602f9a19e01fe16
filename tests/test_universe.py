"""load_universe: a directory of CSVs or frames -> Universe; one clear sentence per bad input."""

from __future__ import annotations

import numpy as np
import pytest

from betavae_np.data import Universe, Windower, load_universe
from betavae_np.data.frame import index_to_ms
from betavae_np.data.universe import parse_candle_filename
from betavae_np.exceptions import ConfigError, DataError
from test_windows import HOUR, T0, candles


def write_csv(path, df):
    out = df.copy()
    out.insert(0, "timestamp_ms", index_to_ms(df.index))
    out.to_csv(path, index=False)


@pytest.fixture
def folder(tmp_path):
    write_csv(tmp_path / "BTCUSDT_1h.csv", candles(300, seed=1))
    t = T0 + HOUR * np.r_[np.arange(100), 110 + np.arange(150)]
    write_csv(tmp_path / "ETHUSDT_60.csv", candles(250, seed=2, times=t))
    write_csv(tmp_path / "SOLUSDT.csv", candles(200, seed=3, times=T0 + HOUR * (50 + np.arange(200))))
    (tmp_path / "PROVENANCE.md").write_text("not candles")
    (tmp_path / ".tmp-123.csv").write_text("half a file")
    return tmp_path


@pytest.mark.parametrize("name, want", [("BTCUSDT_1h.csv", ("BTCUSDT", "60")), ("ethusdt.csv", ("ETHUSDT", None)),
                                        ("SOLUSDT_D.csv", ("SOLUSDT", "D")), ("XRPUSDT_240.CSV", ("XRPUSDT", "240"))])
def test_parse_candle_filename(name, want):
    assert parse_candle_filename(name) == want


@pytest.mark.parametrize("name", ["BTC-USDT_1h.csv", "BTCUSDT_3d.csv", "_1h.csv"])
def test_parse_candle_filename_rejects_other_names(name):
    with pytest.raises(DataError, match="<SYMBOL>_<interval>.csv"):
        parse_candle_filename(name)


def test_universe_from_directory_with_provenance(folder):
    u = load_universe(folder)
    assert isinstance(u, Universe) and u.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT") and u.interval == "60"
    p = u.provenance["ETHUSDT"]
    assert p["source"] == "csv" and p["path"].endswith("ETHUSDT_60.csv") and p["rows"] == 250
    assert p["missing_candles"] == 10 and len(p["gaps"]) == 1
    assert u.provenance["SOLUSDT"]["start"] == u.frames["SOLUSDT"].index[0].isoformat()
    assert u.n_candles == 750
    ws = u.windows(Windower(window=8, lookback=24))
    assert ws.symbols == u.symbols and set(ws.provenance) == set(u.symbols)


def test_universe_from_frames_keeps_order_and_provenance():
    a, b = candles(100, seed=1), candles(80, seed=2)
    a.attrs["betavae_np"] = {"source": "bybit", "category": "linear", "interval": "60"}
    u = load_universe({"ethusdt": b, "BTCUSDT": a})
    assert u.symbols == ("ETHUSDT", "BTCUSDT")
    assert u.provenance["BTCUSDT"]["source"] == "bybit" and u.provenance["ETHUSDT"]["source"] == "frame"


def test_universe_symbols_filter(folder):
    assert load_universe(folder, symbols=["solusdt", "BTCUSDT"]).symbols == ("SOLUSDT", "BTCUSDT")
    with pytest.raises(DataError, match="no candles of XRPUSDT"):
        load_universe(folder, symbols=["XRPUSDT"])


def test_universe_empty_is_one_sentence(tmp_path):
    with pytest.raises(DataError, match="the universe is empty"):
        load_universe(tmp_path)
    with pytest.raises(DataError, match="the universe is empty"):
        load_universe({})
    with pytest.raises(DataError, match="is not a directory"):
        load_universe(tmp_path / "nope")


def test_universe_mixed_intervals_is_one_sentence(folder):
    df = candles(100, seed=5, times=T0 + 4 * HOUR * np.arange(100))
    write_csv(folder / "XRPUSDT_4h.csv", df)
    with pytest.raises(DataError, match=r"mixes candle intervals \(60 in \w+, 240 in XRPUSDT\)"):
        load_universe(folder)


def test_universe_name_and_candles_disagree_is_one_sentence(folder):
    write_csv(folder / "XRPUSDT_1h.csv", candles(100, seed=5, times=T0 + 4 * HOUR * np.arange(100)))
    with pytest.raises(DataError, match="XRPUSDT_1h.csv: the name says interval 60"):
        load_universe(folder)


def test_universe_duplicate_symbols_is_one_sentence(folder):
    write_csv(folder / "btcusdt.csv", candles(100, seed=5))
    with pytest.raises(DataError, match="symbol BTCUSDT has two files"):
        load_universe(folder)
    with pytest.raises(DataError, match="symbol BTCUSDT is given twice"):
        load_universe({"BTCUSDT": candles(50), "btcusdt": candles(50)})


def test_universe_symbol_with_too_few_candles_is_skipped_with_a_notice(folder):
    write_csv(folder / "XRPUSDT_1h.csv", candles(1, seed=5))
    write_csv(folder / "ADAUSDT_1h.csv", candles(20, seed=6))
    notes = []
    u = load_universe(folder, on_notice=notes.append)
    assert "XRPUSDT" not in u.symbols and "XRPUSDT" in u.skipped and notes == [u.skipped["XRPUSDT"]]
    ws = u.windows(Windower(window=8, lookback=24), on_notice=notes.append)
    assert "ADAUSDT" not in ws.symbols and notes[-1].startswith("ADAUSDT skipped: need at least 24 candles")
    assert ws.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def test_universe_interval_mismatch(folder):
    with pytest.raises(ConfigError, match="interval 240 was asked for"):
        load_universe(folder, interval="240")
    u = load_universe(folder, interval="1h")
    with pytest.raises(ConfigError, match="not the universe's"):
        u.windows(Windower(interval="D"))


def test_universe_bad_file_names_its_file(folder):
    (folder / "XRPUSDT_1h.csv").write_text("timestamp_ms,open\n1,2\n")
    with pytest.raises(DataError, match="XRPUSDT_1h.csv: missing column"):
        load_universe(folder)


def test_development_universe_loads_and_windows(shared_dir):
    folder = shared_dir / "data" / "bybit_perp_1h"
    if not folder.is_dir():
        pytest.skip("the development universe is not present")
    u = load_universe(folder)
    assert len(u) == 20 and u.interval == "60" and "BTCUSDT" in u.symbols
    assert all(p["source"] == "csv" and p["rows"] > 2000 for p in u.provenance.values())
    ws = u.windows()
    assert ws.symbols == u.symbols and ws.shape == (sum(ws.counts), 32 * 5)
    train, val = ws.split(0.2)
    assert train.end_times.max() < val.start_times.min()
    assert (val.counts > 0).all()
    own = Windower(interval="60").windows(u.frames["ETHUSDT"])
    k = u.symbols.index("ETHUSDT")
    first = int(np.sum(ws.counts[:k]))
    assert np.array_equal(ws.gather(np.arange(first, first + 50)), own.gather(np.arange(50)))
