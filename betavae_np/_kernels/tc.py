"""beta-TCVAE's minibatch estimators (Chen et al. 2018) and their exact gradients, batch-wide.

With ``z_i = mu_i + exp(logvar_i / 2) eps_i`` for the B rows of a batch, ``N`` the dataset size
and the per-dimension log densities ``l[i,k,j] = log N(z_ij; mu_kj, exp(logvar_kj))``::

    log q(z_i|x_i)      = sum_j l[i,i,j]
    log q(z_i)          ~ logsumexp_k (w_ik + sum_j l[i,k,j])
    sum_j log q(z_ij)   ~ sum_j logsumexp_k (w_ik + l[i,k,j])
    log p(z_i)          = sum_j log N(z_ij; 0, 1)

    MI = mean_i [log q(z_i|x_i) - log q(z_i)]        TC = mean_i [log q(z_i) - sum_j log q(z_ij)]
    KL_dim = mean_i [sum_j log q(z_ij) - log p(z_i)]

The log weights ``w`` (:func:`log_weight`): minibatch weighted sampling (MWS) ``w_ik = -log(N B)``;
minibatch stratified sampling (MSS, M = B - 1) weights the row's own component ``1/N``, one other
(the next row, cyclically) ``(N - M) / (N M)`` and the remaining ``B - 2`` rows ``1/M``, so each
row of weights sums to 1 (Chen et al. 2018, appendix C.2; their code writes ``1/N`` into a column
instead of the diagonal). Every row enters both as an evaluation point ``z_i`` and as a mixture
component ``(mu_k, logvar_k)``: the gradients below run over all pairs, O(B^2 L) time, with
O(B L) scratch in one preallocated float64 buffer ``tcb``:

``M, LV, Z`` (B, L) each, the gathered batch; ``Gq, Gp`` (B, 3L) the gradients of
``mean_i log q(z_i)`` and ``mean_i sum_j log q(z_ij)`` w.r.t. ``[z | mu | logvar]``; ``IV`` (B, L)
``exp(-logvar)``; ``T`` (B, L) one row's scratch; ``a, w`` (B,) and ``sj, mj`` (L,): size
``tc_size(B, L) = 11 B L + 2 B + 2 L``.
"""

from __future__ import annotations

import math

from numba import njit

from ..config import JIT_SERIAL
from .loss import ALPHA, ESTIMATOR, GAMMA, MSS, N_DATA

__all__ = ["tc_size", "tc_gather", "tc_forward", "tc_grad", "log_weight"]

LOG_2PI = math.log(2.0 * math.pi)


def tc_size(B: int, L: int) -> int:
    """Length of the float64 buffer ``tcb`` for batches of up to ``B`` rows."""
    return 11 * B * L + 2 * B + 2 * L


@njit(**JIT_SERIAL)
def tc_gather(tcb, B, L, lo, H, Z):  # pragma: no cover - compiled
    """Copy a row block's ``[mu | logvar]`` (b, 2L) and ``z`` (b, L) to rows ``lo..`` of tcb."""
    BL = B * L
    for r in range(H.shape[0]):
        i = (lo + r) * L
        for j in range(L):
            tcb[i + j] = H[r, j]
            tcb[BL + i + j] = H[r, L + j]
            tcb[2 * BL + i + j] = Z[r, j]


@njit(**JIT_SERIAL)
def log_weight(i, k, B, N, mss):  # pragma: no cover - compiled
    """``w_ik``: log weight of component ``k`` when evaluating row ``i`` (module notes)."""
    if not mss or B < 2:
        return -math.log(N * B)
    if k == i:
        return -math.log(N)
    M = B - 1.0
    if k == (i + 1) % B:
        return math.log((N - M) / (N * M))
    return -math.log(M)


@njit(**JIT_SERIAL)
def tc_forward(lc, lw, B, L, tcb, terms):  # pragma: no cover - compiled
    """MI, TC and dimension-wise KL of the gathered batch into ``terms[2:5]``; the unweighted
    gradients of ``mean log q(z)`` and ``mean sum_j log q(z_j)`` into ``Gq``, ``Gp`` of tcb."""
    N = lw[N_DATA]
    mss = lc[ESTIMATOR] == MSS
    BL = B * L
    oM, oLV, oZ, oGq, oGp, oIV, oT = 0, BL, 2 * BL, 3 * BL, 6 * BL, 9 * BL, 10 * BL
    oa = 11 * BL
    ow = oa + B
    osj = ow + B
    omj = osj + L
    inv_b = 1.0 / B
    for t in range(oGq, oIV):
        tcb[t] = 0.0
    for t in range(BL):
        tcb[oIV + t] = math.exp(-tcb[oLV + t])
    s_condx = s_qz = s_prod = s_pz = 0.0
    for i in range(B):
        zi = oZ + i * L
        # l[i,k,j] into T, the joint log density per component into a
        amax = -math.inf
        for k in range(B):
            wk = log_weight(i, k, B, N, mss)
            tcb[ow + k] = wk
            s = wk
            kk = k * L
            for j in range(L):
                d = tcb[zi + j] - tcb[oM + kk + j]
                t = -0.5 * (LOG_2PI + tcb[oLV + kk + j] + d * d * tcb[oIV + kk + j])
                tcb[oT + kk + j] = t
                s += t
            tcb[oa + k] = s
            if s > amax:
                amax = s
        acc = 0.0
        for k in range(B):
            e = math.exp(tcb[oa + k] - amax)
            tcb[oa + k] = e
            acc += e
        qz = amax + math.log(acc)
        for k in range(B):
            tcb[oa + k] /= acc                       # P[i, k]: softmax of the joint
        # per dimension: logsumexp_k (w_ik + l[i,k,j]); T becomes the softmax R[i, k, j]
        for j in range(L):
            tcb[omj + j] = -math.inf
            tcb[osj + j] = 0.0
        for k in range(B):
            wk = tcb[ow + k]
            kk = k * L
            for j in range(L):
                v = wk + tcb[oT + kk + j]
                if v > tcb[omj + j]:
                    tcb[omj + j] = v
        for k in range(B):
            wk = tcb[ow + k]
            kk = k * L
            for j in range(L):
                e = math.exp(wk + tcb[oT + kk + j] - tcb[omj + j])
                tcb[oT + kk + j] = e
                tcb[osj + j] += e
        prod = 0.0
        for j in range(L):
            prod += tcb[omj + j] + math.log(tcb[osj + j])
        # gradients: dl/dz_ij = -d, dl/dmu_kj = d, dl/dlogvar_kj = (d (z_ij - mu_kj) - 1) / 2
        # with d = (z_ij - mu_kj) exp(-logvar_kj)
        gzq = oGq + i * 3 * L
        gzp = oGp + i * 3 * L
        for k in range(B):
            kk = k * L
            pk = tcb[oa + k] * inv_b
            gq = oGq + k * 3 * L
            gp = oGp + k * 3 * L
            for j in range(L):
                diff = tcb[zi + j] - tcb[oM + kk + j]
                d = diff * tcb[oIV + kk + j]
                dv = 0.5 * (d * diff - 1.0)
                rk = tcb[oT + kk + j] / tcb[osj + j] * inv_b
                tcb[gzq + j] -= pk * d
                tcb[gq + L + j] += pk * d
                tcb[gq + 2 * L + j] += pk * dv
                tcb[gzp + j] -= rk * d
                tcb[gp + L + j] += rk * d
                tcb[gp + 2 * L + j] += rk * dv
        condx = 0.0
        pz = 0.0
        ii = i * L
        for j in range(L):
            d = tcb[zi + j] - tcb[oM + ii + j]
            condx -= 0.5 * (LOG_2PI + tcb[oLV + ii + j] + d * d * tcb[oIV + ii + j])
            pz -= 0.5 * (LOG_2PI + tcb[zi + j] * tcb[zi + j])
        s_condx += condx
        s_qz += qz
        s_prod += prod
        s_pz += pz
    terms[2] = (s_condx - s_qz) * inv_b
    terms[3] = (s_qz - s_prod) * inv_b
    terms[4] = (s_prod - s_pz) * inv_b


@njit(**JIT_SERIAL)
def tc_grad(lw, beta, B, L, tcb, G):  # pragma: no cover - compiled
    """``G`` (>= B, 3L) = d(alpha MI + beta TC + gamma KL_dim)/d[z | mu | logvar] of the last
    :func:`tc_forward` (rows ``:B``, in G's dtype)."""
    alpha = lw[ALPHA]
    gamma = lw[GAMMA]
    BL = B * L
    oM, _oLV, oZ, oGq, oGp, oIV = 0, BL, 2 * BL, 3 * BL, 6 * BL, 9 * BL
    inv_b = 1.0 / B
    cq = beta - alpha           # weight of mean log q(z)
    cp = gamma - beta           # weight of mean sum_j log q(z_j)
    T = G.dtype.type
    for i in range(B):
        g = G[i]
        q = oGq + i * 3 * L
        p = oGp + i * 3 * L
        for j in range(L):
            t = i * L + j
            z = tcb[oZ + t]
            diff = z - tcb[oM + t]
            d = diff * tcb[oIV + t]
            # alpha * d mean log q(z|x) and -gamma * d mean log p(z), own row only
            gz = inv_b * (-alpha * d + gamma * z)
            gm = inv_b * alpha * d
            gl = inv_b * alpha * 0.5 * (d * diff - 1.0)
            g[j] = T(gz + cq * tcb[q + j] + cp * tcb[p + j])
            g[L + j] = T(gm + cq * tcb[q + L + j] + cp * tcb[p + L + j])
            g[2 * L + j] = T(gl + cq * tcb[q + 2 * L + j] + cp * tcb[p + 2 * L + j])
