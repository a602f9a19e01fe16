"""Loss specs: which likelihood and which KL terms a training step minimises.

A loss is a small frozen dataclass that turns into the integer codes and float weights the
compiled loss stage reads (:mod:`betavae_np._kernels.loss`), so the kernels never take function
arguments and stay cached on disk.

* :class:`BetaVAE` (the default): ``recon + beta * KL(q(z|x) || N(0, I))`` with the closed-form
  KL (Higgins et al. 2017), ``recon`` the squared error (``"sse"``) or a Gaussian negative
  log-likelihood in nats (``"gaussian"``) with a fixed ``sigma`` or a learned log-sigma per input
  feature (then beta = 1 is the ELBO).
* :class:`TCVAE`: ``recon + alpha * MI + beta * TC + gamma * KL_dim`` with the minibatch
  estimators of Chen et al. (2018) (:mod:`betavae_np._kernels.tc`).

The scheduled weight (the KL's beta, or the TC term's beta) is passed per step by :func:`fit`
(or as ``beta`` to :meth:`BetaVAE.loss_and_grad`); a loss's own ``beta`` is what :func:`fit`
uses when no schedule is given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._kernels import loss_codes as K
from .checks import config_error, in_range
from .exceptions import ConfigError

__all__ = ["Loss", "BetaVAE", "TCVAE", "RECONS", "ESTIMATORS", "NAMES", "from_dict", "default"]

#: Reconstruction likelihoods.
RECONS = ("sse", "gaussian")
#: TC estimators: minibatch weighted / stratified sampling.
ESTIMATORS = ("mws", "mss")


def _recon(cls: str, recon, sigma, learn_sigma) -> tuple:
    if recon not in RECONS:
        raise config_error(f"{cls} recon must be one of {', '.join(RECONS)}, got {recon!r}.", "recon")
    learn_sigma = bool(learn_sigma)
    if recon == "sse":
        if sigma is not None:
            raise config_error(f"{cls}: sigma={sigma} is the noise of recon=gaussian; drop it or use "
                               "recon=gaussian.", "sigma")
        if learn_sigma:
            raise config_error(f"{cls}: learn_sigma needs recon=gaussian.", "learn_sigma")
        return None, False
    if learn_sigma:
        if sigma is not None:
            raise config_error(f"{cls}: give either sigma (fixed) or learn_sigma (learned), not both.",
                               "learn_sigma")
        return None, True
    sigma = 1.0 if sigma is None else in_range(f"{cls} sigma", sigma, 0.0, lo_open=True, field="sigma")
    return float(sigma), False


@dataclass(frozen=True, kw_only=True)
class Loss:
    """Base class of the loss specs (see the module notes)."""

    name: ClassVar[str] = ""
    recon: str = "sse"
    sigma: float | None = None
    learn_sigma: bool = False

    def codes(self, ls_off: int = -1, n_data: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The kernels' spec: ``lc`` int64 (4,) and ``lw`` float64 (4,) (:mod:`._kernels.loss`).

        ``ls_off`` is the offset of the learned log-sigma block in the parameter buffer (-1 when
        there is none); ``n_data`` the dataset size when the spec does not fix it (TC-VAE).
        """
        lc = np.full(4, -1, np.int64)
        lw = np.zeros(4, np.float64)
        lc[K.KIND] = K.BETAVAE
        lc[K.RECON] = (K.SSE if self.recon == "sse" else
                       K.GAUSSIAN_LEARNED if self.learn_sigma else K.GAUSSIAN)
        lc[K.ESTIMATOR] = K.MWS
        lc[K.LS_OFF] = ls_off if self.learn_sigma else -1
        lw[K.SIGMA] = 1.0 if self.sigma is None else self.sigma
        lw[K.N_DATA] = 1.0
        return lc, lw

    def to_dict(self) -> dict:
        """``{"name": ..., <fields>}``, JSON-able; :func:`from_dict` inverts it."""
        return {"name": self.name, **dataclasses.asdict(self)}
    def objective(self, recon: float, kl: float, beta: float, terms=None) -> float:
        """The minimised batch loss from the step's terms (``terms`` = (mi, tc, kl_dim))."""
        return recon + beta * kl


@dataclass(frozen=True)
class BetaVAE(Loss):
    """``recon + beta * KL`` (the default, ``BetaVAE()`` = squared error).

    Parameters
    ----------
    recon : {"sse", "gaussian"}
        ``sse``: ``sum_i (x_i - x_hat_i)^2``. ``gaussian``: the negative log-likelihood of
        ``N(x; x_hat, sigma^2)`` in nats, constant included, so ``beta = 1`` is the negative ELBO.
    sigma : float, optional
        Fixed observation noise of ``gaussian`` (> 0, default 1).
    learn_sigma : bool
        ``gaussian`` with a log-sigma per input feature learned with the weights: the model gets
        a parameter ``out.logsigma`` (n_input,) (see :class:`betavae_np.BetaVAE`).
    beta : float
        KL weight used by :func:`fit` when no schedule is given (>= 0).
    """

    beta: float = 1.0
    name: ClassVar[str] = "betavae"

    def __post_init__(self):
        sigma, learn = _recon("BetaVAE", self.recon, self.sigma, self.learn_sigma)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "learn_sigma", learn)
        object.__setattr__(self, "beta", in_range("BetaVAE beta", self.beta, 0.0))


@dataclass(frozen=True)
class TCVAE(Loss):
    """beta-TCVAE: ``recon + alpha * MI + beta * TC + gamma * KL_dim`` (Chen et al. 2018).

    Parameters
    ----------
    alpha, beta, gamma : float
        Weights of the index-code mutual information, the total correlation and the
        dimension-wise KL (>= 0; the paper's beta-TCVAE is ``alpha = gamma = 1``). ``beta`` is
        the weight a schedule drives.
    estimator : {"mws", "mss"}
        Minibatch weighted or stratified sampling for ``log q(z)``.
    dataset_size : int, optional
        N, the number of training samples; :func:`fit` fills it in from its data when None.
    recon, sigma, learn_sigma
        As :class:`BetaVAE`.

    Notes
    -----
    ``MI + TC + KL_dim`` is the Monte Carlo estimate of ``KL(q(z|x) || p(z))`` at the sampled
    ``z``; the estimators' bias is O(1/B) and they need ``dataset_size >= B``. Exact gradients
    w.r.t. every row's ``mu`` and ``logvar`` (each row is a mixture component and an evaluation
    point) are computed in :mod:`betavae_np._kernels.tc` in O(B^2 L) time.
    """

    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 1.0
    estimator: str = "mws"
    dataset_size: int | None = None
    name: ClassVar[str] = "tcvae"

    def __post_init__(self):
        sigma, learn = _recon("TCVAE", self.recon, self.sigma, self.learn_sigma)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "learn_sigma", learn)
        for f in ("alpha", "beta", "gamma"):
            object.__setattr__(self, f, in_range(f"TCVAE {f}", getattr(self, f), 0.0))
        if self.estimator not in ESTIMATORS:
            raise ConfigError(f"TCVAE estimator must be one of {', '.join(ESTIMATORS)}, "
                              f"got {self.estimator!r}.")
        if self.dataset_size is not None:
            object.__setattr__(self, "dataset_size",
                               in_range("TCVAE dataset_size", self.dataset_size, 1, integer=True))

    def codes(self, ls_off: int = -1, n_data: int | None = None):
        lc, lw = super().codes(ls_off)
        n = self.dataset_size if self.dataset_size is not None else n_data
        if n is None:
            raise ConfigError("TCVAE needs dataset_size (the number of training samples, N).")
        lc[K.KIND] = K.TCVAE
        lc[K.ESTIMATOR] = K.MSS if self.estimator == "mss" else K.MWS
        lw[K.N_DATA] = float(n)
        lw[K.ALPHA] = self.alpha
        lw[K.GAMMA] = self.gamma
        return lc, lw

    def objective(self, recon: float, kl: float, beta: float, terms=None) -> float:
        mi, tc, kl_dim = terms
        return recon + self.alpha * mi + beta * tc + self.gamma * kl_dim


_CLASSES = {c.name: c for c in (BetaVAE, TCVAE)}
#: Loss names (the CLI's ``--loss``).
NAMES = tuple(_CLASSES)


def default() -> BetaVAE:
    """The default loss, ``BetaVAE(recon="sse")``."""
    return BetaVAE()


def from_dict(d: dict) -> Loss:
    """Inverse of :meth:`Loss.to_dict`; ConfigError on unknown names or fields."""
    if not isinstance(d, dict) or d.get("name") not in _CLASSES:
        raise ConfigError(f"a loss dict needs a name in {', '.join(NAMES)}, got {d!r}.")
    cls = _CLASSES[d["name"]]
    names = {f.name for f in dataclasses.fields(cls)}
    extra = set(d) - names - {"name"}
    if extra:
        raise ConfigError(f"unknown field(s) {sorted(extra)} for the {d['name']} loss.")
    return cls(**{k: v for k, v in d.items() if k != "name"})


def check_batch(loss: Loss, batch_size: int, n_data: int | None) -> None:
    """Refuse a TC-VAE whose dataset size is below the batch size (the MSS weights need N >= B)."""
    if isinstance(loss, TCVAE):
        n = loss.dataset_size if loss.dataset_size is not None else n_data
        if n is not None and n < batch_size:
            raise ConfigError(f"TCVAE dataset_size {n} is smaller than the batch ({batch_size} rows); "
                              "N is the number of training samples.")


