"""One training run: :class:`TrainConfig` (every choice, defaults in one place) and :func:`train`.

``betavae-np train`` is ``train(TrainConfig(...))`` + :func:`betavae_np.save`; its options are
declared by the fields below (see :func:`cli_fields`). :func:`train_on_candles` is the same run on
candles you already have.

Only the standard library is imported at module level, so the CLI can build its options without
loading NumPy, pandas or Numba.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from .checks import config_error, in_range
from .exceptions import ConfigError

__all__ = ["TrainConfig", "TrainResult", "train", "train_on_candles", "default_epochs", "cli_fields",
           "ACTIVATIONS", "SCHEDULES", "GAPS", "CATEGORIES", "DTYPES", "LOSSES", "RECONS", "ESTIMATORS"]

log = logging.getLogger(__name__)

#: Choices of the text settings (kept equal to nn.config.ACTIVATIONS and schedules.NAMES by a test).
ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu")
SCHEDULES = ("constant", "linear", "cyclical", "warmup", "capacity")
GAPS = ("drop", "fill")
CATEGORIES = ("linear", "spot", "inverse")
LOSSES = ("betavae", "tcvae")
RECONS = ("sse", "gaussian")
ESTIMATORS = ("mws", "mss")
DTYPES = ("float32", "float64")


def _setting(default, help: str, *, lo=None, hi=None, lo_open=False, hi_open=False, integer=False,
             optional=False, choices=None, cli: bool = True, metavar=None, default_text=None):
    """A TrainConfig field: its default, range and help, declared once for the library and the CLI."""
    meta = {"help": help, "lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "integer": integer,
            "optional": optional, "choices": choices, "cli": cli, "metavar": metavar,
            "default_text": default_text}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Every choice of a training run, validated on construction.

    Build one with keywords (``TrainConfig(symbol="ETHUSDT", beta=2)``), change one with
    :func:`dataclasses.replace`, store one with :meth:`to_dict`, and get the one that made a model
    with :meth:`from_model`. Errors are one :class:`~betavae_np.ConfigError` sentence whose
    ``field`` attribute names the setting.
    """

    # -- data: which candles ------------------------------------------------------------------
    symbol: str = _setting("BTCUSDT", "Bybit symbol (the CLI's SYMBOL argument).", cli=False)
    source: str = _setting("auto", "Where candles come from: auto (cache, then Bybit, then the bundled "
                                   "sample), bybit, sample, or a PATH.csv.", metavar="auto|bybit|sample|PATH.csv")
    interval: str | None = _setting(None, "Candle interval (Bybit code or alias: 60, 1h, 4h, D). Default: "
                                          "a CSV's own spacing, else 60.")
    category: str = _setting("linear", "Bybit market category.", choices=CATEGORIES)
    start: str | None = _setting(None, "First candle (UTC). Default: 20,000 candles back (Bybit).")
    end: str | None = _setting(None, "Last candle (UTC). Default: now.")
    # -- windowing: how candles become model inputs -------------------------------------------
    window: int = _setting(32, "Candles per window.", lo=2, integer=True)
    lookback: int = _setting(128, "Candles behind the causal min-max scale of each window (>= window).",
                             lo=2, integer=True)
    gaps: str = _setting("drop", "Missing candles: drop the windows that span them, or fill them with flat "
                                 "zero-volume candles.", choices=GAPS)
    # -- model ----------------------------------------------------------------------------------
    latent: int = _setting(8, "Latent dimensions.", lo=1, integer=True)
    hidden: tuple = _setting((128, 64), "Encoder hidden sizes (the decoder mirrors them); 'none' for no "
                                        "hidden layer.")
    activation: str = _setting("relu", "Hidden-layer activation.", choices=ACTIVATIONS)
    dtype: str = _setting("float32", "Parameter and window dtype.", choices=DTYPES, cli=False)
    # -- loss and beta schedule -----------------------------------------------------------------
    loss: str = _setting("betavae", "Loss: betavae (recon + beta KL) or tcvae (recon + alpha MI + beta TC + "
                                    "gamma dimension-wise KL, Chen et al. 2018).", choices=LOSSES)
    recon: str = _setting("sse", "Reconstruction term: sse (squared error) or gaussian (negative "
                                 "log-likelihood in nats: beta = 1 is the ELBO).", choices=RECONS)
    sigma: float | None = _setting(None, "Fixed observation noise of --recon gaussian. Default: 1.", lo=0,
                                   lo_open=True, optional=True)
    learn_sigma: bool = _setting(False, "--recon gaussian with a noise scale per input feature learned "
                                        "with the weights.")
    alpha: float = _setting(1.0, "tcvae: weight of the index-code mutual information.", lo=0)
    gamma: float = _setting(1.0, "tcvae: weight of the dimension-wise KL.", lo=0)
    estimator: str = _setting("mws", "tcvae: minibatch weighted (mws) or stratified (mss) sampling.",
                              choices=ESTIMATORS)
    beta: float = _setting(0.5, "KL weight (TC weight for tcvae, gamma for capacity); see the README on "
                                "its scale.", lo=0)
    anneal: str = _setting("linear", "Beta schedule, evaluated every optimisation step.", choices=SCHEDULES)
    warmup: float = _setting(0.2, "Fraction of training spent warming beta up.", lo=0, hi=1)
    cycles: int = _setting(4, "Cycles of the cyclical schedule.", lo=1, integer=True)
    capacity: float = _setting(10.0, "Final KL capacity C in nats for --anneal capacity (then --beta is gamma).",
                               lo=0)
    # -- optimisation ---------------------------------------------------------------------------
    epochs: int | None = _setting(None, "Passes over the training windows. Default: about 12,000 steps "
                                        "(12-20 s on 2 cores).", lo=1, integer=True, optional=True)
    batch_size: int = _setting(256, "Windows per optimisation step.", lo=1, integer=True)
    lr: float = _setting(1e-3, "Adam learning rate.", lo=0, lo_open=True)
    # -- split ----------------------------------------------------------------------------------
    val_fraction: float = _setting(0.2, "Latest share of windows held out for validation (never shuffled "
                                        "into training).", lo=0, hi=1, hi_open=True)
    early_stopping: int | None = _setting(None, "Stop when validation loss has not improved for this many "
                                                "epochs; keep the best.", lo=1, integer=True, optional=True,
                                          metavar="EPOCHS")
    # -- randomness -----------------------------------------------------------------------------
    seed: int = _setting(0, "Seeds initialisation, minibatch order and noise: same seed, same model.",
                         lo=0, integer=True)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            m = f.metadata
            value = getattr(self, f.name)
            if m["choices"] is not None:
                if value not in m["choices"]:
                    raise config_error(f"{f.name} must be one of {', '.join(m['choices'])}, got {value!r}.",
                                       f.name)
            elif m["lo"] is not None or m["hi"] is not None:
                value = in_range(f.name, value, m["lo"], m["hi"], integer=m["integer"], lo_open=m["lo_open"],
                                 hi_open=m["hi_open"], optional=m["optional"])
                object.__setattr__(self, f.name, value)
        for name in ("symbol", "source"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise config_error(f"{name} must be a non-empty string, got {getattr(self, name)!r}.", name)
        object.__setattr__(self, "hidden", _hidden(self.hidden))
        if self.lookback < self.window:
            raise config_error(f"lookback={self.lookback} is shorter than window={self.window}; a window's "
                               "scale needs at least the window's own candles.", "lookback")
        if self.early_stopping is not None and self.val_fraction == 0:
            raise config_error(f"early_stopping={self.early_stopping} needs a validation part; set "
                               "val_fraction above 0.", "early_stopping")
        if not isinstance(self.learn_sigma, bool):
            raise config_error(f"learn_sigma must be true or false, got {self.learn_sigma!r}.", "learn_sigma")
        try:
            self.loss_spec()
        except ConfigError as exc:
            raise config_error(str(exc), getattr(exc, "field", None) or "loss") from None
        if self.loss == "tcvae" and self.anneal == "capacity":
            raise config_error("anneal=capacity targets the closed-form KL of loss=betavae; with loss=tcvae "
                               "schedule the TC weight (constant, linear, cyclical, warmup).", "anneal")
        from .data.intervals import normalize_interval

        try:
            if self.interval is not None:
                object.__setattr__(self, "interval", normalize_interval(self.interval))
        except ConfigError as exc:
            raise config_error(str(exc), "interval") from None
        object.__setattr__(self, "start", _time(self.start, "start"))
        object.__setattr__(self, "end", _time(self.end, "end"))
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise config_error(f"start={self.start} is not before end={self.end}.", "end")

    def loss_spec(self):
        """The :mod:`betavae_np.losses` spec of this run (``dataset_size`` is left to :func:`fit`)."""
        from . import losses

        if self.loss == "tcvae":
            return losses.TCVAE(alpha=self.alpha, beta=self.beta, gamma=self.gamma, estimator=self.estimator,
                                recon=self.recon, sigma=self.sigma, learn_sigma=self.learn_sigma)
        return losses.BetaVAE(recon=self.recon, sigma=self.sigma, learn_sigma=self.learn_sigma,
                              beta=self.beta)

    # -- conversion -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON types, every field (``hidden`` as a list)."""
        out = dataclasses.asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, d) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; missing keys take their defaults, unknown keys are refused."""
        if not isinstance(d, dict):
            raise ConfigError(f"a training configuration must be a dict, got {type(d).__name__}.")
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise config_error(f"unknown training setting(s) {', '.join(unknown)}.")
        return cls(**d)

    @classmethod
    def from_model(cls, model) -> "TrainConfig":
        """The configuration that re-creates the run which trained ``model`` (a model or a file path).

        The data are pinned to what the run actually used: the source it ended up with (the bundled
        sample after a fallback, the CSV path) and the first and last candle's open times, and
        ``epochs`` to the number it resolved to, so ``train(TrainConfig.from_model(m))`` gives the
        same parameters bit for bit when the same candles are available. Model files written before
        configurations were recorded get theirs rebuilt from their metadata (``early_stopping``
        was not recorded then and is None).

        Raises
        ------
        ConfigError
            The model records no training run (it was not made by :func:`train` or the CLI).
        """
        from .records import records_of

        if isinstance(model, (str, os.PathLike)):
            from .io import load

            model = load(model)
        rec = records_of(model)
        if rec.run is None:
            raise ConfigError("the model records no training run (it was made by bv.fit, not bv.train or "
                              "betavae-np train), so there is no configuration to re-create.")
        cfg = cls.from_dict(rec.run.config)
        changes = {"epochs": rec.run.epochs}
        prov = rec.provenance
        if prov is not None:
            if prov.interval:   # the interval the candles had (inferred from a CSV when not given)
                changes["interval"] = prov.interval
            if prov.source == "sample":
                changes["source"] = "sample"
            elif prov.source == "csv" and prov.get("path"):
                changes["source"] = prov.get("path")
            if prov.start and prov.end:   # the first and last candle used (inclusive bounds)
                changes.update(start=prov.start, end=prov.end)
        return dataclasses.replace(cfg, **changes)


def _hidden(value) -> tuple:
    if isinstance(value, str):
        text = value.strip().lower()
        value = () if text in ("", "none", "0") else text.split(",")
    try:
        sizes = tuple(value)
    except TypeError:
        raise config_error(f"hidden must be a sequence of layer sizes, got {value!r}.", "hidden") from None
    out = []
    for s in sizes:
        try:
            out.append(in_range("hidden layer size", int(s) if isinstance(s, str) else s, 1, integer=True,
                                field="hidden"))
        except ValueError:
            raise config_error(f"hidden must be layer sizes such as 128,64, got {value!r}.", "hidden") from None
    return tuple(out)


def _time(value, name: str):
    if value is None:
        return None
    from .workflow import _to_utc

    try:
        return _to_utc(value, name).isoformat()
    except ConfigError as exc:
        raise config_error(str(exc), name) from None


def cli_fields() -> list:
    """The TrainConfig fields that are ``betavae-np train`` options, in declaration order."""
    return [f for f in dataclasses.fields(TrainConfig) if f.metadata["cli"]]


@dataclass
class TrainResult:
    """What :func:`train` and :func:`train_on_candles` produced.

    Attributes
    ----------
    model : BetaVAE
        Trained; ``model.records`` (:class:`~betavae_np.records.ModelRecords`) carries the context
        :func:`betavae_np.save` keeps (windowing, provenance, run, history, statistics, split).
    history : History
    windower : Windower
    train, validation : WindowSet
        The time-ordered split (validation is the latest part; None when ``val_fraction`` is 0).
    seconds : float
        Training wall time.
    config : TrainConfig
        The configuration run (``epochs`` as given; the resolved count is ``model.records.run.epochs``).
    warnings : list of str
        Plain-language problems, e.g. no active latent dimension (also logged at info level).
    """

    model: object
    history: object
    windower: object
    train: object
    validation: object
    seconds: float
    config: TrainConfig = None
    warnings: list = field(default_factory=list)

    @property
    def records(self):
        """The model's records."""
        return self.model.records


def default_epochs(n_windows: int, batch_size: int) -> int:
    """Epochs for ~12,000 optimisation steps (5..400): 12-20 s on 2 cores at batch 256, well under a minute."""
    steps_per_epoch = max(1, -(-n_windows // batch_size))
    return int(min(400, max(5, round(12_000 / steps_per_epoch))))


def train(cfg: TrainConfig | None = None, *, base_url: str | None = None, cache_dir=None,
          on_notice: Callable[[str], None] | None = None, on_progress=None, on_data=None, on_start=None,
          on_batch=None, on_epoch=None, **settings) -> TrainResult:
    """Everything ``betavae-np train`` does: candles -> windows -> trained model with its records.

    Parameters
    ----------
    cfg : TrainConfig, optional
        The run (default ``TrainConfig()``); keyword ``settings`` replace single fields
        (``train(beta=2)``).
    base_url, cache_dir : optional
        Where Bybit and the candle cache are (environment, not part of the run).
    on_notice : callable(str), optional
        Fallback notices (e.g. "Bybit could not be reached; using the bundled sample").
    on_progress : callable(fetched, expected), optional
        Fetch progress.
    on_data : callable(DataFrame), optional
        Called with the candles once loaded (the CLI prints its ``data:`` line from it).
    on_start, on_batch, on_epoch : callable, optional
        As :func:`train_on_candles`.

    Returns
    -------
    TrainResult
        ``result.model.records`` holds the provenance, windowing, run, history and statistics.
    """
    from .workflow import load_candles

    cfg = TrainConfig() if cfg is None else cfg
    if settings:
        cfg = dataclasses.replace(cfg, **settings)
    df = load_candles(cfg.symbol, source=cfg.source, interval=cfg.interval, start=cfg.start, end=cfg.end,
                      category=cfg.category, base_url=base_url, cache_dir=cache_dir, on_notice=on_notice,
                      on_progress=on_progress)
    if on_data is not None:
        on_data(df)
    return train_on_candles(df, cfg, on_start=on_start, on_batch=on_batch, on_epoch=on_epoch)


def train_on_candles(df, cfg: TrainConfig | None = None, *, on_batch=None, on_epoch=None,
                     on_start: Callable[[dict], None] | None = None, **settings) -> TrainResult:
    """Window the candles, split by time, train a beta-VAE and record what later use needs.

    Parameters
    ----------
    df : pandas.DataFrame
        Candles (the convention of :mod:`betavae_np.data.frame`), ideally with provenance in
        ``attrs["betavae_np"]``.
    cfg : TrainConfig, optional
        The run's windowing, model, schedule, optimiser, seed and split (its data fields are not
        used: the candles are given). Default ``TrainConfig()``; keyword ``settings`` replace
        single fields, so ``train_on_candles(df, window=16, beta=2)`` works as before.
    on_batch, on_epoch : callable, optional
        Progress callbacks passed to :func:`betavae_np.fit`.
    on_start : callable(dict), optional
        Called once before training with the plan (windows, epochs, steps) for progress bars.

    Returns
    -------
    TrainResult

    Notes
    -----
    ``epochs=None`` resolves to :func:`default_epochs` (12-20 s on 2 cores at batch 256). With
    ``anneal="capacity"``, ``beta`` is gamma and ``capacity`` the final KL target C in nats.
    """
    import numpy as np
    import pandas as pd

    from . import schedules
    from ._version import __version__
    from .analysis.latent import iter_batches, latent_stats
    from .analysis.measures import window_measures
    from .data.frame import validate_candles
    from .data.windows import Windower
    from .exceptions import DataError
    from .nn.adam import Adam
    from .nn.model import BetaVAE, VAEConfig
    from .records import ModelRecords, Provenance, ReferenceWindow, RunRecord, Split, WindowStats, Windowing
    from .fitting import fit

    cfg = TrainConfig() if cfg is None else cfg
    if settings:
        cfg = dataclasses.replace(cfg, **settings)
    prov = dict(df.attrs.get("betavae_np", {}))
    df = validate_candles(df, what=prov.get("symbol", "candles"))
    windower = Windower(window=cfg.window, lookback=cfg.lookback, gaps=cfg.gaps, interval=prov.get("interval"))
    allw = windower.windows(df)
    n = allw.shape[0]
    if cfg.val_fraction > 0:
        train_set, val = allw.split(cfg.val_fraction)
        if val.shape[0] < 1 or train_set.shape[0] < 1:
            raise DataError(f"{n} windows are too few to hold out {cfg.val_fraction:.0%} for validation; "
                            "use more candles or val_fraction=0")
    else:
        train_set, val = allw, None
    vae = VAEConfig(n_input=allw.shape[1], hidden=tuple(cfg.hidden), n_latent=cfg.latent,
                    activation=cfg.activation, dtype=cfg.dtype)
    loss = cfg.loss_spec()
    model = BetaVAE(vae, rng=cfg.seed, loss=loss)
    schedule = schedules.make(cfg.anneal, beta=cfg.beta, warmup=cfg.warmup, cycles=cfg.cycles,
                              c_max=cfg.capacity)
    epochs = cfg.epochs if cfg.epochs is not None else default_epochs(train_set.shape[0], cfg.batch_size)
    if cfg.batch_size > train_set.shape[0]:
        raise config_error(f"batch_size={cfg.batch_size} is larger than the {train_set.shape[0]} training "
                           "windows; use a smaller batch_size or more candles.", "batch_size")
    if on_start is not None:
        on_start({"windows": n, "train": train_set.shape[0], "validation": 0 if val is None else val.shape[0],
                  "epochs": epochs, "steps_per_epoch": -(-train_set.shape[0] // cfg.batch_size)})
    t0 = time.perf_counter()
    history = fit(model, train_set, epochs=epochs, batch_size=cfg.batch_size, optimizer=Adam(lr=cfg.lr),
                  schedule=schedule, rng=cfg.seed, validation=val, on_batch=on_batch, on_epoch=on_epoch,
                  early_stopping=cfg.early_stopping, loss=loss)
    seconds = time.perf_counter() - t0

    stats = latent_stats(model, train_set)
    # one streaming pass (never the whole n x window x features array): measures and the mean window
    blocks, total = [], np.zeros(train_set.shape[1])
    for block in iter_batches(train_set):
        blocks.append(window_measures(block, cfg.window, windower.features))
        total += block.sum(0, dtype=np.float64)
    measures = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    last = allw.shape[0] - 1
    ref = np.empty((1, allw.shape[1]), dtype=np.float32)
    allw.gather(np.array([last], dtype=np.int64), ref)
    prov.update(rows=len(df), start=df.index[0].isoformat(), end=df.index[-1].isoformat())
    model.records = ModelRecords(
        windowing=Windowing.from_windower(windower),
        provenance=Provenance.from_dict(prov),
        run=RunRecord(config=cfg.to_dict(), epochs=epochs, epochs_run=len(history.train_total),
                      schedule=schedule.to_dict(), seconds=seconds,
                      created=pd.Timestamp.now(tz="UTC").isoformat(), package_version=__version__),
        history=history,
        latent_stats=stats,
        window_stats=WindowStats(measure_scale={k: float(np.std(v)) for k, v in measures.items()},
                                 mean_window=tuple((total / train_set.shape[0]).tolist())),
        reference=ReferenceWindow(end_time=allw.end_times[last].isoformat(), window=tuple(ref[0].tolist())),
        split=Split(val_fraction=cfg.val_fraction, windows=n, train=train_set.shape[0],
                    validation=0 if val is None else val.shape[0],
                    train_end=train_set.end_times[-1].isoformat(),
                    validation_start=None if val is None else val.end_times[0].isoformat()),
    )
    warnings = []
    if stats.n_active == 0:
        warnings.append(f"posterior collapse: no latent dimension is active (every posterior mean is nearly "
                        f"constant over the training windows); retrain with a lower beta (now beta={cfg.beta:g}) "
                        f"or a warmup schedule (anneal=warmup)")
    for w in warnings:   # returned to the caller; logged at info so nothing reaches a terminal unasked
        log.info(w)
    return TrainResult(model=model, history=history, windower=windower, train=train_set, validation=val,
                       seconds=seconds, config=cfg, warnings=warnings)
