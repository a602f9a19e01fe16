"""Statistics of the encoded data: the aggregate posterior per latent dimension, active units.

These are stored in the model file after training and used by traversals (how far is one standard
deviation of dimension j) and by collapse detection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..exceptions import InputError

__all__ = ["LatentStats", "latent_stats", "iter_batches", "ACTIVE_THRESHOLD"]

#: A dimension is active when the variance over the data of its posterior mean exceeds this
#: (Burda et al. 2016, "Importance Weighted Autoencoders", sec. 5.2: A_u = Cov_x(E_q[u]) > 0.01).
ACTIVE_THRESHOLD = 0.01


@dataclass
class LatentStats:
    """Per-dimension statistics of the posterior means over a data set.

    Attributes
    ----------
    mean, sd : list of float, length n_latent
        Mean and standard deviation over the data of ``mu_j(x)``.
    kl : list of float, length n_latent
        Mean KL(q(z_j|x) || N(0, 1)) over the data, in nats.
    active : list of bool, length n_latent
        ``sd_j**2 > threshold``.
    n : int
        Windows encoded.
    threshold : float
        The active-unit threshold used.
    """

    mean: list = field(default_factory=list)
    sd: list = field(default_factory=list)
    kl: list = field(default_factory=list)
    active: list = field(default_factory=list)
    n: int = 0
    threshold: float = ACTIVE_THRESHOLD

    @property
    def n_active(self) -> int:
        return int(sum(self.active))

    def to_dict(self) -> dict:
        return {"mean": list(map(float, self.mean)), "sd": list(map(float, self.sd)),
                "kl": list(map(float, self.kl)), "active": list(map(bool, self.active)),
                "n": int(self.n), "threshold": float(self.threshold)}

    @classmethod
    def from_dict(cls, d: dict) -> "LatentStats":
        """Inverse of :meth:`to_dict` (InputError on unknown keys)."""
        unknown = sorted(set(d) - {"mean", "sd", "kl", "active", "n", "threshold"})
        if unknown:
            raise InputError(f"latent statistics have unknown key(s) {', '.join(unknown)}.")
        return cls(mean=list(d["mean"]), sd=list(d["sd"]), kl=list(d["kl"]),
                   active=list(d["active"]), n=int(d["n"]), threshold=float(d.get("threshold", ACTIVE_THRESHOLD)))


def iter_batches(X, batch: int = 4096, dtype=np.float32):
    """Yield consecutive row blocks of an array or a window source (``.shape``, ``.gather``).

    Yields
    ------
    ndarray, shape (b, n_input)
    """
    n = X.shape[0]
    if hasattr(X, "gather"):
        buf = np.empty((min(batch, max(n, 1)), X.shape[1]), dtype=dtype)
        for lo in range(0, n, batch):
            rows = np.arange(lo, min(lo + batch, n), dtype=np.int64)
            out = buf[: rows.size]
            X.gather(rows, out)
            yield out
    else:
        for lo in range(0, n, batch):
            yield np.asarray(X[lo: lo + batch])


def latent_stats(model, X, *, threshold: float = ACTIVE_THRESHOLD, batch: int = 4096) -> LatentStats:
    """Encode a data set and summarise each latent dimension.

    Parameters
    ----------
    model : BetaVAE
    X : ndarray of shape (n, n_input), or a window source
        The data, e.g. the training windows.
    threshold : float
        Active-unit threshold on ``Var_x(mu_j(x))``.

    Returns
    -------
    LatentStats

    Notes
    -----
    KL_j(x) = -0.5 (1 + logvar_j - mu_j^2 - exp(logvar_j)), averaged over x. Means and variances are
    accumulated in float64 with Chan et al.'s parallel update, so any data size is fine.
    """
    n_total = X.shape[0]
    if n_total < 1:
        raise InputError("no windows to encode; need at least one")
    k = model.config.n_latent
    count, mean, m2, kl = 0, np.zeros(k), np.zeros(k), np.zeros(k)
    for block in iter_batches(X, batch, dtype=model.dtype):
        mu, logvar = model.encode(block)
        mu = mu.astype(np.float64)
        logvar = logvar.astype(np.float64)
        b = mu.shape[0]
        bmean = mu.mean(0)
        bm2 = ((mu - bmean) ** 2).sum(0)
        delta = bmean - mean
        tot = count + b
        mean = mean + delta * (b / tot)
        m2 = m2 + bm2 + delta ** 2 * (count * b / tot)
        count = tot
        kl += (-0.5 * (1.0 + logvar - mu ** 2 - np.exp(logvar))).sum(0)
    var = m2 / count
    return LatentStats(mean=mean.tolist(), sd=np.sqrt(var).tolist(), kl=(kl / count).tolist(),
                       active=(var > threshold).tolist(), n=int(count), threshold=float(threshold))
