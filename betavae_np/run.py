"""One training run: :func:`train` and :func:`train_on_candles` / :func:`train_on_universe`.

``betavae-np train`` is ``train(TrainConfig(...))`` + :func:`betavae_np.save`; the configuration
(:class:`TrainConfig`, whose fields declare the CLI's options, see :func:`cli_fields`) lives in
:mod:`betavae_np.train_config` and is re-exported here. :func:`train_on_candles` is the same run on
candles you already have.

Only the standard library is imported at module level, so the CLI can build its options without
loading NumPy, pandas or Numba.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from .checks import config_error
from .train_config import (ACTIVATIONS, CATEGORIES, DTYPES, ESTIMATORS, GAPS, LOSSES, RECONS, SCHEDULES,
                           TrainConfig, cli_fields)
from .train_config import REPRESENTATIONS as REPRESENTATIONS   # not in __all__, as before

__all__ = ["TrainConfig", "TrainResult", "train", "train_on_candles", "train_on_universe", "default_epochs",
           "cli_fields", "ACTIVATIONS", "SCHEDULES", "GAPS", "CATEGORIES", "DTYPES", "LOSSES", "RECONS", "ESTIMATORS"]

log = logging.getLogger(__name__)


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
    """Epochs for ~12,000 optimisation steps (5..400): 20-30 s on 2 cores at batch 256, well under a minute."""
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
    ``epochs=None`` resolves to :func:`default_epochs` (20-30 s on 2 cores at batch 256). With
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
        Empty ``universe.frames`` while the windows are built (each symbol's frame dropped once its
        candles are written), so the candles are never held twice in full. :func:`train` does; a
        caller's own :class:`~betavae_np.data.universe.Universe` keeps its frames by default (frames
        given as a mapping are copied into a universe of this call's own, which is always emptied;
        the caller's mapping is not touched).

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
    own = not isinstance(universe, Universe)   # frames given: the universe (validated copies) is ours to empty
    if own:
        universe = load_universe(universe, interval=cfg.interval, on_notice=on_notice)
    windower = Windower(window=cfg.window, lookback=cfg.lookback, gaps=cfg.gaps, interval=universe.interval,
                        representation=cfg.features)
    symbols = universe.symbols
    allw = universe.windows(windower, on_notice=on_notice, release=release or own)
    skipped = dict(universe.skipped)
    skipped.update({s: "no window fits its candles" for s in symbols if s not in allw.symbols})
    origin = universe.source
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
    ends = allw.end_times_of(last)
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
    model.records = _records(
        fitted, windower, cfg, provenance=provenance, reference=refs[allw.symbols[latest]],
        split=Split(val_fraction=cfg.val_fraction, windows=n, train=train_set.shape[0],
                    validation=0 if val is None else val.shape[0],
                    train_end=train_set.end_time_range()[1].isoformat(),
                    validation_start=None if val is None else val.end_time_range()[0].isoformat()),
        universe=UniverseRecord(symbols=tuple(allw.symbols), provenance=prov_all, source=origin,
                                weighting=cfg.weighting, cutoff=None if cutoff is None else cutoff.isoformat(),
                                windows={s: {"train": int(t_counts[k]), "validation": int(v_counts[k])}
                                         for k, s in enumerate(allw.symbols)},
                                skipped=skipped, references=refs))
    return _result(model, fitted, windower, train_set, val, cfg)
