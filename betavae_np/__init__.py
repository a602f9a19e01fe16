"""betavae-np: interpretable market factors with a beta-VAE in NumPy + Numba.

Public names are imported lazily (see :mod:`betavae_np._lazy`), so ``import betavae_np`` is cheap
and the CLI's ``--help`` answers at once.
"""

from ._lazy import attach
from ._version import __version__

_EXPORTS = {
    # model
    "VAEConfig": ".nn.model",
    "BetaVAE": ".nn.model",
    "LossParts": ".nn.model",
    "Adam": ".nn.adam",
    # training
    "fit": ".fitting",
    "History": ".history",
    "TrainConfig": ".train_config",
    "train": ".run",
    "train_on_universe": ".run",
    "sweep": ".sweeps",
    # model files
    "save": ".io",
    "load": ".io",
    # interpretation
    "traverse": ".analysis.traversal",
    "interpret": ".analysis.interpret",
    "evaluate": ".analysis.evaluate",
    "encode_panel": ".analysis.panel",
    # errors
    "BetaVAEError": ".exceptions",
    "ConfigError": ".exceptions",
    "InputError": ".exceptions",
    "TrainingError": ".exceptions",
    "ModelFileError": ".exceptions",
    "DataError": ".exceptions",
    "BybitError": ".exceptions",
}
_SUBMODULES = ("data", "schedules", "losses", "analysis", "exceptions", "config", "nn", "sources", "workflow",
               "run", "train_config", "records", "fitting", "io", "synth", "metrics")

__getattr__, __dir__ = attach(__name__, _EXPORTS, _SUBMODULES)
__all__ = ["__version__", *_EXPORTS, *_SUBMODULES]
