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

__all__ = ["TrainConfig", "TrainResult", "train", "train_on_candles", "train_on_universe", "default_epochs",
           "cli_fields", "ACTIVATIONS", "SCHEDULES", "GAPS", "CATEGORIES", "DTYPES", "LOSSES", "RECONS", "ESTIMATORS"]

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
REPRESENTATIONS = ("minmax", "returns", "both")   # kept equal to data.windows.REPRESENTATIONS by a test


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
    symbols: tuple | None = _setting(None, "Train one model on many symbols (comma-separated), through the "
                                           "cache and Bybit, or from a --source directory.",
                                     metavar="SYM1,SYM2,...")
    source: str = _setting("auto", "Where candles come from: auto (cache, then Bybit, then the bundled "
                                   "sample), bybit, sample, a PATH.csv, a DIRECTORY of <SYMBOL>_<interval>.csv "
                                   "files (one model on all of them), or synthetic (the synthetic market with "
                                   "known factors, seeded by --seed; no SYMBOL).",
                           metavar="auto|bybit|sample|synthetic|PATH.csv|DIR")
    interval: str | None = _setting(None, "Candle interval (Bybit code or alias: 60, 1h, 4h, D). Default: "
                                          "a CSV's own spacing, else 60.")
    category: str = _setting("linear", "Bybit market category.", choices=CATEGORIES)
    start: str | None = _setting(None, "First candle (UTC). Default: 20,000 candles back (Bybit).")
    end: str | None = _setting(None, "Last candle (UTC). Default: now.")
    # -- windowing: how candles become model inputs -------------------------------------------
    window: int = _setting(32, "Candles per window.", lo=2, integer=True)
    lookback: int = _setting(128, "Candles behind the causal min-max scale of each window (>= window); with "
                                  "--features returns or both also the warm-up of their statistics (> window).",
                             lo=2, integer=True)
    gaps: str = _setting("drop", "Missing candles: drop the windows that span them, or fill them with flat "
                                 "zero-volume candles.", choices=GAPS)
    features: str = _setting("minmax", "Input representation: minmax (rolling min-max OHLCV), returns (log "
                                       "return, log range, body, wicks, log volume, z-scored by causal EWMA "
                                       "statistics, half-life 500 candles, clipped to [-5, 5]) or both.",
                             choices=REPRESENTATIONS)
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
    weighting: str = _setting("proportional", "With many symbols: proportional (every window once per epoch) "
                                              "or equal (every symbol the same share of each epoch).",
                              choices=("proportional", "equal"))
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
        object.__setattr__(self, "symbols", _symbols(self.symbols))
        if (self.symbols is not None and self.source not in ("auto", "bybit", "sample")
                and not os.path.exists(self.source)):
            raise config_error(f"source {self.source!r} does not exist (symbols need auto, bybit or a directory "
                               "of CSV files).", "source")
        if self.symbols is not None and (self.source == "sample" or (
                self.source not in ("auto", "bybit") and not os.path.isdir(self.source))):
            raise config_error(f"symbols need source auto, bybit or a directory of CSV files, not "
                               f"{self.source!r} (one symbol's candles).", "symbols")
        if self.lookback < self.window:
            raise config_error(f"lookback={self.lookback} is shorter than window={self.window}; a window's "
                               "scale needs at least the window's own candles.", "lookback")
        if self.features != "minmax" and self.lookback <= self.window:
            raise config_error(f"features={self.features} needs lookback > window (the warm-up of its statistics), "
                               f"got lookback={self.lookback}, window={self.window}.", "lookback")
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

    @property
    def is_universe(self) -> bool:
        """True when the run trains on many symbols (``symbols`` given, or ``source`` a directory)."""
        return self.symbols is not None or (self.source not in ("auto", "bybit", "sample")
                                            and os.path.isdir(self.source))

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
        if self.symbols is not None:
            out["symbols"] = list(self.symbols)
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


def _symbols(value):
    """None, or the symbols as a tuple of upper-case names (a comma-separated string is split)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    try:
        items = [str(v).strip().upper() for v in value]
    except TypeError:
        raise config_error(f"symbols must be a list of symbols such as BTCUSDT,ETHUSDT, got {value!r}.",
                           "symbols") from None
    items = [v for v in items if v]
    if not items:
        raise config_error("symbols is empty; name at least one symbol.", "symbols")
    seen = set()
    for v in items:
        if v in seen:
            raise config_error(f"symbol {v} is given twice in symbols; give each symbol once.", "symbols")
        seen.add(v)
    return tuple(items)


def _time(value, name: str):
    if value is None:
        return None
    from .sources import _to_utc

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
    on_data : callable(DataFrame or Universe), optional
        Called with the candles once loaded (the CLI prints its ``data:`` line from it); a
        :class:`~betavae_np.data.universe.Universe` when the run trains on many symbols
        (``cfg.symbols``, or ``cfg.source`` a directory: see :func:`train_on_universe`).
    on_start, on_batch, on_epoch : callable, optional
        As :func:`train_on_candles`.

    Returns
    -------
    TrainResult
        ``result.model.records`` holds the provenance, windowing, run, history and statistics.
    """
    from .sources import load_candles

    cfg = TrainConfig() if cfg is None else cfg
    if settings:
        cfg = dataclasses.replace(cfg, **settings)
    if cfg.is_universe:
        from .sources import load_universe_candles

        uni = load_universe_candles(cfg.symbols, source=cfg.source, interval=cfg.interval, start=cfg.start,
                                    end=cfg.end, category=cfg.category, base_url=base_url, cache_dir=cache_dir,
                                    on_notice=on_notice, on_progress=on_progress)
        if on_data is not None:
            on_data(uni)
        return train_on_universe(uni, cfg, on_start=on_start, on_batch=on_batch, on_epoch=on_epoch,
                                 on_notice=on_notice, release=True)
    df = load_candles(cfg.symbol, source=cfg.source, interval=cfg.interval, start=cfg.start, end=cfg.end,
                      category=cfg.category, base_url=base_url, cache_dir=cache_dir, on_notice=on_notice,
                      on_progress=on_progress, seed=cfg.seed)   # seed: the synthetic market's (source="synthetic")
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

    from .data.frame import validate_candles
    from .data.windows import Windower
    from .exceptions import DataError
    from .records import Provenance, ReferenceWindow, Split

    cfg = TrainConfig() if cfg is None else cfg
    if settings:
        cfg = dataclasses.replace(cfg, **settings)
    prov = dict(df.attrs.get("betavae_np", {}))
    df = validate_candles(df, what=prov.get("symbol", "candles"))
    windower = Windower(window=cfg.window, lookback=cfg.lookback, gaps=cfg.gaps, interval=prov.get("interval"),
                        representation=cfg.features)
    allw = windower.windows(df)
    n = allw.shape[0]
    if cfg.val_fraction > 0:
        train_set, val = allw.split(cfg.val_fraction)
        if val.shape[0] < 1 or train_set.shape[0] < 1:
            raise DataError(f"{n} windows are too few to hold out {cfg.val_fraction:.0%} for validation; "
                            "use more candles or val_fraction=0")
    else:
        train_set, val = allw, None
    fitted = _fit_windows(allw, train_set, val, windower, cfg, on_start, on_batch, on_epoch)
    model = fitted.pop("model")
    last = allw.shape[0] - 1
    ref = np.empty((1, allw.shape[1]), dtype=np.float32)
    allw.gather(np.array([last], dtype=np.int64), ref)
    prov.update(rows=len(df), start=df.index[0].isoformat(), end=df.index[-1].isoformat())
    model.records = _records(
        fitted, windower, cfg, provenance=Provenance.from_dict(prov),
        reference=ReferenceWindow(end_time=allw.end_times[last].isoformat(), window=tuple(ref[0].tolist())),
        split=Split(val_fraction=cfg.val_fraction, windows=n, train=train_set.shape[0],
                    validation=0 if val is None else val.shape[0],
                    train_end=train_set.end_times[-1].isoformat(),
                    validation_start=None if val is None else val.end_times[0].isoformat()))
    return _result(model, fitted, windower, train_set, val, cfg)


def _fit_windows(allw, train_set, val, windower, cfg, on_start, on_batch, on_epoch, sampler=None,
                 streaming_measures: bool = False) -> dict:
    """Build the model and train it on ``train_set``; the statistics the records keep."""
    import numpy as np

    from . import schedules
    from .analysis.latent import iter_batches, latent_stats
    from .analysis.measures import window_measures
    from .fitting import fit
    from .nn.adam import Adam
    from .nn.model import BetaVAE, VAEConfig
    from .records import WindowStats

    n = allw.shape[0]
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
    kw = {} if sampler is None else {"sampler": sampler}
    history = fit(model, train_set, epochs=epochs, batch_size=cfg.batch_size, optimizer=Adam(lr=cfg.lr),
                  schedule=schedule, rng=cfg.seed, validation=val, on_batch=on_batch, on_epoch=on_epoch,
                  early_stopping=cfg.early_stopping, loss=loss, **kw)
    seconds = time.perf_counter() - t0

    stats = latent_stats(model, train_set)
    # one streaming pass (never the whole n x window x features array): measures and the mean window
    total = np.zeros(train_set.shape[1])
    if streaming_measures:   # many windows: sums about the first block's means, O(1) memory
        acc = {}
        for block in iter_batches(train_set):
            for k, v in window_measures(block, cfg.window, windower.input_features).items():
                v = v.astype(np.float64)
                if k not in acc:
                    acc[k] = [float(v.mean()), 0, 0.0, 0.0]
                c = v - acc[k][0]
                acc[k][1] += v.size
                acc[k][2] += float(c.sum())
                acc[k][3] += float((c * c).sum())
            total += block.sum(0, dtype=np.float64)
        scale = {k: float(np.sqrt(max(0.0, q / m - (s1 / m) ** 2))) for k, (_, m, s1, q) in acc.items()}
    else:
        blocks = []
        for block in iter_batches(train_set):
            blocks.append(window_measures(block, cfg.window, windower.input_features))
            total += block.sum(0, dtype=np.float64)
        measures = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
        scale = {k: float(np.std(v)) for k, v in measures.items()}
    return {"model": model, "history": history, "epochs": epochs, "schedule": schedule, "seconds": seconds,
            "stats": stats, "window_stats": WindowStats(measure_scale=scale,
                                                        mean_window=tuple((total / train_set.shape[0]).tolist()))}


def _records(fitted: dict, windower, cfg, **more):
    import pandas as pd

    from ._version import __version__
    from .records import ModelRecords, RunRecord, Windowing

    history, schedule = fitted["history"], fitted["schedule"]
    return ModelRecords(
        windowing=Windowing.from_windower(windower),
        run=RunRecord(config=cfg.to_dict(), epochs=fitted["epochs"], epochs_run=len(history.train_total),
                      schedule=schedule.to_dict(), seconds=fitted["seconds"],
                      created=pd.Timestamp.now(tz="UTC").isoformat(), package_version=__version__),
        history=history, latent_stats=fitted["stats"], window_stats=fitted["window_stats"], **more)


def _result(model, fitted, windower, train_set, val, cfg) -> TrainResult:
    stats = fitted["stats"]
    warnings = []
    if stats.n_active == 0:
        warnings.append(f"posterior collapse: no latent dimension is active (every posterior mean is nearly "
                        f"constant over the training windows); retrain with a lower beta (now beta={cfg.beta:g}) "
                        f"or a warmup schedule (anneal=warmup)")
    for w in warnings:   # returned to the caller; logged at info so nothing reaches a terminal unasked
        log.info(w)
    return TrainResult(model=model, history=fitted["history"], windower=windower, train=train_set,
                       validation=val, seconds=fitted["seconds"], config=cfg, warnings=warnings)


def train_on_universe(universe, cfg: TrainConfig | None = None, *, on_batch=None, on_epoch=None,
                      on_start: Callable[[dict], None] | None = None,
                      on_notice: Callable[[str], None] | None = None, release: bool = False,
                      **settings) -> TrainResult:
    """One model on the windows of many symbols, each windowed and normalised on its own.

    Parameters
    ----------
    universe : Universe or mapping of str to pandas.DataFrame
        The candles (:func:`~betavae_np.data.load_universe`); frames are loaded into one first.
    cfg : TrainConfig, optional
        As :func:`train_on_candles`; ``weighting`` says how epochs draw from the symbols.
    on_batch, on_epoch, on_start : callable, optional
        As :func:`train_on_candles`.
    on_notice : callable(str), optional
        Told about symbols skipped because no window fits them.
    release : bool
        Empty ``universe.frames`` once the windows are built, so the candles are held once (in the
        window set's arrays) while training. :func:`train` does; a caller's own frames are kept by
        default.

    Returns
    -------
    TrainResult
        ``train``/``validation`` are :class:`~betavae_np.data.window_set.UniverseWindowSet`. The
        model's records carry ``universe`` (:class:`~betavae_np.records.UniverseRecord`: each
        symbol's provenance, window counts and latest window, the cutoff, the skipped symbols) and a
        summary ``provenance`` with ``source="universe"``.

    Notes
    -----
    Batches gather windows of any symbols with one compiled call; no window array is ever
    materialised. With ``val_fraction`` > 0 one calendar cutoff (:meth:`UniverseWindowSet.cutoff_for`)
    splits every symbol: validation is the same period everywhere, and windows straddling the
    cutoff are purged. ``weighting="proportional"`` shuffles exactly as a single series does;
    ``"equal"`` gives each symbol the same share of each epoch
    (:class:`~betavae_np.data.sampler.EpochSampler`).
    """
    import numpy as np

    from .data.universe import Universe, load_universe
    from .data.windows import Windower
    from .records import Provenance, ReferenceWindow, Split, UniverseRecord

    cfg = TrainConfig() if cfg is None else cfg
    if settings:
        cfg = dataclasses.replace(cfg, **settings)
    if not isinstance(universe, Universe):
        universe = load_universe(universe, interval=cfg.interval, on_notice=on_notice)
    windower = Windower(window=cfg.window, lookback=cfg.lookback, gaps=cfg.gaps, interval=universe.interval,
                        representation=cfg.features)
    allw = universe.windows(windower, on_notice=on_notice)
    skipped = dict(universe.skipped)
    skipped.update({s: "no window fits its candles" for s in universe.symbols if s not in allw.symbols})
    origin = universe.source
    if release:
        universe.frames.clear()
    n = allw.shape[0]
    cutoff = None
    if cfg.val_fraction > 0:
        cutoff = allw.cutoff_for(cfg.val_fraction)
        train_set, val = allw.split_at(cutoff)
    else:
        train_set, val = allw, None
    sampler = train_set.sampler("equal") if cfg.weighting == "equal" else None
    fitted = _fit_windows(allw, train_set, val, windower, cfg, on_start, on_batch, on_epoch, sampler=sampler,
                          streaming_measures=True)
    model = fitted.pop("model")

    # each symbol's latest window (the last of its block), and the latest of all as the reference
    last = np.cumsum(allw.counts) - 1
    ref = allw.gather(last)
    ends = allw.end_times[last]
    refs = {s: ReferenceWindow(end_time=ends[k].isoformat(), window=tuple(ref[k].tolist()))
            for k, s in enumerate(allw.symbols)}
    latest = int(np.argmax(ends.asi8))
    t_counts = train_set.counts
    v_counts = val.counts if val is not None else np.zeros_like(t_counts)
    prov_all = {s: dict(allw.provenance.get(s, {})) for s in allw.symbols}
    starts = [p["start"] for p in prov_all.values() if p.get("start")]
    stops = [p["end"] for p in prov_all.values() if p.get("end")]
    rows = sum(int(p.get("rows", 0)) for p in prov_all.values())
    provenance = Provenance(source="universe", interval=universe.interval, rows=rows,
                            start=min(starts) if starts else None, end=max(stops) if stops else None,
                            extra={"symbols": len(allw.symbols), "origin": origin})
    t_end = train_set.end_times
    model.records = _records(
        fitted, windower, cfg, provenance=provenance, reference=refs[allw.symbols[latest]],
        split=Split(val_fraction=cfg.val_fraction, windows=n, train=train_set.shape[0],
                    validation=0 if val is None else val.shape[0], train_end=t_end.max().isoformat(),
                    validation_start=None if val is None else val.end_times.min().isoformat()),
        universe=UniverseRecord(symbols=tuple(allw.symbols), provenance=prov_all, source=origin,
                                weighting=cfg.weighting, cutoff=None if cutoff is None else cutoff.isoformat(),
                                windows={s: {"train": int(t_counts[k]), "validation": int(v_counts[k])}
                                         for k, s in enumerate(allw.symbols)},
                                skipped=skipped, references=refs))
    return _result(model, fitted, windower, train_set, val, cfg)
