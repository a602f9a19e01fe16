"""Pictures of a reading: the averaged change of each measure along each dimension's traversal
(:func:`plot_interpretation`), or one window's decoded candles per dimension and step (:func:`plot_traversal`).

Needs matplotlib (the ``plot`` extra); imported only when a plot is asked for.
"""

from __future__ import annotations

import os
import shutil

import numpy as np

from ..exceptions import BetaVAEError, ConfigError

__all__ = ["plot_interpretation", "plot_traversal", "plot_formats", "plot_target", "plotted_readings"]

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


#: One colour per measure (colour-blind-safe Okabe-Ito palette), in table order.
_COLOURS = {"level": "#0072B2", "trend": "#D55E00", "volatility": "#009E73", "volume": "#CC79A7",
            "momentum": "#E69F00", "body": "#56B4E9"}


def plotted_readings(interp, include_inactive: bool = False) -> list:
    """The readings :func:`plot_interpretation` draws: the active dimensions, or all of them."""
    return [r for r in interp.readings if include_inactive or r.active]


def plot_interpretation(interp, path: str, *, title: str = "", include_inactive: bool = False,
                        format: str | None = None) -> str:
    """Save the averaged reading: per dimension, how each measure changes along the traversal.

    Parameters
    ----------
    interp : Interpretation
        From :func:`betavae_np.interpret`, on one window or many.
    path : str
        File to write, exactly this name.
    title : str
        Figure title (default: says how many windows were read).
    include_inactive : bool
        Also draw the dimensions the training statistics call inactive (left out by default).
    format : str, optional
        A key of :func:`plot_formats`; default from the extension of ``path`` (see :func:`plot_target`).

    Returns
    -------
    str
        The path written.

    Notes
    -----
    One panel per dimension: x is the move of the dimension from -span to +span sd, y the change of
    each measure from the window's own reconstruction in training sd of the measure, averaged over
    the windows read (``DimensionReading.change``), with a band of +-1 sd over the windows
    (``change_spread``). Solid lines are the measures whose sign holds on most windows (those that
    name the dimension), dashed lines the others.
    """
    if format is None:
        path, format = plot_target(path)
    plt = _pyplot()
    shown = plotted_readings(interp, include_inactive)
    n = max(1, len(shown))
    cols = 1 if n == 1 else 2 if n <= 4 else 3
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols, 3.6 * rows + 1.3), squeeze=False, sharex=True)
    offsets = np.linspace(-interp.span, interp.span, interp.steps)
    many = interp.n_windows > 1
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    if not shown:
        ax = axes[0, 0]
        ax.set_visible(True)
        ax.axis("off")
        ax.text(0.5, 0.5, "no active latent dimension to show\n(betavae-np traverse --plot-inactive draws them all)",
                ha="center", va="center", fontsize=11, transform=ax.transAxes)
    for ax, r in zip(axes.flat, shown):
        for m in interp.measures:
            mean = np.asarray(r.change[m])
            named = m == r.dominant or m in [a for a, _ in r.also]
            consistent = r.agreement[m] >= interp.agreement and abs(r.effects[m]) >= interp.weak
            colour = _COLOURS.get(m, "0.3")
            ax.plot(offsets, mean, color=colour, linewidth=2.6 if named else 1.6,
                    linestyle="-" if consistent else "--", marker="o", markersize=3.5 if named else 2.5)
            if many:
                band = np.asarray(r.change_spread[m])
                ax.fill_between(offsets, mean - band, mean + band, color=colour, alpha=0.10, linewidth=0)
        ax.axhline(0, color="0.6", linewidth=0.8, zorder=0)
        ax.axvline(0, color="0.6", linewidth=0.8, zorder=0)
        kl = "" if r.kl is None else f", KL {r.kl:.3g} nats"
        ax.set_title(f"z{r.dim}{kl}: {r.label}" + ("" if r.active else " (inactive)"), fontsize=10)
        ax.grid(True, color="0.92", linewidth=0.6)
        ax.tick_params(labelsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("latent moved from its code (sd of the encoded distribution)", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("change of the measure\n(training sd of the measure)", fontsize=9)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=_COLOURS.get(m, "0.3"), linewidth=2.2, marker="o", markersize=4, label=m)
               for m in interp.measures]
    handles += [Line2D([], [], color="0.2", linewidth=2.6, label="names the dimension"),
                Line2D([], [], color="0.2", linewidth=1.6, label=f"sign holds on >= {interp.agreement:.0%} of windows"),
                Line2D([], [], color="0.2", linewidth=1.6, linestyle="--", label="mixed or weak")]
    if many:
        from matplotlib.patches import Patch

        handles.append(Patch(color="0.2", alpha=0.15, label="+-1 sd over the windows"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=9, frameon=False,
               columnspacing=1.6)
    where = f"{interp.n_windows} windows" if many else "one window"
    fig.suptitle(title or f"what each latent dimension does, averaged over {where}", fontsize=11)
    legend_rows = -(-len(handles) // 5)
    fig.tight_layout(rect=(0, 0.035 * legend_rows + 0.02 * (3 - rows if rows < 3 else 0), 1, 0.96))
    fig.savefig(path, dpi=110, format=format)
    plt.close(fig)
    return path
