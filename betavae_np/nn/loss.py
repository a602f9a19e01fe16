"""The loss terms returned by :meth:`BetaVAE.loss` and :meth:`BetaVAE.loss_and_grad`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["LossParts"]


@dataclass(frozen=True)
class LossParts:
    """Batch-mean loss terms: ``total = recon + beta * kl`` (beta-VAE) or
    ``recon + alpha * mi + beta * tc + gamma * dimwise_kl`` (beta-TCVAE).

    Attributes
    ----------
    total, recon, kl : float
        Means over the batch of the per-sample loss, reconstruction and closed-form KL.
    kl_per_dim : ndarray, shape (n_latent,), float64
        Mean KL of each latent dimension (sums to ``kl``).
    mi, tc, dimwise_kl : float or None
        beta-TCVAE only: the minibatch estimates of the index-code mutual information, the total
        correlation and the dimension-wise KL (their sum estimates ``kl`` by Monte Carlo).
    """

    total: float
    recon: float
    kl: float
    kl_per_dim: np.ndarray = field(repr=False)
    mi: float | None = None
    tc: float | None = None
    dimwise_kl: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (the TC-VAE terms only when present)."""
        d = {"total": self.total, "recon": self.recon, "kl": self.kl,
             "kl_per_dim": [float(v) for v in self.kl_per_dim]}
        if self.mi is not None:
            d.update(mi=self.mi, tc=self.tc, dimwise_kl=self.dimwise_kl)
        return d
