"""Typed records a trained model carries: how its windows are made, where its data came from, how it
was trained, and what the analysis needs (latent statistics, window statistics, reference window, split).

:func:`betavae_np.run.train` fills them, :mod:`betavae_np.io` saves and loads them (file format
version 2; version-1 files, which kept them in ``metadata``, are read by
:meth:`ModelRecords.from_legacy`), and the analysis functions and CLI commands read them through
:func:`records_of`. Every record has ``to_dict`` / ``from_dict`` (plain JSON types) and refuses
unknown keys.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .analysis.latent import LatentStats
from .exceptions import ConfigError, InputError
from .history import History

__all__ = ["Windowing", "Provenance", "RunRecord", "WindowStats", "ReferenceWindow", "Split", "UniverseRecord",
           "ModelRecords", "records_of", "LatentStats", "History"]


def _check_keys(cls, d, what: str) -> dict:
    if not isinstance(d, dict):
        raise ConfigError(f"{what} must be a JSON object, got {type(d).__name__}.")
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigError(f"{what} has unknown key(s) {', '.join(map(str, unknown))}.")
    return d


@dataclass(frozen=True)
class Windowing:
    """How candles become model inputs: the :class:`~betavae_np.data.Windower` settings."""

    window: int                      # candles per window
    features: tuple                  # feature names in input order (idx = t * n_features + f)
    lookback: int                    # candles behind each window's causal min-max scale
    norm: str = "rolling"            # "rolling" (causal min-max) or "none"
    log_volume: bool = True          # volume enters as log1p(volume)
    gaps: str = "drop"               # "drop" windows spanning gaps, or "fill" them with flat candles
    interval: str | int | None = None  # candle length (Bybit code, or ms), None = inferred per frame
    representation: str = "minmax"   # "minmax", "returns" or "both" (files before it: minmax)

    @property
    def input_features(self) -> tuple:
        """Per-candle model inputs in order (:attr:`Windower.input_features <betavae_np.data.Windower.input_features>`)."""
        from .data.features import RETURN_FEATURES

        if self.representation == "minmax":
            return tuple(self.features)
        return (tuple(self.features) if self.representation == "both" else ()) + RETURN_FEATURES

    @property
    def n_input(self) -> int:
        return self.window * len(self.input_features)

    @classmethod
    def from_windower(cls, w) -> "Windowing":
        return cls.from_dict(w.to_dict())

    def windower(self):
        """A fresh :class:`~betavae_np.data.Windower` with these settings."""
        from .data.windows import Windower

        return Windower.from_dict(self.to_dict())

    def to_dict(self) -> dict:
        return {"window": self.window, "features": list(self.features), "norm": self.norm,
                "lookback": self.lookback, "log_volume": self.log_volume, "gaps": self.gaps,
                "interval": self.interval,
                **({} if self.representation == "minmax" else {"representation": self.representation})}

    @classmethod
    def from_dict(cls, d) -> "Windowing":
        d = dict(_check_keys(cls, d, "windowing"))
        d["features"] = tuple(d.get("features", ()))
        if "window" not in d or "lookback" not in d or not d["features"]:
            raise ConfigError("windowing needs window, lookback and features.")
        return cls(**d)


@dataclass(frozen=True)
class Provenance:
    """Where the candles came from, as the data layer described them (``df.attrs["betavae_np"]``).

    The fields every source has are typed; source-specific ones (``path``, ``exchange``, ``pair``,
    ``category``, ``requested_symbol``, ``fallback_reason``, ``gaps``...) stay in ``extra``.
    """

    source: str | None = None        # "bybit", "bybit-cache", "sample" or "csv"
    symbol: str | None = None        # the data's own symbol (BTC-USD for the sample)
    interval: str | None = None      # candle interval code
    rows: int | None = None          # candles used
    start: str | None = None         # first candle's open time (ISO, UTC)
    end: str | None = None           # last candle's open time (ISO, UTC)
    extra: dict = field(default_factory=dict)  # everything else the source reported

    _TYPED = ("source", "symbol", "interval", "rows", "start", "end")

    def get(self, key: str, default=None):
        """A typed field or an ``extra`` entry by name (``prov.get("path")``)."""
        if key in self._TYPED:
            value = getattr(self, key)
            return default if value is None else value
        return self.extra.get(key, default)

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self._TYPED if getattr(self, k) is not None}
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d) -> "Provenance":
        if not isinstance(d, dict):
            raise ConfigError(f"provenance must be a JSON object, got {type(d).__name__}.")
        typed = {k: d[k] for k in cls._TYPED if k in d}
        return cls(**typed, extra={k: v for k, v in d.items() if k not in cls._TYPED})


@dataclass(frozen=True)
class RunRecord:
    """How the model was trained: the configuration and what it resolved to."""

    config: dict                     # TrainConfig.to_dict() as run (TrainConfig.from_model types it)
    epochs: int                      # epochs requested after resolving the default
    epochs_run: int                  # epochs completed (fewer after early stopping)
    schedule: dict                   # the beta schedule, schedules.from_dict() rebuilds it
    seconds: float                   # training wall time
    created: str | None = None       # ISO time the model was trained
    package_version: str | None = None  # betavae-np version that trained it

    def summary(self) -> dict:
        """The CLI's ``training`` block: epochs, batch size, learning rate, beta, schedule, time."""
        c = self.config
        return {"epochs": self.epochs, "epochs_run": self.epochs_run, "batch_size": c.get("batch_size"),
                "lr": c.get("lr"), "beta": c.get("beta"), "anneal": c.get("anneal"), "warmup": c.get("warmup"),
                "schedule": dict(self.schedule), "seconds": self.seconds}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d) -> "RunRecord":
        return cls(**_check_keys(cls, d, "run record"))


@dataclass(frozen=True)
class WindowStats:
    """Statistics of the training windows that analysis compares against."""

    measure_scale: dict              # measure name -> sd over the training windows (interpret's unit)
    mean_window: tuple               # (n_input,) mean training window (evaluate's baseline)

    def to_dict(self) -> dict:
        return {"measure_scale": dict(self.measure_scale), "mean_window": list(self.mean_window)}

    @classmethod
    def from_dict(cls, d) -> "WindowStats":
        d = _check_keys(cls, d, "window statistics")
        return cls(measure_scale={str(k): float(v) for k, v in d["measure_scale"].items()},
                   mean_window=tuple(map(float, d["mean_window"])))


@dataclass(frozen=True)
class ReferenceWindow:
    """The latest window of the training data, traversed when no other is asked for."""

    end_time: str                    # open time of the window's last candle (ISO, UTC)
    window: tuple                    # (n_input,) the normalised window (float32 values)

    def to_dict(self) -> dict:
        return {"end_time": self.end_time, "window": list(self.window)}

    @classmethod
    def from_dict(cls, d) -> "ReferenceWindow":
        d = _check_keys(cls, d, "reference window")
        return cls(end_time=str(d["end_time"]), window=tuple(map(float, d["window"])))


@dataclass(frozen=True)
class Split:
    """The time-ordered train/validation split (validation is the latest part)."""

    val_fraction: float              # share of windows held out (0: none)
    windows: int                     # windows of the data
    train: int                       # training windows
    validation: int                  # validation windows (after purging those overlapping training)
    train_end: str | None = None     # last training window's end (ISO)
    validation_start: str | None = None  # first validation window's end (ISO), None without validation

    @property
    def held_out(self) -> bool:
        """True when part of the data was kept out of training."""
        return self.val_fraction > 0 and self.validation > 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d) -> "Split":
        return cls(**_check_keys(cls, d, "split"))


@dataclass(frozen=True)
class UniverseRecord:
    """A model trained on many symbols: each symbol's provenance, the common cutoff, the references.

    :class:`ModelRecords` ``provenance`` then describes the whole (``source="universe"``, all
    candles, earliest start, latest end); this record keeps every symbol's own.
    """

    symbols: tuple                   # symbols trained on, in window-set order
    provenance: dict                 # symbol -> its provenance dict (source, path, range, rows, gaps...)
    source: str | None = None        # the directory read, or where frames came from ("bybit"...)
    weighting: str = "proportional"  # how epochs drew windows from the symbols
    cutoff: str | None = None        # the common train/validation cutoff (ISO), None without validation
    windows: dict = field(default_factory=dict)     # symbol -> {"train": n, "validation": n}
    skipped: dict = field(default_factory=dict)     # symbol -> why it was left out
    references: dict = field(default_factory=dict)  # symbol -> ReferenceWindow (its latest window)

    def reference(self, symbol: str) -> ReferenceWindow:
        """The latest training-data window of ``symbol``."""
        if symbol not in self.references:
            raise InputError(f"{symbol} is not one of the model's symbols ({', '.join(self.symbols[:8])}"
                             f"{', ...' if len(self.symbols) > 8 else ''})")
        return self.references[symbol]

    def to_dict(self) -> dict:
        return {"symbols": list(self.symbols), "provenance": {k: dict(v) for k, v in self.provenance.items()},
                "source": self.source, "weighting": self.weighting, "cutoff": self.cutoff,
                "windows": {k: dict(v) for k, v in self.windows.items()}, "skipped": dict(self.skipped),
                "references": {k: v.to_dict() for k, v in self.references.items()}}

    @classmethod
    def from_dict(cls, d) -> "UniverseRecord":
        d = dict(_check_keys(cls, d, "universe record"))
        if not d.get("symbols"):
            raise ConfigError("the universe record names no symbols.")
        d["symbols"] = tuple(map(str, d["symbols"]))
        d["references"] = {k: ReferenceWindow.from_dict(v) for k, v in (d.get("references") or {}).items()}
        return cls(**d)


_RECORDS = {"windowing": Windowing, "provenance": Provenance, "run": RunRecord, "history": History,
            "latent_stats": LatentStats, "window_stats": WindowStats, "reference": ReferenceWindow,
            "split": Split, "universe": UniverseRecord}


@dataclass(frozen=True)
class ModelRecords:
    """Everything a model carries besides its parameters; each record is None when unknown.

    A model trained by :func:`betavae_np.train` has all of them; one trained by
    :func:`betavae_np.fit` has ``windowing`` when ``fit(..., windower=w)`` was given.
    """

    windowing: Windowing | None = None        # how candles become inputs
    provenance: Provenance | None = None      # where the candles came from
    run: RunRecord | None = None              # the training configuration and its outcome
    history: History | None = None           # per-epoch losses
    latent_stats: LatentStats | None = None   # per-dimension statistics on the training windows
    window_stats: WindowStats | None = None   # measure scales and the mean training window
    reference: ReferenceWindow | None = None  # the latest window, for traversals
    split: Split | None = None                # the train/validation split
    universe: UniverseRecord | None = None    # per-symbol provenance of a model trained on many symbols

    def to_dict(self) -> dict:
        """Plain JSON types; records that are None are left out."""
        return {k: getattr(self, k).to_dict() for k in _RECORDS if getattr(self, k) is not None}

    @classmethod
    def from_dict(cls, d) -> "ModelRecords":
        d = _check_keys(cls, d, "records")
        return cls(**{k: _RECORDS[k].from_dict(v) for k, v in d.items() if v is not None})

    @classmethod
    def from_legacy(cls, meta: dict, vae_config=None) -> "ModelRecords":
        """Records from a version-1 file's ``metadata`` (written by ``betavae-np train`` before records).

        Parameters
        ----------
        meta : dict
            The old metadata: ``data``, ``windower``, ``split``, ``training``, ``history``,
            ``latent_stats``, ``measure_scale``, ``train_mean_window``, ``reference``, ``seed``...
        vae_config : VAEConfig, optional
            The file's model config, from which the run's model settings are rebuilt.
        """
        if not isinstance(meta, dict):
            return cls()
        out = {}

        def take(name, build, *keys):
            # a key that a user's own metadata happens to share is skipped, never an error
            if all(isinstance(meta.get(k), (dict, list)) for k in keys):
                try:
                    out[name] = build(*(meta[k] for k in keys))
                except (ConfigError, InputError, KeyError, TypeError, ValueError):
                    pass

        take("windowing", Windowing.from_dict, "windower")
        take("provenance", Provenance.from_dict, "data")
        take("split", Split.from_dict, "split")
        take("history", History.from_dict, "history")
        take("latent_stats", LatentStats.from_dict, "latent_stats")
        take("window_stats", lambda m, w: WindowStats.from_dict({"measure_scale": m, "mean_window": w}),
             "measure_scale", "train_mean_window")
        take("reference", ReferenceWindow.from_dict, "reference")
        if "windowing" in out and vae_config is not None:
            take("run", lambda t: _legacy_run(meta, out, vae_config), "training")
        return cls(**out)


def _legacy_run(meta: dict, rec: dict, vae) -> RunRecord:
    """The version-1 ``training`` block plus what the file says elsewhere, as a run record."""
    t = meta["training"]
    sched = dict(t.get("schedule") or {})
    w, prov = rec["windowing"], rec.get("provenance")
    cfg = {"window": w.window, "lookback": w.lookback, "gaps": w.gaps, "latent": vae.n_latent,
           "hidden": list(vae.hidden), "activation": vae.activation, "dtype": vae.dtype,
           "beta": t.get("beta"), "anneal": t.get("anneal"), "warmup": t.get("warmup"),
           "cycles": sched.get("cycles", 4), "capacity": sched.get("c_max", 10.0),
           "epochs": t.get("epochs"), "batch_size": t.get("batch_size"), "lr": t.get("lr"),
           "seed": meta.get("seed", 0), "val_fraction": (meta.get("split") or {}).get("val_fraction", 0.2)}
    if prov is not None:
        cfg["symbol"] = prov.get("requested_symbol") or prov.get("symbol") or "BTCUSDT"
        cfg["interval"] = prov.get("interval", "60")
        cfg["category"] = prov.get("category", "linear")
        cfg["source"] = {"csv": prov.get("path"), "sample": "sample", "bybit": "bybit"}.get(prov.source) or "auto"
    cfg = {k: v for k, v in cfg.items() if v is not None}
    return RunRecord(config=cfg, epochs=t.get("epochs"), epochs_run=t.get("epochs_run", t.get("epochs")),
                     schedule=sched, seconds=t.get("seconds", 0.0), created=meta.get("created"),
                     package_version=meta.get("package_version"))


def records_of(model) -> ModelRecords:
    """The records a model carries (empty :class:`ModelRecords` for a model that has none)."""
    rec = getattr(model, "records", None)
    return rec if rec is not None else ModelRecords()
