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
    "indicators": ".proxies",
    "indicator_table": ".proxies",
    "forward_returns": ".proxies",
    "predictive_ic": ".ic",
    "permuted_control": ".ic",
    "stability": ".ic",
    "PCA": ".baselines",
    "hand_factors": ".baselines",
    "encode_panel": ".panel",
    "cross_sectional_ic": ".cross_section",
    "cross_section_report": ".cross_section",
}

__getattr__, __dir__ = attach(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
