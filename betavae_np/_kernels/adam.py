"""Adam / AdamW update over flat parameter buffers: one compiled call per optimisation step."""

from __future__ import annotations

import math

from numba import njit

from ..config import JIT_SERIAL


@njit(**JIT_SERIAL)
def adam_step(params, m, v, grads, lr, beta1, beta2, eps, weight_decay, clip_norm, bc1, bc2):
    """One Adam(W) step in place; returns the global L2 norm of ``grads`` (before clipping).

    Parameters
    ----------
    params, m, v : ndarray (P,)
        Parameters and the first/second moment estimates, updated in place (same dtype).
    grads : ndarray (P,)
        Gradient of the loss; not modified.
    lr, beta1, beta2, eps, weight_decay : float
        Adam hyper-parameters; ``weight_decay`` is decoupled (AdamW).
    clip_norm : float
        Global gradient-norm threshold; ``<= 0`` disables clipping.
    bc1, bc2 : float
        Bias corrections ``1 - beta1**t`` and ``1 - beta2**t`` for the step number ``t >= 1``.

    Returns
    -------
    float
        ``||grads||_2``. When clipping is on and the norm is not finite, nothing is updated.

    Notes
    -----
    With ``s = min(1, clip_norm / ||g||)`` (1 without clipping) and ``g' = s g``::

        p <- p - lr * weight_decay * p            (decoupled decay, Loshchilov & Hutter 2019)
        m <- beta1 m + (1 - beta1) g'
        v <- beta2 v + (1 - beta2) g'^2
        p <- p - lr * (m / bc1) / (sqrt(v / bc2) + eps)     (Kingma & Ba 2015, Alg. 1)

    Without clipping the norm is accumulated in the same pass as the update (one sweep over
    memory); with clipping it needs a first pass of its own. The elementwise update runs in the
    buffers' dtype (float32 SIMD for float32 models); the norm always accumulates in float64.
    """
    n = params.shape[0]
    T = params.dtype.type            # do the elementwise math in the buffer's dtype (SIMD width)
    sq = 0.0                         # the norm accumulates in float64
    clipping = clip_norm > 0.0
    norm = 0.0
    scale = T(1.0)
    if clipping:
        for i in range(n):
            g = float(grads[i])
            sq += g * g
        norm = math.sqrt(sq)
        if not math.isfinite(norm):
            return norm
        if norm > clip_norm:
            scale = T(clip_norm / norm)
    decay = T(1.0 - lr * weight_decay)
    step = T(lr / bc1)
    inv_bc2 = T(1.0 / bc2)
    b1 = T(beta1)
    b2 = T(beta2)
    one_m_b1 = T(1.0 - beta1)
    one_m_b2 = T(1.0 - beta2)
    eps_t = T(eps)
    if clipping:
        for i in range(n):
            g = grads[i] * scale
            mi = b1 * m[i] + one_m_b1 * g                          # first moment
            vi = b2 * v[i] + one_m_b2 * g * g                      # second moment
            m[i] = mi
            v[i] = vi
            params[i] = params[i] * decay - step * mi / (math.sqrt(vi * inv_bc2) + eps_t)
        return norm
    # no clipping: the same update with the norm accumulated alongside, in a loop of its own so
    # that no branch sits inside it (~10% faster than testing ``clipping`` per element)
    for i in range(n):
        g = grads[i]
        gd = float(g)
        sq += gd * gd                                              # float64 norm
        mi = b1 * m[i] + one_m_b1 * g
        vi = b2 * v[i] + one_m_b2 * g * g
        m[i] = mi
        v[i] = vi
        params[i] = params[i] * decay - step * mi / (math.sqrt(vi * inv_bc2) + eps_t)
    return math.sqrt(sq)
