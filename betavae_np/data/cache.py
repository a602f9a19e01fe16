"""On-disk candle cache: one store per host/category/symbol/interval, atomic writes, known coverage.

A store is a compressed ``.npz`` (NumPy only, no pickle) holding the closed candles and the list of
``[a, b]`` ms ranges already fetched, so a later fetch asks Bybit only for what is missing, and
ranges Bybit had no candles for (before a listing, exchange outages) are not asked for again.
Writes go to a temporary file in the same directory, are fsynced, then ``os.replace``d over the
store: a crash leaves either the old or the new store, never a mix. A store that does not read
(truncated, garbage) is set aside as ``*.corrupt`` with a logging warning and rebuilt.

Stores are kept per API host (mainnet, testnet and any other base URL never share candles). Stores
written before that (``<root>/bybit/<category>/...``, host unknown) are never read, moved or
deleted: they are reported once in a store's ``note`` and can be removed, or moved under
``<root>/bybit/api.bybit.com/`` when they are known to hold mainnet candles.
"""

from __future__ import annotations

import logging
import os
import re
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

from .intervals import (ms_to_iso, normalize_category, normalize_interval, normalize_symbol, resolve_base_url,
                        to_ms)

__all__ = ["CandleCache", "Store", "default_cache_dir", "union_ranges", "subtract_ranges", "host_folder"]

log = logging.getLogger(__name__)

FORMAT = "betavae-np-candles"
VERSION = 1
#: Temporary files older than this (a crashed writer's) are removed by the next write.
STALE_TMP_SECONDS = 3600


def default_cache_dir() -> Path:
    """``$BETAVAE_NP_CACHE`` or ``~/.cache/betavae-np``."""
    env = os.environ.get("BETAVAE_NP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "betavae-np"


def host_folder(host: str) -> str:
    """Folder name of a host's stores: the host (and port) in lower case, anything but letters, digits,
    ``.`` and ``-`` as ``_`` (``api.bybit.com``, ``127.0.0.1_8080``)."""
    return re.sub(r"[^a-z0-9.-]", "_", host.lower()) or "_"


def union_ranges(ranges) -> np.ndarray:
    """Merge closed integer ranges ``[a, b]`` (overlapping or adjacent) into a sorted disjoint set.

    Returns
    -------
    ndarray of int64, shape (k, 2)
    """
    r = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
    if r.shape[0] == 0:
        return r
    r = r[np.argsort(r[:, 0], kind="stable")]
    out = [list(r[0])]
    for a, b in r[1:]:
        if a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return np.asarray(out, dtype=np.int64)


def subtract_ranges(a: int, b: int, ranges) -> list[tuple[int, int]]:
    """Parts of the closed range ``[a, b]`` not covered by ``ranges`` (sorted, disjoint)."""
    parts, cur = [], int(a)
    for lo, hi in union_ranges(ranges):
        if hi < cur:
            continue
        if lo > b:
            break
        if lo > cur:
            parts.append((cur, min(int(lo) - 1, int(b))))
        cur = max(cur, int(hi) + 1)
        if cur > b:
            break
    if cur <= b:
        parts.append((cur, int(b)))
    return parts


@dataclass
class Store:
    """The content of one store."""
    t: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))            # (n,) ms ascending
    v: np.ndarray = field(default_factory=lambda: np.empty((0, 6), np.float64))     # (n, 6)
    ranges: np.ndarray = field(default_factory=lambda: np.empty((0, 2), np.int64))  # (k, 2) covered
    note: str | None = None  # set when a corrupt store was found and set aside


class CandleCache:
    """Candle cache rooted at ``cache_dir``.

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        Root folder; default env ``BETAVAE_NP_CACHE`` or ``~/.cache/betavae-np``.
    base_url : str, optional
        The API whose candles this cache holds (``https://host``, ``"mainnet"``, ``"testnet"``);
        default env ``BETAVAE_NP_BYBIT_URL`` or mainnet. Each host has its own stores.

    Notes
    -----
    Layout: ``<cache_dir>/bybit/<host>/<category>/<SYMBOL>/<interval>.npz`` (``<host>`` from
    :func:`host_folder`; arrays ``t`` int64 (n,), ``v`` float64 (n, 6) ``open high low close volume
    turnover``, ``ranges`` int64 (k, 2) fetched ms ranges, ``host``, ``format``, ``version``), a
    ``.lock`` file beside it for merges. Only closed candles are stored. Reading never needs the
    network: :meth:`load`.
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, base_url: str | None = None):
        self.root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.base_url = resolve_base_url(base_url)
        self.host = urlsplit(self.base_url).netloc.lower()

    def path(self, category: str, symbol: str, interval: str) -> Path:
        """File of one store (of this cache's host)."""
        return (self.root / "bybit" / host_folder(self.host) / normalize_category(category)
                / normalize_symbol(symbol) / f"{normalize_interval(interval)}.npz")

    def legacy_path(self, category: str, symbol: str, interval: str) -> Path:
        """Where a store was kept before stores were kept per host (never read, moved or deleted)."""
        return (self.root / "bybit" / normalize_category(category) / normalize_symbol(symbol)
                / f"{normalize_interval(interval)}.npz")

    # -- reading -----------------------------------------------------------------------------------
    def read(self, category: str, symbol: str, interval: str) -> Store:
        """The store's content; an empty :class:`Store` when absent; a corrupt file is moved aside
        (``*.corrupt``) with a warning and an empty store carrying ``note`` is returned."""
        path = self.path(category, symbol, interval)
        if not path.exists():
            legacy = self.legacy_path(category, symbol, interval)
            if legacy.exists():
                note = (f"cache store {legacy} was written before stores were kept per host; it is left "
                        f"as it is and not used (move it to {path} if it holds {self.host} candles)")
                log.info(note)
                return Store(note=note)
            return Store()
        try:
            return _read_npz(path, self.host)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            note = f"cache store {path} was unreadable ({type(exc).__name__}: {str(exc)[:100]}); rebuilt it"
            log.warning(note)
            try:
                os.replace(path, path.with_suffix(".corrupt"))
            except OSError:
                pass
            return Store(note=note)

    def load(self, category: str, symbol: str, interval: str, start=None, end=None) -> pd.DataFrame | None:
        """Cached candles with open time in ``[start, end]`` without touching the network.

        Returns
        -------
        pandas.DataFrame or None
            Candle frame with ``attrs["betavae_np"]`` (``source`` "bybit", ``from_cache`` rows,
            ``requests`` 0, gaps); ``None`` when nothing is cached in that range.
        """
        from .bybit import candles_frame  # late: keeps the cache free of aiohttp at import

        category, symbol, code = normalize_category(category), normalize_symbol(symbol), normalize_interval(interval)
        store = self.read(category, symbol, code)
        lo = to_ms(start, "start") if start is not None else (int(store.t[0]) if store.t.size else 0)
        hi = to_ms(end, "end") if end is not None else (int(store.t[-1]) if store.t.size else 0)
        keep = (store.t >= lo) & (store.t <= hi)
        if not keep.any():
            return None
        info = {"source": "bybit", "exchange": "bybit", "category": category, "symbol": symbol,
                "interval": code, "start": ms_to_iso(lo), "end": ms_to_iso(hi), "requests": 0,
                "retries": 0, "from_cache": int(keep.sum()), "base_url": self.base_url,
                "cache_path": str(self.path(category, symbol, code))}
        return candles_frame(store.t[keep], store.v[keep], info)

    def missing(self, category: str, symbol: str, interval: str, start_ms: int, end_ms: int) -> list:
        """Sub-ranges of ``[start_ms, end_ms]`` never fetched (before grid snapping)."""
        return subtract_ranges(start_ms, end_ms, self.read(category, symbol, interval).ranges)

    # -- writing -----------------------------------------------------------------------------------
    def merge(self, category: str, symbol: str, interval: str, t: np.ndarray, v: np.ndarray,
              covered) -> Store:
        """Add closed candles and the ranges they were fetched for; existing candles are kept.

        Parameters
        ----------
        t : ndarray of int64, shape (n,)
            Open times (ms) of closed candles only.
        v : ndarray of float64, shape (n, 6)
        covered : sequence of (int, int)
            Closed ms ranges fully fetched (every candle in them is in ``t`` or does not exist).

        Returns
        -------
        Store
            The merged store as written.
        """
        path = self.path(category, symbol, interval)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path):
            return self._merge_locked(path, category, symbol, interval, t, v, covered)

    def _merge_locked(self, path, category, symbol, interval, t, v, covered) -> Store:
        old = self.read(category, symbol, interval)
        t_all = np.concatenate([old.t, np.asarray(t, np.int64)])
        v_all = np.concatenate([old.v, np.asarray(v, np.float64).reshape(-1, 6)])
        t_u, first = np.unique(t_all, return_index=True)  # earlier (cached) rows win: merge, never overwrite
        new = Store(t_u, v_all[first], union_ranges(np.concatenate(
            [old.ranges, np.asarray(covered, np.int64).reshape(-1, 2)])), old.note)
        _write_npz_atomic(path, new, self.host)
        return new


@contextmanager
def _locked(path: Path):
    """Advisory lock (POSIX ``flock``) on ``<store>.lock`` so that two processes merging into one
    store do not lose each other's candles; a no-op where ``fcntl`` is missing (Windows)."""
    if fcntl is None:
        yield
        return
    with open(path.with_suffix(".lock"), "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _read_npz(path: Path, host: str) -> Store:
    with np.load(path, allow_pickle=False) as z:
        if str(z["format"]) != FORMAT or int(z["version"]) > VERSION:
            raise ValueError(f"not a betavae-np candle store (format {str(z['format'])!r})")
        if "host" in z.files and str(z["host"]) != host:  # a store copied from another host's folder
            raise ValueError(f"it holds candles of {str(z['host'])}, not {host}")
        t, v, ranges = z["t"], z["v"], z["ranges"]
    if (t.dtype != np.int64 or v.dtype != np.float64 or ranges.dtype != np.int64 or t.ndim != 1
            or v.shape != (t.size, 6) or ranges.ndim != 2 or ranges.shape[1] != 2):
        raise ValueError("arrays of unexpected dtype or shape")
    if t.size > 1 and not (np.diff(t) > 0).all():
        raise ValueError("open times not strictly ascending")
    if ranges.size and ((ranges[:, 1] < ranges[:, 0]).any() or (ranges[1:, 0] <= ranges[:-1, 1]).any()):
        raise ValueError("coverage ranges overlap or are reversed")
    return Store(t, v, ranges)


def _write_npz_atomic(path: Path, store: Store, host: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(path.name + ".*.tmp"):  # left by a killed writer long ago
        try:
            if time.time() - stale.stat().st_mtime > STALE_TMP_SECONDS:
                stale.unlink()
        except OSError:
            pass
    from ..io import atomic_path

    with atomic_path(path, "candle cache", error=None, hidden=False,
                     keep_suffix=False) as tmp:   # fsync, rename, folder fsync
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, format=np.array(FORMAT), version=np.array(VERSION), host=np.array(host),
                                t=store.t, v=store.v, ranges=store.ranges)
