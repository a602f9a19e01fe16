"""Say what each latent dimension means: traverse it and watch level, trend, volatility, volume, momentum, body."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..exceptions import ConfigError
from .measures import MEASURES, available_measures, window_measures
from .traversal import parse_dims, traverse

__all__ = ["DimensionReading", "Interpretation", "interpret", "WEAK_EFFECT", "window_layout"]

#: Below this end-to-end change (in training-data standard deviations of the measure) a dimension
#: moves nothing a trader would notice and is reported as "weak".
WEAK_EFFECT = 0.1


@dataclass
class DimensionReading:
    """What moving one latent dimension does to the decoded window.

    Attributes
    ----------
    dim : int
    kl : float or None
        Mean KL of the dimension over the training data (nats), when known.
    active : bool
        False for a collapsed dimension (posterior mean barely varies over the data).
    effects : dict of str to float
        Per measure: value at +span minus value at -span, in training-data sd of that measure.
    profile : dict of str to list of float
        Per measure: its value at each traversal step (normalised units).
    dominant : str
        The measure with the largest absolute effect, ``"inactive"`` or ``"weak"``.
    sign : int
        +1 when raising the dimension raises the dominant measure, -1 when it lowers it, 0 otherwise.
    also : list of (str, int)
        Other measures moved at least half as much as the dominant one (and not weakly), strongest
        first, with their signs: a dimension often moves two things at once.
    """

    dim: int
    kl: float | None
    active: bool
    effects: dict = field(default_factory=dict)
    profile: dict = field(default_factory=dict)
    dominant: str = "weak"
    sign: int = 0
    also: list = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.dominant in ("inactive", "weak"):
            return self.dominant
        parts = [(self.dominant, self.sign), *self.also[:1]]
        return ", ".join(f"{m} {'+' if s > 0 else '-'}" for m, s in parts)

    def to_dict(self) -> dict:
        return {"dim": self.dim, "kl": self.kl, "active": self.active, "dominant": self.dominant,
                "sign": self.sign, "also": [{"measure": m, "sign": s} for m, s in self.also],
                "label": self.label,
                "effects": {k: float(v) for k, v in self.effects.items()},
                "profile": {k: [float(x) for x in v] for k, v in self.profile.items()}}


@dataclass
class Interpretation:
    """The reading of every traversed dimension, plus what was traversed."""

    readings: list
    measures: list
    span: float
    steps: int
    grid: np.ndarray = field(repr=False, default=None)  # (n_dims, steps, n_input)

    def to_dict(self) -> dict:
        return {"span": self.span, "steps": self.steps, "measures": list(self.measures),
                "measure_meaning": {m: MEASURES[m][1] for m in self.measures},
                "dimensions": [r.to_dict() for r in self.readings]}


def window_layout(model, window=None, features=None) -> tuple[int, list[str]]:
    """The (window, features) layout of a model's input, from its windowing record or the arguments."""
    from ..records import records_of

    rec = records_of(model).windowing
    window = int(window if window is not None else (rec.window if rec is not None else 0))
    features = list(features if features is not None else (rec.features if rec is not None else ()))
    if window < 1 or not features or window * len(features) != model.config.n_input:
        raise ConfigError("the model file does not say how its input is laid out; train with bv.train or "
                          "fit(..., windower=w), or pass window= and features= whose product is "
                          f"n_input={model.config.n_input}")
    return window, features


def interpret(model, x, dims=None, span: float = 3.0, steps: int = 7, *, window=None, features=None,
              measure_scale=None, weak: float = WEAK_EFFECT) -> Interpretation:
    """Traverse each latent dimension of a reference window and name what it controls.

    Parameters
    ----------
    model : BetaVAE
        Ideally trained by :func:`betavae_np.train`, whose records hold the window layout
        (``windowing``), latent statistics and measure scales (``window_stats``).
    x : ndarray, shape (n_input,)
        The reference window (normalised).
    dims, span, steps
        As :func:`~betavae_np.analysis.traversal.traverse`.
    window, features : optional
        The input layout when the model has no windowing record.
    measure_scale : dict of str to float, optional
        Training-data sd of each measure; default ``model.records.window_stats.measure_scale``, else 1.
    weak : float
        Effects below this (in sd) are "weak".

    Returns
    -------
    Interpretation

    Notes
    -----
    effect_m = (m(decode(z with z_j = c + span sd_j)) - m(decode(z with z_j = c - span sd_j))) / sd_m.
    A dimension flagged inactive in the training statistics (Var_x mu_j < 0.01) is reported as
    "inactive" whatever its decoder does: the encoder never uses it.
    """
    window, features = window_layout(model, window, features)
    k = model.config.n_latent
    d = parse_dims(dims, k)
    grid = traverse(model, x, d, span, steps)  # (n_dims, steps, n_input)
    from ..records import records_of

    rec = records_of(model)
    if measure_scale is None and rec.window_stats is not None:
        measure_scale = rec.window_stats.measure_scale
    scale = dict(measure_scale or {})
    stats = rec.latent_stats
    names = available_measures(features)
    values = window_measures(grid, window, features)  # name -> (n_dims, steps)
    readings = []
    for i, j in enumerate(d):
        effects = {m: float((values[m][i, -1] - values[m][i, 0]) / (scale.get(m) or 1.0)) for m in names}
        active = bool(stats.active[j]) if stats is not None else True
        kl = float(stats.kl[j]) if stats is not None else None
        ranked = sorted(names, key=lambda m: -abs(effects[m]))
        also = []
        if not active:
            dominant, sign = "inactive", 0
        elif abs(effects[ranked[0]]) < weak:
            dominant, sign = "weak", 0
        else:
            dominant, sign = ranked[0], int(np.sign(effects[ranked[0]]))
            top = abs(effects[dominant])
            also = [(m, int(np.sign(effects[m]))) for m in ranked[1:]
                    if abs(effects[m]) >= max(weak, 0.5 * top)]
        readings.append(DimensionReading(dim=j, kl=kl, active=active, effects=effects,
                                         profile={m: values[m][i].tolist() for m in names},
                                         dominant=dominant, sign=sign, also=also))
    return Interpretation(readings=readings, measures=names, span=float(span), steps=int(steps), grid=grid)
