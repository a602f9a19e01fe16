"""Say what each latent dimension means: traverse it on many windows and watch level, trend, volatility,
volume, momentum, body; name it only by the effects that hold on most of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..checks import in_range
from ..exceptions import ConfigError, InputError
from .measures import MEASURES, available_measures, window_measures
from .traversal import CHUNK_ROWS, parse_dims, traverse, traverse_windows

__all__ = ["DimensionReading", "Interpretation", "interpret", "spread_rows", "window_layout", "WEAK_EFFECT",
           "AGREEMENT", "DEFAULT_WINDOWS"]

#: Below this change (in training-data standard deviations of the measure, from -span to +span) a
#: dimension moves nothing a trader would notice: "weak" when no measure moves this much on an
#: average window, and a measure names a dimension only when its mean effect reaches it.
WEAK_EFFECT = 0.1

#: A measure names a dimension only when at least this share of the windows read agrees with the
#: sign of its mean effect (and the mean is not weak); a dimension with no such measure is "mixed".
AGREEMENT = 0.8

#: Windows read by default when a :class:`~betavae_np.data.windows.WindowSet` is interpreted.
DEFAULT_WINDOWS = 256


@dataclass
class DimensionReading:
    """What moving one latent dimension does to the decoded windows.

    An effect is a measure's value at +span minus its value at -span, in training-data sd of that
    measure, read on each window; the fields below summarise it over the windows read (on one
    window: that window's effect, ``spread`` 0).

    Attributes
    ----------
    dim : int
    kl : float or None
        Mean KL of the dimension over the training data (nats), when known.
    active : bool
        False for a collapsed dimension (posterior mean barely varies over the data).
    effects : dict of str to float
        Per measure: the mean effect over the windows.
    spread : dict of str to float
        Per measure: the standard deviation of the effect over the windows.
    agreement : dict of str to float
        Per measure: the share of windows whose effect has the sign of the mean effect (0 when the
        mean is exactly 0).
    size : dict of str to float
        Per measure: the mean absolute effect (how much the dimension moves it, whatever the sign).
    profile : dict of str to list of float
        Per measure: its mean value at each traversal step (normalised window units).
    change, change_spread : dict of str to list of float
        Per measure and step: the mean and sd over windows of the measure minus its value on the
        window's own reconstruction, in training sd (the plot's curves and bands).
    dominant : str
        The consistent measure with the largest mean effect, or ``"inactive"``, ``"weak"`` or
        ``"mixed"`` (it moves windows, but no measure's direction holds on most of them).
    sign : int
        +1 when raising the dimension raises the dominant measure, -1 when it lowers it, 0 otherwise.
    also : list of (str, int)
        Other consistent measures moved at least half as much as the dominant one (and not weakly),
        strongest first, with their signs: a dimension often moves two things at once.
    mixed : list of str
        Measures moved at least :data:`WEAK_EFFECT` on an average window (``size``) whose direction
        does not hold on most windows, largest first.
    n_windows : int
        Windows read.
    """

    dim: int
    kl: float | None
    active: bool
    effects: dict = field(default_factory=dict)
    profile: dict = field(default_factory=dict)
    dominant: str = "weak"
    sign: int = 0
    also: list = field(default_factory=list)
    spread: dict = field(default_factory=dict)
    agreement: dict = field(default_factory=dict)
    size: dict = field(default_factory=dict)
    change: dict = field(default_factory=dict)
    change_spread: dict = field(default_factory=dict)
    mixed: list = field(default_factory=list)
    n_windows: int = 1

    @property
    def label(self) -> str:
        """``"trend -, momentum -"``, ``"level -; mixed: body"``, ``"mixed: body"``, ``"weak"``, ``"inactive"``.

        The consistent measures (at most two); then, after ``mixed:``, the measures that move the
        windows at least half as much (and not weakly) but in no consistent direction.
        """
        if self.dominant in ("inactive", "weak"):
            return self.dominant
        if self.dominant == "mixed":
            ref, named = max(self.size.values(), default=0.0), ""
        else:
            ref = abs(self.effects[self.dominant])
            named = ", ".join(f"{m} {'+' if s > 0 else '-'}" for m, s in [(self.dominant, self.sign), *self.also[:1]])
        loud = [m for m in self.mixed if self.size[m] >= 0.5 * ref][:2]
        if not loud:
            return named or "mixed"
        return f"{named}; mixed: {', '.join(loud)}" if named else f"mixed: {', '.join(loud)}"

    def to_dict(self) -> dict:
        floats = lambda d: {k: float(v) for k, v in d.items()}  # noqa: E731
        lists = lambda d: {k: [float(x) for x in v] for k, v in d.items()}  # noqa: E731
        return {"dim": self.dim, "kl": self.kl, "active": self.active, "dominant": self.dominant,
                "sign": self.sign, "also": [{"measure": m, "sign": s} for m, s in self.also],
                "mixed": list(self.mixed), "label": self.label, "n_windows": self.n_windows,
                "effects": floats(self.effects), "spread": floats(self.spread),
                "agreement": floats(self.agreement), "size": floats(self.size),
                "profile": lists(self.profile), "change": lists(self.change),
                "change_spread": lists(self.change_spread)}


@dataclass
class Interpretation:
    """The reading of every traversed dimension, plus what was traversed and on how many windows."""

    readings: list
    measures: list
    span: float
    steps: int
    grid: np.ndarray = field(repr=False, default=None)  # (n_dims, steps, n_input), one window only
    n_windows: int = 1
    agreement: float = AGREEMENT                        # the naming thresholds used
    weak: float = WEAK_EFFECT
    rows: np.ndarray = field(repr=False, default=None)  # (n_windows,) rows of the input read
    window_effects: np.ndarray = field(repr=False, default=None)  # (n_windows, n_dims, n_measures)

    def to_dict(self) -> dict:
        return {"span": self.span, "steps": self.steps, "n_windows": self.n_windows,
                "thresholds": {"agreement": self.agreement, "weak": self.weak},
                "measures": list(self.measures),
                "measure_meaning": {m: MEASURES[m][1] for m in self.measures},
                "dimensions": [r.to_dict() for r in self.readings]}


def window_layout(model, window=None, features=None) -> tuple[int, list[str]]:
    """The (window, features) layout of a model's input, from its windowing record or the arguments."""
    from ..records import records_of

    rec = records_of(model).windowing
    window = int(window if window is not None else (rec.window if rec is not None else 0))
    features = list(features if features is not None else (rec.input_features if rec is not None else ()))
    if window < 1 or not features or window * len(features) != model.config.n_input:
        raise ConfigError("the model file does not say how its input is laid out; train with bv.train or "
                          "fit(..., windower=w), or pass window= and features= whose product is "
                          f"n_input={model.config.n_input}")
    return window, features


def spread_rows(n_total: int, n: int | None) -> np.ndarray:
    """``n`` row indices spread evenly over ``0..n_total-1`` (first and last included; all when fewer).

    Returns
    -------
    ndarray of int64, shape (min(n, n_total),), increasing
    """
    if n is None or n >= n_total:
        return np.arange(n_total, dtype=np.int64)
    n = in_range("n_windows", n, 1, integer=True)
    if n == 1:
        return np.array([n_total - 1], dtype=np.int64)  # one window: the latest, as the single reading
    return np.round(np.linspace(0, n_total - 1, n)).astype(np.int64)


def _windows(x, n_windows, dtype):
    """The windows to read, (n, n_input), their rows in ``x``, and whether ``x`` was one window."""
    if hasattr(x, "gather") and hasattr(x, "shape"):  # a WindowSet: spread DEFAULT_WINDOWS over it
        rows = spread_rows(x.shape[0], DEFAULT_WINDOWS if n_windows is None else n_windows)
        out = np.empty((rows.size, x.shape[1]), dtype=np.float64 if dtype == np.float64 else np.float32)
        return x.gather(rows, out), rows, False
    X = np.asarray(x)
    if X.ndim == 1:
        return X, np.zeros(1, dtype=np.int64), True
    if X.ndim != 2:
        raise InputError(f"windows have shape {X.shape}; expected (n_input,) or (n, n_input)")
    rows = spread_rows(X.shape[0], n_windows)
    return (X if rows.size == X.shape[0] else X[rows]), rows, False


def interpret(model, x, dims=None, span: float = 3.0, steps: int = 7, *, window=None, features=None,
              measure_scale=None, weak: float = WEAK_EFFECT, agreement: float = AGREEMENT,
              n_windows: int | None = None, chunk_rows: int = CHUNK_ROWS) -> Interpretation:
    """Traverse each latent dimension on one or many windows and name what it controls.

    Parameters
    ----------
    model : BetaVAE
        Ideally trained by :func:`betavae_np.train`, whose records hold the window layout
        (``windowing``), latent statistics and measure scales (``window_stats``).
    x : ndarray, shape (n_input,) or (n, n_input), or WindowSet
        One reference window (normalised), or many: every row of an array (or ``n_windows`` of them
        spread evenly), or ``n_windows`` (default :data:`DEFAULT_WINDOWS`) spread evenly over a
        :class:`~betavae_np.data.windows.WindowSet` such as ``result.train``.
    dims, span, steps
        As :func:`~betavae_np.analysis.traversal.traverse`.
    window, features : optional
        The input layout when the model has no windowing record.
    measure_scale : dict of str to float, optional
        Training-data sd of each measure; default ``model.records.window_stats.measure_scale``, else 1.
    weak : float
        Effects below this (in sd) are "weak".
    agreement : float in (0.5, 1]
        Share of windows that must agree in sign for a measure to name a dimension.
    n_windows : int, optional
        How many windows to read from ``x`` (evenly spread, the first and last included).
    chunk_rows : int
        Latent codes per decoder call (see :func:`~betavae_np.analysis.traversal.traverse_windows`).

    Returns
    -------
    Interpretation
        ``grid`` (the decoded traversal) only for a single window; ``window_effects`` always.

    Notes
    -----
    On window w, effect_{w,m} = (m(decode(z_w with z_j = mu_j(w) + span sd_j)) - m(decode(z_w with
    z_j = mu_j(w) - span sd_j))) / sd_m, with z_w = mu(w) (Higgins et al. 2017 read a traversal on one
    input; a decoder is not linear, so the reading depends on the window). Reported per measure: the
    mean effect over windows, its sd, the share of windows with e_{w,m} * mean > 0, and mean |e|.
    Naming: "inactive" when the training statistics flag the dimension (Var_x mu_j < 0.01: the
    encoder never uses it); "weak" when no measure's mean |effect| reaches ``weak``; otherwise a
    measure is consistent when its agreement is at least ``agreement`` and its |mean| at least
    ``weak``, the dimension is named by its consistent measures (largest |mean| first), and called
    "mixed" when it has none. On one window this is the single-window reading: the measure that
    moves most, with its sign.
    """
    window, features = window_layout(model, window, features)
    k = model.config.n_latent
    d = parse_dims(dims, k)
    agreement = in_range("agreement", agreement, 0.5, 1, lo_open=True)
    X, rows, single = _windows(x, n_windows, model.dtype)
    from ..records import records_of

    rec = records_of(model)
    if measure_scale is None and rec.window_stats is not None:
        measure_scale = rec.window_stats.measure_scale
    scale = dict(measure_scale or {})
    names = available_measures(features)
    grid = None
    if single:
        grid = traverse(model, X, d, span, steps)  # (n_dims, steps, n_input)
        mu, _ = model.encode(X[None, :])
        vals = window_measures(grid[None], window, features)  # name -> (1, n_dims, steps)
        rvals = window_measures(model.decode(mu), window, features)  # name -> (1,)
    else:
        if X.shape[0] == 0:
            raise InputError("no window to read; give at least one")
        chunks = [(window_measures(g, window, features), window_measures(r, window, features))
                  for _, _, g, r in traverse_windows(model, X, d, span, steps, chunk_rows=chunk_rows)]
        vals = {m: np.concatenate([c[0][m] for c in chunks]) for m in names}   # (n, n_dims, steps)
        rvals = {m: np.concatenate([c[1][m] for c in chunks]) for m in names}  # (n,)
    sd_m = np.array([scale.get(m) or 1.0 for m in names])
    V = np.stack([vals[m] for m in names], axis=-1) / sd_m     # (n, n_dims, steps, n_measures), in sd
    R = np.stack([rvals[m] for m in names], axis=-1) / sd_m    # (n, n_measures)
    E = V[:, :, -1, :] - V[:, :, 0, :]                          # (n, n_dims, n_measures)
    mean = E.mean(0)                                            # (n_dims, n_measures)
    spread = E.std(0)
    agree = (E * mean[None] > 0).mean(0)
    size = np.abs(E).mean(0)
    C = V - R[:, None, None, :]                                 # change from the reconstruction
    C_mean, C_sd = C.mean(0), C.std(0)                          # (n_dims, steps, n_measures)
    raw_profile = V.mean(0) * sd_m                              # normalised units
    stats = rec.latent_stats
    readings = []
    for i, j in enumerate(d):
        active = bool(stats.active[j]) if stats is not None else True
        kl = float(stats.kl[j]) if stats is not None else None
        dominant, sign, also, mixed = _name(names, mean[i], agree[i], size[i], active, weak, agreement)
        col = lambda A: {m: A[..., q].tolist() for q, m in enumerate(names)}  # noqa: E731
        readings.append(DimensionReading(
            dim=j, kl=kl, active=active, effects=col(mean[i]), spread=col(spread[i]), agreement=col(agree[i]),
            size=col(size[i]), profile=col(raw_profile[i]), change=col(C_mean[i]), change_spread=col(C_sd[i]),
            dominant=dominant, sign=sign, also=also, mixed=mixed, n_windows=int(E.shape[0])))
    return Interpretation(readings=readings, measures=names, span=float(span), steps=int(steps), grid=grid,
                          n_windows=int(E.shape[0]), agreement=float(agreement), weak=float(weak), rows=rows,
                          window_effects=E)


def _name(names, mean, agree, size, active, weak, agreement):
    """(dominant, sign, also, mixed) of one dimension from its per-measure mean, agreement and size."""
    mixed = [names[q] for q in np.argsort(-size, kind="stable")
             if size[q] >= weak and not (agree[q] >= agreement and abs(mean[q]) >= weak)]
    if not active:
        return "inactive", 0, [], []
    if size.max() < weak:
        return "weak", 0, [], []
    good = [q for q in np.argsort(-np.abs(mean), kind="stable") if agree[q] >= agreement and abs(mean[q]) >= weak]
    if not good:
        return "mixed", 0, [], mixed
    top = abs(mean[good[0]])
    also = [(names[q], int(np.sign(mean[q]))) for q in good[1:] if abs(mean[q]) >= max(weak, 0.5 * top)]
    return names[good[0]], int(np.sign(mean[good[0]])), also, mixed
