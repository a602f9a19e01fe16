"""The flat parameter layout: where each named tensor lives in the one parameter buffer.

Memory order: ``enc.{i}.W, enc.{i}.b`` per hidden layer, the fused heads block
``[mu.W | logvar.W]`` of shape (h, 2L), the head biases ``[mu.b, logvar.b]`` (2L,), then
``dec.{i}.W, dec.{i}.b`` and ``out.W, out.b``, then, only in models whose loss learns the
observation noise, ``out.logsigma`` (n_input,): the log of the Gaussian likelihood's sigma per
input feature (initialised to 0, sigma = 1). ``mu.W`` and ``logvar.W`` are therefore strided
(non-contiguous) views into the heads block, so both heads cost one matmul; every other view is
C-contiguous. The public name order (``named_parameters()``) is the contract's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import VAEConfig

__all__ = ["Layer", "Layout", "make_layout", "layer_views", "named_views", "init_params"]


@dataclass(frozen=True)
class Layer:
    """One dense layer ``y = x @ W + b`` in the flat buffer."""

    name: str      # "enc.0", "heads", "dec.1", "out"
    n_in: int      # input width
    n_out: int     # output width
    w_off: int     # offset of W (n_in, n_out), C order
    b_off: int     # offset of b (n_out,)
    act: bool      # True: hidden activation follows; False: linear


@dataclass(frozen=True)
class Layout:
    """All layers of a model in forward order plus the total buffer size."""

    encoder: tuple[Layer, ...]   # hidden encoder layers
    heads: Layer                 # fused [mu | logvar] layer, n_out = 2 * n_latent
    decoder: tuple[Layer, ...]   # hidden decoder layers
    out: Layer                   # linear output layer
    size: int                    # number of scalars in the flat buffer
    n_latent: int                # L
    ls_off: int = -1             # offset of out.logsigma (n_input,), -1 without a learned sigma


def make_layout(cfg: VAEConfig, learn_sigma: bool = False) -> Layout:
    """Compute the offsets of every layer for ``cfg`` (see module docstring for the order);
    ``learn_sigma`` appends the ``out.logsigma`` block (n_input,) after ``out.b``."""
    off = 0

    def add(name: str, n_in: int, n_out: int, act: bool) -> Layer:
        nonlocal off
        layer = Layer(name, n_in, n_out, off, off + n_in * n_out, act)
        off += n_in * n_out + n_out
        return layer

    widths = (cfg.n_input, *cfg.hidden)
    enc = tuple(add(f"enc.{i}", widths[i], widths[i + 1], True) for i in range(len(cfg.hidden)))
    heads = add("heads", widths[-1], 2 * cfg.n_latent, False)
    dwidths = (cfg.n_latent, *reversed(cfg.hidden))
    dec = tuple(add(f"dec.{i}", dwidths[i], dwidths[i + 1], True) for i in range(len(cfg.hidden)))
    out = add("out", dwidths[-1], cfg.n_input, False)
    if learn_sigma:
        return Layout(enc, heads, dec, out, off + cfg.n_input, cfg.n_latent, off)
    return Layout(enc, heads, dec, out, off, cfg.n_latent)


def layer_views(flat: np.ndarray, layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``(W, b)`` views of ``layer`` in the flat buffer ``flat``."""
    W = flat[layer.w_off:layer.b_off].reshape(layer.n_in, layer.n_out)
    b = flat[layer.b_off:layer.b_off + layer.n_out]
    return W, b


def named_views(flat: np.ndarray, layout: Layout) -> dict[str, np.ndarray]:
    """Name -> view of ``flat`` in the contract's order (enc, mu, logvar, dec, out)."""
    views: dict[str, np.ndarray] = {}
    for layer in layout.encoder:
        views[f"{layer.name}.W"], views[f"{layer.name}.b"] = layer_views(flat, layer)
    W, b = layer_views(flat, layout.heads)
    L = layout.n_latent
    views["mu.W"], views["mu.b"] = W[:, :L], b[:L]
    views["logvar.W"], views["logvar.b"] = W[:, L:], b[L:]
    for layer in (*layout.decoder, layout.out):
        views[f"{layer.name}.W"], views[f"{layer.name}.b"] = layer_views(flat, layer)
    if layout.ls_off >= 0:
        views["out.logsigma"] = flat[layout.ls_off:layout.ls_off + layout.out.n_out]
    return views


def init_params(flat: np.ndarray, layout: Layout, activation: str,
                rng: np.random.Generator) -> None:
    """Fill ``flat`` in place: He/Glorot normal weights, zero biases.

    Notes
    -----
    Hidden layers: He et al. (2015), ``std = sqrt(2 / n_in)``, for relu, elu and leaky_relu;
    Glorot & Bengio (2010), ``std = sqrt(2 / (n_in + n_out))``, for tanh. The linear heads and the
    output layer use Glorot (the two heads as two (h, L) matrices). Zero biases keep the initial
    ``logvar`` centred on 0 (posterior std near 1).
    """
    flat[:] = 0.0
    he = activation in ("relu", "elu", "leaky_relu")
    for layer in (*layout.encoder, *layout.decoder):
        W, _ = layer_views(flat, layer)
        std = np.sqrt(2.0 / layer.n_in) if he else np.sqrt(2.0 / (layer.n_in + layer.n_out))
        W[...] = rng.standard_normal(W.shape) * std
    W, _ = layer_views(flat, layout.heads)
    L = layout.n_latent
    std = np.sqrt(2.0 / (layout.heads.n_in + L))
    W[:, :L] = rng.standard_normal((layout.heads.n_in, L)) * std
    W[:, L:] = rng.standard_normal((layout.heads.n_in, L)) * std
    W, _ = layer_views(flat, layout.out)
    W[...] = rng.standard_normal(W.shape) * np.sqrt(2.0 / (layout.out.n_in + layout.out.n_out))
