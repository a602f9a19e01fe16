"""VAE elementwise kernels: the heads, the reparameterisation and their backward.

The two heads share one matmul: ``H = h @ [W_mu | W_logvar]`` of shape (B, 2L), so
``mu = H[:, :L]`` and ``logvar = H[:, L:]``.

The loss terms themselves are computed by the loss stage (:mod:`.loss`, :mod:`.tc`).

Notes
-----
Reparameterisation (Kingma & Welling 2014, eq. 10): ``z = mu + exp(0.5 * logvar) * eps``.
KL to N(0, I) (ibid., appendix B): ``kl = -0.5 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))``.
Gradients of ``mean(recon) + beta * mean(kl)`` (Higgins et al. 2017) with ``s = exp(0.5 logvar)``::

    dmu     = dz + beta * mu / B
    dlogvar = dz * eps * s / 2 + beta * (s^2 - 1) / (2 B)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..config import JIT_SERIAL

__all__ = ["heads_sample", "heads_backward"]


@njit(**JIT_SERIAL)
def heads_sample(Z, S, H, hb, eps):  # pragma: no cover - compiled
    """Add the head biases and sample ``z = mu + exp(0.5 logvar) * eps``.

    Z (B, L) out: ``mu + s * eps``; S (B, L) out: ``s = exp(0.5 logvar)``; H (B, 2L) in/out:
    ``h @ W_heads`` on entry, ``[mu | logvar]`` on exit; hb (2L,) head biases; eps (B, L) standard
    normal noise.
    """
    B, L = Z.shape
    half = Z.dtype.type(0.5)       # keeps exp in the model dtype (expf for float32)
    for r in range(B):
        h = H[r]
        z = Z[r]
        s = S[r]
        e = eps[r]
        for j in range(L):
            m = h[j] + hb[j]
            lv = h[L + j] + hb[L + j]
            h[j] = m
            h[L + j] = lv
            sd = np.exp(half * lv)
            s[j] = sd
            z[j] = m + sd * e[j]


@njit(**JIT_SERIAL)
def heads_backward(dH, dhb, dZ, H, S, eps, beta, inv_b, G, add):  # pragma: no cover - compiled
    """Gradient through the reparameterisation and ``beta`` x KL into the head pre-activations.

    dH (B, 2L) out: ``[dmu | dlogvar]``; dhb (2L,) out: its column sums; dZ (B, L) gradient of the
    batch-mean reconstruction w.r.t. ``z``; H (B, 2L) ``[mu | logvar]``;
    S (B, L) ``exp(0.5 logvar)``; eps (B, L); beta the weight of the closed-form KL (any finite
    value: the capacity schedule passes -gamma; 0 for losses without it); inv_b = 1 / B;
    G (B, 3L) the loss stage's additive gradient ``[dloss/dz | dloss/dmu | dloss/dlogvar]``
    (batch-mean scale), read only when ``add`` is true.

    The closed-form KL is differentiated here rather than in the loss stage: its gradient is
    fused with ``dz`` in one rounding (``dz + c * mu`` becomes one FMA), which keeps the default
    loss bit-identical to the step it replaced.
    """
    B, L = dZ.shape
    c = dH.dtype.type(beta * inv_b)
    half = dH.dtype.type(0.5)
    one = dH.dtype.type(1.0)
    dhb[:] = 0.0
    if add:
        for r in range(B):
            d = dH[r]
            h = H[r]
            dz = dZ[r]
            s = S[r]
            e = eps[r]
            g = G[r]
            for j in range(L):
                dzj = dz[j] + g[j]
                gm = dzj + c * h[j] + g[L + j]
                gl = half * (dzj * e[j] * s[j] + c * (s[j] * s[j] - one)) + g[2 * L + j]
                d[j] = gm
                d[L + j] = gl
                dhb[j] += gm
                dhb[L + j] += gl
        return
    for r in range(B):
        d = dH[r]
        h = H[r]
        dz = dZ[r]
        s = S[r]
        e = eps[r]
        for j in range(L):
            gm = dz[j] + c * h[j]
            gl = half * (dz[j] * e[j] * s[j] + c * (s[j] * s[j] - one))
            d[j] = gm
            d[L + j] = gl
            dhb[j] += gm
            dhb[L + j] += gl
