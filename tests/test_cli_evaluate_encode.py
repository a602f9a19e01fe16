"""evaluate's real-data measures and supervised metrics, train --source synthetic, and encode (CliRunner)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import betavae_np as bv
from betavae_np.cli import main

SMALL = ["--window", "8", "--lookback", "16", "--latent", "3", "--hidden", "16", "--batch-size", "64",
         "--epochs", "2", "--quiet"]
#: Tiny samples for the supervised metrics, so a test takes seconds (the numbers are rough).
TINY = {"num_train": 300, "num_test": 200, "fv_num_train": 40, "fv_num_eval": 20, "fv_num_variance_estimate": 300}


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def real_model(tmp_path_factory):
    """A small model trained on 1,500 real hourly candles of the bundled sample (a CSV)."""
    df = bv.data.load_sample().iloc[:1500]
    folder = tmp_path_factory.mktemp("real")
    out = df.copy()
    out.insert(0, "timestamp_ms", bv.data.index_to_ms(df.index))
    out.to_csv(folder / "btc.csv", index=False)
    r = run("train", "BTCUSDT", "--source", folder / "btc.csv", *SMALL, "--out", folder / "m.npz")
    assert r.exit_code == 0, r.output
    return folder / "m.npz"


@pytest.fixture(scope="module")
def synth_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "s.npz"
    r = run("train", "--source", "synthetic", *SMALL, "--seed", "3", "--out", path, "--json")
    assert r.exit_code == 0, r.output
    return path


@pytest.fixture
def tiny_sizes(monkeypatch):
    import importlib

    ev = importlib.import_module("betavae_np.analysis.evaluate")   # the module, not bv.analysis.evaluate()
    monkeypatch.setitem(ev.SUPERVISED_SIZES, "quick", TINY)


def _windows(path):
    from betavae_np.workflow import windows_for_model

    model = bv.load(path)
    df, ws = windows_for_model(model)
    return model, df, ws


# -- evaluate on real candles --------------------------------------------------------------------
def test_evaluate_json_has_measures_for_model_pca_and_hand_factors(real_model):
    r = run("evaluate", real_model, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {"recon", "baseline", "r2", "kl_per_dim", "active_dims"} <= set(out)   # today's output stays
    m = out["measures"]
    assert m["horizons"] == [1, 4, 24] and m["pca"]["components"] == 3 and m["windows"] == out["n"]
    assert set(m["codes"]) == {"model", "pca", "hand"}
    assert m["codes"]["model"]["names"] == ["z0", "z1", "z2"]
    assert m["codes"]["pca"]["names"] == ["pc0", "pc1", "pc2"]
    assert m["codes"]["hand"]["names"] == list(bv.analysis.baselines.HAND_FACTORS)
    for block in m["codes"].values():
        assert set(block["best"]) == set(block["names"]) == set(block["stability"])
        assert set(block["gap"]) == set(m["indicators"])
        assert {(r["code"], r["horizon"]) for r in block["ic"]} == {(c, h) for c in block["names"] for h in (1, 4, 24)}
        assert len(block["control"]) == len(block["ic"])
        for s in block["stability"].values():
            assert 0 <= s["sign_agreement"] <= 1
    # the hand factor realised_vol IS the indicator: its best match is itself, rho 1
    assert m["codes"]["hand"]["best"]["realised_vol"] == {"indicator": "realised_vol", "rho": pytest.approx(1.0)}


def test_evaluate_ic_and_pca_match_a_direct_computation(real_model):
    out = json.loads(run("evaluate", real_model, "--json").stdout)["measures"]
    model, df, ws = _windows(real_model)
    train, held = ws.split(model.records.split.val_fraction)
    mu = model.encode(held.array())[0].astype(np.float64)
    close = np.log(df["close"]).reindex(held.end_times)
    fwd = np.log(df["close"]).shift(-1).reindex(held.end_times) - close
    want = pd.Series(mu[:, 1]).corr(pd.Series(fwd.to_numpy()), method="spearman")
    got = next(r for r in out["codes"]["model"]["ic"] if r["code"] == "z1" and r["horizon"] == 1)["ic"]
    assert got == pytest.approx(want, abs=1e-12)
    X = train.array(np.float64)
    Xc = X - X.mean(0)
    var = np.linalg.svd(Xc, compute_uv=False)[:3] ** 2 / (X.shape[0] - 1)
    assert out["pca"]["explained_variance"] == pytest.approx(var.tolist(), rel=1e-9)
    assert out["train_windows"] == train.shape[0]


def test_evaluate_text_shows_the_tables_and_the_control(real_model):
    r = run("evaluate", real_model)
    assert r.exit_code == 0, r.output
    for text in ("held-out windows", "best indicator", "pc0", "past_return", "MIG-like", "ICIR",
                 "permuted control", "PCA"):
        assert text in r.stdout, text


def test_evaluate_no_measures_is_todays_report(real_model):
    out = json.loads(run("evaluate", real_model, "--no-measures", "--json").stdout)
    assert "measures" not in out and "supervised" not in out and out["n"] > 0


# -- the synthetic market ----------------------------------------------------------------------------
def test_train_synthetic_needs_no_symbol_and_records_the_market(synth_model):
    rec = bv.load(synth_model).records
    prov = rec.provenance
    assert prov.source == "synthetic" and prov.get("seed") == 3 and prov.rows == 20_000
    assert prov.get("grids") == {k: list(v) for k, v in bv.synth.FACTOR_GRIDS.items()}
    assert bv.TrainConfig.from_model(synth_model).source == "synthetic"


def test_train_synthetic_refuses_a_symbol_and_others_still_need_one(tmp_path):
    r = run("train", "BTCUSDT", "--source", "synthetic", *SMALL, "--out", tmp_path / "x.npz")
    assert r.exit_code == 2 and "leave out SYMBOL" in r.stderr
    r = run("train", "--source", "sample", *SMALL, "--out", tmp_path / "x.npz")
    assert r.exit_code == 2 and "SYMBOL" in r.stderr and "Traceback" not in r.output


def test_synthetic_candles_regenerate_from_the_model_file(synth_model):
    model, df, ws = _windows(synth_model)
    again = bv.synth.SyntheticMarket(seed=3).candles(20_000)
    pd.testing.assert_frame_equal(df[["open", "high", "low", "close", "volume"]],
                                  again[["open", "high", "low", "close", "volume"]])
    assert ws.shape[0] == model.records.split.windows


def test_evaluate_synthetic_model_gives_supervised_metrics(synth_model, tiny_sizes):
    r = run("evaluate", synth_model, "--quick", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert "measures" not in out
    s = out["supervised"]
    assert s["sizes"] == TINY and s["missing"] is None
    for rep in ("model", "pca"):
        for key in ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap", "factor_vae"):
            assert 0.0 <= s[rep][key] <= 1.0, (rep, key)
    assert "FactorVAE score" in r.stderr   # progress on stderr
    from betavae_np.cli.evaluate import _render_supervised   # the text form of the same result (DCI takes seconds)

    text = _render_supervised(s, out["data"], quick=True)
    assert "supervised metrics on the synthetic market (seed 3" in text and "DCI-D" in text
    assert text.splitlines()[-1].startswith("PCA ")


def test_evaluate_without_scikit_learn_says_so_and_reports_the_rest(synth_model, tiny_sizes, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)   # import sklearn -> ImportError
    r = run("evaluate", synth_model, "--quick", "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)["supervised"]
    assert s["model"]["dci_disentanglement"] is None and s["pca"]["sap"] is None
    assert 0 <= s["model"]["mig"] <= 1 and 0 <= s["pca"]["factor_vae"] <= 1
    notes = [line for line in r.stderr.splitlines() if "scikit-learn" in line]
    assert len(notes) == 1 and "pip install" in notes[0]


def test_traverse_works_offline_on_a_synthetic_model(synth_model):
    r = run("traverse", synth_model, "--json")
    assert r.exit_code == 0, r.output
    r = run("traverse", synth_model, "--source", "synthetic", "--at", "2021-01-01", "--json")
    assert r.exit_code == 0, r.output


# -- encode --------------------------------------------------------------------------------------
def test_encode_csv_rows_columns_and_values_round_trip(real_model, tmp_path):
    r = run("encode", real_model, "--out", tmp_path / "lat.csv", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    model, df, ws = _windows(real_model)
    got = pd.read_csv(tmp_path / "lat.csv")
    assert list(got.columns) == ["end_time", "split", "mu_0", "mu_1", "mu_2", "logvar_0", "logvar_1", "logvar_2"]
    assert len(got) == ws.shape[0] == summary["rows"]
    assert (pd.to_datetime(got["end_time"], utc=True) == ws.end_times).all()
    mu, logvar = model.encode(ws.array())
    np.testing.assert_array_equal(got[["mu_0", "mu_1", "mu_2"]].to_numpy(np.float32), mu)
    np.testing.assert_array_equal(got[["logvar_0", "logvar_1", "logvar_2"]].to_numpy(np.float32), logvar)
    split = model.records.split
    counts = got["split"].value_counts()
    assert counts["train"] == split.train and counts["validation"] == split.validation
    assert got["split"].iloc[0] == "train" and got["split"].iloc[-1] == "validation"


def test_encode_parquet_of_a_synthetic_model_has_its_factors(synth_model, tmp_path):
    pytest.importorskip("pyarrow")
    r = run("encode", synth_model, "--out", tmp_path / "lat.parquet")
    assert r.exit_code == 0, r.output
    assert "wrote" in r.stdout
    got = pd.read_parquet(tmp_path / "lat.parquet")
    model, df, ws = _windows(synth_model)
    assert len(got) == ws.shape[0]
    np.testing.assert_array_equal(got[["mu_0", "mu_1", "mu_2"]].to_numpy(), model.encode(ws.array())[0])
    _, factors = bv.synth.SyntheticMarket(seed=3).candles(20_000, return_factors=True)
    pos = df.index.get_indexer(ws.end_times)
    np.testing.assert_array_equal(got[[f"factor_{n}" for n in bv.synth.FACTOR_GRIDS]].to_numpy(), factors[pos])


@pytest.mark.parametrize("case", ["extension", "folder", "pyarrow"])
def test_encode_bad_output_is_one_sentence_before_any_work(case, real_model, tmp_path, monkeypatch):
    out = {"extension": tmp_path / "lat.xlsx", "folder": tmp_path / "missing" / "lat.csv",
           "pyarrow": tmp_path / "lat.parquet"}[case]
    if case == "pyarrow":
        monkeypatch.setitem(sys.modules, "pyarrow", None)
    r = run("encode", real_model, "--out", out)
    assert r.exit_code == (1 if case == "pyarrow" else 2), r.output
    err = [line for line in r.stderr.strip().splitlines() if line.startswith("Error")]
    assert len(err) == 1 and "Traceback" not in r.output
    assert {"extension": ".csv or .parquet", "folder": "does not exist", "pyarrow": "pyarrow"}[case] in err[0]
    assert list(tmp_path.iterdir()) == []   # nothing written, not even a temporary file
