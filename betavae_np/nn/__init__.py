"""Neural-network pieces: the model config, the flat parameter layout, workspaces and the beta-VAE.

Names are imported lazily (``nn/adam.py`` belongs to the training code and is only imported on
first use of ``Adam``).
"""

from .._lazy import attach

_EXPORTS = {
    "VAEConfig": ".config",
    "ACTIVATIONS": ".config",
    "BetaVAE": ".model",
    "LossParts": ".loss",
    "Workspace": ".workspace",
    "Adam": ".adam",
}

__getattr__, __dir__ = attach(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
