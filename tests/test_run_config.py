"""TrainConfig (validation, round trips, the CLI built from it) and bv.train / from_model reproducing a run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import betavae_np as bv
from betavae_np.exceptions import ConfigError
from betavae_np.run import ACTIVATIONS, SCHEDULES, cli_fields

SMALL = dict(window=8, lookback=16, latent=3, hidden=(16,), batch_size=64, epochs=2)


def test_config_defaults_and_design_keywords():
    cfg = bv.TrainConfig(symbol="BTCUSDT", source="auto", beta=0.5)
    assert (cfg.window, cfg.lookback, cfg.latent, cfg.hidden, cfg.beta, cfg.anneal) == (32, 128, 8, (128, 64), 0.5,
                                                                                         "linear")
    assert cfg.epochs is None and cfg.seed == 0 and cfg.val_fraction == 0.2 and cfg.gaps == "drop"


def test_config_round_trips_through_dict():
    cfg = bv.TrainConfig(symbol="ETHUSDT", interval="1h", start="2024-01-01", hidden=[32], beta=2, epochs=3)
    d = cfg.to_dict()
    assert d["hidden"] == [32] and d["interval"] == "60" and d["start"] == "2024-01-01T00:00:00+00:00"
    assert bv.TrainConfig.from_dict(d) == cfg


@pytest.mark.parametrize("kw,field", [
    (dict(window=1), "window"), (dict(window=2.5), "window"), (dict(latent=0), "latent"), (dict(beta=-1), "beta"),
    (dict(beta=float("nan")), "beta"), (dict(lr=0), "lr"), (dict(warmup=1.5), "warmup"),
    (dict(val_fraction=1.0), "val_fraction"), (dict(seed=-1), "seed"), (dict(batch_size=True), "batch_size"),
    (dict(anneal="cosine"), "anneal"), (dict(activation="gelu"), "activation"), (dict(gaps="skip"), "gaps"),
    (dict(hidden="12,x"), "hidden"), (dict(hidden=(0,)), "hidden"), (dict(window=200), "lookback"),
    (dict(early_stopping=2, val_fraction=0), "early_stopping"), (dict(interval="7m"), "interval"),
    (dict(start="2024-02-01", end="2024-01-01"), "end"), (dict(start="yesterday-ish"), "start"),
    (dict(symbol=""), "symbol"), (dict(epochs=0), "epochs"),
])
def test_config_refuses_bad_values_in_one_sentence(kw, field):
    with pytest.raises(ConfigError) as err:
        bv.TrainConfig(**kw)
    assert err.value.field == field
    msg = str(err.value)
    assert field.split("_")[0] in msg and "\n" not in msg


def test_config_is_frozen_and_refuses_unknown_keys():
    cfg = bv.TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.beta = 2.0
    with pytest.raises(ConfigError, match="unknown training setting"):
        bv.TrainConfig.from_dict({"betta": 2.0})


def test_config_choices_match_the_model_and_the_schedules():
    from betavae_np.nn.config import ACTIVATIONS as NN_ACTIVATIONS
    from betavae_np.schedules import NAMES

    assert set(ACTIVATIONS) == set(NN_ACTIVATIONS) and tuple(SCHEDULES) == tuple(NAMES)


def test_cli_train_options_are_the_config_fields_with_their_defaults():
    from betavae_np.cli.train import train

    opts = {p.name: p for p in train.params}
    for f in cli_fields():
        assert f.name in opts, f.name
        default = opts[f.name].default
        expected = ",".join(map(str, f.default)) if f.name == "hidden" else f.default
        assert default == expected, f.name
    assert "dtype" not in opts and "symbol" in opts   # symbol is the argument


def test_workflow_still_exports_the_old_names():
    from betavae_np import workflow

    assert workflow.train_on_candles is bv.run.train_on_candles and workflow.TrainResult is bv.run.TrainResult


def test_from_model_reproduces_a_model_bit_for_bit(tmp_path):
    """train(cfg) -> save -> TrainConfig.from_model(path) -> train gives the same parameters."""
    cfg = bv.TrainConfig(source="sample", end="2017-09-15", seed=5, **SMALL)
    first = bv.train(cfg)
    bv.save(first.model, tmp_path / "m.npz")
    again = bv.TrainConfig.from_model(tmp_path / "m.npz")
    assert again.seed == 5 and again.epochs == 2 and again.window == 8
    second = bv.train(again)
    np.testing.assert_array_equal(second.model.params, first.model.params)
    assert second.model.records.split == first.model.records.split
    other = bv.train(dataclasses.replace(again, seed=6))
    assert not np.array_equal(other.model.params, first.model.params)


def test_from_model_needs_a_run_record():
    model = bv.BetaVAE(bv.VAEConfig(n_input=10, hidden=(), n_latent=2), rng=0)
    with pytest.raises(ConfigError, match="no training run"):
        bv.TrainConfig.from_model(model)


def test_dataframe_trainer_takes_a_config_or_keywords():
    df = bv.data.load_sample().iloc[:800]
    cfg = bv.TrainConfig(seed=2, **SMALL)
    a = bv.run.train_on_candles(df, cfg)
    b = bv.run.train_on_candles(df, seed=2, **SMALL)
    np.testing.assert_array_equal(a.model.params, b.model.params)
    assert a.model.records.run.config == cfg.to_dict()


def test_train_warns_when_no_dimension_is_active():
    df = bv.data.load_sample().iloc[:800]
    res = bv.run.train_on_candles(df, beta=2000.0, anneal="constant", lr=0.01, seed=0,
                                  **{**SMALL, "epochs": 10})
    assert res.model.records.latent_stats.n_active == 0
    assert res.warnings and "no latent dimension is active" in res.warnings[0]


def test_learned_noise_is_decided_by_the_likelihood_and_sigma_even_after_replace():
    """learn_sigma=None (the default) learns the noise only for a Gaussian likelihood without a fixed
    sigma, and replace() decides it again (bv.train(recon="sse") must not inherit a learned noise)."""
    cfg = bv.TrainConfig()
    assert cfg.learn_sigma is None and cfg.loss_spec().learn_sigma is True
    assert dataclasses.replace(cfg, recon="sse").loss_spec() == bv.losses.BetaVAE(recon="sse", beta=4.0)
    fixed = dataclasses.replace(cfg, sigma=0.3).loss_spec()
    assert (fixed.sigma, fixed.learn_sigma) == (0.3, False)
    assert dataclasses.replace(cfg, learn_sigma=False).loss_spec().sigma == 1.0
    with pytest.raises(ConfigError, match="learn_sigma needs"):
        bv.TrainConfig(recon="sse", learn_sigma=True)
    with pytest.raises(ConfigError, match="learn_sigma"):
        bv.TrainConfig(learn_sigma="yes")
    df = bv.data.load_sample().iloc[:600]
    res = bv.run.train_on_candles(df, window=8, lookback=16, latent=2, hidden=(8,), epochs=1, recon="sse")
    assert res.model.loss_spec.recon == "sse" and "out.logsigma" not in res.model.named_parameters()
