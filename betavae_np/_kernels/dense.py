"""Elementwise work around a dense layer ``y = act(x @ W + b)``; the matmul itself goes to BLAS.

Activation codes (see ``betavae_np.nn.config.ACTIVATIONS``): 0 identity, 1 relu, 2 tanh,
3 elu (alpha = 1), 4 leaky_relu (slope 0.01). Every derivative is computed from the activation's
*output* ``a`` (relu: ``a > 0``; tanh: ``1 - a^2``; elu: ``a + 1`` where ``a <= 0``; leaky: slope
where ``a <= 0``), so a layer keeps one buffer for both passes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..config import JIT_SERIAL

__all__ = ["bias_act", "act_backward_bias", "col_sum"]

LEAKY_SLOPE = 0.01


@njit(**JIT_SERIAL)
def bias_act(Y, b, act):  # pragma: no cover - compiled
    """In place: ``Y = act(Y + b)``; Y (B, n) C-contiguous, b (n,); act an activation code."""
    B, n = Y.shape
    zero = Y.dtype.type(0.0)       # typed constants keep float32 loops in float32
    slope = Y.dtype.type(LEAKY_SLOPE)
    for r in range(B):
        y = Y[r]
        if act == 1:
            for j in range(n):
                v = y[j] + b[j]
                y[j] = v if v > 0 else zero
        elif act == 2:
            for j in range(n):
                y[j] = np.tanh(y[j] + b[j])
        elif act == 3:
            for j in range(n):
                v = y[j] + b[j]
                y[j] = v if v > 0 else np.expm1(v)
        elif act == 4:
            for j in range(n):
                v = y[j] + b[j]
                y[j] = v if v > 0 else slope * v
        else:
            for j in range(n):
                y[j] = y[j] + b[j]


@njit(**JIT_SERIAL)
def act_backward_bias(dY, db, A, act):  # pragma: no cover - compiled
    """In place ``dY *= act'(.)`` from the output ``A``, then ``db = dY.sum(axis=0)``.

    dY (B, n) gradient w.r.t. the activation output on entry, w.r.t. the pre-activation on exit;
    db (n,) overwritten; A (B, n) the activation output of the forward pass. Two simple passes
    per row (derivative, then column sum) vectorise better than one fused loop.
    """
    B, n = dY.shape
    slope = dY.dtype.type(LEAKY_SLOPE)
    db[:] = 0.0
    for r in range(B):
        d = dY[r]
        a = A[r]
        if act == 1:
            for j in range(n):
                if a[j] <= 0:
                    d[j] = 0
        elif act == 2:
            for j in range(n):
                d[j] = d[j] - d[j] * a[j] * a[j]
        elif act == 3:
            for j in range(n):
                if a[j] <= 0:
                    d[j] = d[j] * a[j] + d[j]
        elif act == 4:
            for j in range(n):
                if a[j] <= 0:
                    d[j] = d[j] * slope
        for j in range(n):
            db[j] += d[j]


@njit(**JIT_SERIAL)
def col_sum(db, G):  # pragma: no cover - compiled
    """``db = G.sum(axis=0)``; db (n,) overwritten, G (B, n)."""
    B, n = G.shape
    db[:] = 0.0
    for r in range(B):
        g = G[r]
        for j in range(n):
            db[j] += g[j]
