"""Interpretation: traversals, what each dimension means, evaluation and collapse detection."""

from .._lazy import attach

_EXPORTS = {
    "traverse": ".traversal",
    "traverse_windows": ".traversal",
    "parse_dims": ".traversal",
    "interpret": ".interpret",
    "Interpretation": ".interpret",
    "DimensionReading": ".interpret",
    "evaluate": ".evaluate",
    "EvaluationReport": ".evaluate",
    "latent_stats": ".latent",
    "LatentStats": ".latent",
    "window_measures": ".measures",
    "MEASURES": ".measures",
}

__getattr__, __dir__ = attach(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
