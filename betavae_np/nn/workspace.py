"""Training workspaces: every activation and gradient buffer of one minibatch, allocated once.

A :class:`Workspace` holds buffers for up to ``capacity`` rows, laid out for one of two engines
(:mod:`betavae_np.nn.engine`):

* ``"compiled"``: flat per-chunk buffers and a layer table for the one-call passes of
  :mod:`betavae_np._kernels.step` (BLAS called from compiled code);
* ``"numpy"``: per-layer 2-D buffers for the ``np.matmul`` path. A smaller batch uses the
  leading rows; the row-sliced views of each batch size are built once and cached
  (:meth:`Workspace.plan`).

Either way a training step creates no arrays.
"""

from __future__ import annotations

import math

import numpy as np

from .._kernels.loss_codes import TC_BETA
from ..exceptions import ConfigError
from . import engine
from .params import Layout

__all__ = ["Workspace", "Plan"]


def aligned_zeros(shape, dtype, align: int = 64) -> np.ndarray:
    """``np.zeros(shape, dtype)`` whose data start on an ``align``-byte boundary (NumPy only
    promises 16)."""
    dtype = np.dtype(dtype)
    n = math.prod(shape)
    raw = np.zeros(n * dtype.itemsize + align, np.uint8)
    skip = -raw.ctypes.data % align
    return raw[skip:skip + n * dtype.itemsize].view(dtype).reshape(shape)


class Plan:
    """The views of a workspace for one batch size ``B`` (all row-sliced to ``B``).

    Attributes
    ----------
    outs : list of ndarray
        Per layer in forward order (encoder, heads, decoder, out): the layer's output buffer,
        (B, n_out). Hidden layers hold activations, the heads hold ``[mu | logvar]`` (B, 2L), the
        output layer holds ``x_hat`` pre-bias and, after ``forward_train``, ``dloss/dx_hat``.
    dpres : list of ndarray or None
        Per layer: gradient w.r.t. the layer's pre-activation (B, n_out); for the output layer this
        is ``outs[-1]`` itself.
    Z, S, dZ : ndarray
        (B, L): the sample ``z``, ``exp(0.5 logvar)`` and ``dloss/dz``.
    inv_b : float
        ``1 / B``.
    """

    __slots__ = ("B", "outs", "dpres", "Z", "S", "dZ", "inv_b")

    def __init__(self, ws: "Workspace", B: int):
        self.B = B
        self.outs = [o[:B] for o in ws.outs]
        self.dpres = [d[:B] for d in ws.dpres]
        self.Z = ws.Z[:B]
        self.S = ws.S[:B]
        self.dZ = ws.dZ[:B]
        self.inv_b = 1.0 / B


class Workspace:
    """Buffers for ``forward_train``/``backward_train`` with batches of up to ``capacity`` rows.

    Parameters
    ----------
    layout : Layout
        The model's parameter layout.
    capacity : int
        Largest batch size this workspace serves.
    dtype : numpy.dtype
        The model dtype.
    engine : {"auto", "compiled", "numpy"}, default "auto"
        ``"auto"`` is ``"compiled"`` when numpy's CBLAS can be called from compiled code
        (:func:`betavae_np.nn.engine.compiled_available`), else ``"numpy"``.

    Attributes
    ----------
    capacity : int
        Largest batch size.
    engine : str
        ``"compiled"`` or ``"numpy"``.
    layout : Layout
        The layout it was made for; the model whose layout this is (by identity) owns it, and
        ``forward_train``/``backward_train`` refuse it on any other model.
    kl_per_dim : ndarray, shape (n_latent,), float64
        Batch-mean KL per latent dimension of the last ``forward_train``.
    loss : betavae_np.losses.Loss
        The loss this workspace's steps compute (default ``BetaVAE(recon="sse")``).
    terms : ndarray, shape (8,), float64
        Batch means of the last ``forward_train``: recon, KL, and for TC-VAE the MI, TC and
        dimension-wise KL estimates (``terms[2:5]``).

    Notes
    -----
    ``forward_train`` keeps references to its ``X`` and ``eps`` (no copies) for the following
    ``backward_train``: do not modify them in between.
    """

    def __init__(self, layout: Layout, capacity: int, dtype: np.dtype, engine_name: str = "auto",
                 loss=None, n_data: int | None = None):
        self.capacity = capacity
        self.dtype = dtype
        self.layout = layout        # identifies the owning model (each model has its own)
        self.engine = engine.resolve(engine_name)
        layers = (*layout.encoder, layout.heads, *layout.decoder, layout.out)
        L = layout.n_latent
        self.n_latent = L
        self.kl_per_dim = np.zeros(L, np.float64)
        self._plans: dict[int, Plan] = {}
        # state of the last forward_train (consumed by backward_train)
        self.last_plan: Plan | None = None
        self.last_X: np.ndarray | None = None
        self.last_eps: np.ndarray | None = None
        self.last_chunks = 0
        self._init_loss(layout, capacity, dtype, loss, n_data)
        if self.engine == "compiled":
            self._init_compiled(layout, layers, capacity, dtype)
        else:
            self.outs = [np.zeros((capacity, ly.n_out), dtype) for ly in layers]
            self.dpres = [np.zeros((capacity, ly.n_out), dtype) for ly in layers[:-1]]
            self.dpres.append(self.outs[-1])
            self.Z = np.zeros((capacity, L), dtype)
            self.S = np.zeros((capacity, L), dtype)
            self.dZ = np.zeros((capacity, L), dtype)

    def _init_loss(self, layout: Layout, capacity: int, dtype, loss, n_data) -> None:
        """The loss spec and the loss stage's buffers (:mod:`betavae_np._kernels.loss`, ``.tc``)."""
        from .. import losses
        from .._kernels.loss_codes import N_DATA
        from .._kernels.step import n_chunks_for
        from .._kernels.tc import tc_shape
        loss = losses.default() if loss is None else loss
        if not isinstance(loss, losses.Loss):
            raise ConfigError(f"loss must be a betavae_np.losses spec (BetaVAE or TCVAE), got "
                              f"{type(loss).__name__}.")
        if loss.learn_sigma and layout.ls_off < 0:
            raise ConfigError("this loss learns sigma but the model has no out.logsigma parameter; "
                              "make the model with BetaVAE(cfg, loss=...) or fit(model, ..., loss=...).")
        self.loss = loss
        self.lc, self.lw = loss.codes(layout.ls_off, n_data)
        if isinstance(loss, losses.TCVAE):      # + the TC weight the gradient pass fuses (tc_beta)
            self.lw = np.append(self.lw, float(loss.beta))
        if isinstance(loss, losses.TCVAE) and loss.estimator == "mss" and self.lw[N_DATA] < capacity:
            raise ConfigError(f"the MSS estimator needs dataset_size (N = {self.lw[N_DATA]:g}) of at least "
                              f"the batch size ({capacity}); N is the number of training samples.")
        n = layout.out.n_out
        L = layout.n_latent
        tc = isinstance(loss, losses.TCVAE)
        self.sw = np.zeros(n if loss.learn_sigma else 0, np.float64)       # exp(-2 log sigma)
        self.gls = np.zeros(n if loss.learn_sigma else 0, np.float64)      # d/dlog sigma
        # TC-VAE scratch in the model dtype (tc_shape: 149 KiB at batch 256, 8 latents, float32),
        # on a 64-byte boundary with rows a multiple of 64 bytes: the stage's 512-bit loads then
        # never straddle two cache lines (a misaligned buffer made it ~20% slower)
        self.tcb = aligned_zeros(tc_shape(capacity, L, n_chunks_for(capacity)) if tc else (0, 0),
                                 dtype)
        self.G = np.zeros((capacity if tc else 0, 3 * L), dtype)          # dloss/d[z|mu|logvar]
        self.terms = np.zeros(8, np.float64)       # recon, kl, mi, tc, kl_dim of the last batch

    def _init_compiled(self, layout: Layout, layers, capacity: int, dtype) -> None:
        """Per-chunk flat buffers for :mod:`betavae_np._kernels.step` (see its module notes)."""
        from .._kernels.step import SPLIT_MIN_B, n_chunks_for
        L = layout.n_latent
        n_max = n_chunks_for(capacity)
        # rows per chunk: a split batch's largest chunk, or a whole unsplit (small) batch
        cap = max(-(-capacity // n_max), min(capacity, SPLIT_MIN_B - 1))
        offsets = np.cumsum([0] + [cap * ly.n_out for ly in layers])
        self.tab = np.array([[ly.w_off, ly.b_off, ly.n_in, ly.n_out, int(off)]
                             for ly, off in zip(layers, offsets[:-1])], np.int64)
        width = max(max(ly.n_in, ly.n_out) for ly in layers)
        self.chunk_cap = cap
        self.acts = aligned_zeros((n_max, int(offsets[-1])), dtype)
        self.dpre = aligned_zeros((n_max, int(offsets[-1])), dtype)
        self.zs = aligned_zeros((n_max, 3 * cap * L), dtype)
        self.tmp = aligned_zeros((n_max, 2 * cap * width), dtype)
        self.klp = np.zeros((n_max, L), np.float64)
        self.sums = np.zeros((n_max, 3), np.float64)
        self.gparts = np.zeros((n_max, layout.size if n_max > 1 else 0), dtype)
        self.iw = engine.blas_int_type()(0)

    def plan(self, B: int) -> Plan:
        """Return the cached views for batch size ``B`` (1 <= B <= capacity, not checked)."""
        p = self._plans.get(B)
        if p is None:
            p = self._plans[B] = Plan(self, B)
        return p

    @property
    def tc_beta(self) -> float:
        """The TC weight the next TC-VAE ``forward_train`` computes the gradients for (NaN for
        other losses).

        Starts at the spec's ``beta``; every ``backward_train`` leaves it at its own beta. A
        ``backward_train`` with another beta than the forward's reruns the estimator's rows
        (serially) before its gradient, so set this to the step's weight before the forward when
        the weight changes per step (``fit`` does). See :mod:`betavae_np._kernels.tc`.
        """
        return float(self.lw[TC_BETA]) if self.lw.shape[0] > TC_BETA else math.nan

    @tc_beta.setter
    def tc_beta(self, beta: float) -> None:
        if self.lw.shape[0] > TC_BETA:
            self.lw[TC_BETA] = beta

    @property
    def mu(self) -> np.ndarray:
        """``mu`` of the last ``forward_train`` batch, (B, L) (a view on the numpy engine)."""
        return self._heads()[:, :self.n_latent]

    @property
    def logvar(self) -> np.ndarray:
        """``logvar`` of the last ``forward_train`` batch, (B, L) (a view on the numpy engine)."""
        return self._heads()[:, self.n_latent:]

    def _heads(self) -> np.ndarray:
        """``[mu | logvar]`` of the last batch, (B, 2L)."""
        if self.engine == "numpy":
            return self.last_plan.outs[(len(self.outs) - 2) // 2]
        B, n, L2 = self.last_X.shape[0], self.last_chunks, 2 * self.n_latent
        k = (self.tab.shape[0] - 2) // 2           # the heads' row in the layer table
        off = int(self.tab[k, 4])
        parts = []
        for c in range(n):
            rows = (c + 1) * B // n - c * B // n
            parts.append(self.acts[c, off:off + rows * L2].reshape(rows, L2))
        return np.concatenate(parts)
