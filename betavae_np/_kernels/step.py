"""One compiled call per training pass: the forward and the backward of a minibatch.

A step runs in three phases: the chunked forward (encoder, heads, sample, decoder, ``x_hat``),
one batch-wide loss stage (:mod:`.loss`, :mod:`.tc`: the loss terms, ``dloss/dx_hat`` and, for
losses that couple rows, ``dloss/d[z, mu, logvar]``), and the chunked backward, which starts
from those gradients. The first two run in :func:`forward_chunks`, the third (after the loss
stage's weighting of its gradients, which needs the step's scheduled weight) in
:func:`backward_chunks`.

The same computation as the ``np.matmul`` path of :meth:`betavae_np.BetaVAE.forward_train` /
``backward_train``, but the matrix products are CBLAS calls from compiled code
(:mod:`betavae_np._kernels.gemm`) and the elementwise kernels run around them in the same call,
so a pass costs one dispatch instead of about thirty.

The batch is split into ``n_chunks`` row blocks (:func:`n_chunks_for`) that run on separate
threads (``prange``), each calling single-threaded BLAS on its rows with its own buffers; the
parameter gradient is the sum of the chunks' gradients (each already scaled by ``1/B`` of the
whole batch). On two cores a training step at batch 256 takes ~560 us this way against ~915 us
on one thread: these small products gain little from BLAS's own threads, which synchronise on
every call. Batches below :data:`SPLIT_MIN_B` stay in one chunk on one thread. The split depends
on the batch size only, never on the core count, so a seed gives the same bits on any machine
(with the same BLAS).

The chunks' buffers are flat and addressed by offsets (layout: :mod:`.passes`, which holds the
per-chunk forward and backward passes).
"""

from __future__ import annotations

from numba import njit, prange

from ..config import JIT_PARALLEL, JIT_SERIAL
from .loss import (
    GAUSSIAN_LEARNED,
    KIND,
    LS_OFF,
    RECON,
    TCVAE,
    kl_block,
    recon_block,
    sigma_weights,
)
from .passes import TRANSPOSED_DX_MAX_B, TRANSPOSED_DX_MIN_W, backward_pass, forward_pass
from .simd import wide_vectors
from .tc import tc_gather, tc_grad_rows, tc_prepare_cols, tc_refresh, tc_rows, tc_terms

__all__ = ["forward_pass", "backward_pass", "loss_stage", "loss_grad", "sigma_grad", "forward_chunks", "backward_chunks",
           "forward_chunks_seq", "backward_chunks_seq", "n_chunks_for", "SPLIT_MIN_B", "N_SPLIT",
           "TRANSPOSED_DX_MAX_B", "TRANSPOSED_DX_MIN_W"]

#: Batches of at least this many rows are split into :data:`N_SPLIT` chunks. Measured on the
#: standard workload (2-core EPYC VM, forward + backward + Adam, steady state): batch 32 one chunk
#: 134 us, two chunks 163 us (after Adam the other core must fetch the updated parameters, which
#: costs more than half a batch-32 pass saves); batch 64 265 vs 213 us, batch 128 482 vs 345 us,
#: batch 256 915 vs 560 us, batch 512 1771 vs 1260 us.
SPLIT_MIN_B = 64
#: Number of chunks of a split batch: two, the cores of the machines this model size is tuned on;
#: on one core the chunks run one after the other (a few percent slower than one chunk).
N_SPLIT = 2


def n_chunks_for(B: int) -> int:
    """How many row chunks a batch of ``B`` rows is split into (a function of ``B`` only)."""
    return N_SPLIT if B >= SPLIT_MIN_B else 1


@njit(**JIT_SERIAL)
def _forward_chunk(c, n_chunks, params, tab, n_enc, act, X, eps, acts, zs, cap, iw, lc,
                   tcb):  # pragma: no cover - compiled
    """Chunk ``c``'s forward pass; for beta-TCVAE also its rows' gather and constants
    (:func:`.tc.tc_gather`, :func:`.tc.tc_prepare_cols`), on the chunk's thread."""
    B = X.shape[0]
    lo = c * B // n_chunks
    hi = (c + 1) * B // n_chunks
    forward_pass(params, tab, n_enc, act, X[lo:hi], eps[lo:hi], acts[c], zs[c], cap, iw)
    if lc[KIND] == TCVAE:
        L = eps.shape[1]
        b = hi - lo
        h_off = tab[n_enc, 4]
        tc_gather(tcb, B, L, lo, acts[c][h_off:h_off + b * 2 * L].reshape((b, 2 * L)),
                  zs[c][0:b * L].reshape((b, L)))
        tc_prepare_cols(lo, hi, L, tcb)


@njit(**JIT_SERIAL)
def _combine_forward(sums, klp, kl_per_dim, B):  # pragma: no cover - compiled
    """Batch means from per-chunk sums, always in chunk order."""
    recon = 0.0
    kl = 0.0
    kl_per_dim[:] = 0.0
    for c in range(sums.shape[0]):
        recon += sums[c, 0]
        kl += sums[c, 1]
        for j in range(kl_per_dim.shape[0]):
            kl_per_dim[j] += klp[c, j] * sums[c, 2]
    for j in range(kl_per_dim.shape[0]):
        kl_per_dim[j] /= B
    return recon / B, kl / B


@njit(**JIT_SERIAL)
def loss_stage(lc, lw, params, tab, n_enc, X, acts, zs, klp, sums, kl_per_dim, cap, n_chunks, sw,
               gls, tcb, terms):  # pragma: no cover - compiled
    """The batch-wide loss stage over the chunks' buffers; returns the batch-mean ``(recon, kl)``.

    Writes ``dloss/dx_hat`` over each chunk's ``x_hat`` and the learned log-sigma's gradient
    into ``gls`` (n_input,) float64. For beta-TCVAE the chunks have gathered and prepared their
    rows in ``tcb`` (:func:`_forward_chunk`); the estimator's rows follow (:func:`.tc.tc_rows`
    per block, on the chunks' threads, then :func:`.tc.tc_terms`). Block sums are combined in
    chunk order, so results do not depend on threads.
    """
    B = X.shape[0]
    L = klp.shape[1]
    last = tab.shape[0] - 1
    h_off = tab[n_enc, 4]
    o_off = tab[last, 4]
    n = tab[last, 3]
    if lc[RECON] == GAUSSIAN_LEARNED:
        sigma_weights(sw, params, lc[LS_OFF])
        gls[:] = 0.0
    inv_b = 1.0 / B
    for c in range(n_chunks):
        lo = c * B // n_chunks
        hi = (c + 1) * B // n_chunks
        b = hi - lo
        a = acts[c]
        z = zs[c]
        r = recon_block(lc, lw, a[o_off:o_off + b * n].reshape((b, n)), X[lo:hi], inv_b, params,
                        sw, gls)
        H = a[h_off:h_off + b * 2 * L].reshape((b, 2 * L))
        k = kl_block(H, z[cap * L:cap * L + b * L].reshape((b, L)), klp[c])
        sums[c, 0] = r * b
        sums[c, 1] = k * b
        sums[c, 2] = b
    recon, kl = _combine_forward(sums[:n_chunks], klp, kl_per_dim, B)
    terms[0] = recon
    terms[1] = kl
    return recon, kl


@njit(**JIT_PARALLEL)
def forward_chunks(params, tab, n_enc, act, X, eps, acts, zs, klp, sums, kl_per_dim, cap,
                   n_chunks, iw, lc, lw, sw, gls, tcb, terms):  # pragma: no cover - compiled
    """Forward pass of a batch split into ``n_chunks`` row chunks run in parallel, then the loss
    stage (:func:`loss_stage`).

    Parameters
    ----------
    params, tab, n_enc, act, X, eps, iw
        As :func:`forward_pass` (``X`` (B, n_input), ``eps`` (B, L) the whole batch).
    acts, zs : ndarray (n_chunks_max, size)
        Per-chunk workspace buffers (layout: :mod:`.passes`), overwritten.
    klp : float64 ndarray (n_chunks_max, L)
        Per-chunk KL per dimension (scratch).
    sums : float64 ndarray (n_chunks_max, 3)
        Per-chunk ``(recon sum, kl sum, rows)`` (scratch).
    kl_per_dim : float64 ndarray (L,)
        Out: batch-mean KL per dimension.
    cap : int
        Rows per chunk buffer (``>= ceil(B / n_chunks)``).
    n_chunks : int
        1 <= n_chunks <= B.
    lc, lw, sw, gls, tcb, terms
        The loss spec and the loss stage's buffers (:func:`loss_stage`).

    Returns
    -------
    recon, kl : float
        Batch means.
    """
    for c in prange(n_chunks):
        _forward_chunk(c, n_chunks, params, tab, n_enc, act, X, eps, acts, zs, cap, iw, lc, tcb)
    recon, kl = loss_stage(lc, lw, params, tab, n_enc, X, acts, zs, klp, sums, kl_per_dim, cap,
                           n_chunks, sw, gls, tcb, terms)
    if lc[KIND] == TCVAE:
        B = X.shape[0]
        L = eps.shape[1]
        for c in prange(n_chunks):
            wide_vectors()                       # should LLVM inline tc_rows into the loop
                                                 # body's function, its attributes apply
            tc_rows(c, n_chunks, lc, lw, B, L, tcb)
        tc_terms(B, L, tcb, terms)
    return recon, kl


@njit(**JIT_SERIAL)
def forward_chunks_seq(params, tab, n_enc, act, X, eps, acts, zs, klp, sums, kl_per_dim, cap,
                       n_chunks, iw, lc, lw, sw, gls, tcb, terms):  # pragma: no cover - compiled
    """:func:`forward_chunks` with the chunks one after the other (same results, bit for bit)."""
    for c in range(n_chunks):
        _forward_chunk(c, n_chunks, params, tab, n_enc, act, X, eps, acts, zs, cap, iw, lc, tcb)
    recon, kl = loss_stage(lc, lw, params, tab, n_enc, X, acts, zs, klp, sums, kl_per_dim, cap,
                           n_chunks, sw, gls, tcb, terms)
    if lc[KIND] == TCVAE:
        B = X.shape[0]
        L = eps.shape[1]
        for c in range(n_chunks):
            tc_rows(c, n_chunks, lc, lw, B, L, tcb)
        tc_terms(B, L, tcb, terms)
    return recon, kl


@njit(**JIT_SERIAL)
def _backward_chunk(c, n_chunks, params, g, tab, n_enc, act, X, eps, beta, acts, dpre, zs, tmp,
                    cap, iw, G, add, lw, tcb):  # pragma: no cover - compiled
    """Chunk ``c``'s backward pass; for beta-TCVAE (``add``) its rows of the loss stage's
    gradient first (:func:`.tc.tc_grad_rows`, on the chunk's thread)."""
    B = X.shape[0]
    lo = c * B // n_chunks
    hi = (c + 1) * B // n_chunks
    if add:
        tc_grad_rows(lw, B, eps.shape[1], n_chunks, tcb, G, lo, hi)
    backward_pass(params, g, tab, n_enc, act, X[lo:hi], eps[lo:hi], beta, acts[c], dpre[c], zs[c],
                  tmp[c], cap, 1.0 / B, iw, G[lo:hi], add)


@njit(**JIT_SERIAL)
def loss_grad(lc, lw, beta, B, nb, tcb, G):  # pragma: no cover - compiled
    """The loss stage's gradient w.r.t. ``[z | mu | logvar]`` for the backward; returns the weight
    of the closed-form KL that :func:`.vae.heads_backward` applies.

    beta-TCVAE: no closed-form KL; the estimator's accumulated gradients are made those of
    ``beta`` (:func:`.tc.tc_refresh`), and each backward chunk writes its rows of ``G`` (B, 3L)
    ``= alpha dMI + beta dTC + gamma dKL_dim`` (:func:`.tc.tc_grad_rows`). beta-VAE: ``G`` is
    not read and the KL weight is ``beta``. ``nb``: the number of row blocks the estimator ran
    in (the step's chunks).
    """
    if lc[KIND] == TCVAE:
        tc_refresh(lc, lw, beta, B, G.shape[1] // 3, nb, tcb)
        return 0.0
    return beta


@njit(**JIT_SERIAL)
def sigma_grad(lc, gls, grads):  # pragma: no cover - compiled
    """Write a learned log-sigma's gradient (``gls``, from the loss stage) at its offset."""
    off = lc[LS_OFF]
    if off >= 0:
        for j in range(gls.shape[0]):
            grads[off + j] = gls[j]


@njit(**JIT_PARALLEL)
def backward_chunks(params, grads, gparts, tab, n_enc, act, X, eps, beta, acts, dpre, zs, tmp,
                    cap, n_chunks, iw, lc, lw, G, gls, tcb):  # pragma: no cover - compiled
    """Backward pass of the last :func:`forward_chunks`; overwrites ``grads`` (P,).

    ``beta`` is the step's scheduled weight (of the KL, or of the TC term for beta-TCVAE);
    ``G`` (cap_total, 3L) takes the loss stage's additive gradient (:func:`loss_grad`).
    ``gparts`` (n_chunks_max, P) holds the per-chunk gradients when ``n_chunks > 1`` (then
    ``grads = sum_c gparts[c]`` in chunk order); other parameters as :func:`forward_chunks` and
    :func:`backward_pass`.
    """
    B = X.shape[0]
    add = lc[KIND] == TCVAE
    c_kl = loss_grad(lc, lw, beta, B, n_chunks, tcb, G)
    if n_chunks == 1:
        _backward_chunk(0, 1, params, grads, tab, n_enc, act, X, eps, c_kl, acts, dpre, zs, tmp,
                        cap, iw, G, add, lw, tcb)
        sigma_grad(lc, gls, grads)
        return
    for c in prange(n_chunks):
        _backward_chunk(c, n_chunks, params, gparts[c], tab, n_enc, act, X, eps, c_kl, acts, dpre,
                        zs, tmp, cap, iw, G, add, lw, tcb)
    for i in prange(grads.shape[0]):
        s = gparts[0, i]
        for c in range(1, n_chunks):
            s += gparts[c, i]
        grads[i] = s
    sigma_grad(lc, gls, grads)


@njit(**JIT_SERIAL)
def backward_chunks_seq(params, grads, gparts, tab, n_enc, act, X, eps, beta, acts, dpre, zs, tmp,
                        cap, n_chunks, iw, lc, lw, G, gls, tcb):  # pragma: no cover - compiled
    """:func:`backward_chunks` with the chunks one after the other (same results, bit for bit)."""
    B = X.shape[0]
    add = lc[KIND] == TCVAE
    c_kl = loss_grad(lc, lw, beta, B, n_chunks, tcb, G)
    if n_chunks == 1:
        _backward_chunk(0, 1, params, grads, tab, n_enc, act, X, eps, c_kl, acts, dpre, zs, tmp,
                        cap, iw, G, add, lw, tcb)
        sigma_grad(lc, gls, grads)
        return
    for c in range(n_chunks):
        _backward_chunk(c, n_chunks, params, gparts[c], tab, n_enc, act, X, eps, c_kl, acts, dpre,
                        zs, tmp, cap, iw, G, add, lw, tcb)
    for i in range(grads.shape[0]):
        s = gparts[0, i]
        for c in range(1, n_chunks):
            s += gparts[c, i]
        grads[i] = s
    sigma_grad(lc, gls, grads)
