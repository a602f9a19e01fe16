"""examples/loss_study.py: the --quick path end to end, resuming, the summary over seeds, merging.

Each row's metrics cost a few seconds (DCI fits 100 boosted trees per factor class whatever the
sample size), so the default suite runs the TC-VAE row only; every row is the slow test.
"""

from __future__ import annotations

import json
import math

import pytest
from examples_loader import load_example

pytest.importorskip("sklearn")

@pytest.fixture(scope="module")
def study():
    return load_example("loss_study")


@pytest.fixture(scope="module")
def quick(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "quick.json"
    result = study.main(["--quick", "--rows", "tcvae", "--out", str(out)])
    return out, result


def test_loss_study_quick_tcvae_row_is_scored_and_written(study, quick):
    out, result = quick
    saved = json.loads(out.read_text())
    assert saved["summary"] == json.loads(json.dumps(result["summary"]))
    assert list(saved["summary"]) == ["TC-VAE beta=1"] and len(saved["runs"]) == 1
    r = saved["runs"][0]
    for key in ("mig", "dci_disentanglement", "factor_vae", "recon", "r2", "active_units", "sigma",
                "train_mi", "train_tc", "train_dimwise_kl"):
        assert math.isfinite(r[key]), key
    assert r["r2"] < 1.0 and r["recon"] > 0.0 and r["seed"] == 0
    s = saved["settings"]
    assert s["quick"] and s["estimator"] == "mws" and s["rows"] == ["tcvae"] and s["n_train"] == 512


@pytest.mark.slow
def test_loss_study_quick_scores_every_row(study, tmp_path):
    result = study.main(["--quick", "--out", str(tmp_path / "all.json")])
    rows = {r["row"]: r for r in result["runs"]}
    assert list(result["summary"]) == ["PCA (8)", "SSE beta=0.5", "Gaussian beta=1", "TC-VAE beta=1"]
    for name, r in rows.items():
        for key in ("mig", "dci_disentanglement", "factor_vae", "recon", "r2", "active_units"):
            assert math.isfinite(r[key]), (name, key)
    assert "sigma" in rows["Gaussian beta=1"] and "sigma" not in rows["SSE beta=0.5"]
    assert "train_tc" in rows["TC-VAE beta=1"] and "train_tc" not in rows["Gaussian beta=1"]
    assert rows["PCA (8)"]["seed"] is None and "rows" not in result["settings"]


def test_loss_study_resume_keeps_what_the_file_holds(study, quick, capsys):
    out, result = quick
    again = study.main(["--quick", "--rows", "tcvae", "--out", str(out), "--resume"])
    assert json.loads(json.dumps(again["runs"])) == json.loads(json.dumps(result["runs"]))
    table = capsys.readouterr().out
    assert table.startswith("| model | MIG | DCI-D | FactorVAE |") and "| TC-VAE beta=1 |" in table


def test_loss_study_summary_is_mean_and_sample_sd_and_names_diverged_seeds(study):
    settings = {"betas": [2.0], "n_train": 100}
    runs = [{"row": "TC-VAE beta=2", "seed": 0, "mig": 0.1, "recon": 3.0},
            {"row": "TC-VAE beta=2", "seed": 1, "mig": 0.3, "recon": 5.0},
            {"row": "TC-VAE beta=2", "seed": 2, "error": "training diverged"},
            {"row": "PCA (8)", "seed": None, "mig": 0.2}]
    s = study.summarise(settings, runs)
    tc = s["TC-VAE beta=2"]
    assert tc["mig"]["mean"] == pytest.approx(0.2) and tc["mig"]["sd"] == pytest.approx(math.sqrt(0.02))
    assert tc["recon"]["n"] == 2 and tc["seeds"] == [0, 1] and tc["diverged"] == [2]
    assert s["PCA (8)"]["mig"]["sd"] is None and "Gaussian beta=2" not in s


def test_loss_study_merge_refuses_files_of_other_settings(study, quick, tmp_path):
    out, _ = quick
    other = json.loads(out.read_text())
    other["settings"]["steps"] += 1
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="other settings"):
        study.merge([str(out), str(tmp_path / "other.json")])
    assert study.merge([str(out), str(out)])["summary"] == json.loads(out.read_text())["summary"]


def test_loss_study_merge_joins_runs_of_other_betas_and_seeds(study, quick, tmp_path):
    out, _ = quick
    other = json.loads(out.read_text())
    other["settings"].update(betas=[2.0], seeds=[3])
    other["runs"][0].update(row="TC-VAE beta=2", seed=3)
    (tmp_path / "other.json").write_text(json.dumps(other))
    merged = study.merge([str(out), str(tmp_path / "other.json")])
    assert merged["settings"]["betas"] == [1.0, 2.0] and merged["settings"]["seeds"] == [0, 3]
    assert list(merged["summary"]) == ["TC-VAE beta=1", "TC-VAE beta=2"]
    assert merged["summary"]["TC-VAE beta=2"]["seeds"] == [3]
