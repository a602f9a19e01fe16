"""The loss stage: per-row likelihood and KL terms of a row block, their gradients w.r.t. ``x_hat``.

A loss reaches the kernels as a small spec (:mod:`betavae_np.losses` builds it), so kernels stay
cacheable on disk (no function arguments):

``lc`` : int64 (4,)
    ``lc[KIND]`` 0 beta-VAE (closed-form KL), 1 beta-TCVAE (:mod:`.tc`); ``lc[RECON]`` 0 sse,
    1 gaussian with a fixed sigma, 2 gaussian with a learned log-sigma per input feature;
    ``lc[ESTIMATOR]`` 0 MWS, 1 MSS; ``lc[LS_OFF]`` offset of the log-sigma block in the parameter
    buffer (-1 when sigma is not learned).
``lw`` : float64 (4,)
    ``lw[SIGMA]`` fixed sigma; ``lw[N_DATA]`` dataset size N (TC-VAE); ``lw[ALPHA]`` the MI
    weight and ``lw[GAMMA]`` the dimension-wise KL weight (TC-VAE). The scheduled weight (beta
    of the KL or of the TC term) is passed to the backward pass on its own, per step.

Notes
-----
Per sample, with ``d = x_hat - x`` over the ``n`` inputs (Bishop 2006, eq. 1.62 for the Gaussian
negative log-likelihood in nats)::

    sse:       recon = sum_i d_i^2
    gaussian:  recon = sum_i d_i^2 / (2 sigma_i^2) + log sigma_i + log(2 pi) / 2

With sigma fixed, or ``log sigma_i`` a parameter per feature (learned). The gradients of the
batch mean are ``2 d / B`` (sse) and ``d / (sigma^2 B)`` (gaussian); for the learned log-sigma
``sum_rows (1 - d^2 / sigma^2) / B``.
"""

from __future__ import annotations

import math

from numba import njit

from ..config import JIT_SERIAL

__all__ = ["KIND", "RECON", "ESTIMATOR", "LS_OFF", "SIGMA", "N_DATA", "ALPHA", "GAMMA",
           "BETAVAE", "TCVAE", "SSE", "GAUSSIAN", "GAUSSIAN_LEARNED", "MWS", "MSS",
           "recon_block", "kl_block", "sigma_weights"]

from .loss_codes import (ALPHA, BETAVAE, ESTIMATOR, GAMMA, GAUSSIAN, GAUSSIAN_LEARNED, KIND,  # noqa: F401
                         LS_OFF, MSS, MWS, N_DATA, RECON, SIGMA, SSE, TCVAE)

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@njit(**JIT_SERIAL)
def sigma_weights(sw, params, off):  # pragma: no cover - compiled
    """``sw[i] = exp(-2 log sigma_i)`` (float64 (n,)) from the log-sigma block at ``params[off:]``."""
    for i in range(sw.shape[0]):
        sw[i] = math.exp(-2.0 * float(params[off + i]))


@njit(**JIT_SERIAL)
def recon_block(lc, lw, Y, X, scale, params, sw, gls):  # pragma: no cover - compiled
    """Reconstruction term of a row block; turns ``x_hat`` into ``scale * dloss/dx_hat``.

    Parameters
    ----------
    lc, lw : ndarray
        The loss spec (module notes).
    Y : ndarray (b, n)
        In: ``x_hat``; out: ``scale`` times the gradient of the per-sample recon w.r.t. ``x_hat``.
    X : ndarray (b, n)
        The inputs.
    scale : float
        ``1 / B`` of the whole batch.
    params : ndarray (P,)
        Parameter buffer (read for the learned log-sigma).
    sw : float64 ndarray (n,)
        ``exp(-2 log sigma)`` per feature (learned sigma only, filled by :func:`sigma_weights`).
    gls : float64 ndarray (n,)
        Learned sigma only: ``scale * sum_rows dloss/dlog sigma`` is *added* to it.

    Returns
    -------
    float
        Mean over the block's rows of the per-sample recon (accumulated in float64).
    """
    B, n = Y.shape
    total = 0.0
    code = lc[RECON]
    if code == SSE or code == GAUSSIAN:
        # dloss/dx_hat = g * (x_hat - x): g = 2 scale for SSE, scale / sigma^2 for the Gaussian
        sigma = lw[SIGMA]
        g = Y.dtype.type(2.0 * scale) if code == SSE else Y.dtype.type(scale / (sigma * sigma))
        for r in range(B):
            y = Y[r]
            x = X[r]
            acc = 0.0
            for j in range(n):
                dlt = y[j] - x[j]
                acc += dlt * dlt
                y[j] = g * dlt
            total += acc
        if code == SSE:
            return total / B
        return total / (2.0 * sigma * sigma * B) + n * (math.log(sigma) + HALF_LOG_2PI)
    # learned log-sigma per feature
    off = lc[LS_OFF]
    T = Y.dtype.type
    const = 0.0
    for j in range(n):
        const += float(params[off + j]) + HALF_LOG_2PI
    for r in range(B):
        y = Y[r]
        x = X[r]
        acc = 0.0
        for j in range(n):
            dlt = float(y[j] - x[j])
            q = dlt * dlt * sw[j]
            acc += q
            gls[j] += scale * (1.0 - q)
            y[j] = T(scale * dlt * sw[j])
        total += acc
    return 0.5 * total / B + const


@njit(**JIT_SERIAL)
def kl_block(H, S, klp):  # pragma: no cover - compiled
    """Closed-form KL(q(z|x) || N(0, I)) of a row block; returns its row mean.

    H (b, 2L) ``[mu | logvar]``; S (b, L) ``exp(0.5 logvar)``; klp float64 (L,) out: row-mean KL per
    dimension, ``-0.5 (1 + logvar - mu^2 - exp(logvar))`` (Kingma & Welling 2014, appendix B).
    """
    B, L = S.shape
    klp[:] = 0.0
    for r in range(B):
        h = H[r]
        s = S[r]
        for j in range(L):
            m = h[j]
            lv = h[L + j]
            sd = s[j]
            klp[j] += -0.5 * (1.0 + lv - m * m - sd * sd)
    total = 0.0
    for j in range(L):
        klp[j] /= B
        total += klp[j]
    return total
