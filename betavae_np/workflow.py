"""The windows a trained model expects: the data side of the CLI's ``traverse``, ``evaluate`` and ``encode``.

``traverse`` and ``evaluate`` use :func:`windows_for_model`, :func:`reference_window` and
:func:`evaluation_windows`, which read the model's :mod:`records <betavae_np.records>`. Getting candles
from a source (:func:`load_candles`, :func:`load_universe_candles`, the synthetic source) is
:mod:`betavae_np.sources`; ``betavae-np train`` is :func:`betavae_np.run.train` (:func:`load_candles` +
:func:`~betavae_np.run.train_on_candles`) + :func:`betavae_np.save`. Those names, and ``TrainResult``,
``train_on_candles`` and ``default_epochs`` (moved to :mod:`betavae_np.run`), are re-exported here for
old code.
"""

from __future__ import annotations

import os

import numpy as np

from .exceptions import ConfigError, InputError
from .records import records_of
from .run import TrainResult, default_epochs, train_on_candles
from .sources import (SOURCES, _is_btc, _synthetic_prov, _to_utc, load_candles, load_universe_candles,
                      synthetic_candles, synthetic_factors, synthetic_market)
# Re-exported for code that imported them from here before sources.py existed.
from .sources import DEFAULT_CANDLES as DEFAULT_CANDLES, SYNTHETIC_CANDLES as SYNTHETIC_CANDLES  # noqa: F401
from .sources import SYNTHETIC_SEGMENT as SYNTHETIC_SEGMENT  # noqa: F401

__all__ = ["SOURCES", "TrainResult", "load_candles", "load_universe_candles", "train_on_candles", "model_windower",
           "windows_for_model", "universe_for_model", "is_universe_model", "synthetic_market", "synthetic_factors",
           "reference_window", "heldout_windows", "evaluation_windows", "default_epochs"]


def is_universe_model(model) -> bool:
    """True when the model was trained on many symbols (its records carry a universe record)."""
    return records_of(model).universe is not None


def universe_for_model(model, *, source: str | None = None, symbols=None, base_url=None, cache_dir=None,
                       on_notice=None, on_progress=None):
    """Candles of a universe model's symbols (its own source by default), windowed as it expects.

    Parameters
    ----------
    model : BetaVAE
        Trained by :func:`betavae_np.run.train_on_universe` (``records.universe`` set).
    source : str, optional
        A directory of CSV files, ``auto`` or ``bybit``; default the directory it was trained on,
        else ``auto`` over its recorded range.
    symbols : sequence of str, optional
        Default the model's symbols.

    Returns
    -------
    frames : dict of str to pandas.DataFrame
        The candles per symbol (the panel and the hand factors need them).
    windows : UniverseWindowSet
    """
    rec = records_of(model)
    if rec.universe is None:
        raise InputError("the model was trained on one symbol, not a universe; use windows_for_model")
    u = rec.universe
    src = source or (u.source if u.source and os.path.isdir(u.source) else "auto")
    syms = list(symbols) if symbols is not None else list(u.symbols)
    kw = {}
    if src in ("auto", "bybit") and rec.provenance is not None:
        kw = {"start": rec.provenance.start, "end": rec.provenance.end}
    prov = rec.provenance
    category = "linear"
    for p in u.provenance.values():
        category = p.get("category", category)
        break
    uni = load_universe_candles(syms, source=src, interval=prov.interval if prov is not None else None,
                                category=category, base_url=base_url, cache_dir=cache_dir, on_notice=on_notice,
                                on_progress=on_progress, **kw)
    windows = uni.windows(model_windower(model), on_notice=on_notice)
    return dict(uni.frames), windows


def model_windower(model):
    """The :class:`~betavae_np.data.Windower` a model was trained with (from its windowing record)."""
    w = records_of(model).windowing
    if w is None:
        raise InputError("the model file does not say how its windows were made; train it with "
                         "bv.train (or betavae-np train), or pass fit(..., windower=w) before bv.save")
    return w.windower()


def _model_source(model):
    prov = records_of(model).provenance
    src = prov.source if prov is not None else None
    if src == "csv":
        return prov.get("path")
    if src == "bybit":
        return "bybit"
    if src == "bybit-cache":  # trained offline from the cache: stay offline-friendly
        return "auto"
    if src == "synthetic":
        return "synthetic"
    return "sample" if src == "sample" else "auto"


def windows_for_model(model, *, source: str | None = None, base_url=None, cache_dir=None, on_notice=None,
                      on_progress=None, symbol: str | None = None):
    """Candles and windows laid out as a model expects, from ``source`` or the model's own data source.

    For a model trained on many symbols this is :func:`universe_for_model` (only ``symbol``'s
    candles when it is given).

    Returns
    -------
    df : pandas.DataFrame (dict of them for a universe model)
    windows : WindowSet (UniverseWindowSet for a universe model)
    """
    if records_of(model).universe is not None:
        return universe_for_model(model, source=source, symbols=None if symbol is None else [symbol.upper()],
                                  base_url=base_url, cache_dir=cache_dir, on_notice=on_notice)
    if symbol is not None:
        raise InputError("the model was trained on one symbol; --symbol applies to universe models")
    w = model_windower(model)
    prov = records_of(model).provenance
    get = prov.get if prov is not None else (lambda key, default=None: default)
    symbol = get("requested_symbol") or get("symbol") or "BTCUSDT"
    src = source or _model_source(model)
    kw = {}
    if src in ("bybit", "auto") and get("source") in ("bybit", "bybit-cache"):
        kw = {"start": get("start"), "end": get("end"), "category": get("category", "linear")}
    if src == "synthetic":   # the model's own synthetic series (seed, length, grids), or the default one
        df = synthetic_candles(**(_synthetic_prov(prov) if get("source") == "synthetic" else {}))
        return df, w.windows(df)
    if src == "sample" and symbol and not _is_btc(symbol):
        symbol = "BTCUSDT"
    df = load_candles(symbol, source=src, interval=get("interval", "60"), base_url=base_url,
                      cache_dir=cache_dir, on_notice=on_notice, on_progress=on_progress, **kw)
    return df, w.windows(df)


def heldout_windows(model, windows):
    """The validation (latest) part of ``windows`` under the model's recorded split fraction."""
    split = records_of(model).split
    frac = 0.2 if split is None else split.val_fraction
    if not frac:
        return windows
    return windows.split(frac)[1]


def evaluation_windows(model, windows):
    """The windows to evaluate a model on, and what they are.

    Returns
    -------
    windows : WindowSet
        The held-out (latest) part under the model's recorded split; all of ``windows`` when the
        model was trained without validation or records no split.
    part : {"held-out", "training", "all"}
        ``"held-out"``: the split's validation part; ``"training"``: the model trained on every
        window (``val_fraction`` 0), so these are in-sample; ``"all"``: no split is recorded.
    """
    split = records_of(model).split
    if split is None:
        return windows, "all"
    if not split.val_fraction:
        return windows, "training"
    return windows.split(split.val_fraction)[1], "held-out"


def reference_window(model, *, at=None, windows=None, symbol: str | None = None) -> tuple[np.ndarray, str]:
    """The window to traverse: the model's stored latest window, or the one ending at/before ``at``.

    Parameters
    ----------
    model : BetaVAE
    at : date-like, optional
        Pick the last window whose final candle opens at or before this time (needs ``windows``).
        A time at or after the close of the data's last candle is refused (InputError), not
        silently answered with the latest window.
    windows : WindowSet or UniverseWindowSet, optional
        Windows laid out for the model (see :func:`windows_for_model`, :func:`universe_for_model`).
    symbol : str, optional
        For a model trained on many symbols: that symbol's latest window (stored in the model
        file), or with ``at``/``windows`` that symbol's windows. Default: the latest window of any
        symbol.

    Returns
    -------
    x : ndarray, shape (n_input,)
    end_time : str
        ISO time of the window's last candle.
    """
    if symbol is not None:
        uni = records_of(model).universe
        if uni is None:
            raise InputError("the model was trained on one symbol; --symbol applies to universe models")
        symbol = str(symbol).strip().upper()
        if windows is None:
            ref = uni.reference(symbol)   # refuses a symbol the model was not trained on
            if at is None:
                return np.asarray(ref.window, dtype=model.dtype), ref.end_time
        if hasattr(windows, "window_set"):
            windows = windows.window_set(symbol)
    elif windows is not None and hasattr(windows, "window_set") and len(windows.symbols) > 1:
        if at is not None:
            raise InputError("the model was trained on many symbols: name one with --symbol to pick a window "
                             "by time")
    if at is None:
        ref = records_of(model).reference
        if ref is not None and windows is None:
            return np.asarray(ref.window, dtype=model.dtype), ref.end_time
        if windows is None:
            raise InputError("the model file has no reference window; give --at TIME with a data --source")
        i = windows.shape[0] - 1
    else:
        from .data.intervals import next_open, normalize_interval

        ts = _to_utc(at, "--at")
        ends = windows.end_times
        i = int(ends.searchsorted(ts, side="right")) - 1
        if i < 0:
            raise InputError(f"no window ends at or before {ts.isoformat()}; the data starts "
                             f"{ends[0].isoformat()}")
        meta = getattr(model, "metadata", None) or {}
        code = (meta.get("windower") or {}).get("interval") or (meta.get("data") or {}).get("interval")
        last = windows.candle_times[-1]
        last_ms = int(last.value // 1_000_000)
        try:
            close_ms = next_open(last_ms, normalize_interval(code))
        except ConfigError:  # no Bybit code recorded: the data's own most common spacing
            steps = np.diff(np.asarray(windows.candle_times.as_unit("ms").asi8))
            close_ms = last_ms + (int(np.median(steps)) if steps.size else 0)
        if ts.value // 1_000_000 >= close_ms:
            raise InputError(f"--at {ts.isoformat()} is beyond the data, whose last candle opens at "
                             f"{last.isoformat()}; give an earlier time, or leave out --at for the latest window")
    out = np.empty((1, windows.shape[1]), dtype=model.dtype)
    windows.gather(np.array([i], dtype=np.int64), out)
    return out[0], windows.end_times[i].isoformat()
