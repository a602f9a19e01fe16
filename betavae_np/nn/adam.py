"""Adam with bias correction, decoupled weight decay (AdamW) and global gradient-norm clipping."""

from __future__ import annotations

import math

import numpy as np

from .._kernels.adam import adam_step
from ..exceptions import ConfigError, InputError

__all__ = ["Adam"]


def _check(name: str, value: float, lo: float, hi: float | None = None, *, open_lo: bool = False,
           open_hi: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"Adam {name} must be a number, got {value!r}.") from None
    bad = not math.isfinite(x) or (x <= lo if open_lo else x < lo)
    if hi is not None:
        bad = bad or (x >= hi if open_hi else x > hi)
    if bad:
        lo_s = f"{'>' if open_lo else '>='} {lo}"
        hi_s = "" if hi is None else f" and {'<' if open_hi else '<='} {hi}"
        raise ConfigError(f"Adam {name} must be finite, {lo_s}{hi_s}; got {value!r}.")
    return x


class Adam:
    """Adam optimiser over one flat parameter buffer (Kingma & Ba 2015), AdamW-style decay.

    Parameters
    ----------
    lr : float
        Step size, > 0.
    betas : tuple of float
        ``(beta1, beta2)``, each in [0, 1).
    eps : float
        Denominator floor, > 0.
    weight_decay : float
        Decoupled weight decay coefficient (>= 0); parameters shrink by ``lr * weight_decay``
        per step independently of the gradient (Loshchilov & Hutter 2019). Applies to every
        parameter, biases included.
    clip_norm : float or None
        When set (> 0), the gradient is rescaled by ``min(1, clip_norm / ||g||_2)`` before the
        update, ``||g||_2`` being the global norm over the whole buffer.

    Attributes
    ----------
    t : int
        Number of steps taken.
    m, v : ndarray (P,) or None
        Moment estimates, allocated lazily on the first :meth:`step` to match the buffer.
    last_grad_norm : float
        Global gradient norm seen by the last step (before clipping); ``nan`` before any.

    Notes
    -----
    One step (``g`` the possibly clipped gradient, ``t`` the step number from 1)::

        p <- p (1 - lr wd)
        m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
        p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    The whole update is one compiled kernel call (:func:`betavae_np._kernels.adam.adam_step`).
    This matches ``torch.optim.AdamW`` (and ``torch.optim.Adam`` when ``weight_decay == 0``).
    """

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, clip_norm: float | None = None):
        self.lr = _check("lr", lr, 0.0, open_lo=True)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ConfigError(f"Adam betas must be a pair (beta1, beta2), got {betas!r}.") from None
        self.betas = (_check("beta1", b1, 0.0, 1.0, open_hi=True),
                      _check("beta2", b2, 0.0, 1.0, open_hi=True))
        self.eps = _check("eps", eps, 0.0, open_lo=True)
        self.weight_decay = _check("weight_decay", weight_decay, 0.0)
        self.clip_norm = None if clip_norm is None else _check("clip_norm", clip_norm, 0.0, open_lo=True)
        self.t = 0
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None
        self.last_grad_norm = float("nan")

    def __repr__(self) -> str:
        return (f"Adam(lr={self.lr:g}, betas={self.betas}, eps={self.eps:g}, "
                f"weight_decay={self.weight_decay:g}, clip_norm={self.clip_norm})")

    def reset(self) -> None:
        """Forget the moments and the step count (the next step starts afresh)."""
        self.t = 0
        self.m = self.v = None
        self.last_grad_norm = float("nan")

    def _ensure_state(self, params: np.ndarray, grads: np.ndarray) -> None:
        if (params.ndim != 1 or grads.shape != params.shape or grads.dtype != params.dtype
                or not params.flags.c_contiguous or not grads.flags.c_contiguous
                or params.dtype.kind != "f"):
            raise InputError(
                "Adam.step needs params and grads as flat C-contiguous float arrays of the same "
                f"shape and dtype, got {params.shape} {params.dtype} and {grads.shape} {grads.dtype}.")
        if self.m is None or self.m.shape != params.shape or self.m.dtype != params.dtype:
            if self.m is not None and self.t > 0:
                raise InputError(f"Adam state is for {self.m.size} {self.m.dtype} parameters, got "
                                 f"{params.size} {params.dtype}; call reset() to reuse the optimiser.")
            self.m = np.zeros_like(params)
            self.v = np.zeros_like(params)

    def step(self, params: np.ndarray, grads: np.ndarray) -> float:
        """Update ``params`` in place from ``grads``; one compiled call.

        Parameters
        ----------
        params : ndarray (P,)
            Flat parameter buffer (e.g. ``model.params``), modified in place.
        grads : ndarray (P,)
            Gradient buffer of the same shape and dtype; not modified.

        Returns
        -------
        float
            The global gradient norm ``||grads||_2`` (before clipping); non-finite means the
            step produced non-finite parameters (without clipping) or was skipped (with clipping).
        """
        if self.m is None or self.m.shape != params.shape or self.m.dtype != params.dtype:
            self._ensure_state(params, grads)
        self.t += 1
        b1, b2 = self.betas
        norm = adam_step(params, self.m, self.v, grads, self.lr, b1, b2, self.eps, self.weight_decay,
                         -1.0 if self.clip_norm is None else self.clip_norm,
                         1.0 - b1 ** self.t, 1.0 - b2 ** self.t)
        self.last_grad_norm = norm
        return norm

    def state_dict(self) -> dict:
        """Hyper-parameters, step count and copies of the moments (``None`` before the first step)."""
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay, "clip_norm": self.clip_norm, "t": self.t,
                "m": None if self.m is None else self.m.copy(),
                "v": None if self.v is None else self.v.copy()}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (hyper-parameters validated again)."""
        fresh = Adam(state["lr"], tuple(state["betas"]), state["eps"], state["weight_decay"],
                     state["clip_norm"])
        self.lr, self.betas, self.eps = fresh.lr, fresh.betas, fresh.eps
        self.weight_decay, self.clip_norm = fresh.weight_decay, fresh.clip_norm
        self.t = int(state["t"])
        self.m = None if state["m"] is None else np.array(state["m"], copy=True)
        self.v = None if state["v"] is None else np.array(state["v"], copy=True)
