"""The command line, end to end with Click's CliRunner: every command, --json shapes, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import betavae_np as bv
from betavae_np.cli import main

from bybit_server import STEP, BybitServer, make_history

SMALL = ["--window", "8", "--lookback", "16", "--latent", "3", "--hidden", "16", "--batch-size", "64",
         "--epochs", "2", "--quiet"]


def run(*args, env=None):
    runner = CliRunner()
    return runner.invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def candles_csv(tmp_path_factory):
    """1,000 real hourly candles from the bundled sample, as a CSV file."""
    df = bv.data.load_sample().iloc[:1000]
    path = tmp_path_factory.mktemp("csv") / "btc.csv"
    out = df.copy()
    out.insert(0, "timestamp_ms", bv.data.index_to_ms(df.index))
    out.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, candles_csv):
    path = tmp_path_factory.mktemp("model") / "m.npz"
    r = run("train", "BTCUSDT", "--source", candles_csv, *SMALL, "--out", path, "--json")
    assert r.exit_code == 0, r.output
    return path


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Bybit unreachable (a closed loopback port) and an empty cache."""
    monkeypatch.setenv("BETAVAE_NP_BYBIT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("BETAVAE_NP_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_help_lists_every_command():
    r = run("--help")
    assert r.exit_code == 0
    for cmd in ("fetch", "train", "traverse", "evaluate"):
        assert cmd in r.output
    assert run("-h").exit_code == 0


def test_cli_version_matches_package():
    r = run("--version")
    assert r.exit_code == 0 and bv.__version__ in r.output


def test_cli_help_does_not_import_numba():
    code = "import sys, betavae_np.cli as c; print('numba' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_cli_train_csv_json_shape(model_file, candles_csv):
    m = bv.load(model_file)
    rec = m.records
    for key in ("provenance", "windowing", "history", "latent_stats", "run", "split", "reference",
                "window_stats"):
        assert getattr(rec, key) is not None, key
    assert rec.run.package_version and "seed" in rec.run.config
    assert rec.provenance.source == "csv" and rec.provenance.rows == 1000
    assert rec.windowing.window == 8
    assert len(rec.latent_stats.kl) == 3
    assert rec.run.package_version == bv.__version__


def test_cli_train_offline_falls_back_to_sample_with_notice(offline):
    r = run("train", "BTCUSDT", *SMALL, "--epochs", "1", "--json")
    assert r.exit_code == 0, r.output
    assert "bundled real sample" in r.stderr and "coinbase" in r.stderr.lower()
    out = json.loads(r.stdout)
    assert out["data"]["source"] == "sample"
    assert out["model"].endswith("betavae-BTCUSDT-60.npz") and os.path.exists(out["model"])
    assert set(out) >= {"train", "validation", "kl_per_dim", "active_dims", "notices"}
    assert bv.load(out["model"]).records.provenance.get("fallback_reason")


def test_cli_train_offline_non_btc_is_a_clear_failure(offline):
    r = run("train", "ETHUSDT", *SMALL)
    assert r.exit_code == 1
    assert "BTC-USD candles only" in r.stderr and "Traceback" not in r.output


def test_cli_train_source_bybit_unreachable_fails_clearly(offline):
    r = run("train", "BTCUSDT", "--source", "bybit", *SMALL)
    assert r.exit_code == 1
    assert "127.0.0.1" in r.stderr and "Traceback" not in r.output
    *notes, error = r.stderr.strip().splitlines()  # one sentence, after the one "retrying..." notice
    assert error.startswith("Error: ") and [n.endswith("; retrying...") for n in notes] == [True]


def test_cli_train_and_fetch_from_local_bybit(tmp_path, monkeypatch):
    monkeypatch.setenv("BETAVAE_NP_CACHE", str(tmp_path / "cache"))
    start = 1_704_067_200_000  # 2024-01-01
    with BybitServer() as srv:
        srv.add("BTCUSDT", "60", make_history(start, 600, STEP["60"], seed=3))
        r = run("fetch", "BTCUSDT", "--base-url", srv.url, "--start", "2024-01-01", "--end", "2024-01-25T23:00",
                "--out", tmp_path / "btc.csv", "--json")
        assert r.exit_code == 0, r.output
        summary = json.loads(r.stdout)
        assert summary["rows"] == 600 and summary["gaps"] == [] and summary["requests"] >= 1
        csv = pd.read_csv(tmp_path / "btc.csv")
        assert list(csv.columns[:7]) == ["open_time", "timestamp_ms", "open", "high", "low", "close", "volume"]
        assert len(csv) == 600 and csv["timestamp_ms"].is_monotonic_increasing
        n_before = len(srv.log)
        r = run("train", "BTCUSDT", "--source", "bybit", "--base-url", srv.url, "--start", "2024-01-01",
                "--end", "2024-01-25T23:00", *SMALL, "--out", tmp_path / "m.npz", "--json")
        assert r.exit_code == 0, r.output
        assert len(srv.log) == n_before  # served from the cache
    prov = bv.load(tmp_path / "m.npz").records.provenance
    assert prov.source == "bybit" and prov.symbol == "BTCUSDT"


def test_cli_fetch_unknown_symbol_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("BETAVAE_NP_CACHE", str(tmp_path / "cache"))
    with BybitServer() as srv:
        r = run("fetch", "NOPEUSDT", "--base-url", srv.url, "--start", "2024-01-01", "--end", "2024-01-02")
    assert r.exit_code == 1
    assert "NOPEUSDT" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("interval", ["3d", "7m"])
def test_cli_bad_interval_is_a_usage_error(interval, offline):
    r = run("train", "BTCUSDT", "--interval", interval, *SMALL)
    assert r.exit_code in (1, 2)
    assert interval in r.stderr and "Traceback" not in r.output


def _bad_csv(tmp_path, kind, candles_csv):
    df = pd.read_csv(candles_csv)
    if kind == "missing column":
        df = df.drop(columns=["volume"])
    elif kind == "nan price":
        df.loc[50, "close"] = np.nan
    elif kind == "unsorted":
        df = df.iloc[::-1]
    elif kind == "duplicated":
        df = pd.concat([df.iloc[:10], df.iloc[9:]])
    elif kind == "too few":
        df = df.iloc[:10]
    path = tmp_path / f"{kind.replace(' ', '_')}.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind,words", [("missing column", "volume"), ("nan price", "NaN"),
                                        ("unsorted", "sorted"), ("duplicated", "duplicated"),
                                        ("too few", "need at least")])
def test_cli_train_bad_csv_is_one_clear_sentence(kind, words, tmp_path, candles_csv):
    path = _bad_csv(tmp_path, kind, candles_csv)
    r = run("train", "BTCUSDT", "--source", path, *SMALL, "--out", tmp_path / "m.npz")
    assert r.exit_code == 1, r.output
    assert words in r.stderr and "Traceback" not in r.output
    assert not (tmp_path / "m.npz").exists()


def test_cli_train_missing_source_file(tmp_path):
    r = run("train", "BTCUSDT", "--source", tmp_path / "nope.csv", *SMALL)
    assert r.exit_code == 1 and "nope.csv" in r.stderr


@pytest.mark.parametrize("args", [["--latent", "0"], ["--beta", "-1"], ["--hidden", "12,x"],
                                  ["--window", "32", "--lookback", "8"], ["--batch-size", "100000"]])
def test_cli_train_bad_options_are_misuse(args, tmp_path, candles_csv):
    r = run("train", "BTCUSDT", "--source", candles_csv, *SMALL, *args, "--out", tmp_path / "m.npz")
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and not (tmp_path / "m.npz").exists()


def test_cli_traverse_table_json_and_plot(model_file, tmp_path):
    r = run("traverse", model_file)
    assert r.exit_code == 0, r.output
    for word in ("dim", "level", "trend", "volatility", "volume", "momentum", "body", "meaning"):
        assert word in r.stdout
    r = run("traverse", model_file, "--dims", "0,2", "--steps", "5", "--json", "--plot", tmp_path / "t.png")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [d["dim"] for d in out["dimensions"]] == [0, 2]
    assert out["steps"] == 5 and set(out["measures"]) == {"level", "trend", "volatility", "volume", "momentum", "body"}
    assert all(len(d["profile"]["trend"]) == 5 for d in out["dimensions"])
    with open(tmp_path / "t.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_cli_traverse_at_time_uses_that_window(model_file):
    r = run("traverse", model_file, "--at", "2017-07-31T23:30", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["reference_end_time"].startswith("2017-07-31T23")


def test_cli_traverse_dims_out_of_range_is_misuse(model_file):
    r = run("traverse", model_file, "--dims", "0,7")
    assert r.exit_code == 2
    assert "out of range" in r.stderr and "0..2" in r.stderr


def test_cli_evaluate_reports_heldout(model_file):
    r = run("evaluate", model_file, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) >= {"n", "recon", "baseline", "r2", "kl_per_dim", "active", "active_dims", "collapsed",
                        "warnings"}
    assert len(out["kl_per_dim"]) == 3 and out["n"] > 0
    r = run("evaluate", model_file)
    assert r.exit_code == 0 and "held-out windows" in r.stdout


@pytest.mark.parametrize("damage", ["truncated", "foreign", "newer"])
def test_cli_bad_model_file_is_one_sentence(damage, model_file, tmp_path):
    path = tmp_path / "bad.npz"
    raw = open(model_file, "rb").read()
    if damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "foreign":
        np.savez(path, x=np.arange(3))
    else:
        m = bv.load(model_file)
        bv.save(m, path)
        import zipfile

        with zipfile.ZipFile(path) as z:
            header = json.loads(bytes(np.load(z.open("header.npy"), allow_pickle=False)).decode())
        header["format_version"] = 999
        params = np.load(path)["params"]
        np.savez(path, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), params=params)
    for cmd in ("traverse", "evaluate"):
        r = run(cmd, path)
        assert r.exit_code == 1, r.output
        assert "bad.npz" in r.stderr and "Traceback" not in r.output


def test_cli_train_interrupted_keeps_previous_model(tmp_path, candles_csv, model_file):
    """Ctrl-C (SIGINT) mid-training leaves the previous model file byte-identical and no temp files."""
    import shutil
    import signal

    target = tmp_path / "keep.npz"
    shutil.copy(model_file, target)
    before = target.read_bytes()
    cmd = [sys.executable, "-m", "betavae_np", "train", "BTCUSDT", "--source", str(candles_csv),
           "--window", "8", "--lookback", "16", "--latent", "3", "--hidden", "16", "--batch-size", "8",
           "--epochs", "100000", "--out", str(target)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        line = ""
        while time.time() < deadline and "windows:" not in line:
            line = proc.stderr.readline()
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "Traceback" not in err
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keep.npz"]


def test_cli_train_unknown_symbol_on_bybit_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("BETAVAE_NP_CACHE", str(tmp_path / "cache"))
    with BybitServer() as srv:
        r = run("train", "NOPEUSDT", "--source", "bybit", "--base-url", srv.url, *SMALL,
                "--out", tmp_path / "m.npz")
        assert len(srv.log) == 1  # 10001 is never retried
    assert r.exit_code == 1
    assert "NOPEUSDT" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.npz").exists()


def test_cli_fetch_reports_gaps(tmp_path, monkeypatch):
    monkeypatch.setenv("BETAVAE_NP_CACHE", str(tmp_path / "cache"))
    start = 1_704_067_200_000
    with BybitServer() as srv:
        srv.add("ETHUSDT", "60", make_history(start, 300, STEP["60"], seed=4, drop=[(100, 105)]))
        r = run("fetch", "ETHUSDT", "--base-url", srv.url, "--start", "2024-01-01", "--end", "2024-01-13T11:00")
    assert r.exit_code == 0, r.output
    assert "295 candles" in r.stdout and "gaps 1 (5 missing candles)" in r.stdout
    assert "gap 2024-01-05T04:00:00+00:00" in r.stdout


def test_cli_second_train_run_loads_kernels_from_the_disk_cache(tmp_path, candles_csv):
    """The first run compiles and saves kernels; an identical second run only loads them."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), NUMBA_DEBUG_CACHE="1")
    env.pop("BETAVAE_NP_NO_CACHE", None)
    cmd = [sys.executable, "-m", "betavae_np", "train", "BTCUSDT", "--source", str(candles_csv), *SMALL,
           "--epochs", "1", "--out", str(tmp_path / "m.npz")]
    logs = [subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout for _ in range(2)]
    assert logs[0].count("data saved") >= 5
    assert logs[1].count("data saved") == 0, logs[1]
    assert logs[1].count("data loaded") >= 5


def test_cli_train_auto_offline_uses_cached_candles_with_notice(tmp_path, monkeypatch):
    """auto: when Bybit is unreachable, candles already in the cache are used (and said so)."""
    monkeypatch.setenv("BETAVAE_NP_CACHE", str(tmp_path / "cache"))
    start = 1_704_067_200_000
    with BybitServer() as srv:
        srv.add("ETHUSDT", "60", make_history(start, 400, STEP["60"], seed=5))
        r = run("fetch", "ETHUSDT", "--base-url", srv.url, "--start", "2024-01-01", "--end", "2024-01-17T15:00")
        assert r.exit_code == 0, r.output
        url = srv.url
    monkeypatch.setenv("BETAVAE_NP_BYBIT_URL", url)  # the same host, now down: the cache is per host
    r = run("train", "ETHUSDT", "--start", "2024-01-01", "--end", "2024-01-20", *SMALL,
            "--out", tmp_path / "eth.npz", "--json")
    assert r.exit_code == 0, r.output
    assert "400 cached Bybit candles of ETHUSDT" in r.stderr
    data = json.loads(r.stdout)["data"]
    assert data["source"] == "bybit-cache" and data["symbol"] == "ETHUSDT" and data["rows"] == 400
    r = run("evaluate", tmp_path / "eth.npz", "--json")  # offline too: the model's data is in the cache
    assert r.exit_code == 0, r.output
