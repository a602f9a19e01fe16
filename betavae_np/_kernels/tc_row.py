"""One evaluation row of the beta-TCVAE estimators (:mod:`.tc`): log weights, log densities,
shifted exponentials and their sums, and the row's MI / TC / dimension-wise KL terms.

For row ``i`` and every component ``k`` (dimension-major rows of the stage's buffer, contiguous
in ``k``): ``l[k,j] = CC[j,k] + HH[j,k] (z_j - MU[j,k])^2`` (``CC = -(log 2 pi + logvar) / 2``,
``HH = -exp(-logvar) / 2``), the per-dimension exponentials ``T[j,k] = exp(w_k + l[k,j] - m_j)``
and their sums ``s_j``, the joint ones ``exp(w_k + sum_j l[k,j] - ma)`` and their sum. The loops
over ``k`` are written out here (not calls per dimension); they are elementwise, the sums go
through :func:`.rowsum.row_sum_inline`, and the functions are compiled without reassociation
(module notes of :mod:`.tc` and :mod:`.rowsum`). Their array arguments are views of a buffer
without a reference count (:func:`.tc._borrowed`): a call per row that counted references on
each of its arrays spent about a quarter of the stage on locked adds to the one counter all
blocks share.
"""

from __future__ import annotations

import math

from numba import njit

from ..config import JIT_EXACT, JIT_SERIAL
from .fastexp import fexp
from .rowsum import row_sum_inline as row_sum   # the callers are JIT_EXACT

__all__ = ["log_weight", "row_sums", "row_eval"]

LOG_2PI = math.log(2.0 * math.pi)


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
def _joint(a, B, ma, T, r):  # pragma: no cover - compiled
    """``a_k <- exp(a_k - ma)``, also into ``T[r]`` (summed there by the caller)."""
    for k in range(B):
        e = fexp(a[k] - ma)
        a[k] = e
        T[r, k] = e


@njit(**JIT_EXACT)
def row_sums(i, z, w, a, s, m, T, MU, CC, HH, B, L):  # pragma: no cover - compiled
    """Evaluation row ``i`` (``z`` (L,) its z, ``w`` (B,) its log weights, ``m`` (L,) the
    shifts): the per-dimension exponentials into ``T[:L]`` and their sums into ``s[:L]``, the
    joint log densities into ``T[L]``, the joint exponentials into ``a`` and ``T[L + 2]`` and
    their sum into ``s[L]``; returns the joint shift. Shifts are the own component's (every
    sum >= 1); when a sum overflows, the row is redone with the maximum as the shift."""
    Ty = T.dtype.type
    inf = Ty(math.inf)
    # every weight but k = i, i + 1 is the same (MWS: all are); MSS's two exponentials are
    # scaled by exp(w_k - w_rest) after the pass (a sum that overflows so is redone as any other)
    w_rest = w[(i + 2) % B]
    i1 = (i + 1) % B
    f0 = Ty(math.exp(float(w[i]) - float(w_rest)))
    f1 = Ty(math.exp(float(w[i1]) - float(w_rest)))
    fix = w[i] != w_rest or w[i1] != w_rest
    for attempt in range(2):
        for k in range(B):
            a[k] = w[k]
        ok = True
        for j in range(L):
            if attempt == 1:                     # overflow (or NaN): shift by the maximum
                m[j] = _dim_max(j, z[j], w, MU, CC, HH, B)
            zj = z[j]
            wm = w_rest - m[j]
            for k in range(B):                   # vectorised over k
                diff = zj - MU[j, k]
                lk = CC[j, k] + HH[j, k] * diff * diff
                a[k] += lk
                T[j, k] = fexp(lk + wm)
            if fix:
                T[j, i] *= f0
                T[j, i1] *= f1
            s[j] = row_sum(T, j, B)
            ok = ok and s[j] < inf
        if ok:
            break
    ma = a[i]
    # a is overwritten by the exponentials: keep the joint log densities for the fallback
    for k in range(B):
        T[L, k] = a[k]
    _joint(a, B, ma, T, L + 2)
    acc = row_sum(T, L + 2, B)
    if not acc < inf:
        amax = -inf
        for k in range(B):
            if T[L, k] > amax:
                amax = T[L, k]
            a[k] = T[L, k]
        ma = amax
        _joint(a, B, ma, T, L + 2)
        acc = row_sum(T, L + 2, B)
    s[L] = acc
    return ma


@njit(**JIT_EXACT)
def row_eval(i, w_own, w_next, w_rest, cq, rRT, rZ, z, w, a, s, m, T, MU, CC, HH, B, L, tcb):
    # pragma: no cover - compiled
    """Evaluation row ``i`` of the gathered batch in ``tcb`` (rows ``rZ`` its z, ``rRT`` the
    terms): its log weights into ``w`` (``w_own`` for ``k = i``, ``w_next`` for ``k = i + 1``
    cyclically, ``w_rest`` for the others: :func:`log_weight`, the same for every row), its z
    into ``z``, :func:`row_sums`, its MI, TC and dimension-wise KL terms into ``RT``; leaves
    ``a = cq P[i, :]`` (``cq`` the weight of mean log q(z), over B) for the gradient pass."""
    Ty = tcb.dtype.type
    for k in range(B):
        w[k] = w_rest
    w[(i + 1) % B] = w_next
    w[i] = w_own
    condx = 0.0
    pz = 0.0
    for j in range(L):
        zj = tcb[rZ + j, i]
        z[j] = zj
        diff = zj - MU[j, i]
        li = CC[j, i] + HH[j, i] * diff * diff
        m[j] = w[i] + li                         # the own component's shift
        condx += li
        pz -= 0.5 * (LOG_2PI + float(zj) * float(zj))
    ma = row_sums(i, z, w, a, s, m, T, MU, CC, HH, B, L)
    acc = float(s[L])
    qz = float(ma) + math.log(acc)
    pk = Ty(cq / acc)
    for k in range(B):
        a[k] *= pk                               # cq P[i, k] / B
    # sum_j (m_j + log s_j) as sum_j m_j + log prod_j s_j: one logarithm instead of L (every
    # s_j >= 1, so the product only overflows, and then the logarithms are taken one by one)
    msum = 0.0
    sprod = 1.0
    for j in range(L):
        msum += float(m[j])
        sprod *= float(s[j])
    if sprod < math.inf:
        prod = msum + math.log(sprod)
    else:
        prod = 0.0
        for j in range(L):
            prod += float(m[j]) + math.log(float(s[j]))
    tcb[rRT, i] = Ty(condx - qz)
    tcb[rRT + 1, i] = Ty(qz - prod)
    tcb[rRT + 2, i] = Ty(prod - pz)
