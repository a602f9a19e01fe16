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


# --- windows (DATA-WINDOWS) ----------------------------------------------------------------------
def ref_windows(values, window, lookback, features, log_volume=True, ends=None, none=False):
    """Causally normalised windows straight from the definition (loops and np.min over slices).

    values (n, F) raw feature values in ``features`` order; returns (len(ends), window*F) float32,
    rows for every end t >= lookback-1 (or the given ``ends``).
    """
    x = np.array(values, dtype=np.float64)
    feats = list(features)
    if "volume" in feats and log_volume:
        x[:, feats.index("volume")] = np.log1p(x[:, feats.index("volume")])
    price = [i for i, f in enumerate(feats) if f in ("open", "high", "low", "close")]
    vol = [i for i, f in enumerate(feats) if f == "volume"]
    need = window if none else lookback
    if ends is None:
        ends = range(need - 1, x.shape[0])
    rows = []
    for t in ends:
        win = x[t - window + 1:t + 1]
        past = x[max(0, t - lookback + 1):t + 1]
        row = np.empty_like(win)
        for cols in (price, vol):
            if not cols:
                continue
            lo, hi = np.min(past[:, cols]), np.max(past[:, cols])
            if none:
                row[:, cols] = win[:, cols]
            elif hi > lo:
                row[:, cols] = np.clip((win[:, cols] - lo) * (1.0 / (hi - lo)), 0.0, 1.0)
            else:
                row[:, cols] = 0.5
        rows.append(row.reshape(-1))
    return np.array(rows, dtype=np.float32).reshape(len(rows), window * len(feats))


def ref_rolling_minmax(x, lookback):
    """(min, max) of x[t-lookback+1 .. t] for every t (shorter at the start)."""
    x = np.asarray(x, dtype=np.float64)
    lo = np.array([x[max(0, t - lookback + 1):t + 1].min() for t in range(x.size)])
    hi = np.array([x[max(0, t - lookback + 1):t + 1].max() for t in range(x.size)])
    return lo, hi
