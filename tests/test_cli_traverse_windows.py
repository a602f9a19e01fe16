"""``betavae-np traverse`` reads many windows: offline on the bundled sample, --windows, --at, fallback."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

import betavae_np as bv
from betavae_np.cli import main

SMALL = ["--window", "8", "--lookback", "16", "--latent", "3", "--hidden", "16", "--batch-size", "256",
         "--epochs", "1", "--quiet"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory):
    """Bybit unreachable (a closed loopback port) and an empty cache, for the whole module."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BETAVAE_NP_BYBIT_URL", "http://127.0.0.1:9")
    mp.setenv("BETAVAE_NP_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def sample_model(tmp_path_factory, offline_env):
    path = tmp_path_factory.mktemp("model") / "m.npz"
    r = run("train", "BTCUSDT", "--source", "sample", *SMALL, "--out", path)
    assert r.exit_code == 0, r.output
    return path


@pytest.fixture(scope="module")
def csv_model(tmp_path_factory):
    """A model trained on a CSV that can be removed afterwards (its data then cannot be loaded)."""
    folder = tmp_path_factory.mktemp("csvmodel")
    df = bv.data.load_sample().iloc[:700]
    out = df.copy()
    out.insert(0, "timestamp_ms", bv.data.index_to_ms(df.index))
    out.to_csv(folder / "btc.csv", index=False)
    r = run("train", "BTCUSDT", "--source", folder / "btc.csv", *SMALL, "--batch-size", "64",
            "--out", folder / "m.npz")
    assert r.exit_code == 0, r.output
    return folder


def test_traverse_reads_256_training_windows_offline(sample_model):
    r = run("traverse", sample_model, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    split = bv.load(sample_model).records.split
    assert out["reading"] == "windows" and out["n_windows"] == 256 and out["reference_end_time"] is None
    w = out["windows"]
    assert w["from"] == "training" and w["n"] == 256 and w["available"] == split.train
    assert w["last_end"] == split.train_end  # the last training window, never a validation one
    assert pd.Timestamp(w["first_end"]) < pd.Timestamp(w["last_end"])
    assert out["thresholds"] == {"agreement": 0.8, "weak": 0.1}
    for d in out["dimensions"]:
        assert d["n_windows"] == 256
        assert set(d["agreement"]) == set(d["spread"]) == set(d["effects"]) == set(out["measures"])
        assert all(0 <= a <= 1 for a in d["agreement"].values())
        assert d["dominant"] in (*out["measures"], "mixed", "weak", "inactive")


def test_traverse_windows_option_and_table(sample_model):
    r = run("traverse", sample_model, "--windows", "12", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_windows"] == 12
    r = run("traverse", sample_model, "--windows", "12")
    assert r.exit_code == 0, r.output
    assert "read on 12 of" in r.stdout and "training windows" in r.stdout and "agree" in r.stdout
    active = any(bv.load(sample_model).records.latent_stats.active)
    assert ("spread of the change over the windows" in r.stdout) == active
    assert run("traverse", sample_model, "--windows", "1").exit_code == 2


def test_traverse_at_keeps_the_single_window_reading(sample_model):
    r = run("traverse", sample_model, "--at", "2018-06-01", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["reading"] == "single" and out["n_windows"] == 1
    assert out["reference_end_time"] == "2018-06-01T00:00:00+00:00" == out["windows"]["last_end"]
    assert all(set(d["spread"].values()) == {0.0} for d in out["dimensions"])
    r = run("traverse", sample_model, "--at", "2018-06-01")
    assert r.exit_code == 0 and "single-window reading" in r.stdout


def test_traverse_other_source_reads_all_its_windows(csv_model, tmp_path):
    df = bv.data.load_sample().iloc[5000:5400]  # other candles than the model's CSV
    out = df.copy()
    out.insert(0, "timestamp_ms", bv.data.index_to_ms(df.index))
    out.to_csv(tmp_path / "other.csv", index=False)
    r = run("traverse", csv_model / "m.npz", "--source", tmp_path / "other.csv", "--json")
    assert r.exit_code == 0, r.output
    w = json.loads(r.stdout)["windows"]
    assert w["from"] == "all" and w["last_end"] == df.index[-1].isoformat()


def test_traverse_falls_back_to_the_stored_window_with_a_notice(csv_model, tmp_path):
    import shutil

    shutil.copy(csv_model / "m.npz", tmp_path / "m.npz")
    m = bv.load(tmp_path / "m.npz")
    assert m.records.provenance.get("path") == str(csv_model / "btc.csv")
    moved = csv_model / "btc.csv.away"
    (csv_model / "btc.csv").rename(moved)
    try:
        r = run("traverse", tmp_path / "m.npz", "--json")
        assert r.exit_code == 0, r.output
        assert "single-window reading" in r.stderr and "could not be loaded" in r.stderr
        out = json.loads(r.stdout)
        assert out["reading"] == "single" and out["windows"]["from"] == "reference"
        assert out["reference_end_time"] == m.records.reference.end_time
        # data the user named explicitly are not replaced by the stored window
        r = run("traverse", tmp_path / "m.npz", "--source", csv_model / "btc.csv")
        assert r.exit_code == 1 and "btc.csv" in r.stderr and "Traceback" not in r.output
    finally:
        moved.rename(csv_model / "btc.csv")


def test_traverse_plot_of_the_averaged_reading(sample_model, tmp_path):
    pytest.importorskip("matplotlib")
    r = run("traverse", sample_model, "--windows", "16", "--plot", tmp_path / "t.png", "--plot-inactive")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = run("traverse", sample_model, "--at", "2018-06-01", "--plot", tmp_path / "one.pdf", "--json")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "one.pdf").read_bytes()[:4] == b"%PDF"


def test_traverse_of_a_model_that_names_no_data_asks_for_a_source(tmp_path):
    """A model made by bv.fit(..., windower=w) records no provenance: its data are not guessed."""
    df = bv.data.load_sample().iloc[:600]
    w = bv.data.Windower(window=8, lookback=16)
    X = w.transform(df)
    model = bv.BetaVAE(bv.VAEConfig(n_input=X.shape[1], hidden=(8,), n_latent=2), rng=0)
    bv.fit(model, X, epochs=1, batch_size=64, rng=0, windower=w)
    bv.save(model, tmp_path / "api.npz")
    r = run("traverse", tmp_path / "api.npz")
    assert r.exit_code == 1 and "--source" in r.stderr and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1
    r = run("traverse", tmp_path / "api.npz", "--source", "sample", "--windows", "20", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["windows"]["from"] == "all" and out["n_windows"] == 20
