"""A universe of candles: many symbols of one interval, from a directory of CSV files or from frames.

``load_universe("../shared/data/bybit_perp_1h")`` reads every ``<SYMBOL>_<interval>.csv`` (or
``<SYMBOL>.csv``) with :func:`~betavae_np.data.frame.read_candles_csv`; ``load_universe({"BTCUSDT":
df, ...})`` takes frames. :meth:`Universe.windows` windows each symbol on its own with one
:class:`~betavae_np.data.windows.Windower` into a :class:`~betavae_np.data.universe_set.UniverseWindowSet`.
Bad input is one sentence each: an empty universe, mixed intervals, a symbol given twice; a symbol
with too few candles is skipped with a notice, not an error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from ..exceptions import ConfigError, DataError
from .frame import candle_facts, index_to_ms, infer_interval, read_candles_csv, validate_candles
from .intervals import interval_ms, normalize_interval, normalize_symbol, spacing_words

__all__ = ["Universe", "load_universe", "parse_candle_filename"]

log = logging.getLogger(__name__)


def parse_candle_filename(name: str) -> tuple[str, str | None]:
    """``"BTCUSDT_1h.csv"`` -> ``("BTCUSDT", "60")``; ``"ETHUSDT.csv"`` -> ``("ETHUSDT", None)``.

    Raises
    ------
    DataError
        The name is not ``<SYMBOL>_<interval>.csv`` or ``<SYMBOL>.csv`` (Bybit symbol and interval).
    """
    stem = name[:-4] if name.lower().endswith(".csv") else name
    sym, _, code = stem.rpartition("_") if "_" in stem else (stem, "", "")
    try:
        return normalize_symbol(sym), (normalize_interval(code) if code else None)
    except ConfigError:
        raise DataError(f"{name}: a universe file is named <SYMBOL>_<interval>.csv or <SYMBOL>.csv "
                        f"(e.g. BTCUSDT_1h.csv); rename or remove it") from None


@dataclass
class Universe:
    """Candles of several symbols sharing one interval.

    Attributes
    ----------
    frames : dict of str to pandas.DataFrame
        Candles per symbol (frame convention), in symbol order (a directory: sorted by name).
    interval : str
        The Bybit interval code all symbols share.
    provenance : dict of str to dict
        Per symbol: ``source`` (``csv`` with ``path``, or what the frame's ``attrs["betavae_np"]``
        said, else ``frame``), ``symbol``, ``interval``, and the candles' own ``rows``, ``start``,
        ``end``, ``gaps``, ``missing_candles`` (:func:`~betavae_np.data.frame.candle_facts`).
    skipped : dict of str to str
        Symbols left out while loading and why (each also told to ``on_notice``).
    source : str
        The directory read, or ``"frames"``.
    """

    frames: dict
    interval: str
    provenance: dict
    skipped: dict = field(default_factory=dict)
    source: str = "frames"

    @property
    def symbols(self) -> tuple:
        return tuple(self.frames)

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        return f"Universe({len(self)} symbols, interval={self.interval!r}, source={self.source!r})"

    @property
    def n_candles(self) -> int:
        """Candles over all symbols."""
        return int(sum(len(df) for df in self.frames.values()))

    def windows(self, windower=None, *, on_notice: Callable[[str], None] | None = None, release: bool = False):
        """Every symbol windowed and normalised on its own with the same windower.

        Parameters
        ----------
        windower : Windower, optional
            Default ``Windower(interval=self.interval)``; one without an interval gets the universe's.
        on_notice : callable(str), optional
            Told about each symbol skipped because no window fits (too few candles, or none
            between its gaps).
        release : bool
            Empty :attr:`frames` while windowing, each symbol's frame dropped as soon as its candles
            are in the window set, so the candles are never held twice in full (what
            :func:`betavae_np.train` does). The universe then has no frames left.

        Returns
        -------
        UniverseWindowSet

        Raises
        ------
        ConfigError
            The windower's interval is not the universe's.
        DataError
            No symbol has a single window.
        """
        from .universe_set import UniverseWindowSet
        from .windows import Windower

        if windower is None:
            windower = Windower(interval=self.interval)
        elif windower.interval is None:
            windower = Windower.from_dict({**windower.to_dict(), "interval": self.interval})
        elif windower._ims != interval_ms(self.interval):
            raise ConfigError(f"the windower's interval {windower.interval!r} is not the universe's "
                              f"({self.interval}); use one interval")

        def told(msg):
            log.info(msg)
            if on_notice is not None:
                on_notice(msg)

        out = UniverseWindowSet.from_frames(windower, self.frames, on_notice=told, provenance=self.provenance,
                                            release=release)
        if release:
            self.frames.clear()   # the skipped symbols' frames too
        return out


def load_universe(source, *, interval=None, symbols=None,
                  on_notice: Callable[[str], None] | None = None) -> Universe:
    """Load many symbols' candles of one interval.

    Parameters
    ----------
    source : str, os.PathLike or mapping of str to pandas.DataFrame
        A directory of ``<SYMBOL>_<interval>.csv`` / ``<SYMBOL>.csv`` files (other files, hidden
        files and folders are ignored), or frames keyed by symbol.
    interval : str, optional
        Expected interval (code or alias); by default the one the candles show.
    symbols : iterable of str, optional
        Load only these symbols (each must be present).
    on_notice : callable(str), optional
        Told about symbols skipped because they hold fewer than 2 candles (the library never prints).

    Returns
    -------
    Universe

    Raises
    ------
    DataError
        Not a directory, an empty universe, a file name or file that does not read, a symbol given
        twice, mixed intervals, a file whose name and candles disagree on the interval, a missing
        requested symbol. One sentence each.
    ConfigError
        ``interval`` differs from the candles'.
    """
    want = None if symbols is None else [normalize_symbol(s) for s in symbols]
    if isinstance(source, Mapping):
        where, verb, entries = "the frames", "hold", _frame_entries(source)
    else:
        where, verb, entries = os.fspath(source), "holds", _dir_entries(os.fspath(source))
    if want is not None:
        missing = [s for s in want if s not in entries]
        if missing:
            raise DataError(f"{where} {verb} no candles of {', '.join(missing)}")
        entries = {s: entries[s] for s in want}
    if not entries:
        raise DataError(f"the universe is empty: {where} {verb} no symbol's candles"
                        + ("" if isinstance(source, Mapping) else
                           " (files named <SYMBOL>_<interval>.csv or <SYMBOL>.csv)"))
    frames, found, prov, skipped = {}, {}, {}, {}
    for sym, (df, name_code, base) in entries.items():
        label = base.get("path") and os.path.basename(base["path"]) or sym
        if len(df) < 2:
            skipped[sym] = f"{sym} skipped: {len(df)} candle(s), too few to use"
            continue
        code = infer_interval(index_to_ms(df.index), what=label)
        if name_code is not None and name_code != code:
            raise DataError(f"{label}: the name says interval {name_code} but the candles are "
                            f"{spacing_words(interval=code)} apart (interval {code}); rename the file")
        frames[sym], found[sym] = df, code
        prov[sym] = {**base, "symbol": sym, "interval": code, **candle_facts(df, code)}
    for msg in skipped.values():
        log.info(msg)
        if on_notice is not None:
            on_notice(msg)
    codes = sorted(set(found.values()), key=interval_ms)
    if len(codes) > 1:
        examples = ", ".join(f"{c} in {next(s for s, v in found.items() if v == c)}" for c in codes)
        raise DataError(f"{where} {'mix' if verb == 'hold' else 'mixes'} candle intervals ({examples}); "
                        f"keep one interval per universe")
    if not frames:
        raise DataError(f"the universe is empty: every symbol of {where} has fewer than 2 candles")
    code = codes[0]
    if interval is not None and normalize_interval(interval) != code:
        raise ConfigError(f"the universe's candles are {spacing_words(interval=code)} apart (interval {code}) "
                          f"but interval {str(interval).strip()} was asked for")
    return Universe(frames, code, prov, skipped, "frames" if isinstance(source, Mapping) else os.path.abspath(where))


def _frame_entries(frames: Mapping) -> dict:
    """symbol -> (validated frame, interval named by the frame's provenance or None, provenance)."""
    out, seen = {}, {}
    for key, df in frames.items():
        sym = normalize_symbol(str(key))
        if sym in out:
            raise DataError(f"symbol {sym} is given twice ({seen[sym]!r} and {key!r}); give each symbol once")
        seen[sym] = key
        meta = dict(getattr(df, "attrs", {}).get("betavae_np", {})) if isinstance(df, pd.DataFrame) else {}
        v = validate_candles(df, what=sym)
        base = {k: meta[k] for k in ("source", "exchange", "category", "path", "base_url") if k in meta}
        base.setdefault("source", "frame")
        code = meta.get("interval")
        out[sym] = (v, normalize_interval(code) if code is not None else None, base)
    return out


def _dir_entries(folder: str) -> dict:
    """symbol -> (frame read from the file, interval in the file name or None, provenance)."""
    if not os.path.isdir(folder):
        raise DataError(f"{folder} is not a directory of candle CSV files")
    names = sorted(n for n in os.listdir(folder)
                   if n.lower().endswith(".csv") and not n.startswith(".")
                   and os.path.isfile(os.path.join(folder, n)))
    parsed = {}
    for name in names:
        sym, code = parse_candle_filename(name)
        if sym in parsed:
            raise DataError(f"symbol {sym} has two files in {folder} ({parsed[sym][0]} and {name}); "
                            f"keep one file per symbol")
        parsed[sym] = (name, code)
    out = {}
    for sym, (name, code) in parsed.items():
        path = os.path.abspath(os.path.join(folder, name))
        out[sym] = (read_candles_csv(path), code, {"source": "csv", "path": path})
    return out
