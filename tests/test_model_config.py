"""VAEConfig: validation with one-sentence ConfigErrors, and the dict round trip."""

from __future__ import annotations

import json

import pytest

import betavae_np as bv
from betavae_np.exceptions import ConfigError


def test_vaeconfig_defaults_are_the_standard_workload():
    cfg = bv.VAEConfig()
    assert (cfg.n_input, cfg.hidden, cfg.n_latent, cfg.activation, cfg.dtype) == (
        160, (128, 64), 8, "relu", "float32")


@pytest.mark.parametrize("kw, field", [
    (dict(n_input=0), "n_input"), (dict(n_latent=0), "n_latent"), (dict(n_latent=2.5), "n_latent"),
    (dict(hidden=(4, 0)), "hidden"), (dict(hidden="64"), "hidden"), (dict(n_input=True), "n_input"),
    (dict(activation="sigmoid"), "activation"), (dict(dtype="float16"), "dtype"),
])
def test_vaeconfig_rejects_bad_values_with_one_sentence(kw, field):
    with pytest.raises(ConfigError, match=field) as err:
        bv.VAEConfig(**kw)
    assert str(err.value).count(". ") == 0 and str(err.value).endswith(".")


def test_vaeconfig_accepts_no_hidden_layer_and_lists():
    assert bv.VAEConfig(hidden=[]).hidden == ()
    assert bv.VAEConfig(hidden=[3, 2]).hidden == (3, 2)


def test_vaeconfig_dict_round_trip_through_json():
    cfg = bv.VAEConfig(n_input=12, hidden=(5,), n_latent=3, activation="tanh", dtype="float64")
    d = json.loads(json.dumps(cfg.to_dict()))
    assert bv.VAEConfig.from_dict(d) == cfg


@pytest.mark.parametrize("change, word", [(dict(extra=1), "unknown"),
                                          (dict(drop="dtype"), "missing")])
def test_vaeconfig_from_dict_rejects_unknown_and_missing_keys(change, word):
    d = bv.VAEConfig().to_dict()
    d.update({k: v for k, v in change.items() if k != "drop"})
    d.pop(change.get("drop", "__none__"), None)
    with pytest.raises(ConfigError, match=word):
        bv.VAEConfig.from_dict(d)


def test_vaeconfig_is_frozen():
    with pytest.raises(AttributeError):
        bv.VAEConfig().n_latent = 3  # type: ignore[misc]
