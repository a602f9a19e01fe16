"""One evaluation row of the beta-TCVAE estimators (:mod:`.tc`): log densities in base 2, their
shifted powers of two and sums, and the row's MI / TC / dimension-wise KL terms.

For row ``i`` and every component ``k`` (dimension-major rows of the stage's buffer, contiguous
in ``k``) the log2 density is ``y[k,j] = C2[j,k] + H2[j,k] (z_j - MU[j,k])^2`` (``C2 = -(log 2 pi
+ logvar) / (2 ln 2)``, ``H2 = -exp(-logvar) / (2 ln 2)``): working in base 2 makes each
exponential a :func:`.fastexp.fexp2`, whose reduction is one subtraction. Per dimension the
powers ``T[j,k] = 2**(y[k,j] - m_j)`` are shifted by the row's own component (``m_j = y[i,j]``,
so ``T[j,i] = 1`` and every sum is at least 1: no pass for the maximum), and their differences
from the shift are summed over ``j`` for the joint density (``a[k]``, 0 for the own component),
whose powers follow in one pass over ``k``. The log weights enter as factors: every component
but the row's own and the next one (MSS) has the weight ``w_rest``, and those two are scaled by
``f0 = exp(w_own - w_rest)`` and ``f1 = exp(w_next - w_rest)`` after the pass (MWS: no scaling).

A row whose sums reach ``2**(HI - 27)`` (log densities of other components far above its own,
beyond float32's range of exp) is redone with the maximum as the shift, so the upper clamp of
:func:`.fastexp.fexp2` never affects a kept result; the lower one (``2**-126`` in float32
instead of a smaller power) is negligible next to the own component's 1. A NaN in the batch
reaches the sums and the terms.

The loops over ``k`` are elementwise, the sums go through :func:`.rowsum.row_sum_inline`, and
the functions are compiled without reassociation (module notes of :mod:`.tc` and
:mod:`.rowsum`), with explicit fused multiply-adds. Their array arguments are views of a buffer
without a reference count (:func:`.tc._borrowed`).
"""

from __future__ import annotations

import math

from numba import njit

from ..config import JIT_EXACT, JIT_SERIAL
from .fastexp import fexp2, fma
from .rowsum import row_sum_inline as row_sum   # the callers are JIT_EXACT
from .simd import wide_vectors

__all__ = ["log_weight", "row_sums", "pair_sums", "row_start", "row_finish", "LOG2E"]

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
def _big(T):  # pragma: no cover - compiled
    """The sum at which a row is redone, in ``T``'s dtype: ``2**(HI - 27)`` (float32 ``2**100``,
    float64 ``2**996``), so no kept term came near the clamp of fexp2."""
    Ty = T.dtype.type
    return Ty(2.0 ** 100) if T.itemsize == 4 else Ty(2.0 ** 996)


@njit(**JIT_EXACT)
def log2_density(j, k, zj, MU, C2, H2):  # pragma: no cover - compiled
    """``y[k,j]``: log2 density of component ``k`` at ``zj`` in dimension ``j`` (the loops below
    write the same operations, so the own component's difference is exactly 0)."""
    diff = zj - MU[j, k]
    return fma(H2[j, k] * diff, diff, C2[j, k])


@njit(**JIT_EXACT)
def _dim_max(j, zj, MU, C2, H2, B):  # pragma: no cover - compiled
    """``max_k y[k,j]`` of one evaluation row (the shift of a redone row)."""
    mx = -math.inf
    for k in range(B):
        v = log2_density(j, k, zj, MU, C2, H2)
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
def _dim_pass(j, i, zj, mj, f0, f1, fix, a, T, MU, C2, H2, B):  # pragma: no cover - compiled
    """Dimension ``j`` of one row: ``T[j,k] = 2**(y[k,j] - mj)`` (times ``f0, f1``), added to
    ``a`` (set when ``j = 0``); returns ``sum_k T[j,k]``."""
    if j == 0:
        for k in range(B):                       # vectorised over k
            diff = zj - MU[0, k]
            y = fma(H2[0, k] * diff, diff, C2[0, k]) - mj
            a[k] = y
            T[0, k] = fexp2(y)
    else:
        for k in range(B):
            diff = zj - MU[j, k]
            y = fma(H2[j, k] * diff, diff, C2[j, k]) - mj
            a[k] += y
            T[j, k] = fexp2(y)
    if fix:
        T[j, i] *= f0
        T[j, (i + 1) % B] *= f1
    return row_sum(T, j, B)


@njit(**JIT_EXACT)
def _joint_sum(i, f0, f1, fix, a, T, B, L):  # pragma: no cover - compiled
    """The joint powers ``T[L, k] = 2**(a_k - ma)`` (times ``f0, f1``) and their sum; ``ma`` is
    ``a_i`` (0 unless the row was redone) or, when that sum reaches the redo threshold, the
    maximum. Returns ``(ma, sum)``."""
    big = _big(T)
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
def row_sums(i, z, m, f0, f1, fix, a, s, T, MU, C2, H2, B, L, redo):
    # pragma: no cover - compiled
    """Evaluation row ``i`` (``z`` (L,) its z, ``m`` (L,) its own log2 densities in, the shifts
    used out): the per-dimension powers (times ``f0, f1`` when ``fix``) into ``T[:L]`` and their
    sums into ``s[:L]``, the joint log2 densities less the shifts into ``a``, their powers into
    ``T[L]`` and their sum into ``s[L]``; returns the joint shift (0 unless redone). ``redo``:
    start with the maximum as the shift (the row's sums reached the threshold before)."""
    wide_vectors()
    big = _big(T)
    for attempt in range(1 if redo else 0, 2):
        ok = True
        for j in range(L):
            if attempt == 1:                     # a sum reached big (or NaN): shift by the max
                m[j] = _dim_max(j, z[j], MU, C2, H2, B)
            s[j] = _dim_pass(j, i, z[j], m[j], f0, f1, fix, a, T, MU, C2, H2, B)
            ok = ok and s[j] < big
        if ok:
            break
    ma, s[L] = _joint_sum(i, f0, f1, fix, a, T, B, L)
    return ma


@njit(**JIT_EXACT)
def pair_sums(i, f0, f1, fix, z1, m1, a1, s1, T1, z2, m2, a2, s2, T2, MU, C2, H2, B, L):
    # pragma: no cover - compiled
    """:func:`row_sums` of rows ``i`` and ``i + 1`` in one pass over the components (their
    loads shared, half the loop overhead; the same results bit for bit); a row whose sums
    reach the threshold is redone alone. Returns the two joint shifts."""
    wide_vectors()
    big = _big(T1)
    i2 = i + 1
    ok1 = True
    ok2 = True
    for k in range(B):
        a1[k] = 0.0
        a2[k] = 0.0
    for j in range(L):
        zj1 = z1[j]
        zj2 = z2[j]
        mj1 = m1[j]
        mj2 = m2[j]
        for k in range(B):                       # vectorised over k
            mu = MU[j, k]
            h = H2[j, k]
            c = C2[j, k]
            diff1 = zj1 - mu
            y1 = fma(h * diff1, diff1, c) - mj1
            a1[k] += y1
            T1[j, k] = fexp2(y1)
            diff2 = zj2 - mu
            y2 = fma(h * diff2, diff2, c) - mj2
            a2[k] += y2
            T2[j, k] = fexp2(y2)
        if fix:
            T1[j, i] *= f0
            T1[j, i2 % B] *= f1
            T2[j, i2] *= f0
            T2[j, (i2 + 1) % B] *= f1
        s1[j] = row_sum(T1, j, B)
        s2[j] = row_sum(T2, j, B)
        ok1 = ok1 and s1[j] < big
        ok2 = ok2 and s2[j] < big
    if ok1:
        ma1, s1[L] = _joint_sum(i, f0, f1, fix, a1, T1, B, L)
    else:
        ma1 = row_sums(i, z1, m1, f0, f1, fix, a1, s1, T1, MU, C2, H2, B, L, True)
    if ok2:
        ma2, s2[L] = _joint_sum(i2, f0, f1, fix, a2, T2, B, L)
    else:
        ma2 = row_sums(i2, z2, m2, f0, f1, fix, a2, s2, T2, MU, C2, H2, B, L, True)
    return ma1, ma2


@njit(**JIT_EXACT)
def row_start(i, rZ, z, m, MU, C2, H2, L, tcb):  # pragma: no cover - compiled
    """Evaluation row ``i``: its z into ``z``, its own log2 densities into ``m`` (the shifts);
    returns ``(log2 q(z_i|x_i), log p(z_i))``."""
    condx = 0.0
    pz = 0.0
    for j in range(L):
        zj = tcb[rZ + j, i]
        z[j] = zj
        o = log2_density(j, i, zj, MU, C2, H2)
        m[j] = o
        condx += float(o)
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
    # s_j >= min(1, f0), so the product underflows only for an absurd dataset size and
    # overflows rarely; then the logarithms are taken one by one)
    msum = 0.0
    sprod = 1.0
    for j in range(L):
        msum += float(m[j])
        sprod *= float(s[j])
    qz = w_rest + LN2 * (msum + float(ma)) + math.log(acc)
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
