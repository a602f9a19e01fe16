"""Typed model records: round trips of every record, through io, and the version-1 golden file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import betavae_np as bv
from golden import assert_retrained_like_golden
from betavae_np.analysis.latent import LatentStats
from betavae_np.cli import main
from betavae_np.exceptions import ConfigError, ModelFileError
from betavae_np.fitting import History
from betavae_np.records import (ModelRecords, Provenance, ReferenceWindow, RunRecord, Split, WindowStats, Windowing,
                                records_of)

GOLDEN = Path(__file__).parent / "data" / "golden-v1.npz"

RECORDS = {
    "windowing": Windowing(window=4, features=("open", "high", "low", "close", "volume"), lookback=8, gaps="fill",
                           interval="60"),
    "provenance": Provenance(source="csv", symbol="ETHUSDT", interval="60", rows=900, start="2024-01-01T00:00:00+00:00",
                             end="2024-02-07T11:00:00+00:00", extra={"path": "/data/eth.csv", "gaps": [{"missing": 3}]}),
    "run": RunRecord(config=bv.TrainConfig(beta=2.0, window=4, lookback=8).to_dict(), epochs=7, epochs_run=5,
                     schedule={"name": "linear", "beta": 2.0, "warmup": 0.2}, seconds=1.25,
                     created="2026-01-01T00:00:00+00:00", package_version="0.0.0"),
    "history": History(train_total=[3.0, 2.0], train_recon=[2.5, 1.5], train_kl=[0.5, 0.25], val_total=[3.1, None],
                       val_recon=[2.6, None], val_kl=[0.5, None], beta=[0.1, 0.2], kl_per_dim=[[0.2, 0.3], [0.1, 0.15]],
                       steps=[4, 8], seconds=[0.5, 0.5], stopped_early=True, best_epoch=0),
    "latent_stats": LatentStats(mean=[0.0, 0.5], sd=[1.0, 0.001], kl=[0.7, 0.0], active=[True, False], n=40,
                                threshold=0.01),
    "window_stats": WindowStats(measure_scale={"level": 0.2, "trend": 0.01}, mean_window=tuple(np.linspace(0, 1, 20))),
    "reference": ReferenceWindow(end_time="2024-02-07T11:00:00+00:00",
                                 window=tuple(np.float32(np.linspace(0, 1, 20)).tolist())),
    "split": Split(val_fraction=0.2, windows=50, train=40, validation=7, train_end="2024-02-01T00:00:00+00:00",
                   validation_start="2024-02-01T08:00:00+00:00"),
}


@pytest.mark.parametrize("name", list(RECORDS))
def test_record_round_trips_through_json(name):
    rec = RECORDS[name]
    d = json.loads(json.dumps(rec.to_dict()))
    back = type(rec).from_dict(d)
    assert back == rec
    assert back.to_dict() == rec.to_dict()


@pytest.mark.parametrize("name", [n for n in RECORDS if n != "provenance"])
def test_record_refuses_unknown_keys(name):
    rec = RECORDS[name]
    with pytest.raises((ConfigError, bv.InputError), match="unknown"):
        type(rec).from_dict({**rec.to_dict(), "surprise": 1})


def test_model_records_round_trip_through_a_model_file(tmp_path):
    cfg = bv.VAEConfig(n_input=20, hidden=(6,), n_latent=2)
    model = bv.BetaVAE(cfg, rng=0)
    model.records = ModelRecords(**RECORDS)
    model.metadata = {"note": "mine"}
    bv.save(model, tmp_path / "m.npz")
    back = bv.load(tmp_path / "m.npz")
    assert back.records == model.records
    assert back.metadata == {"note": "mine"}     # the user's dict stays the user's
    assert ModelRecords.from_dict(model.records.to_dict()) == model.records


def test_model_without_records_saves_and_loads_empty_records(tmp_path):
    model = bv.BetaVAE(bv.VAEConfig(n_input=8, hidden=(), n_latent=2), rng=0)
    assert records_of(model) == ModelRecords()
    bv.save(model, tmp_path / "m.npz")
    assert bv.load(tmp_path / "m.npz").records == ModelRecords()


def test_provenance_keeps_source_specific_fields():
    d = {"source": "sample", "symbol": "BTC-USD", "pair": "BTC-USD", "fallback_reason": None, "rows": 3}
    p = Provenance.from_dict(d)
    assert p.get("pair") == "BTC-USD" and p.rows == 3 and p.get("missing", 7) == 7
    assert p.to_dict() == d


def test_windowing_rebuilds_the_windower():
    w = bv.data.Windower(window=6, lookback=12, gaps="fill", interval="60")
    rec = Windowing.from_windower(w)
    assert rec.n_input == w.n_input and rec.windower().to_dict() == w.to_dict()


# -- files written before records (format version 1) ---------------------------------------------

def test_golden_version1_file_loads_into_records():
    m = bv.load(GOLDEN)
    rec = m.records
    meta = m.metadata   # a version-1 file keeps its metadata as it was
    assert rec.windowing.to_dict() == meta["windower"]
    assert rec.provenance.to_dict() == meta["data"]
    assert rec.split.to_dict() == meta["split"]
    assert rec.history.to_dict() == meta["history"]
    assert rec.latent_stats.to_dict() == meta["latent_stats"]
    assert rec.window_stats.measure_scale == meta["measure_scale"]
    assert list(rec.window_stats.mean_window) == meta["train_mean_window"]
    assert rec.reference.end_time == meta["reference"]["end_time"]
    assert rec.run.summary() == meta["training"]
    assert rec.run.config["seed"] == meta["seed"] and rec.run.config["window"] == meta["windower"]["window"]


def test_golden_version1_file_works_with_traverse_and_evaluate():
    runner = CliRunner()
    r = runner.invoke(main, ["traverse", str(GOLDEN), "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    # read on the training windows of the file's own data (the bundled sample), ending where training ended
    assert out["reading"] == "windows" and out["windows"]["from"] == "training" and len(out["dimensions"]) == 3
    assert out["windows"]["last_end"] == bv.load(GOLDEN).records.split.train_end
    r = runner.invoke(main, ["evaluate", str(GOLDEN), "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["part"] == "held-out" and out["n"] > 0 and len(out["kl_per_dim"]) == 3
    assert out["baseline_kind"] == "training mean window"


def test_golden_version1_file_is_re_created_bit_for_bit():
    """from_model rebuilds the old file's run (config, pinned data range) and trains the same parameters."""
    cfg = bv.TrainConfig.from_model(GOLDEN)
    assert cfg.source == "sample" and cfg.seed == 3 and cfg.epochs == 2 and cfg.hidden == (16,)
    result = bv.train(cfg)
    assert_retrained_like_golden(result.model.params, bv.load(GOLDEN).params)


def test_load_refuses_unreadable_records(tmp_path):
    model = bv.BetaVAE(bv.VAEConfig(n_input=20, hidden=(), n_latent=2), rng=0)
    model.records = ModelRecords(split=RECORDS["split"])
    bv.save(model, tmp_path / "m.npz")
    import zipfile

    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        header = json.loads(bytes(np.load(z.open("header.npy"), allow_pickle=False)).decode())
    header["records"]["split"]["bogus"] = 1
    params = np.load(tmp_path / "m.npz")["params"]
    np.savez(tmp_path / "m.npz", header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), params=params)
    with pytest.raises(ModelFileError, match="unreadable records.*bogus"):
        bv.load(tmp_path / "m.npz")


def test_records_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RECORDS["split"].train = 3


def test_version1_file_with_a_users_own_metadata_still_loads(tmp_path):
    """Keys that only look like the old context (a string 'data', a number 'windower') are left alone."""
    import zipfile

    model = bv.BetaVAE(bv.VAEConfig(n_input=20, hidden=(), n_latent=2), rng=0)
    bv.save(model, tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        header = json.loads(bytes(np.load(z.open("header.npy"), allow_pickle=False)).decode())
    del header["records"]
    header.update(format_version=1, metadata={"data": "my note", "windower": 3, "split": {"odd": True}})
    params = np.load(tmp_path / "m.npz")["params"]
    np.savez(tmp_path / "m.npz", header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), params=params)
    back = bv.load(tmp_path / "m.npz")
    assert back.records == ModelRecords() and back.metadata == header["metadata"]
    np.testing.assert_array_equal(back.params, model.params)
