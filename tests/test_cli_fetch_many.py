"""``betavae-np fetch`` with several symbols, --symbols-file and --top, against the loopback server."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from betavae_np.cli import main
from bybit_server import STEP, BybitServer, make_history

START = 1_704_067_200_000  # 2024-01-01
SYMS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
RANGE = ["--start", "2024-01-01", "--end", "2024-01-05T23:00"]   # 120 hourly candles


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def srv(tmp_path, monkeypatch):
    monkeypatch.setenv("BETAVAE_NP_CACHE", str(tmp_path / "cache"))
    with BybitServer() as s:
        for k, sym in enumerate(SYMS):
            s.add(sym, "60", make_history(START, 300, STEP["60"], seed=k, drop=[(50, 53)] if k == 1 else ()))
        yield s


def test_cli_fetch_several_symbols_to_a_directory(srv, tmp_path):
    out = tmp_path / "candles"
    r = run("fetch", *SYMS, "--base-url", srv.url, *RANGE, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert [s["symbol"] for s in res["symbols"]] == SYMS and res["failed"] == []
    eth = next(s for s in res["symbols"] if s["symbol"] == "ETHUSDT")
    assert eth["rows"] == 117 and eth["missing_candles"] == 3 and eth["out"].endswith("ETHUSDT_60.csv")
    assert sorted(p.name for p in out.iterdir()) == ["BTCUSDT_60.csv", "ETHUSDT_60.csv", "SOLUSDT_60.csv"]
    csv = pd.read_csv(out / "BTCUSDT_60.csv")
    assert len(csv) == 120 and list(csv.columns[:3]) == ["open_time", "timestamp_ms", "open"]
    lines = r.stderr.strip().splitlines()
    assert sorted(line.split(":")[0] for line in lines) == sorted(SYMS)   # one progress line per symbol
    # the same again: all from the cache, and the table says so
    r = run("fetch", *SYMS, "--base-url", srv.url, *RANGE)
    assert r.exit_code == 0, r.output
    assert "from cache" in r.stdout and all(s in r.stdout for s in SYMS)
    n = len(srv.log)
    r = run("fetch", *SYMS, "--base-url", srv.url, *RANGE, "--json")
    assert len(srv.log) == n and all(s["from_cache"] == s["rows"] for s in json.loads(r.stdout)["symbols"])


def test_cli_fetch_universe_reads_back_as_a_universe(srv, tmp_path):
    from betavae_np.data import load_universe

    out = tmp_path / "u"
    assert run("fetch", *SYMS, "--base-url", srv.url, *RANGE, "--out", out).exit_code == 0
    u = load_universe(out)
    assert u.symbols == tuple(sorted(SYMS)) and u.interval == "60"
    assert u.provenance["ETHUSDT"]["missing_candles"] == 3


def test_cli_fetch_one_failing_symbol_others_complete_exit_1(srv, tmp_path):
    out = tmp_path / "c"
    r = run("fetch", "BTCUSDT", "NOPEUSDT", "SOLUSDT", "--base-url", srv.url, *RANGE, "--out", out)
    assert r.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == ["BTCUSDT_60.csv", "SOLUSDT_60.csv"]
    assert "NOPEUSDT: failed: Bybit does not list symbol 'NOPEUSDT'" in r.stderr
    assert r.stderr.strip().splitlines()[-1] == "Error: 1 of 3 symbols failed: NOPEUSDT"
    assert "Traceback" not in r.output


def test_cli_fetch_symbols_file(srv, tmp_path):
    f = tmp_path / "universe.txt"
    f.write_text("# my universe\nBTCUSDT\n\nethusdt   # lower case is fine\n")
    r = run("fetch", "--symbols-file", f, "--base-url", srv.url, *RANGE, "--json")
    assert r.exit_code == 0, r.output
    assert [s["symbol"] for s in json.loads(r.stdout)["symbols"]] == ["BTCUSDT", "ETHUSDT"]


def test_cli_fetch_top_n_by_turnover(srv, tmp_path):
    srv.set_tickers("linear", {"BTCUSDT": 5e9, "XRPUSDT": 1e6, "SOLUSDT": 2e9, "ETHUSDT": 3e9})
    r = run("fetch", "--top", "2", "--base-url", srv.url, *RANGE, "--json")
    assert r.exit_code == 0, r.output
    assert [s["symbol"] for s in json.loads(r.stdout)["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    assert "largest 24h turnover: BTCUSDT ETHUSDT" in r.stderr


@pytest.mark.parametrize("args, match", [
    (["BTCUSDT", "--top", "3"], "--top picks the symbols itself"),
    ([], "give a SYMBOL"),
    (["BTCUSDT", "btcusdt"], "given twice"),
    (["BTCUSDT", "BAD-1"], "invalid symbol"),
])
def test_cli_fetch_many_misuse_is_exit_2(srv, args, match):
    r = run("fetch", *args, "--base-url", srv.url, *RANGE)
    assert r.exit_code == 2 and match in r.stderr and "Traceback" not in r.output


def test_cli_fetch_many_out_must_be_a_directory(srv, tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("")
    r = run("fetch", *SYMS, "--base-url", srv.url, *RANGE, "--out", f)
    assert r.exit_code == 2 and "names a directory" in r.stderr


def test_cli_fetch_empty_symbols_file_is_exit_2(srv, tmp_path):
    f = tmp_path / "empty.txt"
    f.write_text("# nothing\n")
    r = run("fetch", "--symbols-file", f, "--base-url", srv.url)
    assert r.exit_code == 2 and "lists no symbol" in r.stderr


def test_cli_fetch_one_symbol_out_must_be_a_file_as_before(srv, tmp_path):
    r = run("fetch", "BTCUSDT", "--base-url", srv.url, *RANGE, "--out", tmp_path)
    assert r.exit_code == 2 and "is a directory" in r.stderr
