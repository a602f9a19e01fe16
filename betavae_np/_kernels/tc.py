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
O(B^2 L) time, O(B L) memory (:func:`tc_shape`: 149 KiB at B = 256, L = 8 and two blocks in
float32, made once per workspace, 64-byte aligned), in the model's dtype, on 512-bit vectors
where the CPU has them (:func:`.simd.wide_vectors`: 16 float32 lanes). Per evaluation row ``i``
(:mod:`.tc_row`), one pass over the components ``k`` per dimension computes the log2 density
``y[k,j]`` (contiguous in ``k``: the components are stored dimension-major), its power of two
shifted by the integer nearest the row's own (:func:`.fastexp.exp2_shifted`, two additions and
a degree-5 polynomial) and the joint sums ``sum_j y``; rows go through that pass in pairs (the
components' loads shared). A second pass (:func:`tc_rows`) accumulates the gradient terms with
the softmax weights just made, two rows at a time so the accumulators are read and written once
per pair (nothing is recomputed in the backward, which only adds the blocks and the own-row
terms, :func:`tc_grad_rows`). A row whose log densities leave the shifted range (other
components' far above its own) is redone with the maximum as the shift. Sums over ``k`` go
through :func:`.rowsum.row_sum` (a fixed lane order) and the loops that call it are compiled
without reassociation, so the bits do not depend on how LLVM vectorised a copy of the kernel (a
cached and a freshly compiled step agree). The rows are split into ``nb`` blocks (the step's
chunks) that run on separate threads, each with its own accumulators, summed in block order
afterwards: results do not depend on the thread count.

Gradients, with ``d = (z_ij - mu_kj) exp(-logvar_kj)``: ``dl/dz_ij = -d``, ``dl/dmu_kj = d``,
``dl/dlogvar_kj = (d (z_ij - mu_kj) - 1) / 2``; the softmax weights ``P[i,k]`` (joint) and
``R[i,k,j]`` (per dimension) carry them to ``mean_i log q(z_i)`` and ``mean_i sum_j log q(z_ij)``,
which the loss weighs by ``cq = beta - alpha`` and ``cp = gamma - beta``. The gradient pass
accumulates the weighted sum ``q_k = cq P[i,k] + cp R[i,k,j]`` directly (one mu-, one logvar- and
one z-gradient stream instead of two each), so it needs beta, the step's scheduled weight, before
the backward: it uses ``lw[TC_BETA]`` (the workspace appends that slot to the loss spec, see
:attr:`betavae_np.nn.workspace.Workspace.tc_beta`; ``fit`` sets it to the step's weight before
each forward). A backward with another beta (:func:`tc_refresh`) reruns the rows with it first
(serially), so the gradient is always the one of the beta it is given.

Buffer ``tcb`` (model dtype), shape :func:`tc_shape` ``(7 L + 3 + nb (4 L + 13), max(B, L + 2))``
(rows padded to 64 bytes), addressed by rows (a row is a contiguous vector over components ``k``
or rows ``i``; offsets from :func:`_rows`): shared ``MU, LV, IV = exp(-logvar),
C2 = -(log 2 pi + logvar) / (2 ln 2), G = sqrt(IV / (2 ln 2))``, ``Z`` and ``GZ`` (the
z-gradient of the weighted log-means), L rows each, dimension-major (``MU[j, k]``, ``Z[j, i]``);
``RT`` 3 rows: per evaluation row the MI, TC and dimension-wise KL terms; then per block
``T1, T2`` (L + 2 rows each, one per row of a pair) the row's powers, then the joint powers and
the z-gradient terms before their sum; ``GM, GV`` (L rows each) the mu- and (twice the)
logvar-gradients, and rows ``a1, a2`` (B,) the joint log2 densities, then ``cq P``;
``s1, s2`` (L + 1,) the sums, ``m1, z1, m2, z2`` (L,) the shifts and the rows' z; ``cx`` (L,)
``max_k C2[j, k]``. Each chunk of the step gathers and prepares its own columns
(:func:`tc_gather`, :func:`tc_prepare_cols`) on its thread; each block zeroes its own
accumulators.
"""

from __future__ import annotations

import math

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ..config import JIT_EXACT, JIT_SERIAL
from .fastexp import fexp, fma
from .loss import ALPHA, ESTIMATOR, GAMMA, MSS, N_DATA
from .loss_codes import TC_BETA
from .rowsum import row_sum_inline as row_sum   # the callers are JIT_EXACT
from .simd import wide_vectors
from .tc_row import LOG2E, log_weight, pair_sums, row_finish, row_start, row_sums

__all__ = ["TC_BETA", "tc_shape", "tc_gather", "tc_prepare", "tc_rows", "tc_terms", "tc_forward",
           "tc_refresh", "tc_grad", "tc_grad_rows", "tc_prepare_cols", "log_weight"]

LOG_2PI = math.log(2.0 * math.pi)


@intrinsic
def _borrowed(typingctx, a):
    """The array ``a`` without its memory-info and parent pointers: the same data, shape and
    strides, but views of it and calls taking it do no reference counting (each count is a
    locked add on ``tcb``'s counter, one cache line that the blocks' threads would share).
    Only for use while the caller holds ``a`` itself (it keeps the memory alive)."""
    if not isinstance(a, types.Array):
        return None

    def codegen(context, builder, sig, args):
        src = context.make_array(sig.args[0])(context, builder, args[0])
        dst = context.make_array(sig.return_type)(context, builder)
        for name in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(dst, name, getattr(src, name))
        dst.meminfo = ir.Constant(dst.meminfo.type, None)
        dst.parent = ir.Constant(dst.parent.type, None)
        return dst._getvalue()

    return a(a), codegen


def tc_shape(B: int, L: int, nb: int) -> tuple[int, int]:
    """Shape of the buffer ``tcb`` for batches of up to ``B`` rows in ``nb`` blocks.

    ``(7 L + 3 + nb (4 L + 13), max(B, L + 2))``, the row length rounded up to a multiple of 16
    (64 bytes in float32, so rows of a 64-byte aligned buffer stay aligned): for B = 256, L = 8
    and two blocks, 149 x 256 values (149 KiB in float32).
    """
    return 7 * L + 3 + nb * (4 * L + 13), -(-max(B, L + 2) // 16) * 16


@njit(**JIT_SERIAL)
def _rows(L):  # pragma: no cover - compiled
    """First rows of MU, LV, IV, C2, G, Z, GZ, RT and of block 0."""
    return 0, L, 2 * L, 3 * L, 4 * L, 5 * L, 6 * L, 7 * L, 7 * L + 3


@njit(**JIT_SERIAL)
def _block_rows(c, L):  # pragma: no cover - compiled
    """First rows of block ``c``'s T1, T2 (L + 2 rows each), GM, GV and its rows a1 (a2
    follows), s1 (s2 follows), m1 (z1, m2, z2 follow), cx."""
    o = 7 * L + 3 + c * (4 * L + 13)
    return (o, o + 2 * L + 4, o + 3 * L + 4, o + 4 * L + 4, o + 4 * L + 6, o + 4 * L + 8,
            o + 4 * L + 12)


@njit(**JIT_SERIAL)
def tc_gather(tcb, B, L, lo, H, Z):  # pragma: no cover - compiled
    """Copy a row block's ``[mu | logvar]`` (b, 2L) and ``z`` (b, L) to columns ``lo..`` of tcb."""
    rMU, rLV, _rIV, _rC2, _rG, rZ, _rGZ, _rRT, _b = _rows(L)
    for r in range(H.shape[0]):
        i = lo + r
        for j in range(L):
            tcb[rZ + j, i] = Z[r, j]
            tcb[rMU + j, i] = H[r, j]
            tcb[rLV + j, i] = H[r, L + j]


@njit(**JIT_SERIAL)
def _zero_block(c, B, L, tcb):  # pragma: no cover - compiled
    """Zero block ``c``'s accumulators ``GM, GV``."""
    rGM = _block_rows(c, L)[1]
    for r in range(rGM, rGM + 2 * L):
        for k in range(B):
            tcb[r, k] = 0.0


@njit(**JIT_EXACT)
def tc_prepare_cols(lo, hi, L, tcb):  # pragma: no cover - compiled
    """The per-component constants ``IV, C2, G`` (computed in float64) of gathered columns
    ``lo:hi`` (:mod:`.tc_row` notes)."""
    _rMU, rLV, rIV, rC2, rG, _rZ, _rGZ, _rRT, _b = _rows(L)
    T = tcb.dtype.type
    for j in range(L):
        for k in range(lo, hi):
            lv = float(tcb[rLV + j, k])
            iv = fexp(-lv)
            g = T(math.sqrt(0.5 * LOG2E * iv))
            tcb[rIV + j, k] = T(iv)
            tcb[rC2 + j, k] = T(-0.5 * LOG2E * (LOG_2PI + lv))
            tcb[rG + j, k] = g


@njit(**JIT_EXACT)
def tc_prepare(B, L, nb, tcb):  # pragma: no cover - compiled
    """After the gathers: :func:`tc_prepare_cols` of every column (the step does it per chunk,
    on the chunks' threads, right after each chunk's gather)."""
    tc_prepare_cols(0, B, L, tcb)


@njit(**JIT_EXACT)
def tc_rows(c, nb, lc, lw, B, L, tcb):  # pragma: no cover - compiled
    """Block ``c`` of ``nb``: the estimator terms of its rows (into ``RT``) and their
    contributions to the gradients weighted with ``lw[TC_BETA]`` (``GZ`` columns, block ``c``'s
    ``GM, GV``) (module notes). Rows go in pairs (the last one alone when the block has an odd
    number), so each pair's gradient pass updates the accumulators once. Blocks write disjoint
    memory: they may run on separate threads."""
    wide_vectors()
    N = lw[N_DATA]
    mss = lc[ESTIMATOR] == MSS
    tcb = _borrowed(tcb)                         # no reference counting per row (views, calls)
    _zero_block(c, B, L, tcb)                    # on the block's own thread (its cache)
    rMU, _rLV, rIV, rC2, rG, rZ, rGZ, rRT, _b = _rows(L)
    rT, rGM, rGV, ra, rs, rm, rcx = _block_rows(c, L)
    Ty = tcb.dtype.type
    inv_b = 1.0 / B
    cq = inv_b * (lw[TC_BETA] - lw[ALPHA])       # weight of mean log q(z), over B
    cp = inv_b * (lw[GAMMA] - lw[TC_BETA])       # weight of mean sum_j log q(z_j), over B
    lo = c * B // nb
    hi = (c + 1) * B // nb
    # views made once per block (not per row: each view costs reference counting)
    MU = tcb[rMU:rMU + L]
    IV = tcb[rIV:rIV + L]
    C2 = tcb[rC2:rC2 + L]
    G = tcb[rG:rG + L]
    cx = tcb[rcx]                                # max_k C2[j, k] (tc_row notes)
    for j in range(L):
        mx = C2[j, 0]
        for k in range(1, B):
            mx = max(mx, C2[j, k])
        cx[j] = mx
    T1 = tcb[rT:rT + L + 2]                      # row L: joint powers, L + 1: gradient scratch
    T2 = tcb[rT + L + 2:rT + 2 * L + 4]
    GM = tcb[rGM:rGM + L]
    GV = tcb[rGV:rGV + L]
    a1 = tcb[ra]
    a2 = tcb[ra + 1]
    s1 = tcb[rs]                                 # s[:L] per dimension, s[L] the joint
    s2 = tcb[rs + 1]
    m1 = tcb[rm]
    z1 = tcb[rm + 1]                             # the evaluation row's z, contiguous
    m2 = tcb[rm + 2]
    z2 = tcb[rm + 3]
    # the log weights (the same for every row) as factors of the own and the next component
    w_own = log_weight(0, 0, B, N, mss)
    w_next = log_weight(0, 1 % B, B, N, mss)
    w_rest = log_weight(0, 2 % B, B, N, mss)
    f0 = Ty(math.exp(w_own - w_rest))
    f1 = Ty(math.exp(w_next - w_rest))
    fix = w_own != w_rest or w_next != w_rest
    for i in range(lo, hi, 2):
        lq1, pz1 = row_start(i, rZ, z1, m1, G, MU, C2, L, tcb)
        if i + 1 < hi:
            lq2, pz2 = row_start(i + 1, rZ, z2, m2, G, MU, C2, L, tcb)
            ma1, ma2 = pair_sums(i, f0, f1, fix, cx, z1, m1, a1, s1, T1, z2, m2, a2, s2, T2, G,
                                 MU, C2, B, L)
            row_finish(i, lq1, pz1, ma1, w_rest, cq, rRT, a1, s1, m1, T1, B, L, tcb)
            row_finish(i + 1, lq2, pz2, ma2, w_rest, cq, rRT, a2, s2, m2, T2, B, L, tcb)
            for j in range(L):
                # per dimension, both rows: q_k = a_k + cj T[j,k] (a = cq P[i, :], cj = cp / s_j)
                # times d_k = (z - MU[j,k]) IV[j,k] into GM, times d_k (z - MU[j,k]) - 1 into
                # GV (one update for the pair), q_k d_k into T[L + 1] for the z-gradient's sum
                zj1 = z1[j]
                zj2 = z2[j]
                c1 = Ty(cp / float(s1[j]))
                c2 = Ty(cp / float(s2[j]))
                for k in range(B):               # vectorised over k
                    mu = MU[j, k]
                    iv = IV[j, k]
                    diff1 = zj1 - mu
                    q1 = fma(c1, T1[j, k], a1[k])
                    qd1 = q1 * (diff1 * iv)
                    T1[L + 1, k] = qd1
                    diff2 = zj2 - mu
                    q2 = fma(c2, T2[j, k], a2[k])
                    qd2 = q2 * (diff2 * iv)
                    T2[L + 1, k] = qd2
                    GM[j, k] += qd1 + qd2
                    GV[j, k] += fma(qd1, diff1, -q1) + fma(qd2, diff2, -q2)
                tcb[rGZ + j, i] = -row_sum(T1, L + 1, B)
                tcb[rGZ + j, i + 1] = -row_sum(T2, L + 1, B)
        else:                                    # the block's last row, alone
            ma1 = row_sums(i, z1, m1, cx, f0, f1, fix, a1, s1, T1, G, MU, C2, B, L, False)
            row_finish(i, lq1, pz1, ma1, w_rest, cq, rRT, a1, s1, m1, T1, B, L, tcb)
            for j in range(L):
                zj1 = z1[j]
                c1 = Ty(cp / float(s1[j]))
                for k in range(B):               # vectorised over k
                    diff1 = zj1 - MU[j, k]
                    q1 = fma(c1, T1[j, k], a1[k])
                    qd1 = q1 * (diff1 * IV[j, k])
                    T1[L + 1, k] = qd1
                    GM[j, k] += qd1
                    GV[j, k] += fma(qd1, diff1, -q1)
                tcb[rGZ + j, i] = -row_sum(T1, L + 1, B)


@njit(**JIT_EXACT)
def tc_terms(B, L, tcb, terms):  # pragma: no cover - compiled
    """MI, TC and dimension-wise KL (batch means, in row order) into ``terms[2:5]``."""
    rRT = _rows(L)[7]
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
    results as running :func:`tc_rows` on threads): terms into ``terms[2:5]``, the gradients
    weighted with ``lw[TC_BETA]`` into ``tcb`` for :func:`tc_grad`."""
    tc_prepare(B, L, nb, tcb)
    for c in range(nb):
        tc_rows(c, nb, lc, lw, B, L, tcb)
    tc_terms(B, L, tcb, terms)


@njit(**JIT_SERIAL)
def tc_refresh(lc, lw, beta, B, L, nb, tcb):  # pragma: no cover - compiled
    """Make the accumulated gradients those of ``beta``: when the forward weighted them with
    another ``lw[TC_BETA]``, set it to ``beta`` and rerun the rows (blocks one after the other,
    the same bits as on threads; the terms do not depend on beta). Returns whether it reran."""
    if lw[TC_BETA] == beta:
        return False
    lw[TC_BETA] = beta
    for c in range(nb):
        tc_rows(c, nb, lc, lw, B, L, tcb)
    return True


@njit(**JIT_EXACT)
def tc_grad(lw, B, L, nb, tcb, G):  # pragma: no cover - compiled
    """``G`` (>= B, 3L) = d(alpha MI + beta TC + gamma KL_dim)/d[z | mu | logvar] of the last
    :func:`tc_forward` with ``beta = lw[TC_BETA]`` (rows ``:B``, in G's dtype; see
    :func:`tc_refresh`); the blocks' sums are added in block order."""
    tc_grad_rows(lw, B, L, nb, tcb, G, 0, B)


@njit(**JIT_EXACT)
def tc_grad_rows(lw, B, L, nb, tcb, G, lo, hi):  # pragma: no cover - compiled
    """Rows ``lo:hi`` of :func:`tc_grad` (the step's backward chunks each make their own)."""
    alpha = lw[ALPHA]
    gamma = lw[GAMMA]
    rMU, _rLV, rIV, _rC2, _rG, rZ, rGZ, _rRT, _b = _rows(L)
    inv_b = 1.0 / B
    T = G.dtype.type
    for j in range(L):                           # rows of tcb are contiguous in i
        Zj = tcb[rZ + j]
        MUj = tcb[rMU + j]
        IVj = tcb[rIV + j]
        GZj = tcb[rGZ + j]
        rGM0 = _block_rows(0, L)[1] + j
        rGV0 = _block_rows(0, L)[2] + j
        step = 4 * L + 13                        # rows from one block's GM to the next one's
        for i in range(lo, hi):
            z = float(Zj[i])
            diff = z - float(MUj[i])
            d = diff * float(IVj[i])
            gm = float(tcb[rGM0, i])
            gv = float(tcb[rGV0, i])
            for c in range(1, nb):
                gm += float(tcb[rGM0 + c * step, i])
                gv += float(tcb[rGV0 + c * step, i])
            # alpha * d mean log q(z|x) and -gamma * d mean log p(z), own row only
            G[i, j] = T(inv_b * (-alpha * d + gamma * z) + float(GZj[i]))
            G[i, L + j] = T(inv_b * alpha * d + gm)
            G[i, 2 * L + j] = T(inv_b * alpha * 0.5 * (d * diff - 1.0) + 0.5 * gv)
