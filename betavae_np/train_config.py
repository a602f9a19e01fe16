"""The training configuration: :class:`TrainConfig` (every choice of a run, defaults in one place).

Each field is declared once with its default, range, choices and help (:func:`_setting`); the
library validates with them and ``betavae-np train`` builds its options from them (see
:func:`cli_fields`). The runs themselves are in :mod:`betavae_np.run`.

Only the standard library is imported at module level, so the CLI can build its options without
loading NumPy, pandas or Numba.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from .checks import config_error, in_range
from .exceptions import ConfigError

__all__ = ["TrainConfig", "cli_fields", "ACTIVATIONS", "SCHEDULES", "GAPS", "CATEGORIES", "DTYPES", "LOSSES",
           "RECONS", "ESTIMATORS", "REPRESENTATIONS"]

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
             optional=False, choices=None, cli: bool = True, metavar=None, default_text=None, flag_off=None):
    """A TrainConfig field: its default, range and help, declared once for the library and the CLI.

    ``flag_off``: a field whose default None means "decided by other settings" is a pair of CLI
    flags, ``--name`` (True) and ``flag_off`` (False)."""
    meta = {"help": help, "lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "integer": integer,
            "optional": optional, "choices": choices, "cli": cli, "metavar": metavar,
            "default_text": default_text, "flag_off": flag_off}
    return field(default=default, metadata=meta)


#: What a setting was before the version that first recorded it: ``features`` (the input
#: representation) and the loss settings came after files that trained min-max windows with the
#: squared-error loss; the defaults changed to ``both``, ``gaussian`` (learned sigma) and beta 4
#: after the README's representation study.
EARLIER_DEFAULTS = {"features": "minmax", "loss": "betavae", "recon": "sse", "sigma": None,
                    "learn_sigma": False, "alpha": 1.0, "gamma": 1.0, "estimator": "mws", "beta": 0.5}


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
    features: str = _setting("both", "Input representation: minmax (rolling min-max OHLCV), returns (log "
                                     "return, log range, body, wicks, log volume, z-scored by causal EWMA "
                                     "statistics, half-life 500 candles, clipped to [-5, 5]) or both (the "
                                     "default, chosen by the README's representation study).",
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
    recon: str = _setting("gaussian", "Reconstruction term: gaussian (negative log-likelihood in nats: "
                                      "beta = 1 is the ELBO) or sse (squared error, the loss of models "
                                      "before the representation study).", choices=RECONS)
    sigma: float | None = _setting(None, "Fixed observation noise of --recon gaussian (then not learned).",
                                   lo=0, lo_open=True, optional=True)
    learn_sigma: bool | None = _setting(None, "--recon gaussian: learn a noise scale per input feature with "
                                              "the weights (the default unless --sigma is given), or fix it "
                                              "(--fixed-sigma: --sigma, else 1).", flag_off="--fixed-sigma")
    alpha: float = _setting(1.0, "tcvae: weight of the index-code mutual information.", lo=0)
    gamma: float = _setting(1.0, "tcvae: weight of the dimension-wise KL.", lo=0)
    estimator: str = _setting("mws", "tcvae: minibatch weighted (mws) or stratified (mss) sampling.",
                              choices=ESTIMATORS)
    beta: float = _setting(4.0, "KL weight (TC weight for tcvae, gamma for capacity); see the README on "
                                "its scale.", lo=0)
    anneal: str = _setting("linear", "Beta schedule, evaluated every optimisation step.", choices=SCHEDULES)
    warmup: float = _setting(0.2, "Fraction of training spent warming beta up.", lo=0, hi=1)
    cycles: int = _setting(4, "Cycles of the cyclical schedule.", lo=1, integer=True)
    capacity: float = _setting(10.0, "Final KL capacity C in nats for --anneal capacity (then --beta is gamma).",
                               lo=0)
    # -- optimisation ---------------------------------------------------------------------------
    epochs: int | None = _setting(None, "Passes over the training windows. Default: about 12,000 steps "
                                        "(20-30 s on 2 cores).", lo=1, integer=True, optional=True)
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
        if self.learn_sigma is not None and not isinstance(self.learn_sigma, bool):
            raise config_error(f"learn_sigma must be true, false or None (learned unless sigma is given), got "
                               f"{self.learn_sigma!r}.", "learn_sigma")
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

    @property
    def sigma_learned(self) -> bool:
        """Whether the run learns the noise: ``learn_sigma``, or when it is None (the default) whenever
        the likelihood is Gaussian and no fixed ``sigma`` is given. None stays None in the field, so
        ``replace(cfg, recon="sse")`` or ``replace(cfg, sigma=0.1)`` decides it again."""
        if self.learn_sigma is not None:
            return self.learn_sigma
        return self.recon == "gaussian" and self.sigma is None

    def loss_spec(self):
        """The :mod:`betavae_np.losses` spec of this run (``dataset_size`` is left to :func:`fit`)."""
        from . import losses

        if self.loss == "tcvae":
            return losses.TCVAE(alpha=self.alpha, beta=self.beta, gamma=self.gamma, estimator=self.estimator,
                                recon=self.recon, sigma=self.sigma, learn_sigma=self.sigma_learned)
        return losses.BetaVAE(recon=self.recon, sigma=self.sigma, learn_sigma=self.sigma_learned,
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
        was not recorded then and is None); a setting its version did not record yet takes the
        value it had then (:data:`EARLIER_DEFAULTS`), not today's default.

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
        recorded = dict(rec.run.config)
        for name, value in EARLIER_DEFAULTS.items():   # fields its version did not record yet
            recorded.setdefault(name, value)
        cfg = cls.from_dict(recorded)
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
    from .data.intervals import to_utc as _to_utc

    try:
        return _to_utc(value, name).isoformat()
    except ConfigError as exc:
        raise config_error(str(exc), name) from None


def cli_fields() -> list:
    """The TrainConfig fields that are ``betavae-np train`` options, in declaration order."""
    return [f for f in dataclasses.fields(TrainConfig) if f.metadata["cli"]]
