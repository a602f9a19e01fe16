"""Single-window encoder: the whole encoder MLP in one compiled call (live trading, every candle).

The layer layout comes as a small int64 table ``layers`` of shape (n_layers, 4) with rows
``(W offset, b offset, n_in, n_out)`` into the flat parameter buffer; the last row is the fused
heads layer ``[W_mu | W_logvar]`` (n_in, 2L). Loops run the contiguous output index innermost
(``y[j] += x[i] * W[i, j]``) so LLVM vectorises them.

:func:`encode_one` works in a scratch buffer it is given; :func:`encode_one_local` allocates that
buffer for each call, so concurrent calls (the kernels release the GIL) share no memory but the
read-only parameters. The allocation costs less than the timing noise of a ~3 us call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..config import JIT_SERIAL

__all__ = ["encode_one", "encode_one_local"]


@njit(**JIT_SERIAL)
def encode_one(mu, logvar, scratch, x, params, layers, act):  # pragma: no cover - compiled
    """Encode one window; returns 0, or 1 when ``x`` has a non-finite value, 2 on a size mismatch
    (of ``x``, the outputs, or a scratch shorter than twice the widest layer).

    Nothing is written unless the return value is 0.

    mu, logvar (L,) out; scratch (2 * max_width,) work buffer; x (n_input,); params the flat
    parameter buffer; layers (n_layers, 4) int64 table; act the hidden activation code.
    """
    n0 = x.shape[0]
    L = mu.shape[0]
    n_last = layers.shape[0] - 1
    if n0 != layers[0, 2] or L != logvar.shape[0] or 2 * L != layers[n_last, 3]:
        return 2
    chk = 0.0
    for i in range(n0):
        chk += x[i] * 0.0
    if not np.isfinite(chk):
        return 1
    n_layers = layers.shape[0]
    half = scratch.shape[0] // 2
    for k in range(n_layers):
        if layers[k, 3] > half:
            return 2
    zero = scratch.dtype.type(0.0)
    slope = scratch.dtype.type(0.01)
    src = scratch[:half]       # input of the current layer (x for the first)
    dst = scratch[half:]
    n_in = n0
    for k in range(n_layers):
        w_off = layers[k, 0]
        b_off = layers[k, 1]
        n_in = layers[k, 2]
        n_out = layers[k, 3]
        y = dst[:n_out]
        b = params[b_off:b_off + n_out]
        for j in range(n_out):
            y[j] = b[j]
        inp = x if k == 0 else src
        i4 = n_in - n_in % 4
        for i in range(0, i4, 4):              # 4 rows of W per pass: y loaded/stored once
            r = w_off + i * n_out
            x0 = inp[i]
            x1 = inp[i + 1]
            x2 = inp[i + 2]
            x3 = inp[i + 3]
            w0 = params[r:r + n_out]
            w1 = params[r + n_out:r + 2 * n_out]
            w2 = params[r + 2 * n_out:r + 3 * n_out]
            w3 = params[r + 3 * n_out:r + 4 * n_out]
            for j in range(n_out):
                y[j] += x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j]
        for i in range(i4, n_in):
            xi = inp[i]
            w = params[w_off + i * n_out:w_off + (i + 1) * n_out]
            for j in range(n_out):
                y[j] += xi * w[j]
        if k < n_layers - 1:
            if act == 1:
                for j in range(n_out):
                    v = y[j]
                    y[j] = v if v > 0 else zero
            elif act == 2:
                for j in range(n_out):
                    y[j] = np.tanh(y[j])
            elif act == 3:
                for j in range(n_out):
                    v = y[j]
                    y[j] = v if v > 0 else np.expm1(v)
            elif act == 4:
                for j in range(n_out):
                    v = y[j]
                    y[j] = v if v > 0 else slope * v
        src, dst = dst, src
    for j in range(L):
        mu[j] = src[j]
        logvar[j] = src[L + j]
    return 0


@njit(**JIT_SERIAL)
def encode_one_local(mu, logvar, x, params, layers, act, n_scratch):  # pragma: no cover - compiled
    """:func:`encode_one` with a scratch buffer of ``n_scratch`` elements made for this call.

    Safe to run from several threads at once as long as each call has its own ``mu``/``logvar``.
    """
    scratch = np.empty(n_scratch, mu.dtype)
    return encode_one(mu, logvar, scratch, x, params, layers, act)
