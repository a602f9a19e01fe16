"""The forward and the backward pass of one row block: the per-chunk work of a training step
(:mod:`.step` runs the chunks, the loss stage between them and the sum of their gradients).

The matrix products are CBLAS calls from compiled code (:mod:`.gemm`) and the elementwise
kernels (:mod:`.dense`, :mod:`.vae`) run around them in the same call.

Buffers are flat per chunk and addressed by offsets (``[c]`` is chunk ``c``'s row):

``tab`` : int64 (n_layers, 5)
    Per layer in forward order (encoder hidden layers, heads, decoder hidden layers, output):
    ``w_off, b_off`` into ``params``/``grads`` (W is (n_in, n_out) C order), ``n_in``,
    ``n_out``, and ``a_off`` into ``acts``/``dpre``, where the layer's (B, n_out) block starts.
``acts`` : (sum_k cap * n_out_k,)
    Layer outputs: hidden activations, the heads' ``[mu | logvar]`` (B, 2L), and the output
    layer's ``x_hat``, which the loss stage turns into ``dloss/dx_hat``.
``dpre`` : same layout
    Gradients w.r.t. the pre-activations (the output layer's block is unused: its gradient
    stays in ``acts``).
``zs`` : (3 * cap * L,)
    ``Z``, ``S = exp(0.5 logvar)`` and ``dZ`` blocks of (B, L) at offsets 0, cap L, 2 cap L.
``tmp`` : (2 * cap * max_width,)
    Scratch for the transposed input-gradient products of small batches.
"""

from __future__ import annotations

from numba import njit

from ..config import JIT_SERIAL
from .dense import act_backward_bias, bias_act, col_sum
from .gemm import NO_TRANS, TRANS, gemm
from .vae import heads_backward, heads_sample

__all__ = ["forward_pass", "backward_pass", "TRANSPOSED_DX_MAX_B", "TRANSPOSED_DX_MIN_W"]

#: Batches up to this size compute ``dX = dZ @ W.T`` as ``(W @ dZ.T).T`` through small
#: contiguous copies, for weights of at least ``TRANSPOSED_DX_MIN_W`` entries: at batch 32
#: OpenBLAS's NT product is about twice as slow as the NN one and the copies cost less than the
#: difference; from batch 64 it is a loss.
TRANSPOSED_DX_MAX_B = 32
TRANSPOSED_DX_MIN_W = 8192


@njit(**JIT_SERIAL)
def forward_pass(params, tab, n_enc, act, X, eps, acts, zs, cap, iw):  # pragma: no cover - compiled
    """Forward pass of one row block up to ``x_hat`` (the loss stage follows).

    Parameters
    ----------
    params : ndarray (P,)
    tab : int64 ndarray (n_layers, 5)
        Layer table (module notes).
    n_enc : int
        Number of encoder hidden layers (the heads are layer ``n_enc``).
    act : int
        Hidden activation code.
    X : ndarray (B, n_input), C-contiguous
    eps : ndarray (B, L), C-contiguous
    acts, zs : ndarray
        Workspace buffers (module notes), overwritten: the heads' block ends as
        ``[mu | logvar]``, the output block as ``x_hat``, ``zs`` holds ``Z`` and ``S``.
    cap : int
        Rows of the buffers (``B <= cap``): where the ``S`` and ``dZ`` blocks of ``zs`` start.
    iw : np.int32 or np.int64
        BLAS integer width selector (:mod:`.gemm`).
    """
    B = X.shape[0]
    L = eps.shape[1]
    n_layers = tab.shape[0]
    # encoder hidden layers: input X, then the previous layer's activations
    for k in range(n_enc + 1):
        w_off, b_off, n_in, n_out, a_off = tab[k, 0], tab[k, 1], tab[k, 2], tab[k, 3], tab[k, 4]
        if k == 0:
            gemm(NO_TRANS, NO_TRANS, B, n_out, n_in, X, 0, n_in, params, w_off, n_out,
                 acts, a_off, n_out, iw)
        else:
            p_off = tab[k - 1, 4]
            gemm(NO_TRANS, NO_TRANS, B, n_out, n_in, acts, p_off, n_in, params, w_off, n_out,
                 acts, a_off, n_out, iw)
        Y = acts[a_off:a_off + B * n_out].reshape((B, n_out))
        b = params[b_off:b_off + n_out]
        if k < n_enc:
            bias_act(Y, b, act)
        else:
            Z = zs[0:B * L].reshape((B, L))
            S = zs[cap * L:cap * L + B * L].reshape((B, L))
            heads_sample(Z, S, Y, b, eps)
    # decoder: input Z, then hidden activations; the last layer is linear
    for k in range(n_enc + 1, n_layers):
        w_off, b_off, n_in, n_out, a_off = tab[k, 0], tab[k, 1], tab[k, 2], tab[k, 3], tab[k, 4]
        if k == n_enc + 1:
            gemm(NO_TRANS, NO_TRANS, B, n_out, n_in, zs, 0, n_in, params, w_off, n_out,
                 acts, a_off, n_out, iw)
        else:
            p_off = tab[k - 1, 4]
            gemm(NO_TRANS, NO_TRANS, B, n_out, n_in, acts, p_off, n_in, params, w_off, n_out,
                 acts, a_off, n_out, iw)
        Y = acts[a_off:a_off + B * n_out].reshape((B, n_out))
        b = params[b_off:b_off + n_out]
        bias_act(Y, b, act if k < n_layers - 1 else 0)


@njit(**JIT_SERIAL)
def _input_grad(B, W_off, n_in, n_out, g_buf, g_off, out_buf, out_off, params, tmp,
                iw):  # pragma: no cover - compiled
    """``out (B, n_in) = g (B, n_out) @ W.T`` with W (n_in, n_out) at ``params[W_off:]``."""
    if B <= TRANSPOSED_DX_MAX_B and n_in * n_out >= TRANSPOSED_DX_MIN_W:
        # (W @ g.T).T through contiguous copies: NN instead of the slow small NT product
        gt = tmp[0:n_out * B].reshape((n_out, B))
        g = g_buf[g_off:g_off + B * n_out].reshape((B, n_out))
        for r in range(B):
            for j in range(n_out):
                gt[j, r] = g[r, j]
        t_off = n_out * B
        gemm(NO_TRANS, NO_TRANS, n_in, B, n_out, params, W_off, n_out, tmp, 0, B,
             tmp, t_off, B, iw)
        dxt = tmp[t_off:t_off + n_in * B].reshape((n_in, B))
        out = out_buf[out_off:out_off + B * n_in].reshape((B, n_in))
        for r in range(B):
            for i in range(n_in):
                out[r, i] = dxt[i, r]
    else:
        gemm(NO_TRANS, TRANS, B, n_in, n_out, g_buf, g_off, n_out, params, W_off, n_out,
             out_buf, out_off, n_in, iw)


@njit(**JIT_SERIAL)
def _hidden_backward(k, B, tab, act, acts, dpre, g_buf, g_off, params, grads, tmp,
                     iw):  # pragma: no cover - compiled
    """Layer ``k`` whose input is the hidden activation of layer ``k - 1``: ``dW`` from that
    activation and the output gradient at ``g_buf[g_off:]``, then the input's pre-activation
    gradient and bias gradient into ``dpre`` / ``grads``; returns its offset in ``dpre``."""
    w_off, n_in, n_out = tab[k, 0], tab[k, 2], tab[k, 3]
    i_off = tab[k - 1, 4]
    gemm(TRANS, NO_TRANS, n_in, n_out, B, acts, i_off, n_in, g_buf, g_off, n_out,
         grads, w_off, n_out, iw)
    _input_grad(B, w_off, n_in, n_out, g_buf, g_off, dpre, i_off, params, tmp, iw)
    d = dpre[i_off:i_off + B * n_in].reshape((B, n_in))
    a = acts[i_off:i_off + B * n_in].reshape((B, n_in))
    act_backward_bias(d, grads[tab[k - 1, 1]:tab[k - 1, 1] + n_in], a, act)
    return i_off


@njit(**JIT_SERIAL)
def backward_pass(params, grads, tab, n_enc, act, X, eps, beta, acts, dpre, zs, tmp, cap,
                  inv_b, iw, G, add):  # pragma: no cover
    """Overwrite ``grads`` with d(mean recon + beta * mean kl)/dparams of the last forward pass.

    Parameters are those of :func:`forward_pass` (same ``X``, ``eps`` and buffers, unchanged in
    between) plus ``grads`` (P,), ``beta`` (any finite float), ``dpre`` and ``tmp`` (module
    notes), ``G`` (B, 3L) the loss stage's additive ``[dz | dmu | dlogvar]`` (read when ``add``).
    ``beta`` weighs the closed-form KL (0 when the loss has none). Per dense layer: ``dZ = dA * act'(Z)``, ``dW = X.T @ dZ``, ``db = dZ.sum(0)``,
    ``dX = dZ @ W.T``.
    """
    B = X.shape[0]
    L = eps.shape[1]
    n_layers = tab.shape[0]
    last = n_layers - 1
    # output layer: acts holds dloss/dx_hat (the loss stage wrote it)
    g_buf = acts
    g_off = tab[last, 4]
    n_out = tab[last, 3]
    col_sum(grads[tab[last, 1]:tab[last, 1] + n_out],
            acts[g_off:g_off + B * n_out].reshape((B, n_out)))
    for k in range(last, n_enc, -1):           # output and decoder hidden layers
        w_off, n_in, n_out = tab[k, 0], tab[k, 2], tab[k, 3]
        if k - 1 > n_enc:                      # input is a hidden activation
            g_off = _hidden_backward(k, B, tab, act, acts, dpre, g_buf, g_off, params, grads, tmp,
                                     iw)
            g_buf = dpre
        else:                                  # input is z: dZ goes through the heads
            gemm(TRANS, NO_TRANS, n_in, n_out, B, zs, 0, n_in, g_buf, g_off, n_out,
                 grads, w_off, n_out, iw)
            gemm(NO_TRANS, TRANS, B, n_in, n_out, g_buf, g_off, n_out, params, w_off, n_out,
                 zs, 2 * cap * L, n_in, iw)
    h_off = tab[n_enc, 4]
    H = acts[h_off:h_off + B * 2 * L].reshape((B, 2 * L))
    dH = dpre[h_off:h_off + B * 2 * L].reshape((B, 2 * L))
    S = zs[cap * L:cap * L + B * L].reshape((B, L))
    dZ = zs[2 * cap * L:2 * cap * L + B * L].reshape((B, L))
    hb = tab[n_enc, 1]
    heads_backward(dH, grads[hb:hb + 2 * L], dZ, H, S, eps, beta, inv_b, G, add)
    g_buf = dpre
    g_off = h_off
    for k in range(n_enc, -1, -1):             # heads and encoder hidden layers
        w_off, n_in, n_out = tab[k, 0], tab[k, 2], tab[k, 3]
        if k > 0:
            g_off = _hidden_backward(k, B, tab, act, acts, dpre, g_buf, g_off, params, grads, tmp,
                                     iw)
            g_buf = dpre
        else:
            gemm(TRANS, NO_TRANS, n_in, n_out, B, X, 0, n_in, g_buf, g_off, n_out,
                 grads, w_off, n_out, iw)
