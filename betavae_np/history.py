"""What :func:`~betavae_np.fitting.fit` reports: :class:`History` (per epoch, saved with the model)
and the :class:`BatchInfo` / :class:`EpochInfo` records its callbacks receive."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .exceptions import ConfigError

__all__ = ["History", "BatchInfo", "EpochInfo"]


#: History fields recorded only for beta-TCVAE (left out of :meth:`History.to_dict` when None, so
#: the files of other losses read as before).
_TC_FIELDS = ("train_mi", "train_tc", "train_dimwise_kl", "val_mi", "val_tc", "val_dimwise_kl")


@dataclass
class History:
    """What :func:`fit` did, one entry per completed epoch (JSON-able via :meth:`to_dict`).

    Attributes
    ----------
    train_total, train_recon, train_kl : list of float
        Sample-weighted means over the epoch's training batches (objective, recon, KL).
    val_total, val_recon, val_kl : list of float or None
        The same on the validation set after each epoch; ``None`` without validation.
    beta : list of float
        Schedule value at the last step of each epoch (``gamma`` for Capacity).
    kl_per_dim : list of list of float
        (epochs, n_latent) mean KL of each latent dimension over the epoch's training batches.
    steps : list of int
        Optimisation steps completed by the end of each epoch (cumulative).
    seconds : list of float
        Wall time of each epoch, validation included.
    train_mi, train_tc, train_dimwise_kl : list of float or None
        beta-TCVAE only (else ``None``): sample-weighted epoch means of the minibatch estimates
        of the index-code mutual information, the total correlation and the dimension-wise KL.
    val_mi, val_tc, val_dimwise_kl : list of float or None
        beta-TCVAE with validation only (else ``None``): the same estimates on the validation set
        after each epoch (fixed noise; per chunk of ``batch_size`` rows with the training
        ``dataset_size``, weighted by the chunk sizes). ``val_total`` is
        ``val_recon + alpha * val_mi + beta * val_tc + gamma * val_dimwise_kl``.
    stopped_early : bool
        True when early stopping ended training before ``epochs``.
    best_epoch : int or None
        0-based epoch with the lowest validation objective (``None`` without validation); with
        ``early_stopping`` the model holds that epoch's parameters.
    """

    train_total: list = field(default_factory=list)
    train_recon: list = field(default_factory=list)
    train_kl: list = field(default_factory=list)
    val_total: list | None = None
    val_recon: list | None = None
    val_kl: list | None = None
    beta: list = field(default_factory=list)
    kl_per_dim: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    train_mi: list | None = None
    train_tc: list | None = None
    train_dimwise_kl: list | None = None
    val_mi: list | None = None
    val_tc: list | None = None
    val_dimwise_kl: list | None = None
    stopped_early: bool = False
    best_epoch: int | None = None

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.train_total)

    def to_dict(self) -> dict:
        """A JSON-able dict of every field (the TC-VAE terms only when recorded)."""
        d = asdict(self)
        for k in _TC_FIELDS:
            if d[k] is None:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """Inverse of :meth:`to_dict` (ConfigError on unknown keys)."""
        names = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or set(d) - names:
            raise ConfigError(f"not a History dict: unknown keys {sorted(set(d) - names)}.")
        return cls(**d)


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """Passed to ``on_batch`` after every optimisation step (``step`` is its 0-based index)."""

    epoch: int         # 0-based epoch
    epochs: int        # epochs requested
    step: int          # 0-based index of the step just taken (schedule evaluated here)
    total_steps: int   # epochs * steps per epoch
    loss: float        # batch objective (recon + beta*kl, or the capacity objective)
    recon: float       # batch-mean reconstruction error
    kl: float          # batch-mean KL
    beta: float        # schedule value at this step


@dataclass(frozen=True, slots=True)
class EpochInfo:
    """Passed to ``on_epoch`` after every epoch (training means, validation, per-dim KL)."""

    epoch: int
    epochs: int
    step: int                  # 0-based index of the epoch's last step
    total_steps: int
    loss: float
    recon: float
    kl: float
    beta: float
    val_loss: float | None
    val_recon: float | None
    val_kl: float | None
    kl_per_dim: tuple          # (n_latent,) epoch-mean KL per latent dimension
    seconds: float
