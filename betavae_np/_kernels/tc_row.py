"""One evaluation row of the beta-TCVAE estimators (:mod:`.tc`): log densities in base 2, their
shifted powers of two and sums, and the row's MI / TC / dimension-wise KL terms.

For row ``i`` and every component ``k`` (dimension-major rows of the stage's buffer, contiguous
in ``k``) the log2 density is ``y[k,j] = C2[j,k] - (G[j,k] (z_j - MU[j,k]))^2`` (``C2 = -(log
2 pi + logvar) / (2 ln 2)``, ``G = sqrt(exp(-logvar) / (2 ln 2))``). Working in base 2 makes each exponential a power of two whose reduction is one
rounding addition (:func:`.fastexp.exp2_shifted`): per dimension the powers
``T[j,k] = 2**(y[k,j] - m_j)`` use the integer ``m_j`` nearest the row's own log2 density (so
``T[j,i]`` is within a factor sqrt(2) of 1 and every sum is at least 1/sqrt(2): no pass for the
maximum), and the densities are summed over ``j`` for the joint (``a[k]``), whose powers
follow in one pass over ``k``, shifted by the own component's. The log weights enter as
factors: every component but the row's own and the next one (MSS) has the weight ``w_rest``,
and those two are scaled by ``f0 = exp(w_own - w_rest)`` and ``f1 = exp(w_next - w_rest)``
after the pass (MWS: no scaling). Powers below ``2**-100`` (float32; ``2**-1000`` in float64)
are 0: negligible next to the own component's.

No power may exceed the largest normal exponent: ``y[k,j] <= C2[j,k]``, so a row is computed as
above only where ``max_k C2[j,k] - m_j`` stays below 100 (float32; 1000 in float64) and its sums
below ``2**100``; any other row (log densities of other components far above its own) is
redone with ``m_j`` the integer at or above the maximum. A NaN in the batch reaches the sums
and the terms.

The loops over ``k`` are elementwise, the sums go through :func:`.rowsum.row_sum_inline`, and
the functions are compiled without reassociation (module notes of :mod:`.tc` and
:mod:`.rowsum`), with explicit fused multiply-adds. Their array arguments are views of a buffer
without a reference count (:func:`.tc._borrowed`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..config import JIT_EXACT, JIT_SERIAL
from .fastexp import SHIFT32, SHIFT64, exp2_shifted, fexp2, fma
from .rowsum import row_sum_inline as row_sum   # the callers are JIT_EXACT
from .simd import wide_vectors

__all__ = ["log_weight", "row_sums", "pair_sums", "row_start", "row_finish", "log2_density",
           "LOG2E"]

LOG_2PI = math.log(2.0 * math.pi)
LN2 = math.log(2.0)
LOG2E = 1.0 / LN2


@njit(**JIT_SERIAL)
def log_weight(i, k, B, N, mss):  # pragma: no cover - compiled
    """``w_ik``: log weight of component ``k`` when evaluating row ``i`` (:mod:`.tc` notes)."""
    if not mss or B < 2:
        return -math.log(N * B)
    if k == i:
        return -math.log(N)
    M = B - 1.0
    if k == (i + 1) % B:
        return math.log((N - M) / (N * M))
    return -math.log(M)


@njit(**JIT_EXACT)
def _consts(T):  # pragma: no cover - compiled
    """In ``T``'s dtype: the sum at which a row is redone (``2**100``; float64 ``2**996``), the
    shifter, the flush below the shift (-100; -1000) and the room above it (100; 1000)."""
    Ty = T.dtype.type
    if T.itemsize == 4:
        return Ty(2.0 ** 100), Ty(SHIFT32), Ty(-100.0), Ty(100.0)
    return Ty(2.0 ** 996), Ty(SHIFT64), Ty(-1000.0), Ty(1000.0)


@njit(**JIT_EXACT)
def log2_density(j, k, zj, G, MU, C2):  # pragma: no cover - compiled
    """``y[k,j]``: log2 density of component ``k`` at ``zj`` in dimension ``j`` (the loops below
    write the same operations)."""
    u = G[j, k] * (zj - MU[j, k])
    return fma(-u, u, C2[j, k])


@njit(**JIT_EXACT)
def _dim_max(j, zj, G, MU, C2, B):  # pragma: no cover - compiled
    """``max_k y[k,j]`` of one evaluation row (the shift of a redone row, rounded up)."""
    mx = -math.inf
    for k in range(B):
        v = log2_density(j, k, zj, G, MU, C2)
        if v > mx:
            mx = v
    return mx


@njit(**JIT_EXACT)
def _joint(a, B, ma, T, r):  # pragma: no cover - compiled
    """``T[r, k] = 2**(a_k - ma)``."""
    wide_vectors()
    for k in range(B):
        T[r, k] = fexp2(a[k] - ma)


@njit(**JIT_EXACT)
def _dim_pass(j, i, zj, mj, f0, f1, fix, a, T, G, MU, C2, B):  # pragma: no cover - compiled
    """Dimension ``j`` of one row: ``T[j,k] = 2**(y[k,j] - mj)`` (times ``f0, f1``; ``mj`` an
    integer), ``y`` added to ``a``; returns ``sum_k T[j,k]``."""
    big, S, LO, _room = _consts(T)
    K = S - mj
    ylo = mj + LO
    for k in range(B):                           # vectorised over k
        u = G[j, k] * (zj - MU[j, k])
        y = fma(-u, u, C2[j, k])
        a[k] += y
        T[j, k] = exp2_shifted(y, K, ylo)
    if fix:
        T[j, i] *= f0
        T[j, (i + 1) % B] *= f1
    return row_sum(T, j, B)


@njit(**JIT_EXACT)
def _joint_sum(i, f0, f1, fix, a, T, B, L):  # pragma: no cover - compiled
    """The joint powers ``T[L, k] = 2**(a_k - ma)`` (times ``f0, f1``) and their sum; ``ma`` is
    ``a_i`` (the own component's joint log2 density) or, when that sum reaches the redo
    threshold, the maximum. Returns ``(ma, sum)``."""
    big = _consts(T)[0]
    ma = a[i]
    for attempt in range(2):
        _joint(a, B, ma, T, L)
        if fix:
            T[L, i] *= f0
            T[L, (i + 1) % B] *= f1
        acc = row_sum(T, L, B)
        if acc < big or attempt == 1:
            break
        ma = a[0]                                # redo with the maximum as the shift
        for k in range(1, B):
            if a[k] > ma:
                ma = a[k]
    return ma, acc


@njit(**JIT_EXACT)
def row_sums(i, z, m, cx, f0, f1, fix, a, s, T, G, MU, C2, B, L, redo):
    # pragma: no cover - compiled
    """Evaluation row ``i`` (``z`` (L,) its z, ``m`` (L,) the integer shifts in and out, ``cx``
    (L,) ``max_k C2[j,k]``): the per-dimension powers (times ``f0, f1`` when ``fix``) into
    ``T[:L]`` and their sums into ``s[:L]``, the joint log2 densities into ``a``, their powers
    into ``T[L]`` and their sum into ``s[L]``; returns the joint shift. ``redo``: start with
    the maxima as the shifts (the row failed the checks of the module notes before)."""
    wide_vectors()
    Ty = T.dtype.type
    big, _S, _LO, room = _consts(T)
    for attempt in range(1 if redo else 0, 2):
        ok = True
        for k in range(B):
            a[k] = 0.0
        for j in range(L):
            if attempt == 1:                     # shift by the maximum, rounded up
                m[j] = Ty(np.ceil(float(_dim_max(j, z[j], G, MU, C2, B))))
            else:
                ok = ok and cx[j] - m[j] < room
            s[j] = _dim_pass(j, i, z[j], m[j], f0, f1, fix, a, T, G, MU, C2, B)
            ok = ok and s[j] < big
        if ok:
            break
    ma, s[L] = _joint_sum(i, f0, f1, fix, a, T, B, L)
    return ma


@njit(**JIT_EXACT)
def pair_sums(i, f0, f1, fix, cx, z1, m1, a1, s1, T1, z2, m2, a2, s2, T2, G, MU, C2, B, L):
    # pragma: no cover - compiled
    """:func:`row_sums` of rows ``i`` and ``i + 1`` in one pass over the components (their
    loads shared, half the loop overhead; the same results bit for bit); a row that fails the
    checks is redone alone. Returns the two joint shifts."""
    wide_vectors()
    big, S, LO, room = _consts(T1)
    i2 = i + 1
    ok1 = True
    ok2 = True
    for k in range(B):
        a1[k] = 0.0
        a2[k] = 0.0
    for j in range(L):
        zj1 = z1[j]
        zj2 = z2[j]
        K1 = S - m1[j]
        K2 = S - m2[j]
        ylo1 = m1[j] + LO
        ylo2 = m2[j] + LO
        for k in range(B):                       # vectorised over k
            g = G[j, k]
            mu = MU[j, k]
            c = C2[j, k]
            u1 = g * (zj1 - mu)
            y1 = fma(-u1, u1, c)
            a1[k] += y1
            T1[j, k] = exp2_shifted(y1, K1, ylo1)
            u2 = g * (zj2 - mu)
            y2 = fma(-u2, u2, c)
            a2[k] += y2
            T2[j, k] = exp2_shifted(y2, K2, ylo2)
        if fix:
            T1[j, i] *= f0
            T1[j, i2 % B] *= f1
            T2[j, i2] *= f0
            T2[j, (i2 + 1) % B] *= f1
        s1[j] = row_sum(T1, j, B)
        s2[j] = row_sum(T2, j, B)
        ok1 = ok1 and s1[j] < big and cx[j] - m1[j] < room
        ok2 = ok2 and s2[j] < big and cx[j] - m2[j] < room
    if ok1:
        ma1, s1[L] = _joint_sum(i, f0, f1, fix, a1, T1, B, L)
    else:
        ma1 = row_sums(i, z1, m1, cx, f0, f1, fix, a1, s1, T1, G, MU, C2, B, L, True)
    if ok2:
        ma2, s2[L] = _joint_sum(i2, f0, f1, fix, a2, T2, B, L)
    else:
        ma2 = row_sums(i2, z2, m2, cx, f0, f1, fix, a2, s2, T2, G, MU, C2, B, L, True)
    return ma1, ma2


@njit(**JIT_EXACT)
def row_start(i, rZ, z, m, G, MU, C2, L, tcb):  # pragma: no cover - compiled
    """Evaluation row ``i``: its z into ``z``, the integers nearest its own log2 densities into
    ``m`` (the shifts); returns ``(log2 q(z_i|x_i), log p(z_i))``."""
    Ty = tcb.dtype.type
    condx = 0.0
    pz = 0.0
    for j in range(L):
        zj = tcb[rZ + j, i]
        z[j] = zj
        o = float(log2_density(j, i, zj, G, MU, C2))
        m[j] = Ty(np.floor(o + 0.5))          # a float: NaN stays NaN
        condx += o
        pz -= 0.5 * (LOG_2PI + float(zj) * float(zj))
    return condx, pz


@njit(**JIT_EXACT)
def row_finish(i, condx, pz, ma, w_rest, cq, rRT, a, s, m, T, B, L, tcb):
    # pragma: no cover - compiled
    """After the sums of row ``i`` (joint shift ``ma``): its MI, TC and dimension-wise KL terms
    into ``RT`` (``w_rest`` the log weight of the components not scaled), and ``a = cq P[i, :]``
    (``cq`` the weight of mean log q(z), over B) for the gradient pass."""
    Ty = tcb.dtype.type
    acc = float(s[L])
    # sum_j (m_j + log2 s_j) as sum_j m_j + log2 prod_j s_j: one logarithm instead of L (every
    # s_j >= min(1, f0) / sqrt(2), so the product underflows only for an absurd dataset size
    # and overflows rarely; then the logarithms are taken one by one)
    msum = 0.0
    sprod = 1.0
    for j in range(L):
        msum += float(m[j])
        sprod *= float(s[j])
    qz = w_rest + LN2 * float(ma) + math.log(acc)
    if 0.0 < sprod < math.inf:
        prod = L * w_rest + LN2 * msum + math.log(sprod)
    else:
        prod = L * w_rest + LN2 * msum
        for j in range(L):
            prod += math.log(float(s[j]))
    pk = Ty(cq / acc)
    for k in range(B):
        a[k] = pk * T[L, k]                      # cq P[i, k] / B
    tcb[rRT, i] = Ty(LN2 * condx - qz)
    tcb[rRT + 1, i] = Ty(qz - prod)
    tcb[rRT + 2, i] = Ty(prod - pz)
