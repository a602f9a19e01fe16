"""Beta schedules: pure functions of the optimisation step, evaluated once per step by :func:`fit`.

Every schedule answers three questions for 0-based ``step`` out of ``total`` optimisation steps:

* ``sch(step, total)`` -> the beta (for :class:`Capacity`, its constant ``gamma``);
* ``sch.kl_weight(step, total, kl)`` -> the weight on the KL gradient for that step;
* ``sch.objective(recon, kl, step, total)`` -> the loss value being minimised.

so that :func:`betavae_np.fit` handles all of them the same way. ``to_dict`` / :func:`from_dict`
and :func:`make` (names ``constant | linear | cyclical | warmup | capacity``) serialise them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from .checks import in_range
from .exceptions import ConfigError

__all__ = ["Schedule", "Constant", "Linear", "Cyclical", "WarmupRamp", "Capacity", "make",
           "from_dict", "NAMES"]


def _num(cls: str, name: str, value, lo: float, hi: float | None = None, *, open_lo=False) -> float:
    """A schedule field checked by the package's one range validator (numeric text is accepted)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    return in_range(f"{cls} {name}", value, lo, hi, lo_open=open_lo)


@dataclass(frozen=True)
class Schedule:
    """Base class: beta as a function of the 0-based optimisation step (see the module doc)."""

    name: ClassVar[str] = ""

    def __call__(self, step: int, total: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def kl_weight(self, step: int, total: int, kl: float) -> float:
        """Weight of the batch-mean KL in the gradient; for beta schedules, beta itself."""
        return self(step, total)

    def objective(self, recon: float, kl: float, step: int, total: int) -> float:
        """The loss being minimised: ``recon + beta(step) * kl``."""
        return recon + self(step, total) * kl

    def to_dict(self) -> dict:
        """``{"name": ..., <fields>}``, JSON-able; :func:`from_dict` inverts it."""
        return {"name": self.name, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class Constant(Schedule):
    """``beta(step) = beta`` (the plain beta-VAE of Higgins et al. 2017).

    Parameters
    ----------
    beta : float
        Weight of the KL term, >= 0.
    """

    beta: float = 1.0
    name: ClassVar[str] = "constant"

    def __post_init__(self):
        object.__setattr__(self, "beta", _num("Constant", "beta", self.beta, 0.0))

    def __call__(self, step: int, total: int) -> float:
        return self.beta


@dataclass(frozen=True)
class Linear(Schedule):
    """Linear warm-up: 0 to ``beta`` over the first ``warmup`` fraction of steps, then ``beta``.

    Parameters
    ----------
    beta : float
        Final weight of the KL term, >= 0.
    warmup : float
        Fraction of the total steps, in [0, 1], spent ramping.

    Notes
    -----
    ``beta(s) = beta * min(1, s / (warmup * total))`` (KL annealing, Bowman et al. 2016).
    """

    beta: float = 1.0
    warmup: float = 0.2
    name: ClassVar[str] = "linear"

    def __post_init__(self):
        object.__setattr__(self, "beta", _num("Linear", "beta", self.beta, 0.0))
        object.__setattr__(self, "warmup", _num("Linear", "warmup", self.warmup, 0.0, 1.0))

    def __call__(self, step: int, total: int) -> float:
        w = self.warmup * total
        if w <= 0.0 or step >= w:
            return self.beta
        return self.beta * (step / w)


@dataclass(frozen=True)
class Cyclical(Schedule):
    """Cyclical annealing (Fu et al. 2019): ``cycles`` ramps 0 -> beta, each followed by a hold.

    Parameters
    ----------
    beta : float
        Peak weight, >= 0.
    cycles : int
        Number of cycles over the whole run, >= 1.
    ratio : float
        Fraction of each cycle spent ramping, in (0, 1].

    Notes
    -----
    With ``tau = (s mod (T/M)) / (T/M)`` (``T`` total steps, ``M`` cycles),
    ``beta(s) = beta * tau / ratio`` while ``tau < ratio``, else ``beta``
    (Fu et al. 2019, "Cyclical Annealing Schedule", eq. 5).
    """

    beta: float = 1.0
    cycles: int = 4
    ratio: float = 0.5
    name: ClassVar[str] = "cyclical"

    def __post_init__(self):
        object.__setattr__(self, "beta", _num("Cyclical", "beta", self.beta, 0.0))
        object.__setattr__(self, "cycles", in_range("Cyclical cycles", self.cycles, 1, integer=True))
        object.__setattr__(self, "ratio", _num("Cyclical", "ratio", self.ratio, 0.0, 1.0, open_lo=True))

    def __call__(self, step: int, total: int) -> float:
        tau = (step * self.cycles / total) % 1.0 if total > 0 else 1.0
        if tau >= self.ratio:
            return self.beta
        return self.beta * (tau / self.ratio)


@dataclass(frozen=True)
class WarmupRamp(Schedule):
    """0 for the first ``warmup`` fraction of steps, then a linear ramp reaching ``beta`` at the last step.

    Parameters
    ----------
    beta : float
        Weight at the final step, >= 0.
    warmup : float
        Fraction of the total steps, in [0, 1], with beta = 0 (pure autoencoder).

    Notes
    -----
    With ``w = warmup * T`` and last step ``T - 1``: ``beta(s) = 0`` for ``s < w``, else
    ``beta * (s - w) / (T - 1 - w)`` (``beta`` when ``T - 1 <= w``).
    """

    beta: float = 1.0
    warmup: float = 0.2
    name: ClassVar[str] = "warmup"

    def __post_init__(self):
        object.__setattr__(self, "beta", _num("WarmupRamp", "beta", self.beta, 0.0))
        object.__setattr__(self, "warmup", _num("WarmupRamp", "warmup", self.warmup, 0.0, 1.0))

    def __call__(self, step: int, total: int) -> float:
        w = self.warmup * total
        if step < w:
            return 0.0
        last = total - 1
        if last <= w:
            return self.beta
        return self.beta * min(1.0, (step - w) / (last - w))


@dataclass(frozen=True)
class Capacity(Schedule):
    """Controlled capacity increase (Burgess et al. 2018): ``loss = recon + gamma * |KL - C(s)|``.

    Parameters
    ----------
    gamma : float
        Weight of the capacity penalty, >= 0.
    c_max : float
        Final KL capacity in nats, >= 0.
    ramp : float
        Fraction of the total steps, in [0, 1], over which ``C`` rises linearly from 0 to
        ``c_max`` (then held).

    Notes
    -----
    ``C(s) = c_max * min(1, s / (ramp * T))``; the KL gradient weight is
    ``gamma * sign(KL - C(s))`` (the subgradient of ``gamma |KL - C|``), so the encoder is pushed
    towards using exactly ``C`` nats (Burgess et al. 2018, "Understanding disentangling in
    beta-VAE", eq. 8). ``sch(step, total)`` returns ``gamma``.
    """

    gamma: float = 100.0
    c_max: float = 25.0
    ramp: float = 1.0
    name: ClassVar[str] = "capacity"

    def __post_init__(self):
        object.__setattr__(self, "gamma", _num("Capacity", "gamma", self.gamma, 0.0))
        object.__setattr__(self, "c_max", _num("Capacity", "c_max", self.c_max, 0.0))
        object.__setattr__(self, "ramp", _num("Capacity", "ramp", self.ramp, 0.0, 1.0))

    def capacity(self, step: int, total: int) -> float:
        """The target KL ``C(step)`` in nats."""
        r = self.ramp * total
        if r <= 0.0 or step >= r:
            return self.c_max
        return self.c_max * (step / r)

    def __call__(self, step: int, total: int) -> float:
        return self.gamma

    def kl_weight(self, step: int, total: int, kl: float) -> float:
        d = kl - self.capacity(step, total)
        return self.gamma if d > 0.0 else (-self.gamma if d < 0.0 else 0.0)

    def objective(self, recon: float, kl: float, step: int, total: int) -> float:
        return recon + self.gamma * abs(kl - self.capacity(step, total))


_CLASSES: dict[str, type[Schedule]] = {c.name: c for c in (Constant, Linear, Cyclical, WarmupRamp,
                                                              Capacity)}
#: The schedule names accepted by :func:`make` and the CLI's ``--anneal``.
NAMES = tuple(_CLASSES)


def make(name: str, **kwargs) -> Schedule:
    """Build a schedule by name, ignoring keyword arguments it does not take.

    Parameters
    ----------
    name : str
        One of ``constant``, ``linear``, ``cyclical``, ``warmup``, ``capacity``.
    **kwargs
        Fields of that schedule (``beta``, ``warmup``, ``cycles``, ``ratio``, ``gamma``,
        ``c_max``, ``ramp``); those it has no use for are ignored so that a CLI can pass its
        ``--beta`` and ``--warmup`` to any of them. For ``capacity``, ``beta`` is used as
        ``gamma`` when ``gamma`` is not given.

    Returns
    -------
    Schedule
    """
    cls = _CLASSES.get(str(name).lower())
    if cls is None:
        raise ConfigError(f"unknown beta schedule {name!r}; choose one of {', '.join(NAMES)}.")
    if cls is Capacity and "gamma" not in kwargs and "beta" in kwargs:
        kwargs = {**kwargs, "gamma": kwargs["beta"]}
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in kwargs.items() if k in fields})


def from_dict(d: dict) -> Schedule:
    """Inverse of ``Schedule.to_dict``; ConfigError on unknown names or fields."""
    if not isinstance(d, dict) or "name" not in d:
        raise ConfigError(f"a schedule dict needs a 'name' key, got {d!r}.")
    cls = _CLASSES.get(d["name"])
    if cls is None:
        raise ConfigError(f"unknown beta schedule {d['name']!r}; choose one of {', '.join(NAMES)}.")
    fields = {f.name for f in dataclasses.fields(cls)}
    extra = set(d) - fields - {"name"}
    if extra:
        raise ConfigError(f"unknown field(s) {sorted(extra)} for the {d['name']} schedule.")
    return cls(**{k: v for k, v in d.items() if k != "name"})
