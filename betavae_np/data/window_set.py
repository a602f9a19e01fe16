"""Lazy window sets: windows gathered on demand from the prepared candle matrix.

:class:`WindowSet` holds one candle series (made by :meth:`Windower.windows
<betavae_np.data.windows.Windower.windows>`); :class:`~betavae_np.data.universe_set.UniverseWindowSet`
(in :mod:`.universe_set`, re-exported here) holds many symbols' series side by side. Neither ever
materialises the ``n_windows x n_input`` array: memory is O(candles x features).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._kernels import windowing as _k
from ..exceptions import ConfigError, DataError, InputError

__all__ = ["WindowSet"]   # UniverseWindowSet: see __getattr__ below


class WindowSet:
    """Windows of a candle series, gathered on demand (memory O(candles x features)).

    Holds the prepared feature matrix, each window's scale (lo/hi per scale group) and each window's
    last candle; :meth:`gather` writes any rows into a caller's buffer with one compiled call.
    Made by :meth:`Windower.windows`; ``fit()`` uses only :attr:`shape` and :meth:`gather`.

    Attributes
    ----------
    shape : tuple of int
        ``(n_windows, window * n_features)``.
    window, features : int, tuple of str
        The windower's settings.
    rows : ndarray of int64, shape (n_windows,)
        Index of each window's last candle in the candle matrix held (:attr:`candle_times`).
    end_times : pandas.DatetimeIndex, shape (n_windows,)
        Open time of each window's last candle.
    candle_times : pandas.DatetimeIndex, shape (n_candles,)
        Open times of the candles held (with ``gaps="fill"``, the inserted candles too).
    filled : ndarray of bool, shape (n_candles,)
        True for candles inserted by ``gaps="fill"``; :attr:`n_filled` counts them.
    """

    def __init__(self, raw, lo, hi, group, ends, window, features, times_ms, filled, modes):
        self._raw, self._lo, self._hi, self._group = raw, lo, hi, group
        self.rows = ends
        self.window = int(window)
        self.features = tuple(features)
        self._times_ms = times_ms
        self.filled = filled
        self._modes = np.asarray(modes, dtype=np.int64)   # (G,) each scale group's mode
        self.shape = (int(ends.shape[0]), self.window * len(self.features))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"WindowSet(n_windows={self.shape[0]}, window={self.window}, features={self.features})"

    @property
    def dtype(self) -> np.dtype:
        """float32: the windows' values are float32 numbers (a float64 gather holds them exactly)."""
        return np.dtype(np.float32)

    @property
    def n_filled(self) -> int:
        """Number of candles inserted by ``gaps="fill"``."""
        return int(np.count_nonzero(self.filled))

    @property
    def end_times(self) -> pd.DatetimeIndex:
        return _times(self._times_ms[self.rows])

    @property
    def candle_times(self) -> pd.DatetimeIndex:
        return _times(self._times_ms)

    @property
    def scales(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-window ``(lo, hi)``, each (n_windows, n_groups): the min-max groups (prices, then volume),
        then for each return feature (``returns``/``both`` representations) its EWMA mean and sd.
        With :meth:`Windower.anchors <betavae_np.data.windows.Windower.anchors>`, the state
        :meth:`Windower.inverse <betavae_np.data.windows.Windower.inverse>` needs."""
        return self._lo.copy(), self._hi.copy()

    def gather(self, rows, out=None) -> np.ndarray:
        """Write windows ``rows`` into ``out`` (one compiled call).

        Parameters
        ----------
        rows : array_like of int, shape (r,)
            Window indices in ``[0, n_windows)``, any order, repeats allowed.
        out : ndarray, shape (r, window*n_features), float32 or float64, C-contiguous, optional
            Destination (allocated as float32 when omitted). Float64 receives the float32 values.

        Returns
        -------
        ndarray, shape (r, window*n_features)
            ``out``.
        """
        rows = _check_rows(rows, self.shape[0])
        out = _check_out(out, rows.size, self.shape[1])
        if rows.size:
            _k.gather_windows(out, self._raw, self._lo, self._hi, self._group, self.rows, rows,
                              self.window, self._modes, False)
        return out

    def array(self, dtype=np.float32) -> np.ndarray:
        """All windows materialised, shape (n_windows, window*n_features); equals ``transform``."""
        return self.gather(np.arange(self.shape[0], dtype=np.int64),
                           np.empty(self.shape, dtype=np.dtype(dtype)))

    def subset(self, start: int | None = None, stop: int | None = None) -> "WindowSet":
        """Windows ``start:stop`` (Python slice rules) as a WindowSet sharing the candle matrix."""
        sl = slice(*slice(start, stop).indices(self.shape[0])[:2])
        return WindowSet(self._raw, self._lo[sl], self._hi[sl], self._group, self.rows[sl], self.window,
                         self.features, self._times_ms, self.filled, self._modes)

    def split(self, fraction: float = 0.2, purge: bool = True) -> tuple["WindowSet", "WindowSet"]:
        """Time-ordered train/validation split: the last ``fraction`` of windows is validation.

        Parameters
        ----------
        fraction : float in (0, 1)
            Share of windows set aside for validation (rounded; at least one window each side).
        purge : bool
            Drop the validation windows that share a candle with a training window (the first
            ``window - 1`` after the boundary on gap-free data), so no candle value is seen in both.

        Returns
        -------
        train, validation : WindowSet

        Notes
        -----
        The validation windows' scales may still use training-period candles in their lookback:
        that is the causal past a live model also sees, not leakage.
        """
        if not isinstance(fraction, (float, int)) or not 0.0 < float(fraction) < 1.0:
            raise ConfigError(f"split fraction must lie strictly between 0 and 1, got {fraction!r}")
        n = self.shape[0]
        n_train = int(round(n * (1.0 - float(fraction))))
        if n_train < 1 or n_train >= n:
            raise DataError(f"cannot split {n} window(s) with fraction {fraction}: one side would be empty")
        first = n_train
        if purge:
            first = int(np.searchsorted(self.rows, self.rows[n_train - 1] + self.window, side="left"))
        if first >= n:
            raise DataError(f"no validation window left after purging the {self.window - 1} windows that "
                            f"overlap training; use a larger fraction or more data")
        return self.subset(0, n_train), self.subset(first, n)


def _check_rows(rows, n: int) -> np.ndarray:
    """Window indices as int64 (r,), each in [0, n)."""
    rows = np.asarray(rows)
    if rows.ndim != 1 or not (rows.dtype.kind in "iu" or rows.size == 0):
        raise InputError(f"rows must be a 1-D integer array, got shape {rows.shape} dtype {rows.dtype}")
    rows = rows.astype(np.int64, copy=False)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise InputError(f"rows must lie in [0, {n}), got {rows.min()}..{rows.max()}")
    return rows


def _check_out(out, r: int, n_input: int) -> np.ndarray:
    """A gather destination (r, n_input): ``out`` checked, or a new float32 array."""
    if out is None:
        return np.empty((r, n_input), dtype=np.float32)
    if (not isinstance(out, np.ndarray) or out.shape != (r, n_input)
            or out.dtype not in (np.float32, np.float64) or not out.flags.c_contiguous
            or not out.flags.writeable):
        raise InputError(f"out must be a writeable C-contiguous float32/float64 array of shape {(r, n_input)}")
    return out


def _times(ms: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(ms, unit="ms", utc=True), name="open_time")


def __getattr__(name):
    """``UniverseWindowSet`` lives in :mod:`.universe_set` (which builds on this module)."""
    if name == "UniverseWindowSet":
        from .universe_set import UniverseWindowSet

        return UniverseWindowSet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
