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
component ``(mu_k, logvar_k)``.

Computation
-----------
O(B^2 L) time, O(B L) memory (:func:`tc_shape`: 165 KiB at B = 256, L = 8 in float32, made once
per workspace), in the model's dtype (float32 runs 8 SIMD lanes on AVX2). Per evaluation row
``i`` (:func:`tc_rows`), one pass over the components ``k`` per dimension computes ``l[i,k,j]``
(contiguous in ``k``: the components are stored dimension-major), its exponential
(:func:`.fastexp.fexp`, vectorised) and the joint sums ``sum_j l``; a second pass accumulates the
gradient terms with the softmax weights just made (nothing is recomputed in the backward, which
only weighs and adds, :func:`tc_grad`). Each logsumexp is shifted by the row's own component
(``k = i``, known before the pass, so every sum is at least 1 and no pass for the maximum is
needed); a row whose sums overflow that way (log densities spread beyond ~88 nats in float32) is
redone with the maximum as the shift. Sums over ``k`` go through :func:`.rowsum.row_sum` (a fixed
lane order) and the loops that call it are compiled without reassociation, so the bits do not
depend on how LLVM vectorised a copy of the kernel (a cached and a freshly compiled step agree).
The rows are split into ``nb`` blocks (the step's chunks) that run on separate threads, each with
its own accumulators, summed in block order afterwards: results do not depend on the thread
count.

Gradients, with ``d = (z_ij - mu_kj) exp(-logvar_kj)``: ``dl/dz_ij = -d``, ``dl/dmu_kj = d``,
``dl/dlogvar_kj = (d (z_ij - mu_kj) - 1) / 2``; the softmax weights ``P[i,k]`` (joint) and
``R[i,k,j]`` (per dimension) carry them to ``mean_i log q(z_i)`` and ``mean_i sum_j log q(z_ij)``.

Buffer ``tcb`` (model dtype), shape :func:`tc_shape` ``(8 L + 3 + nb (5 L + 9), max(B, L + 1))``,
addressed by rows (a row is a contiguous vector over components ``k`` or rows ``i``; offsets from
:func:`_rows`): shared ``MU, LV, IV = exp(-logvar), CC = -(log 2 pi + logvar) / 2, HH = -IV / 2``,
``Z`` and ``GZQ, GZP`` (the z-gradients of the two log-means), L rows each, dimension-major
(``MU[j, k]``, ``Z[j, i]``); ``RT`` 3 rows: per evaluation row the MI, TC and dimension-wise KL
terms; then per block ``T`` (L + 4 rows) the row's exponentials, then scratch rows: the joint
log densities, the two z-gradient terms before their sums, the joint exponentials;
``GQM, GQV, GPM, GPV`` (L rows each) the mu- and (twice the) logvar-gradients, and rows ``w, a``
(B,), ``s`` (L + 1,), ``m, z`` (L,).
"""

from __future__ import annotations

import math

from numba import njit

from ..config import JIT_EXACT, JIT_SERIAL
from .fastexp import fexp
from .loss import ALPHA, ESTIMATOR, GAMMA, MSS, N_DATA
from .rowsum import row_sum

__all__ = ["tc_shape", "tc_gather", "tc_prepare", "tc_rows", "tc_terms", "tc_forward", "tc_grad",
           "log_weight"]

LOG_2PI = math.log(2.0 * math.pi)


def tc_shape(B: int, L: int, nb: int) -> tuple[int, int]:
    """Shape of the buffer ``tcb`` for batches of up to ``B`` rows in ``nb`` blocks.

    ``(8 L + 3 + nb (5 L + 9), max(B, L + 1))``: for B = 256, L = 8 and two blocks, 165 x 256
    values (165 KiB in float32).
    """
    return 8 * L + 3 + nb * (5 * L + 9), max(B, L + 1)


@njit(**JIT_SERIAL)
def _rows(L):  # pragma: no cover - compiled
    """First rows of MU, LV, IV, CC, HH, Z, GZQ, GZP, RT and of block 0."""
    return 0, L, 2 * L, 3 * L, 4 * L, 5 * L, 6 * L, 7 * L, 8 * L, 8 * L + 3


@njit(**JIT_SERIAL)
def _block_rows(c, L):  # pragma: no cover - compiled
    """First rows of block ``c``'s T (L + 4 rows), GQM, GQV, GPM, GPV and its rows w, a, s, m
    (z follows m)."""
    o = 8 * L + 3 + c * (5 * L + 9)
    return o, o + L + 4, o + 2 * L + 4, o + 3 * L + 4, o + 4 * L + 4, o + 5 * L + 4, \
        o + 5 * L + 5, o + 5 * L + 6, o + 5 * L + 7


@njit(**JIT_SERIAL)
def tc_gather(tcb, B, L, lo, H, Z):  # pragma: no cover - compiled
    """Copy a row block's ``[mu | logvar]`` (b, 2L) and ``z`` (b, L) to columns ``lo..`` of tcb."""
    rMU, rLV, rZ = 0, L, 5 * L
    for r in range(H.shape[0]):
        i = lo + r
        for j in range(L):
            tcb[rZ + j, i] = Z[r, j]
            tcb[rMU + j, i] = H[r, j]
            tcb[rLV + j, i] = H[r, L + j]


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
def tc_prepare(B, L, nb, tcb):  # pragma: no cover - compiled
    """After the gathers: the per-component constants ``IV, CC, HH`` and zeroed accumulators."""
    _rMU, rLV, rIV, rCC, rHH, _rZ, _q, _p, _t, _b = _rows(L)
    T = tcb.dtype.type
    for j in range(L):
        for k in range(B):
            lv = float(tcb[rLV + j, k])
            iv = math.exp(-lv)
            tcb[rIV + j, k] = T(iv)
            tcb[rCC + j, k] = T(-0.5 * (LOG_2PI + lv))
            tcb[rHH + j, k] = T(-0.5 * iv)
    for c in range(nb):
        rGQM = _block_rows(c, L)[1]
        for r in range(rGQM, rGQM + 4 * L):
            for k in range(B):
                tcb[r, k] = 0.0


@njit(**JIT_SERIAL)
def _dim_sums(j, z, mj, w, a, T, MU, CC, HH, B):  # pragma: no cover - compiled
    """Dimension ``j`` of one evaluation row: ``l_k = CC[j,k] + HH[j,k] (z - MU[j,k])^2`` added
    to ``a_k``, ``T[j,k] = exp(w_k + l_k - mj)`` (elementwise: no reduction here, see
    :func:`.rowsum.row_sum`)."""
    for k in range(B):                           # vectorised over k
        diff = z - MU[j, k]
        lk = CC[j, k] + HH[j, k] * diff * diff
        a[k] += lk
        T[j, k] = fexp(w[k] + lk - mj)


@njit(**JIT_SERIAL)
def _dim_max(j, z, w, MU, CC, HH, B):  # pragma: no cover - compiled
    """``max_k (w_k + l_k)`` of dimension ``j`` of one evaluation row (the overflow fallback)."""
    mx = -math.inf
    for k in range(B):
        diff = z - MU[j, k]
        v = w[k] + CC[j, k] + HH[j, k] * diff * diff
        if v > mx:
            mx = v
    return mx


@njit(**JIT_SERIAL)
def _dim_grads(j, z, invs, a, T, MU, IV, QM, QV, PM, PV, B, L):  # pragma: no cover - compiled
    """Dimension ``j`` of one evaluation row: the softmax weights ``p_k = a_k`` (joint) and
    ``r_k = T[j,k] invs`` (per dimension) times ``d_k = (z - MU[j,k]) IV[j,k]`` added to the
    components' mu-gradients ``QM, PM`` and times ``d_k (z - MU[j,k]) - 1`` to ``QV, PV``
    (row ``j``); ``p_k d_k`` and ``r_k d_k`` into ``T[L + 1]``, ``T[L + 2]`` (summed by the
    caller)."""
    for k in range(B):                           # vectorised over k
        diff = z - MU[j, k]
        d = diff * IV[j, k]
        p = a[k]
        r = T[j, k] * invs
        pd = p * d
        rd = r * d
        T[L + 1, k] = pd
        T[L + 2, k] = rd
        QM[j, k] += pd
        PM[j, k] += rd
        QV[j, k] += pd * diff - p
        PV[j, k] += rd * diff - r


@njit(**JIT_SERIAL)
def _joint(a, B, ma, T, r):  # pragma: no cover - compiled
    """``a_k <- exp(a_k - ma)``, also into ``T[r]`` (summed there by the caller)."""
    for k in range(B):
        e = fexp(a[k] - ma)
        a[k] = e
        T[r, k] = e


@njit(**JIT_EXACT)
def _row_sums(i, z, w, a, s, m, T, MU, CC, HH, B, L):  # pragma: no cover - compiled
    """Evaluation row ``i`` (``z`` its column of Z): the per-dimension exponentials into ``T``
    and sums into ``s`` (shifts ``m``), the joint weights' exponentials into ``a``; returns the
    joint shift. Shifts are the own component's (every sum >= 1); on overflow, the maximum."""
    inf = T.dtype.type(math.inf)
    for k in range(B):
        a[k] = w[k]
    ok = True
    for j in range(L):
        _dim_sums(j, z[j], m[j], w, a, T, MU, CC, HH, B)
        s[j] = row_sum(T, j, B)
        ok = ok and s[j] < inf
    if not ok:                                   # overflow (or NaN): shift by the maximum
        for k in range(B):
            a[k] = w[k]
        for j in range(L):
            m[j] = _dim_max(j, z[j], w, MU, CC, HH, B)
            _dim_sums(j, z[j], m[j], w, a, T, MU, CC, HH, B)
            s[j] = row_sum(T, j, B)
    ma = a[i]
    # a is overwritten by the exponentials: keep the joint log densities for the fallback
    for k in range(B):
        T[L, k] = a[k]
    _joint(a, B, ma, T, L + 3)
    acc = row_sum(T, L + 3, B)
    if not acc < inf:
        amax = -inf
        for k in range(B):
            if T[L, k] > amax:
                amax = T[L, k]
            a[k] = T[L, k]
        ma = amax
        _joint(a, B, ma, T, L + 3)
        acc = row_sum(T, L + 3, B)
    s[L] = acc
    return ma


@njit(**JIT_EXACT)
def tc_rows(c, nb, lc, lw, B, L, tcb):  # pragma: no cover - compiled
    """Block ``c`` of ``nb``: the estimator terms of its rows (into ``RT``) and their
    contributions to the unweighted gradients (``GZQ, GZP`` columns, block ``c``'s ``GQM, GQV,
    GPM, GPV``) (module notes). Blocks write disjoint memory: they may run on separate threads."""
    N = lw[N_DATA]
    mss = lc[ESTIMATOR] == MSS
    rMU, _rLV, rIV, rCC, rHH, rZ, rGZQ, rGZP, rRT, _b = _rows(L)
    rT, rGQM, rGQV, rGPM, rGPV, rw, _ra, rs, rm = _block_rows(c, L)
    Ty = tcb.dtype.type
    inv_b = 1.0 / B
    lo = c * B // nb
    hi = (c + 1) * B // nb
    # views made once per block (not per row: each view costs reference counting)
    MU = tcb[rMU:rMU + L]
    IV = tcb[rIV:rIV + L]
    CC = tcb[rCC:rCC + L]
    HH = tcb[rHH:rHH + L]
    T = tcb[rT:rT + L + 4]                       # rows L..L+3: scratch (see _row_sums, _dim_grads)
    QM = tcb[rGQM:rGQM + L]
    QV = tcb[rGQV:rGQV + L]
    PM = tcb[rGPM:rGPM + L]
    PV = tcb[rGPV:rGPV + L]
    w = tcb[rw]
    a = tcb[rw + 1]
    s = tcb[rs]                                  # s[:L] per dimension, s[L] the joint
    m = tcb[rm]
    z = tcb[rm + 1]                              # the evaluation row's z, contiguous
    w_rest = Ty(log_weight(0, 2 % B, B, N, mss))
    for i in range(lo, hi):
        # log weights of the components for row i
        for k in range(B):
            w[k] = w_rest
        w[(i + 1) % B] = Ty(log_weight(i, (i + 1) % B, B, N, mss))
        w[i] = Ty(log_weight(i, i, B, N, mss))
        condx = 0.0
        pz = 0.0
        for j in range(L):
            zj = tcb[rZ + j, i]
            z[j] = zj
            diff = zj - MU[j, i]
            li = CC[j, i] + HH[j, i] * diff * diff
            m[j] = w[i] + li                     # the own component's shift
            condx += li
            pz -= 0.5 * (LOG_2PI + float(zj) * float(zj))
        ma = _row_sums(i, z, w, a, s, m, T, MU, CC, HH, B, L)
        acc = float(s[L])
        qz = float(ma) + math.log(acc)
        pk = Ty(inv_b / acc)
        for k in range(B):
            a[k] *= pk                           # P[i, k] / B
        prod = 0.0
        for j in range(L):
            prod += float(m[j]) + math.log(float(s[j]))
        for j in range(L):
            _dim_grads(j, z[j], Ty(inv_b / float(s[j])), a, T, MU, IV, QM, QV, PM, PV, B, L)
            tcb[rGZQ + j, i] = -row_sum(T, L + 1, B)
            tcb[rGZP + j, i] = -row_sum(T, L + 2, B)
        tcb[rRT, i] = Ty(condx - qz)
        tcb[rRT + 1, i] = Ty(qz - prod)
        tcb[rRT + 2, i] = Ty(prod - pz)


@njit(**JIT_EXACT)
def tc_terms(B, L, tcb, terms):  # pragma: no cover - compiled
    """MI, TC and dimension-wise KL (batch means, in row order) into ``terms[2:5]``."""
    rRT = _rows(L)[8]
    s0 = s1 = s2 = 0.0
    for i in range(B):
        s0 += float(tcb[rRT, i])
        s1 += float(tcb[rRT + 1, i])
        s2 += float(tcb[rRT + 2, i])
    terms[2] = s0 / B
    terms[3] = s1 / B
    terms[4] = s2 / B


@njit(**JIT_SERIAL)
def tc_forward(lc, lw, B, L, nb, tcb, terms):  # pragma: no cover - compiled
    """The whole estimator stage on the gathered batch, blocks one after the other (the same
    results as running :func:`tc_rows` on threads): terms into ``terms[2:5]``, the unweighted
    gradients into ``tcb`` for :func:`tc_grad`."""
    tc_prepare(B, L, nb, tcb)
    for c in range(nb):
        tc_rows(c, nb, lc, lw, B, L, tcb)
    tc_terms(B, L, tcb, terms)


@njit(**JIT_EXACT)
def tc_grad(lw, beta, B, L, nb, tcb, G):  # pragma: no cover - compiled
    """``G`` (>= B, 3L) = d(alpha MI + beta TC + gamma KL_dim)/d[z | mu | logvar] of the last
    :func:`tc_forward` (rows ``:B``, in G's dtype); the blocks' sums are added in block order."""
    alpha = lw[ALPHA]
    gamma = lw[GAMMA]
    rMU, _rLV, rIV, _rCC, _rHH, rZ, rGZQ, rGZP, _rRT, _b = _rows(L)
    inv_b = 1.0 / B
    cq = beta - alpha           # weight of mean log q(z)
    cp = gamma - beta           # weight of mean sum_j log q(z_j)
    T = G.dtype.type
    for i in range(B):
        g = G[i]
        for j in range(L):
            z = float(tcb[rZ + j, i])
            diff = z - float(tcb[rMU + j, i])
            d = diff * float(tcb[rIV + j, i])
            qm = qv = pm = pv = 0.0
            for c in range(nb):
                _rT, rGQM, rGQV, rGPM, rGPV, _w, _a, _s, _m = _block_rows(c, L)
                qm += float(tcb[rGQM + j, i])
                qv += float(tcb[rGQV + j, i])
                pm += float(tcb[rGPM + j, i])
                pv += float(tcb[rGPV + j, i])
            # alpha * d mean log q(z|x) and -gamma * d mean log p(z), own row only
            gz = inv_b * (-alpha * d + gamma * z)
            gm = inv_b * alpha * d
            gl = inv_b * alpha * 0.5 * (d * diff - 1.0)
            g[j] = T(gz + cq * float(tcb[rGZQ + j, i]) + cp * float(tcb[rGZP + j, i]))
            g[L + j] = T(gm + cq * qm + cp * pm)
            g[2 * L + j] = T(gl + 0.5 * (cq * qv + cp * pv))
