"""A picture of a traversal: decoded candles per latent dimension (rows) and step (columns).

Needs matplotlib (the ``plot`` extra); imported only when a plot is asked for.
"""

from __future__ import annotations

import os
import shutil

import numpy as np

from ..exceptions import BetaVAEError, ConfigError

__all__ = ["plot_traversal", "plot_formats", "plot_target"]

#: The format of a plot file named without an extension (``.png`` is appended, as matplotlib does).
DEFAULT_FORMAT = "png"


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise BetaVAEError("plotting needs matplotlib: pip install 'betavae-np[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_formats() -> dict:
    """File formats this matplotlib can write, ``{extension: description}``.

    ``pgf`` is left out when its TeX program (``rcParams["pgf.texsystem"]``) is not installed, since
    writing it would fail only after the work is done.
    """
    plt = _pyplot()
    from matplotlib.backend_bases import FigureCanvasBase

    formats = dict(FigureCanvasBase.get_supported_filetypes())
    if "pgf" in formats and shutil.which(str(plt.rcParams.get("pgf.texsystem", "xelatex"))) is None:
        del formats["pgf"]
    return formats


def plot_target(path: str) -> tuple[str, str]:
    """The file a plot named ``path`` is written to, and its format: checked before any work.

    The extension picks the format (case-insensitive); a name without one gets ``.png`` appended
    (what matplotlib's ``savefig`` does with such a name).

    Returns
    -------
    path : str
        ``path``, or ``path + ".png"``.
    format : str
        A key of :func:`plot_formats`.

    Raises
    ------
    ConfigError
        An extension matplotlib cannot write, in one sentence listing those it can.
    BetaVAEError
        matplotlib is not installed.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1]
    if not ext:
        return path + "." + DEFAULT_FORMAT, DEFAULT_FORMAT
    fmt = ext[1:].lower()
    formats = plot_formats()
    if fmt not in formats:
        raise ConfigError(f"cannot write a plot as {ext!r}; name the file with one of the extensions "
                          f"{', '.join('.' + f for f in sorted(formats))} (no extension: .png is appended)")
    return path, fmt


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


def plot_traversal(interp, path: str, *, window: int, features, title: str = "", format: str | None = None) -> str:
    """Save a grid of decoded windows: one row per latent dimension, one column per step.

    Parameters
    ----------
    interp : Interpretation
        From :func:`betavae_np.interpret` (its ``grid`` of shape (n_dims, steps, n_input)).
    path : str
        File to write, exactly this name.
    window : int
    features : sequence of str
    format : str, optional
        A key of :func:`plot_formats`; default from the extension of ``path`` (see :func:`plot_target`).

    Returns
    -------
    str
        The path written.
    """
    if format is None:
        path, format = plot_target(path)
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
    fig.savefig(path, dpi=110, format=format)  # explicit: a name without extension stays as given
    plt.close(fig)
    return path
