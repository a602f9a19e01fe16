"""The loss terms returned by :meth:`BetaVAE.loss` and :meth:`BetaVAE.loss_and_grad`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["LossParts"]


@dataclass(frozen=True)
class LossParts:
    """Batch-mean loss terms: ``total = recon + beta * kl``.

    Attributes
    ----------
    total, recon, kl : float
        Means over the batch of the per-sample loss, reconstruction and KL.
    kl_per_dim : ndarray, shape (n_latent,), float64
        Mean KL of each latent dimension (sums to ``kl``).
    """

    total: float
    recon: float
    kl: float
    kl_per_dim: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return {"total": self.total, "recon": self.recon, "kl": self.kl,
                "kl_per_dim": [float(v) for v in self.kl_per_dim]}
