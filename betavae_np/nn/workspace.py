"""Training workspaces: every activation and gradient buffer of one minibatch, allocated once.

A :class:`Workspace` holds buffers for up to ``capacity`` rows. A smaller batch uses the leading
rows; the row-sliced views of each batch size are built once and cached (:meth:`Workspace.plan`),
so a training step creates no arrays.
"""

from __future__ import annotations

import numpy as np

from .params import Layout

__all__ = ["Workspace", "Plan"]


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

    Attributes
    ----------
    capacity : int
        Largest batch size.
    kl_per_dim : ndarray, shape (n_latent,), float64
        Batch-mean KL per latent dimension of the last ``forward_train``.

    Notes
    -----
    ``forward_train`` keeps references to its ``X`` and ``eps`` (no copies) for the following
    ``backward_train``: do not modify them in between.
    """

    def __init__(self, layout: Layout, capacity: int, dtype: np.dtype):
        self.capacity = capacity
        self.dtype = dtype
        layers = (*layout.encoder, layout.heads, *layout.decoder, layout.out)
        L = layout.n_latent
        self.outs = [np.zeros((capacity, ly.n_out), dtype) for ly in layers]
        self.dpres = [np.zeros((capacity, ly.n_out), dtype) for ly in layers[:-1]]
        self.dpres.append(self.outs[-1])
        self.Z = np.zeros((capacity, L), dtype)
        self.S = np.zeros((capacity, L), dtype)
        self.dZ = np.zeros((capacity, L), dtype)
        self.kl_per_dim = np.zeros(L, np.float64)
        self._plans: dict[int, Plan] = {}
        # state of the last forward_train (consumed by backward_train)
        self.last_plan: Plan | None = None
        self.last_X: np.ndarray | None = None
        self.last_eps: np.ndarray | None = None

    def plan(self, B: int) -> Plan:
        """Return the cached views for batch size ``B`` (1 <= B <= capacity, not checked)."""
        p = self._plans.get(B)
        if p is None:
            p = self._plans[B] = Plan(self, B)
        return p

    @property
    def mu(self) -> np.ndarray:
        """``mu`` of the last ``forward_train`` batch, (B, L) view."""
        p = self.last_plan
        return p.outs[self._heads_index()][:, :self.Z.shape[1]]

    @property
    def logvar(self) -> np.ndarray:
        """``logvar`` of the last ``forward_train`` batch, (B, L) view."""
        p = self.last_plan
        return p.outs[self._heads_index()][:, self.Z.shape[1]:]

    def _heads_index(self) -> int:
        return (len(self.outs) - 2) // 2
