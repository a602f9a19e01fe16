"""A picture of a traversal: decoded candles per latent dimension (rows) and step (columns).

Needs matplotlib (the ``plot`` extra); imported only when a plot is asked for.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import BetaVAEError

__all__ = ["plot_traversal"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise BetaVAEError("plotting needs matplotlib: pip install 'betavae-np[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _candles(ax, w: np.ndarray, features: list[str]) -> None:
    """Draw one decoded window (window, F) as candles (or a close line when OHLC is incomplete)."""
    t = np.arange(w.shape[0])
    col = {name: w[:, i] for i, name in enumerate(features)}
    if all(k in col for k in ("open", "high", "low", "close")):
        o, h, lo, c = col["open"], col["high"], col["low"], col["close"]
        up = c >= o
        ax.vlines(t, lo, h, color="0.35", linewidth=0.6)
        ax.vlines(t[up], o[up], c[up], color="#2a9d8f", linewidth=2.2)
        ax.vlines(t[~up], c[~up], o[~up], color="#e76f51", linewidth=2.2)
    elif "close" in col:
        ax.plot(t, col["close"], color="k", linewidth=1.0)
    if "volume" in col:
        ax.bar(t, col["volume"] * 0.25, bottom=-0.3, color="#8d99ae", width=0.8)


def plot_traversal(interp, path: str, *, window: int, features, title: str = "") -> str:
    """Save a grid of decoded windows: one row per latent dimension, one column per step.

    Parameters
    ----------
    interp : Interpretation
        From :func:`betavae_np.interpret` (its ``grid`` of shape (n_dims, steps, n_input)).
    path : str
        PNG (or any matplotlib format) to write.
    window : int
    features : sequence of str

    Returns
    -------
    str
        The path written.
    """
    plt = _pyplot()
    grid = np.asarray(interp.grid)
    n_dims, steps, _ = grid.shape
    features = list(features)
    fig, axes = plt.subplots(n_dims, steps, figsize=(1.6 * steps + 1.6, 1.25 * n_dims + 0.9),
                             sharex=True, sharey=True, squeeze=False)
    offsets = np.linspace(-interp.span, interp.span, steps)
    for i, reading in enumerate(interp.readings):
        for s in range(steps):
            ax = axes[i, s]
            _candles(ax, grid[i, s].reshape(window, len(features)), features)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylim(-0.35, 1.1)
            if i == 0:
                ax.set_title(f"{offsets[s]:+.1f} sd", fontsize=8)
        axes[i, 0].set_ylabel(f"z{reading.dim}\n{reading.label}", fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(title or "latent traversals (rows: dimensions, columns: -span .. +span sd)", fontsize=10)
    fig.tight_layout(rect=(0.02, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
