"""bv.sweep: jobs on a spawn process pool give the bits of training one by one; resume; failures;
thread caps inside the task; the measures of each kind of data; the elbow rule; the CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import betavae_np as bv
from betavae_np.cli import main
from betavae_np.run import train_on_candles
from betavae_np.sweep_elbow import _knee, choose_beta, summarize
from betavae_np.sweeps import grid, process_pool, sweep

TINY = dict(window=8, lookback=32, latent=3, hidden=(8,), epochs=1, batch_size=128)


@pytest.fixture(scope="module")
def real():
    """3,000 real hourly candles (the bundled sample)."""
    return bv.data.load_sample().iloc[:3000]


@pytest.fixture(scope="module")
def synthetic():
    return bv.synth.SyntheticMarket(seed=0, window=8, lookback=32).candles(3000, rng=0)


def _params(path):
    return bv.load(path).params.tobytes()


def test_grid_orders_betas_then_axes_with_seeds_innermost():
    cfgs = grid(bv.TrainConfig(seed=5), betas=[1, 4], seeds=2, latent=[2, 3])
    assert [(c.beta, c.latent, c.seed) for c in cfgs] == [
        (1, 2, 5), (1, 2, 6), (1, 3, 5), (1, 3, 6), (4, 2, 5), (4, 2, 6), (4, 3, 5), (4, 3, 6)]


def test_sweep_on_spawn_pool_is_bit_identical_to_training_one_by_one(tmp_path, real):
    cfgs = grid(bv.TrainConfig(**TINY), betas=[0.5, 4.0], seeds=1)
    table = sweep(cfgs, workers=2, out_dir=tmp_path, candles=real)
    assert list(table["status"]) == ["done", "done"], table["error"].tolist()
    assert set(table["numba_threads"]) == {1}                 # capped inside the task
    for cfg, path in zip(cfgs, table["model"]):
        alone = train_on_candles(real, cfg).model
        assert bv.load(path).params.tobytes() == alone.params.tobytes(), f"beta={cfg.beta}"
        assert bv.TrainConfig.from_model(path).beta == cfg.beta   # the model records its config
    seq = sweep(cfgs, candles=real)                                # in this process, no files
    assert np.array_equal(seq["recon"].to_numpy(), table["recon"].to_numpy())
    assert seq["model"].isna().all()


def test_sweep_with_source_loads_data_in_each_job_and_matches_bv_train(tmp_path):
    cfg = bv.TrainConfig(source="sample", start="2019-06-01", end="2019-08-01", **TINY)
    table = sweep([cfg], process_pool(1), out_dir=tmp_path)
    assert table["status"].iloc[0] == "done", table["error"].iloc[0]
    assert _params(table["model"].iloc[0]) == bv.train(cfg).model.params.tobytes()
    assert table["source"].iloc[0] == "sample"


def test_sweep_resumes_finished_jobs_from_its_directory(tmp_path, real):
    cfgs = grid(bv.TrainConfig(**TINY), betas=[1.0], seeds=2)
    first = sweep(cfgs[:1], out_dir=tmp_path, candles=real)
    stamp = os.stat(first["model"].iloc[0]).st_mtime_ns
    again = sweep(cfgs, out_dir=tmp_path, candles=real)
    assert list(again["status"]) == ["resumed", "done"]
    assert os.stat(first["model"].iloc[0]).st_mtime_ns == stamp      # not retrained
    assert again["recon"].iloc[0] == first["recon"].iloc[0]
    record = json.loads((tmp_path / f"{first['key'].iloc[0]}.json").read_text())
    assert record["config"] == cfgs[0].to_dict()
    # other candles are other jobs: nothing is reused
    other = sweep(cfgs[:1], out_dir=tmp_path, candles=real.iloc[:2500])
    assert other["status"].iloc[0] == "done" and other["key"].iloc[0] != first["key"].iloc[0]


def test_failed_job_is_reported_with_its_error_and_the_rest_go_on(tmp_path, real):
    good = bv.TrainConfig(**TINY)
    bad = bv.TrainConfig(**dict(TINY, batch_size=100_000))     # more than the training windows
    for kw in ({}, {"workers": 2}):
        table = sweep([bad, good], out_dir=tmp_path / str(len(kw)), candles=real, **kw)
        assert list(table["status"]) == ["failed", "done"]
        assert "batch_size" in table["error"].iloc[0] and "ConfigError" in table["error"].iloc[0]
        assert not (tmp_path / str(len(kw)) / f"{table['key'].iloc[0]}.json").exists()


def test_sweep_refuses_empty_or_wrong_configs():
    with pytest.raises(bv.InputError):
        sweep([])
    with pytest.raises(bv.InputError):
        sweep(["beta=1"])
    with pytest.raises(bv.ConfigError):
        sweep([bv.TrainConfig()], process_pool(1), workers=2)


def test_synthetic_candles_get_supervised_metrics_and_real_candles_the_indicator_measures(synthetic, real):
    cfg = bv.TrainConfig(**TINY)
    syn = sweep([cfg], candles=synthetic, metric_samples=400)
    assert 0 <= syn["mig"].iloc[0] <= 1 and 0 <= syn["sap"].iloc[0] <= 1
    assert 0 <= syn["dci_disentanglement"].iloc[0] <= 1
    assert "alignment" not in syn
    rl = sweep([cfg], candles=real)
    assert "mig" not in rl
    assert 0 < rl["alignment"].iloc[0] <= 1
    for g in ("volatility", "trend", "volume"):
        assert 0 <= rl[f"coverage_{g}"].iloc[0] <= 1
    assert rl["ic_horizon"].iloc[0] in (1, 4, 24) and np.isfinite(rl["ic_t"].iloc[0])
    assert rl["heldout"].iloc[0]


# -- the elbow ----------------------------------------------------------------------------------
def _summary(betas, recon, score, name="mig"):
    s = pd.DataFrame({"beta": betas, "recon_mean": recon, "_score": score})
    return s


def test_knee_is_where_score_stops_paying_for_reconstruction():
    # score rises fast up to beta 2, then flattens while reconstruction keeps rising
    e = _knee(_summary([0.5, 1, 2, 4, 8], [1.0, 1.1, 1.3, 2.5, 5.0], [0.05, 0.25, 0.40, 0.42, 0.43]), "mig", {})
    assert e.beta == 2 and "knee" in e.reason and "beta=2" in e.reason
    assert e.points.loc[2.0, "gain"] == e.points["gain"].max()


def test_knee_degenerate_curves_say_why():
    flat = _knee(_summary([1, 2, 4], [1.0, 2.0, 3.0], [0.3, 0.3, 0.3]), "mig", {})
    assert flat.beta == 1 and "same for every beta" in flat.reason
    worse = _knee(_summary([1, 2, 4], [1.0, 2.0, 3.0], [0.3, 0.2, 0.1]), "mig", {})
    assert worse.beta == 1 and "nothing is traded off" in worse.reason
    none = _knee(_summary([1, 2, 4], [1.0, 2.0, 3.0], [0.1, 0.12, 0.3]), "mig", {})
    assert none.beta == 1 and "no beta gains" in none.reason
    one = _knee(_summary([2], [1.0], [0.1]), "mig", {})
    assert one.beta == 2 and "only beta" in one.reason


def test_summary_mean_and_sd_over_seeds_and_choice_per_latent():
    table = pd.DataFrame({"beta": [1, 1, 4, 4] * 2, "seed": [0, 1] * 4, "latent": [2] * 4 + [4] * 4,
                          "status": ["done"] * 7 + ["failed"], "recon": [1.0, 3.0, 5.0, 7.0, 1, 1, 2, np.nan],
                          "active_units": [2, 2, 1, 1, 4, 4, 2, np.nan]})
    table.attrs["varying"] = ["latent", "beta", "seed"]
    s = summarize(table)
    r = s[(s.beta == 1) & (s.latent == 2)].iloc[0]
    assert r["recon_mean"] == 2.0 and r["recon_sd"] == pytest.approx(np.sqrt(2)) and r["seeds"] == 2
    assert s[(s.beta == 4) & (s.latent == 4)].iloc[0]["failed"] == 1
    elbows = choose_beta(s)
    assert [e.group for e in elbows] == [{"latent": 2}, {"latent": 4}]
    assert all(e.score == "units_off" for e in elbows)
    with pytest.raises(bv.InputError):
        choose_beta(s, "mig")                                     # no MIG in a real-data table


# -- the command --------------------------------------------------------------------------------
def test_cli_sweep_table_choice_json_plot_and_resume(tmp_path):
    args = ["sweep", "--source", "sample", "--start", "2019-05-01", "--end", "2019-08-01", "--betas", "0.5,4",
            "--seeds", "2", "--window", "8", "--lookback", "32", "--latent", "3", "--hidden", "8", "--epochs", "1",
            "--batch-size", "128", "--workers", "1", "--out", str(tmp_path / "m")]
    r = CliRunner().invoke(main, args + ["--plot", str(tmp_path / "t.png")])
    assert r.exit_code == 0, r.output + r.stderr
    assert "mean ±sd over seeds" in r.stdout and "chosen: beta=" in r.stdout
    assert r.stderr.count("(done)") == 4
    assert (tmp_path / "t.png").stat().st_size > 1000
    r2 = CliRunner().invoke(main, args + ["--json"])
    assert r2.exit_code == 0, r2.stderr
    out = json.loads(r2.stdout)
    assert {j["status"] for j in out["jobs"]} == {"resumed"} and len(out["summary"]) == 2
    assert out["choice"][0]["beta"] in (0.5, 4.0) and out["choice"][0]["reason"]
    assert out["choice"][0]["score"] == "coverage"                # real candles: indicator coverage


def test_cli_sweep_misuse_exits_2():
    r = CliRunner().invoke(main, ["sweep", "--betas", "1,2"])
    assert r.exit_code == 2 and "SYMBOL is needed" in r.stderr
    r = CliRunner().invoke(main, ["sweep", "--source", "sample", "--betas", "1,-2"])
    assert r.exit_code == 2 and "--betas" in r.stderr
    r = CliRunner().invoke(main, ["sweep", "--source", "sample", "--anneal", "linear,nope"])
    assert r.exit_code == 2 and "--anneal" in r.stderr


def test_dask_training_config_turns_the_worker_overheads_down():
    """--dask local starts its cluster under these settings (the profiler and 20 ms ticks slowed training)."""
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    from betavae_np.sweeps import dask_training_config

    with dask_training_config():
        assert dask.config.get("distributed.worker.profile.enabled") is False
        assert dask.config.get("distributed.nanny.pre-spawn-environ") == {
            "OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}
        assert dask.config.get("distributed.worker.memory.terminate") is False
    assert dask.config.get("distributed.worker.profile.enabled") is True
