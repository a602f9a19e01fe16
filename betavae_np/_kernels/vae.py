"""VAE elementwise kernels: heads + reparameterisation + KL, and the reconstruction loss.

The two heads share one matmul: ``H = h @ [W_mu | W_logvar]`` of shape (B, 2L), so
``mu = H[:, :L]`` and ``logvar = H[:, L:]``.

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

__all__ = ["heads_forward", "heads_backward", "recon_forward"]


@njit(**JIT_SERIAL)
def heads_forward(Z, S, kl_per_dim, H, hb, eps):  # pragma: no cover - compiled
    """Add the head biases, sample ``z`` and compute the KL; returns the batch-mean KL.

    Z (B, L) out: ``mu + s * eps``; S (B, L) out: ``s = exp(0.5 logvar)``; kl_per_dim (L,) float64
    out: batch-mean KL per dimension; H (B, 2L) in/out: ``h @ W_heads`` on entry, ``[mu | logvar]``
    on exit; hb (2L,) head biases; eps (B, L) standard normal noise.
    """
    B, L = Z.shape
    half = Z.dtype.type(0.5)       # keeps exp in the model dtype (expf for float32)
    kl_per_dim[:] = 0.0
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
            kl_per_dim[j] += -0.5 * (1.0 + lv - m * m - sd * sd)
    total = 0.0
    for j in range(L):
        kl_per_dim[j] /= B
        total += kl_per_dim[j]
    return total


@njit(**JIT_SERIAL)
def heads_backward(dH, dhb, dZ, H, S, eps, beta, inv_b):  # pragma: no cover - compiled
    """Gradient through the reparameterisation and ``beta`` x KL into the head pre-activations.

    dH (B, 2L) out: ``[dmu | dlogvar]``; dhb (2L,) out: its column sums; dZ (B, L) gradient of the
    batch-mean reconstruction w.r.t. ``z``; H (B, 2L) ``[mu | logvar]``;
    S (B, L) ``exp(0.5 logvar)``; eps (B, L); beta the KL weight (any finite value: the capacity
    schedule passes -gamma); inv_b = 1 / B.
    """
    B, L = dZ.shape
    c = dH.dtype.type(beta * inv_b)
    half = dH.dtype.type(0.5)
    one = dH.dtype.type(1.0)
    dhb[:] = 0.0
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


@njit(**JIT_SERIAL)
def recon_forward(Y, b, X, scale):  # pragma: no cover - compiled
    """Add the output bias, compute ``sum (x_hat - x)^2`` and turn Y into its scaled gradient.

    Y (B, n) in/out: ``h @ W_out`` on entry, ``scale * 2 * (x_hat - x)`` on exit (with
    ``scale = 1/B`` this is the gradient of the batch-mean reconstruction w.r.t. ``x_hat``);
    b (n,); X (B, n). Returns the batch-mean ``sum (x_hat - x)^2`` (accumulated in float64).
    """
    B, n = Y.shape
    total = 0.0
    two = Y.dtype.type(2.0 * scale)
    for r in range(B):
        y = Y[r]
        x = X[r]
        acc = 0.0
        for j in range(n):
            dlt = y[j] + b[j] - x[j]
            acc += dlt * dlt
            y[j] = two * dlt
        total += acc
    return total / B
