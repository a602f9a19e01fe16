"""Slow, obviously correct plain-NumPy references for every kernel (``ref_*``).

Tests compare the compiled kernels (``comp``) against these (``ref``). Keep each function short and
written straight from the math; no Numba here.
"""

from __future__ import annotations

import numpy as np


# --- CORE-TRAIN: optimiser and schedules ----------------------------------------------------------

def ref_adam_step(params, m, v, grads, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                  clip_norm=None):
    """AdamW step ``t`` (from 1) written from the paper in float64; returns new (params, m, v, norm)."""
    p, m, v, g = (np.asarray(a, dtype=np.float64) for a in (params, m, v, grads))
    b1, b2 = betas
    norm = float(np.sqrt(np.sum(g * g)))
    if clip_norm is not None and norm > clip_norm:
        g = g * (clip_norm / norm)
    p = p * (1.0 - lr * weight_decay)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, m, v, norm


def ref_beta(name, step, total, beta=1.0, warmup=0.2, cycles=4, ratio=0.5):
    """Beta at 0-based optimisation ``step`` of ``total``, straight from each schedule's formula."""
    if name == "constant":
        return beta
    if name == "linear":
        w = warmup * total
        return beta if w == 0 or step >= w else beta * step / w
    if name == "cyclical":
        period = total / cycles
        tau = (step - period * np.floor(step / period)) / period
        return beta if tau >= ratio else beta * tau / ratio
    if name == "warmup":
        w = warmup * total
        if step < w:
            return 0.0
        last = total - 1
        return beta if last <= w else beta * (step - w) / (last - w)
    raise ValueError(name)
