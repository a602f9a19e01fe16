"""The latent panel: every symbol's windows encoded, one row per (time, symbol).

``panel = bv.encode_panel(model, {"BTCUSDT": df_btc, "ETHUSDT": df_eth})`` windows each symbol on
its own with the model's windower (as in training), gathers the windows in chunks straight into one
buffer and runs the encoder on each chunk into buffers made once (``model.encode``'s arithmetic,
bit for bit). Symbols may start and end at
different times: a symbol has a row at ``t`` only where a window of its own ends at ``t``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..exceptions import ConfigError

__all__ = ["encode_panel", "encode_windows", "panel_windows"]

#: Windows gathered and encoded per call: 4,096 windows of 160 float32 values (2.5 MiB) and the
#: layers' outputs stay in the L2/L3 cache between the gather and the matrix products.
CHUNK = 4_096


class _ChunkEncoder:
    """``model.encode``'s arithmetic on chunks of rows, into buffers made once.

    The same products (``np.matmul`` of the same operands, the fused ``[mu | logvar]`` head) and
    the same bias + activation kernel as :meth:`BetaVAE.encode`, so the values are the same bit
    for bit; only the per-call allocations, input checks and output copies are gone.
    """

    def __init__(self, model, rows: int):
        from .._kernels.dense import bias_act

        self._bias_act = bias_act
        n_enc = model._n_enc
        self._layers = list(model._layers[:n_enc + 1])    # hidden layers, then the fused heads
        self._acts = [model._act] * n_enc + [0]            # heads are linear
        self._out = [np.empty((rows, W.shape[1]), dtype=model.dtype) for W, _ in self._layers]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x (b, n_input) model dtype, finite -> H (b, 2*n_latent) ``[mu | logvar]`` (a view of a
        buffer overwritten by the next call)."""
        b, h = x.shape[0], x
        for (W, bias), act, buf in zip(self._layers, self._acts, self._out):
            y = buf[:b]
            np.matmul(h, W, out=y)
            self._bias_act(y, bias, act)
            h = y
        return h


def panel_windows(model, frames, *, on_notice=None):
    """Every symbol of ``frames`` windowed as ``model`` expects.

    Parameters
    ----------
    model : BetaVAE
        With a windowing record (trained by :func:`betavae_np.train` or ``fit(..., windower=w)``).
    frames : mapping of str to pandas.DataFrame, Universe, or UniverseWindowSet
        Candles per symbol (frame convention, one interval); a window set is used as it is.
    on_notice : callable(str), optional
        Told about symbols skipped (too few candles for one window).

    Returns
    -------
    UniverseWindowSet
    """
    from ..data.universe import Universe, load_universe
    from ..data.window_set import UniverseWindowSet
    from ..workflow import model_windower

    if isinstance(frames, UniverseWindowSet):
        return frames
    windower = model_windower(model)
    uni = frames if isinstance(frames, Universe) else load_universe(frames, on_notice=on_notice)
    return uni.windows(windower, on_notice=on_notice)


def encode_windows(model, windows, *, logvar: bool = False, chunk: int = CHUNK, extra=None):
    """Posterior means (and log-variances) of every window of a window source, in its order.

    Parameters
    ----------
    model : BetaVAE
    windows : WindowSet or UniverseWindowSet (anything with ``shape`` and ``gather``)
    logvar : bool
        Also return the log-variances.
    chunk : int
        Windows gathered and encoded per call.
    extra : callable(ndarray (b, n_input), slice), optional
        Called with every gathered chunk and its rows (e.g. to project it on PCA components)
        before it is overwritten.

    Returns
    -------
    mu : ndarray, shape (n, n_latent), model dtype
    logvar : ndarray, shape (n, n_latent), or None
    seconds : float
        Wall time of gathering and encoding.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ConfigError(f"chunk must be a positive integer, got {chunk!r}")
    n, k = windows.shape[0], model.config.n_latent
    dt = np.dtype(model.dtype)
    cap = int(min(chunk, max(n, 1)))
    mu = np.empty((n, k), dtype=dt)
    lv = np.empty((n, k), dtype=dt) if logvar else None
    buf = np.empty((cap, windows.shape[1]), dtype=dt)   # (chunk, n_input) gathered windows
    encode = _ChunkEncoder(model, cap)
    base = np.arange(cap, dtype=np.int64)
    rows = np.empty(cap, dtype=np.int64)
    t0 = time.perf_counter()
    for lo in range(0, n, cap):
        hi = min(lo + cap, n)
        xb, r = buf[:hi - lo], rows[:hi - lo]
        np.add(base[:hi - lo], lo, out=r)
        windows.gather(r, xb)          # finite by construction (validated candles)
        H = encode(xb)                 # (b, 2k) [mu | logvar]
        mu[lo:hi] = H[:, :k]
        if lv is not None:
            lv[lo:hi] = H[:, k:]
        if extra is not None:
            extra(xb, slice(lo, hi))
    return mu, lv, time.perf_counter() - t0


def encode_panel(model, frames, *, logvar: bool = False, chunk: int = CHUNK, on_notice=None) -> pd.DataFrame:
    """The latent panel of many symbols: posterior means per (time, symbol).

    Parameters
    ----------
    model : BetaVAE
        Trained with a windowing record (:func:`betavae_np.train`, or ``fit(..., windower=w)``).
    frames : mapping of str to pandas.DataFrame, Universe, or UniverseWindowSet
        Candles per symbol (one interval); each symbol is windowed and normalised on its own
        with the model's windower, exactly as in training.
    logvar : bool
        Also add the posterior log-variances as columns ``logvar_0..``.
    chunk : int
        Windows gathered and encoded per call.
    on_notice : callable(str), optional
        Told about symbols skipped because no window fits them.

    Returns
    -------
    pandas.DataFrame, shape (n_windows, n_latent[*2])
        Index ``(time, symbol)``: ``time`` is the open time of the window's last candle (the
        factor is known when that candle closes), sorted by time, then symbols in universe order. Columns ``z0..``
        (posterior means, model dtype), then ``logvar_0..`` on request.
        ``attrs["betavae_np"]`` holds ``windows``, ``symbols``, ``seconds`` (gather + encode) and
        ``windows_per_second``.

    Notes
    -----
    A row at ``t`` depends on candles up to ``t`` only (the windowing is causal), so the panel
    can be joined with forward returns from ``t+1`` on without look-ahead.
    """
    ws = panel_windows(model, frames, on_notice=on_notice)
    mu, lv, seconds = encode_windows(model, ws, logvar=logvar, chunk=chunk)
    return _frame(ws, mu, lv, seconds)


def _frame(ws, mu, lv, seconds) -> pd.DataFrame:
    k = mu.shape[1]
    data = {f"z{j}": mu[:, j] for j in range(k)}
    if lv is not None:
        data.update({f"logvar_{j}": lv[:, j] for j in range(k)})
    sym = pd.Categorical.from_codes(ws.codes, categories=list(ws.symbols))
    idx = pd.MultiIndex.from_arrays([ws.end_times.rename(None), sym], names=["time", "symbol"])
    out = pd.DataFrame(data, index=idx)
    order = np.lexsort((ws.codes, ws.end_times.asi8))
    out = out.iloc[order]
    n = mu.shape[0]
    out.attrs["betavae_np"] = {"windows": n, "symbols": list(ws.symbols), "seconds": seconds,
                               "windows_per_second": n / seconds if seconds > 0 else float("inf")}
    return out
