"""Training one model on a universe, the latent panel, cross-sectional measures, and the CLI around them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import betavae_np as bv
from betavae_np.analysis.cross_section import (cross_sectional_ic, forward_return_panel, hand_factor_panel,
                                               rank_autocorrelation, row_spearman)
from betavae_np.analysis.panel import encode_panel
from betavae_np.analysis.proxies import spearman
from betavae_np.cli import main
from betavae_np.data import Windower, load_universe
from betavae_np.exceptions import ConfigError, DataError, InputError
from betavae_np.records import ModelRecords
from betavae_np.workflow import model_windower
from test_universe import write_csv
from test_windows import HOUR, T0, candles

TINY = dict(window=8, lookback=16, latent=2, hidden=(8,), batch_size=32, epochs=1, seed=0)
SMALL = ["--window", "8", "--lookback", "16", "--latent", "2", "--hidden", "8", "--batch-size", "32",
         "--epochs", "1", "--quiet"]


def frames(n_sym=6, n=220):
    """Symbols of different lengths, starting at different times; one with a gap."""
    out = {}
    for k in range(n_sym):
        start = T0 + HOUR * 10 * k
        m = n - 7 * k
        t = start + HOUR * np.arange(m)
        if k == 1:
            t = start + HOUR * np.r_[np.arange(80), 90 + np.arange(m - 80)]
        out[f"S{k}USDT"] = candles(m, seed=k, times=t)
    return out


@pytest.fixture(scope="module")
def trained():
    return bv.run.train_on_universe(frames(), bv.TrainConfig(**TINY))


@pytest.fixture
def folder(tmp_path):
    for sym, df in frames().items():
        write_csv(tmp_path / f"{sym}_1h.csv", df)
    return tmp_path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# -- configuration ---------------------------------------------------------------------------------
def test_config_symbols_and_weighting(tmp_path):
    cfg = bv.TrainConfig(symbols="btcusdt, ETHUSDT")
    assert cfg.symbols == ("BTCUSDT", "ETHUSDT") and cfg.is_universe and cfg.weighting == "proportional"
    assert bv.TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert bv.TrainConfig(source=str(tmp_path)).is_universe and not bv.TrainConfig().is_universe
    with pytest.raises(ConfigError, match="given twice"):
        bv.TrainConfig(symbols=["BTCUSDT", "btcusdt"])
    with pytest.raises(ConfigError, match="source auto, bybit or a directory"):
        bv.TrainConfig(symbols=["BTCUSDT"], source="sample")
    with pytest.raises(ConfigError, match="weighting"):
        bv.TrainConfig(weighting="square")


# -- training --------------------------------------------------------------------------------------
def test_universe_training_records_and_common_cutoff(trained, tmp_path):
    rec = trained.model.records
    u = rec.universe
    assert u.symbols == tuple(frames()) and u.weighting == "proportional"
    cut = pd.Timestamp(u.cutoff)
    tr, va = trained.train, trained.validation
    assert (tr.end_times < cut).all() and (va.start_times >= cut).all()   # same period, purged
    assert {s: u.windows[s]["train"] for s in u.symbols} == dict(zip(tr.symbols, tr.counts.tolist()))
    assert rec.split.train == tr.shape[0] and rec.split.validation == va.shape[0]
    p = u.provenance["S1USDT"]
    assert p["missing_candles"] == 10 and p["rows"] == len(frames()["S1USDT"])
    assert rec.provenance.source == "universe" and rec.provenance.rows == sum(len(f) for f in frames().values())
    ref = u.reference("S2USDT")
    ws = trained.train.window_set("S2USDT")   # the symbol's latest window is after the cutoff: rebuild it
    full = load_universe(frames()).windows(model_windower(trained.model)).window_set("S2USDT")
    np.testing.assert_array_equal(np.asarray(ref.window, np.float32), full.gather([full.shape[0] - 1])[0])
    assert ws.shape[0] < full.shape[0]
    path = tmp_path / "u.npz"
    bv.save(trained.model, path)
    back = bv.load(path)
    assert back.records == rec
    with pytest.raises(InputError, match="not one of the model's symbols"):
        back.records.universe.reference("NOPE")


def test_old_records_without_universe_still_load():
    d = {"split": {"val_fraction": 0.2, "windows": 10, "train": 8, "validation": 2}}
    assert ModelRecords.from_dict(d).universe is None


def test_proportional_sampler_is_bit_identical_to_plain_shuffle():
    ws = load_universe(frames()).windows(Windower(window=8, lookback=16, interval="60"))
    cfg = bv.VAEConfig(n_input=ws.shape[1], hidden=(8,), n_latent=2)
    a, b, c = (bv.BetaVAE(cfg, rng=0) for _ in range(3))
    bv.fit(a, ws, epochs=2, batch_size=32, rng=5)
    bv.fit(b, ws, epochs=2, batch_size=32, rng=5, sampler=ws.sampler("proportional"))
    bv.fit(c, ws, epochs=2, batch_size=32, rng=5, sampler=ws.sampler("equal"))
    assert a.params.tobytes() == b.params.tobytes()
    assert a.params.tobytes() != c.params.tobytes()
    with pytest.raises(ConfigError, match="sampler"):
        bv.fit(a, ws, epochs=1, batch_size=32, sampler=ws.split(0.2)[0].sampler())


def test_equal_weighting_trains_and_is_recorded():
    r = bv.run.train_on_universe(frames(), bv.TrainConfig(**TINY, weighting="equal"))
    assert r.model.records.universe.weighting == "equal" and np.isfinite(r.history.train_total).all()


def test_universe_train_from_directory_with_start_end(folder):
    r = bv.train(bv.TrainConfig(source=str(folder), start=pd.Timestamp(T0 + 30 * HOUR, unit="ms", tz="UTC"),
                                **TINY))
    u = r.model.records.universe
    assert all(p["start"] >= pd.Timestamp(T0 + 30 * HOUR, unit="ms", tz="UTC").isoformat()
               for p in u.provenance.values())
    assert u.source == str(folder) and u.provenance["S0USDT"]["path"].endswith("S0USDT_1h.csv")


# -- the panel -------------------------------------------------------------------------------------
def test_encode_panel_matches_per_symbol_encoding(trained):
    fr = frames()
    panel = encode_panel(trained.model, fr, logvar=True)
    assert list(panel.index.names) == ["time", "symbol"]
    assert list(panel.columns) == ["z0", "z1", "logvar_0", "logvar_1"]
    t = panel.index.get_level_values("time")
    assert t.is_monotonic_increasing and not panel.index.duplicated().any()
    w = model_windower(trained.model)   # the default representation (both), as the model recorded it
    total = 0
    for sym, df in fr.items():
        ws = w.windows(df)
        mu, lv = trained.model.encode(ws.array())
        got = panel.xs(sym, level="symbol")
        assert got.index.equals(ws.end_times.rename("time"))
        np.testing.assert_array_equal(got[["z0", "z1"]].to_numpy(), mu)
        np.testing.assert_array_equal(got[["logvar_0", "logvar_1"]].to_numpy(), lv)
        total += ws.shape[0]
    assert len(panel) == total and panel.attrs["betavae_np"]["windows"] == total
    assert panel.attrs["betavae_np"]["windows_per_second"] > 0


def test_no_look_ahead_in_panel_hand_factors_and_returns(trained):
    fr = frames()
    cut = fr["S0USDT"].index[150]
    changed = {k: v.copy() for k, v in fr.items()}
    for df in changed.values():   # every candle after the cutoff moved
        after = df.index > cut
        df.loc[after, ["open", "high", "low", "close"]] *= 1.7
        df.loc[after, "volume"] *= 3.0
    a, b = encode_panel(trained.model, fr), encode_panel(trained.model, changed)
    upto = a.index.get_level_values("time") <= cut
    assert upto.sum() > 0 and (~upto).sum() > 0
    pd.testing.assert_frame_equal(a[upto], b[upto])
    assert not np.allclose(a[~upto].to_numpy(), b[~upto].to_numpy())
    ha, hb = (hand_factor_panel(f, a.index, 8, 16) for f in (fr, changed))
    pd.testing.assert_frame_equal(ha[upto], hb[upto])
    # forward returns at t use candles t+1..t+h only: changing candle t+h+1 on changes nothing at t
    fa = forward_return_panel(fr, a.index, (1, 4))
    df = fr["S0USDT"]
    t = df.index[100]
    late = {k: v.copy() for k, v in fr.items()}
    late["S0USDT"].loc[late["S0USDT"].index > df.index[104], ["open", "high", "low", "close"]] *= 2.0
    fb = forward_return_panel(late, a.index, (1, 4))
    assert fa.loc[(t, "S0USDT")].equals(fb.loc[(t, "S0USDT")])
    assert fa.loc[(df.index[101], "S0USDT"), "fwd_4"] != fb.loc[(df.index[101], "S0USDT"), "fwd_4"]
    assert np.isclose(fa.loc[(t, "S0USDT"), "fwd_4"], np.log(df["close"].iloc[104] / df["close"].iloc[100]))


# -- cross-sectional measures ---------------------------------------------------------------------
def test_row_spearman_matches_the_pooled_spearman_per_row():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 9)), rng.normal(size=(30, 9))
    a[3, :6] = np.nan
    b[5, 2] = np.nan
    a[7, 1] = a[7, 2]   # a tie
    got = row_spearman(a, b, min_count=5)
    want = np.array([spearman(a[t], b[t])[0, 0] if np.isfinite(a[t] + b[t]).sum() >= 5 else np.nan
                     for t in range(30)])
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    assert np.isnan(got[3])


def planted(T=400, S=12, seed=0):
    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-01-01", periods=T, freq="h", tz="UTC")
    idx = pd.MultiIndex.from_product([times, [f"S{k}" for k in range(S)]], names=["time", "symbol"])
    r1 = rng.normal(size=T * S)
    fwd = pd.DataFrame({"fwd_1": r1, "fwd_4": r1 + rng.normal(size=T * S)}, index=idx)
    fac = pd.DataFrame({"signal": r1 + 2.0 * rng.normal(size=T * S), "noise": rng.normal(size=T * S)}, index=idx)
    return fac, fwd


def test_cross_sectional_ic_finds_a_planted_signal_and_the_control_is_zero():
    fac, fwd = planted()
    t = cross_sectional_ic(fac, fwd)
    assert t.loc[("signal", 1), "ic_mean"] > 0.3 and t.loc[("signal", 1), "t_nw"] > 10
    assert abs(t.loc[("noise", 1), "t_nw"]) < 4
    c = cross_sectional_ic(fac, fwd, control=True, rng=1)
    assert (c["ic_mean"].abs() < 0.03).all() and (c["t_nw"].abs() < 4).all()
    assert t.loc[("signal", 1), "n_steps"] == 400 and t.loc[("signal", 4), "n_nonoverlap"] == 100
    assert t.loc[("signal", 1), "mean_symbols"] == 12


def test_rank_autocorrelation_bounds():
    rng = np.random.default_rng(0)
    fixed = np.tile(rng.normal(size=10), (50, 1)) + 1e-9 * rng.normal(size=(50, 10))
    assert rank_autocorrelation(fixed) > 0.99
    assert abs(rank_autocorrelation(rng.normal(size=(400, 10)))) < 0.05


def test_cross_section_report_on_a_universe_model(trained):
    from betavae_np.analysis.cross_section import cross_section_report

    r = cross_section_report(trained.model, frames(), min_symbols=3)
    kinds = set(r.table.index.get_level_values("kind"))
    assert kinds == {"latent", "pca", "hand", "control"} and r.part == "held-out"
    assert r.start >= trained.model.records.universe.cutoff
    assert json.dumps(r.to_dict())


# -- command line ----------------------------------------------------------------------------------
def test_cli_train_evaluate_traverse_a_directory(folder, tmp_path):
    out = tmp_path / "u.npz"
    r = run("train", "--source", folder, *SMALL, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["universe"]["symbols"] == list(frames()) and s["data"]["source"] == "universe"
    r = run("evaluate", out)
    assert r.exit_code == 0, r.output
    assert "cross-sectional rank IC" in r.stdout and "control" in r.stdout and "realised_vol" in r.stdout
    r = run("traverse", out, "--symbol", "s3usdt", "--json")   # that symbol's training windows
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)["windows"]
    model = bv.load(out)
    cutoff = pd.Timestamp(model.records.universe.cutoff)
    assert got["from"] == "training" and 1 < got["n"] == got["available"]
    assert pd.Timestamp(got["last_end"]) < cutoff
    r = run("traverse", out, "--symbol", "s3usdt", "--at", "2030-01-01")   # past the data: one sentence
    assert r.exit_code != 0 and "Traceback" not in r.output
    r = run("traverse", out, "--symbol", "NOPE")
    assert r.exit_code == 1 and "not one of the model's symbols" in r.stderr


def test_cli_symbols_file_selects_files_of_a_directory(folder, tmp_path):
    lst = tmp_path / "syms.txt"
    lst.write_text("# two of them\nS0USDT\ns2usdt  # lower case works\n\n")
    out = tmp_path / "u.npz"
    r = run("train", "--source", folder, "--symbols-file", lst, *SMALL, "--out", out)
    assert r.exit_code == 0, r.output
    assert bv.load(out).records.universe.symbols == ("S0USDT", "S2USDT")


def test_cli_bad_universes_are_one_sentence(folder, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("train", "--source", empty, *SMALL)
    assert r.exit_code == 1 and "the universe is empty" in r.stderr and "Traceback" not in r.output
    write_csv(folder / "D1USDT_D.csv", candles(50, seed=9, times=T0 + 24 * HOUR * np.arange(50)))
    r = run("train", "--source", folder, *SMALL)
    assert r.exit_code == 1 and "mixes candle intervals" in r.stderr
    (folder / "D1USDT_D.csv").unlink()
    write_csv(folder / "S0USDT.csv", candles(50, seed=9))
    r = run("train", "--source", folder, *SMALL)
    assert r.exit_code == 1 and "S0USDT has two files" in r.stderr
    (folder / "S0USDT.csv").unlink()
    write_csv(folder / "TINYUSDT_1h.csv", candles(12, seed=9))   # too few candles for one window
    out = tmp_path / "m.npz"
    r = run("train", "--source", folder, *SMALL, "--out", out)
    assert r.exit_code == 0 and "TINYUSDT skipped" in r.stderr
    assert "TINYUSDT" in bv.load(out).records.universe.skipped
    r = run("train", "--symbols", "S0USDT,s0usdt", "--source", folder, *SMALL)
    assert r.exit_code == 2 and "given twice" in r.stderr
    r = run("train", *SMALL)
    assert r.exit_code == 2 and "name a SYMBOL" in r.stderr
    r = run("train", "--source", tmp_path / "nowhere", *SMALL)
    assert r.exit_code == 2 and "does not exist" in r.stderr
    r = run("train", "--symbols", "S0USDT", "--source", tmp_path / "nowhere", *SMALL)
    assert r.exit_code == 2 and "does not exist" in r.stderr


def test_cli_train_symbols_through_local_bybit_and_cache(tmp_path, monkeypatch):
    from bybit_server import STEP, BybitServer, make_history

    monkeypatch.setenv("BETAVAE_NP_CACHE", str(tmp_path / "cache"))
    start = 1_704_067_200_000  # 2024-01-01
    with BybitServer() as srv:
        for k, sym in enumerate(("AAAUSDT", "BBBUSDT", "CCCUSDT")):
            srv.add(sym, "60", make_history(start + k * 5 * STEP["60"], 300, STEP["60"], seed=k))
        args = ["train", "--symbols", "AAAUSDT,BBBUSDT,CCCUSDT,NOPEUSDT", "--source", "bybit", "--base-url", srv.url,
                "--start", "2024-01-01", "--end", "2024-01-14T00:00", *SMALL, "--out", tmp_path / "m.npz"]
        r = run(*args)
        assert r.exit_code == 0, r.output
        assert "NOPEUSDT skipped" in r.stderr
        n = len(srv.log)
        r = run(*args)
        assert r.exit_code == 0 and len(srv.log) - n <= 1   # the three fetched symbols come from the cache
    u = bv.load(tmp_path / "m.npz").records.universe
    assert u.symbols == ("AAAUSDT", "BBBUSDT", "CCCUSDT")
    assert u.provenance["BBBUSDT"]["source"] == "bybit" and u.provenance["BBBUSDT"]["rows"] == 300


def test_universe_auto_falls_back_to_the_cache_per_symbol(tmp_path):
    from bybit_server import STEP, BybitServer, make_history

    from betavae_np.workflow import load_universe_candles

    start = 1_704_067_200_000  # 2024-01-01
    kw = dict(start="2024-01-01", end="2024-01-10T00:00", cache_dir=tmp_path / "cache")
    with BybitServer() as srv:
        for k, sym in enumerate(("AAAUSDT", "BBBUSDT")):
            srv.add(sym, "60", make_history(start, 300, STEP["60"], seed=k))
        url = srv.url
        first = load_universe_candles(["AAAUSDT", "BBBUSDT"], source="bybit", base_url=url, **kw)
    notes = []   # the server is gone; up to now, Bybit must be asked for newer candles, and fails
    again = load_universe_candles(["AAAUSDT", "BBBUSDT"], source="auto", base_url=url, on_notice=notes.append,
                                  start=kw["start"], cache_dir=kw["cache_dir"])
    assert again.symbols == first.symbols and again.n_candles == first.n_candles
    assert sum("could not be reached" in n and "cached candles" in n for n in notes) == 2
    with pytest.raises(DataError, match="the universe is empty"):
        load_universe_candles(["AAAUSDT"], source="auto", base_url=url, start=kw["start"],
                              cache_dir=tmp_path / "empty-cache")
