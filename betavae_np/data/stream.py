"""The live ring buffer of :class:`~betavae_np.data.windows.Windower`: one candle at a time.

:class:`StreamMixin` holds :meth:`Windower.push <betavae_np.data.windows.Windower.push>`,
:meth:`~betavae_np.data.windows.Windower.push_array`, :meth:`~betavae_np.data.windows.Windower.reset`
and their state (the min-max ring and, for ``returns``/``both``, the return-feature ring with its EWMA
statistics). It relies on the settings :class:`~betavae_np.data.windows.Windower` sets up
(``window``, ``lookback``, ``features``, ``gaps``, the scale groups); the windows it returns are
bit-identical to :meth:`Windower.transform <betavae_np.data.windows.Windower.transform>`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .._kernels import returns as _r
from .._kernels import windowing as _k
from ..exceptions import DataError, InputError
from .features import ALPHA as _ALPHA
from .intervals import to_ms

_F64 = np.dtype(np.float64)

__all__ = ["StreamMixin"]


class StreamMixin:
    """Streaming part of :class:`~betavae_np.data.windows.Windower` (see there for the settings)."""

    def _init_stream(self) -> None:
        """Allocate the rings and their state (called last by ``Windower.__init__``), then :meth:`reset`."""
        self._ring = np.zeros((self.lookback, len(self.features)), dtype=np.float64)
        self._state = np.array([0, 0, self.window, self.lookback, self._vol_col, int(self.log_volume),
                                int(self.norm == "none"), self._n_groups], dtype=np.int64)
        self._rring = np.zeros((self.lookback, _r.NR))
        self._rstate = np.zeros(5, dtype=np.int64)
        self._rf = np.zeros(3)
        self._rmean, self._rvar, self._rx = np.zeros(_r.NR), np.zeros(_r.NR), np.zeros(_r.NR)
        self.reset()

    def reset(self) -> None:
        """Forget the streamed candles (the next window comes after ``lookback`` new candles)."""
        self._reset_rings()
        self._last_ms = None
        self._min_step = None
        self._last_close = None

    def _reset_rings(self) -> None:
        self._state[0] = self._state[1] = 0
        self._rstate[:] = (0, 0, 0, self.window, self.lookback)
        self._rf[:] = (0.0, _ALPHA, 0.0)

    def push_array(self, values: np.ndarray):
        """Fast path of :meth:`push`: ``values`` (n_features,) in feature order, no gap detection.

        Parameters
        ----------
        values : ndarray, shape (n_features,)
            Real numbers; a float64 array is used as is, other real dtypes are converted
            (exactly for float32 and integers up to 2**53).

        Returns
        -------
        ndarray of float32, shape (n_input,), or None

        Raises
        ------
        InputError
            Another number of values, values that are not real numbers, or a non-finite value;
            nothing is pushed then.
        """
        if type(values) is not np.ndarray or values.dtype is not _F64 or values.ndim != 1:
            values = self._as_values(values)       # the kernel checks length and finiteness
        if self.representation == "minmax":
            out = np.empty(self.window * self._ring.shape[1], dtype=np.float32)
            code = _k.push_candle(out, self._ring, values, self._state, self._group)
        else:
            code = self._push_both(values)
            out = code
            code = code if isinstance(code, int) else 1
        if code > 0:
            return out
        if code == 0:
            return None
        if code == -1:
            raise InputError(f"candle has {values.shape[0]} values, need {len(self.features)} "
                             f"({', '.join(self.features)})")
        raise InputError("candle values must be finite")

    def _push_both(self, values):
        """Push into the return-feature ring (and the min-max ring for ``both``): a window or a code."""
        if values.shape[0] != 5:
            return -1
        if not np.isfinite(values).all():
            return -2
        ret = np.empty(self.window * _r.NR, dtype=np.float32)
        code = _r.push_returns(ret, self._rring, values, self._rstate, self._rf, self._rmean, self._rvar, self._rx)
        if not self._mm:
            return ret if code > 0 else code
        F = len(self.features)
        mm = np.empty(self.window * F, dtype=np.float32)
        code_mm = _k.push_candle(mm, self._ring, values, self._state, self._group)
        if code <= 0 or code_mm <= 0:
            return min(code, code_mm)
        out = np.empty((self.window, F + _r.NR), dtype=np.float32)
        out[:, :F] = mm.reshape(self.window, F)
        out[:, F:] = ret.reshape(self.window, _r.NR)
        return out.reshape(-1)

    def _as_values(self, candle, flatten: bool = False) -> np.ndarray:
        """``candle`` as a C-contiguous float64 (n,) array, or InputError (text is not parsed)."""
        try:
            a = np.asarray(candle)
        except (TypeError, ValueError):          # ragged nesting
            raise InputError("candle values must be real numbers") from None
        if flatten:
            a = a.reshape(-1)
        if a.dtype.kind not in "biufO":
            raise InputError(f"candle values must be real numbers, got dtype {a.dtype}")
        try:
            if a.dtype.kind == "O":              # Decimal, Python numbers; never None or text
                if any(v is None or isinstance(v, (str, bytes)) for v in a.flat):
                    raise TypeError
                a = np.array([float(v) for v in a.flat]).reshape(a.shape)
            a = np.ascontiguousarray(a, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError("candle values must be real numbers") from None
        if a.ndim != 1:
            raise InputError(f"candle must be one row of {len(self.features)} values, got shape "
                             f"{a.shape}")
        return a

    def push(self, candle):
        """Add one closed candle; return the window ending at it once the lookback is full.

        Parameters
        ----------
        candle : mapping, pandas.Series or sequence
            With the feature names as keys (a Series from ``df.iloc[i]`` carries its open time as
            ``.name``; a mapping may hold ``open_time``), or values in feature order.

        Returns
        -------
        ndarray of float32, shape (n_input,), or None
            Bit-identical to the :meth:`transform` row ending at this candle; None until
            ``lookback`` candles have been seen (since the start, a :meth:`reset` or a dropped gap).

        Notes
        -----
        With an open time, a jump larger than the interval is a gap: ``gaps="drop"`` resets the
        buffer; ``gaps="fill"`` first pushes the missing flat candles (their windows are not returned;
        this needs the previous close: a ``close`` feature or key).
        """
        ot = None
        if isinstance(candle, (Mapping, pd.Series)):
            try:
                values = [candle[f] for f in self.features]
            except KeyError as exc:
                raise InputError(f"candle lacks feature {exc.args[0]!r}; give {', '.join(self.features)}") from None
            values = self._as_values(values)
            ot = candle.get("open_time")
            if ot is None and isinstance(candle, pd.Series) and isinstance(candle.name, _dt.datetime):
                ot = candle.name
            close = candle.get("close")
        else:
            values = self._as_values(candle, flatten=True)
            if values.size != len(self.features):
                raise InputError(f"candle has {values.size} values, need {len(self.features)} "
                                 f"({', '.join(self.features)})")
            close = values[self.features.index("close")] if "close" in self.features else None
        if not np.isfinite(values).all():
            raise InputError("candle values must be finite")
        if ot is not None:
            self._check_time(to_ms(ot, "open_time"))
        if close is not None:
            self._last_close = float(close)
        return self.push_array(values)

    def _check_time(self, ms: int) -> None:
        last, self._last_ms = self._last_ms, ms
        if last is None:
            return
        step = ms - last
        if step <= 0:
            self._last_ms = last
            raise DataError(f"candle open time {ms} is not after the previous one {last}")
        ims = self._ims if self._ims is not None else self._min_step
        self._min_step = step if self._min_step is None else min(self._min_step, step)
        if not ims or step <= ims:
            return
        if self.gaps == "drop":
            self._reset_rings()
            return
        if self._last_close is None:
            raise InputError("gaps='fill' needs the previous close to fill a gap; give a close value")
        flat = np.array([0.0 if f == "volume" else self._last_close for f in self.features])
        for _ in range(min(step // ims - 1, self.lookback)):
            self.push_array(flat)
