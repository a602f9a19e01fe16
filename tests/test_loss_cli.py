"""The loss options of ``betavae-np train`` / TrainConfig and the loss in model files, old and new."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import betavae_np as bv
from golden import assert_retrained_like_golden
from betavae_np import losses
from betavae_np.cli import main

GOLDEN_V2 = Path(__file__).parent / "data" / "golden-v2.npz"
SMALL = ["--window", "8", "--lookback", "16", "--latent", "3", "--hidden", "16", "--batch-size", "64",
         "--epochs", "2", "--quiet", "--source", "sample", "--start", "2017-08-01", "--end",
         "2017-09-01"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_file_written_before_losses_loads_with_the_default_loss_and_trains_the_same_bits():
    """golden-v2.npz was written by the step before the loss stage (format 2, no loss, no layout)."""
    m = bv.load(GOLDEN_V2)
    assert m.loss_spec == losses.BetaVAE()
    assert "out.logsigma" not in m.named_parameters()
    result = bv.train(bv.TrainConfig.from_model(GOLDEN_V2))
    assert_retrained_like_golden(result.model.params, m.params)
    assert_retrained_like_golden(result.history.train_total, m.records.history.train_total, what="history")


def test_train_with_tcvae_and_learned_sigma_records_the_loss(tmp_path):
    out = tmp_path / "m.npz"
    r = run("train", "BTCUSDT", *SMALL, "--loss", "tcvae", "--estimator", "mss", "--beta", "3",
            "--alpha", "0.5", "--recon", "gaussian", "--learn-sigma", "--out", out)
    assert r.exit_code == 0, r.output
    m = bv.load(out)
    spec = m.loss_spec
    assert isinstance(spec, losses.TCVAE)
    assert (spec.estimator, spec.alpha, spec.beta, spec.learn_sigma) == ("mss", 0.5, 3.0, True)
    assert spec.dataset_size == m.records.split.train          # N = the training windows
    assert m.named_parameters()["out.logsigma"].shape == (m.config.n_input,)
    assert np.any(m.named_parameters()["out.logsigma"] != 0.0), "log-sigma was trained"
    h = m.records.history
    assert len(h.train_mi) == len(h.train_tc) == len(h.train_dimwise_kl) == 2
    again = bv.train(bv.TrainConfig.from_model(out))
    np.testing.assert_array_equal(again.model.params, m.params)


def test_gaussian_fixed_sigma_is_recorded(tmp_path):
    out = tmp_path / "g.npz"
    r = run("train", "BTCUSDT", *SMALL, "--recon", "gaussian", "--sigma", "0.05", "--beta", "1",
            "--out", out)
    assert r.exit_code == 0, r.output
    assert bv.load(out).loss_spec == losses.BetaVAE(recon="gaussian", sigma=0.05, beta=1.0)


@pytest.mark.parametrize("args, words", [
    (["--recon", "sse", "--sigma", "0.5"], "--sigma"),
    (["--recon", "sse", "--learn-sigma"], "--learn-sigma"),
    (["--recon", "gaussian", "--sigma", "0.5", "--learn-sigma"], "either sigma"),
    (["--loss", "tcvae", "--anneal", "capacity"], "--anneal"),
    (["--sigma", "0"], "--sigma"),
])
def test_contradictory_loss_options_are_misuse(args, words):
    r = run("train", "BTCUSDT", *SMALL, *args)
    assert r.exit_code == 2
    assert words in r.stderr and "Traceback" not in r.output + r.stderr   # usage errors go to stderr


def test_unknown_layout_is_refused(tmp_path):
    import json
    z = np.load(GOLDEN_V2)
    header = json.loads(bytes(z["header"]).decode())
    header["layout"] = "something-else/9"
    path = tmp_path / "future.npz"
    np.savez(path, header=np.frombuffer(json.dumps(header).encode(), np.uint8), params=z["params"])
    with pytest.raises(bv.ModelFileError, match="parameter layout"):
        bv.load(path)
