"""``betavae-np train`` as a new user meets it: bad options in CLI words, output checked first, honest labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import betavae_np as bv
from betavae_np.cli import main

SMALL = ["--window", "8", "--lookback", "16", "--latent", "3", "--hidden", "16", "--batch-size", "64",
         "--epochs", "2"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def candles_csv(tmp_path_factory):
    """600 real hourly candles from the bundled sample, as a CSV file."""
    df = bv.data.load_sample().iloc[:600]
    path = tmp_path_factory.mktemp("csv") / "btc.csv"
    out = df.copy()
    out.insert(0, "timestamp_ms", bv.data.index_to_ms(df.index))
    out.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def gappy_csv(tmp_path_factory):
    """Hourly candles with a missing candle every 12 hours: no 16-candle lookback fits between gaps."""
    df = bv.data.load_sample().iloc[:600]
    df = df[np.arange(len(df)) % 12 != 11]
    path = tmp_path_factory.mktemp("csv") / "gappy.csv"
    out = df.copy()
    out.insert(0, "timestamp_ms", bv.data.index_to_ms(df.index))
    out.to_csv(path, index=False)
    return path


def test_train_negative_seed_is_misuse_naming_the_option(candles_csv, tmp_path):
    r = run("train", "BTCUSDT", "--source", candles_csv, *SMALL, "--seed", "-1", "--out", tmp_path / "m.npz")
    assert r.exit_code == 2, r.output
    assert "--seed" in r.stderr and "Traceback" not in r.output


def test_train_checks_the_output_folder_before_loading_any_data(tmp_path):
    """An unwritable --out fails first (the missing --source would fail later) and names the user's path."""
    out = "/proc/betavae-test-model.npz"   # not writable even for root
    r = run("train", "BTCUSDT", "--source", tmp_path / "missing.csv", *SMALL, "--out", out)
    assert r.exit_code == 2, r.output
    assert "--out" in r.stderr and out in r.stderr and ".tmp" not in r.stderr
    assert "missing.csv" not in r.stderr


def test_plot_to_an_unwritable_place_names_the_users_path(tmp_path):
    from betavae_np.cli._common import atomic_path

    with pytest.raises(bv.BetaVAEError) as err:
        with atomic_path("/proc/plot.png"):
            pass
    assert "/proc/plot.png" in str(err.value) and ".tmp" not in str(err.value)


def test_model_from_the_readme_api_works_with_traverse_and_evaluate(tmp_path):
    """bv.fit(..., windower=w) records the windowing, so the CLI can use a model made in Python."""
    df = bv.data.load_sample().iloc[:1500]
    w = bv.data.Windower(window=8, lookback=16)
    X = w.transform(df)
    model = bv.BetaVAE(bv.VAEConfig(n_input=X.shape[1], hidden=(16,), n_latent=3), rng=0)
    bv.fit(model, X[:-200], epochs=1, batch_size=64, rng=0, validation=X[-200:], windower=w)
    bv.save(model, tmp_path / "api.npz")
    r = run("traverse", tmp_path / "api.npz", "--source", "sample", "--json")
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["dimensions"]) == 3
    r = run("evaluate", tmp_path / "api.npz", "--source", "sample", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["part"] == "all"


def test_model_without_windowing_says_how_to_record_it(tmp_path):
    model = bv.BetaVAE(bv.VAEConfig(n_input=40, hidden=(), n_latent=2), rng=0)
    bv.save(model, tmp_path / "bare.npz")
    r = run("evaluate", tmp_path / "bare.npz", "--source", "sample")
    assert r.exit_code == 1 and "windower=w" in r.stderr and "Traceback" not in r.output


def test_fit_refuses_a_windower_of_another_width():
    model = bv.BetaVAE(bv.VAEConfig(n_input=40, hidden=(), n_latent=2), rng=0)
    with pytest.raises(bv.ConfigError, match="windower"):
        bv.fit(model, np.zeros((10, 40), np.float32), epochs=1, batch_size=5,
               windower=bv.data.Windower(window=4, lookback=8))


def test_evaluate_does_not_call_training_windows_held_out(candles_csv, tmp_path):
    r = run("train", "BTCUSDT", "--source", candles_csv, *SMALL, "--val-fraction", "0", "-q",
            "--out", tmp_path / "m.npz")
    assert r.exit_code == 0, r.output
    r = run("evaluate", tmp_path / "m.npz")
    assert r.exit_code == 0, r.output
    assert "held-out" not in r.stdout and "training windows" in r.stdout and "--val-fraction 0" in r.stdout
    r = run("evaluate", tmp_path / "m.npz", "--json")
    assert json.loads(r.stdout)["part"] == "training"


def test_train_gaps_option_fills_what_drop_cannot_use(gappy_csv, tmp_path):
    r = run("train", "BTCUSDT", "--source", gappy_csv, *SMALL, "-q", "--out", tmp_path / "d.npz")
    assert r.exit_code == 1, r.output
    assert "--gaps fill" in r.stderr and "gaps='fill'" not in r.stderr   # CLI words, not library words
    r = run("train", "BTCUSDT", "--source", gappy_csv, *SMALL, "--gaps", "fill", "-q", "--json",
            "--out", tmp_path / "f.npz")
    assert r.exit_code == 0, r.output
    rec = bv.load(tmp_path / "f.npz").records
    assert rec.windowing.gaps == "fill" and rec.run.config["gaps"] == "fill"
    assert bv.TrainConfig.from_model(tmp_path / "f.npz").gaps == "fill"


def test_train_long_window_blames_the_window_not_the_default_lookback(candles_csv, tmp_path):
    r = run("train", "BTCUSDT", "--source", candles_csv, "--window", "5000", "--out", tmp_path / "m.npz")
    assert r.exit_code == 2, r.output
    assert "value for --window" in r.stderr and "raise --lookback" in r.stderr
    r = run("train", "BTCUSDT", "--source", candles_csv, "--window", "64", "--lookback", "32",
            "--out", tmp_path / "m.npz")
    assert r.exit_code == 2 and "value for --lookback" in r.stderr


def test_train_early_stopping_without_validation_speaks_cli(candles_csv, tmp_path):
    r = run("train", "BTCUSDT", "--source", candles_csv, *SMALL, "--val-fraction", "0", "--early-stopping", "2",
            "--out", tmp_path / "m.npz")
    assert r.exit_code == 2, r.output
    assert "--val-fraction" in r.stderr and "validation=" not in r.stderr and "val_fraction" not in r.stderr


def test_train_warns_when_every_dimension_collapsed(candles_csv, tmp_path):
    r = run("train", "BTCUSDT", "--source", candles_csv, *SMALL, "--epochs", "10", "--beta", "2000",
            "--anneal", "constant", "--lr", "0.01", "-q", "--json", "--out", tmp_path / "m.npz")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["active_dims"] == 0
    assert out["warnings"] and "--beta 2000" in out["warnings"][0]
    assert "warning: posterior collapse" in r.stderr


def test_train_quiet_prints_no_data_or_windows_line(candles_csv, tmp_path):
    r = run("train", "BTCUSDT", "--source", candles_csv, *SMALL, "-q", "--out", tmp_path / "m.npz")
    assert r.exit_code == 0, r.output
    assert "data:" not in r.stderr and "windows:" not in r.stderr
    r = run("train", "BTCUSDT", "--source", candles_csv, *SMALL, "--out", tmp_path / "m.npz")
    assert "data:" in r.stderr and "windows:" in r.stderr


def test_train_says_one_epoch_not_one_epochs(candles_csv, tmp_path):
    r = run("train", "BTCUSDT", "--source", candles_csv, *SMALL, "--epochs", "1", "--batch-size", "256",
            "--out", tmp_path / "m.npz")
    assert r.exit_code == 0, r.output
    assert "1 epoch x" in r.stderr and "1 epochs" not in r.stderr
