"""The ``"numpy"`` engine: ``np.matmul`` per layer around the compiled elementwise kernels.

The fallback where numpy's CBLAS cannot be called from compiled code (and the reference the
compiled engine is tested against). It runs the same three phases as
:mod:`betavae_np._kernels.step` on the whole batch: forward to ``x_hat``, the loss stage (the same
kernels: :mod:`betavae_np._kernels.loss`, :mod:`betavae_np._kernels.tc`), backward.
"""

from __future__ import annotations

import numpy as np

from .._kernels.dense import act_backward_bias, bias_act, col_sum
from .._kernels.loss import GAUSSIAN_LEARNED, KIND, RECON, TCVAE, kl_block, recon_block, sigma_weights
from .._kernels.step import loss_grad, n_chunks_for, sigma_grad
from .._kernels.tc import tc_forward, tc_gather, tc_grad
from .._kernels.vae import heads_backward, heads_sample
from .workspace import Workspace

__all__ = ["forward", "backward"]

_matmul = np.matmul
_copyto = np.copyto

#: Batches up to this size compute ``dX = dZ @ W.T`` as ``(W @ dZ.T).T`` through small contiguous
#: copies: at batch 32 OpenBLAS's NT product is ~2x slower than the NN one and the copies cost
#: less than the difference (step 176-190 -> 170-186 us, 1 thread); at batch 64 with 2 threads it
#: is a loss (~280 -> ~290 us). Same products and sums, possibly in another order.
_TRANSPOSED_DX_MAX_B = 32
#: ... and only for weights at least this large (the copies do not pay off on tiny layers).
_TRANSPOSED_DX_MIN_W = 8192


def _dx_buffers(ws: Workspace, B: int, W: np.ndarray):
    """Per-workspace (dZ.T, dX.T) buffers of shapes (n_out, B) and (n_in, B), made once."""
    cache = ws.__dict__.setdefault("_dx_t", {})
    key = (B, W.shape)
    bufs = cache.get(key)
    if bufs is None:
        bufs = cache[key] = (np.empty((W.shape[1], B), W.dtype), np.empty((W.shape[0], B), W.dtype))
    return bufs


def _input_grad(out: np.ndarray, g: np.ndarray, W: np.ndarray, ws: Workspace) -> None:
    """out (B, n_in) = g (B, n_out) @ W.T, W (n_in, n_out)."""
    B = g.shape[0]
    if B <= _TRANSPOSED_DX_MAX_B and W.size >= _TRANSPOSED_DX_MIN_W:
        gt, dxt = _dx_buffers(ws, B, W)
        _copyto(gt, g.T)                       # (n_out, B)
        _matmul(W, gt, out=dxt)                # (n_in, B) = W @ g.T
        _copyto(out, dxt.T)
    else:
        _matmul(g, W.T, out=out)


def forward(model, ws: Workspace, X: np.ndarray, eps: np.ndarray, B: int) -> tuple[float, float]:
    """Forward pass and loss stage of one batch (``X`` (B, n_input), ``eps`` (B, L), checked by
    :meth:`BetaVAE.forward_train`); returns the batch-mean ``(recon, kl)``."""
    ws.last_X = X
    ws.last_eps = eps
    p = ws.plan(B)
    act = model._act
    layers = model._layers
    outs = p.outs
    ne = model._n_enc
    h = X
    for k in range(ne):
        W, b = layers[k]
        o = outs[k]
        _matmul(h, W, out=o)
        bias_act(o, b, act)
        h = o
    W, b = layers[ne]
    H = outs[ne]
    _matmul(h, W, out=H)
    heads_sample(p.Z, p.S, H, b, eps)
    h = p.Z
    last = len(layers) - 1
    for k in range(ne + 1, last):
        W, b = layers[k]
        o = outs[k]
        _matmul(h, W, out=o)
        bias_act(o, b, act)
        h = o
    W, b = layers[last]
    Y = outs[last]
    _matmul(h, W, out=Y)
    bias_act(Y, b, 0)
    # the loss stage: the same kernels as the compiled engine's, on the whole batch
    lc = ws.lc
    if lc[RECON] == GAUSSIAN_LEARNED:
        sigma_weights(ws.sw, model._params, lc[3])
        ws.gls[:] = 0.0
    recon = recon_block(lc, ws.lw, Y, X, p.inv_b, model._params, ws.sw, ws.gls)
    kl = kl_block(H, p.S, ws.kl_per_dim)
    ws.terms[0] = recon
    ws.terms[1] = kl
    if lc[KIND] == TCVAE:
        tc_gather(ws.tcb, B, model._n_latent, 0, H, p.Z)
        tc_forward(lc, ws.lw, B, model._n_latent, n_chunks_for(B), ws.tcb, ws.terms)
    ws.last_plan = p
    return recon, kl


def backward(model, ws: Workspace, beta: float, glayers: list, dX: np.ndarray | None,
             grads: np.ndarray) -> None:
    """Overwrite ``glayers`` (per layer (dW, db) views of ``grads``) with the gradient of the last
    :func:`forward` (``dX`` (B, n_input) too when given); ``beta`` the step's scheduled weight."""
    p = ws.last_plan
    G = ws.G[:p.B]
    c_kl = loss_grad(ws.lc, ws.lw, float(beta), p.B, n_chunks_for(p.B), ws.tcb, G)
    if ws.lc[KIND] == TCVAE:                 # the estimator's gradient for that beta into G
        tc_grad(ws.lw, p.B, model._n_latent, n_chunks_for(p.B), ws.tcb, G)
    sigma_grad(ws.lc, ws.gls, grads)
    X = ws.last_X
    act = model._act
    layers = model._layers
    outs = p.outs
    dpres = p.dpres
    ne = model._n_enc
    last = len(layers) - 1
    # output layer: outs[last] already holds dloss/dx_hat = 2 (x_hat - x) / B
    g = outs[last]
    dW, db = glayers[last]
    col_sum(db, g)
    for k in range(last, ne, -1):          # output and decoder hidden layers
        inp = outs[k - 1] if k - 1 > ne else p.Z
        dW, _ = glayers[k]
        _matmul(inp.T, g, out=dW)
        W, _ = layers[k]
        if k - 1 > ne:                     # input is a hidden activation
            d = dpres[k - 1]
            _input_grad(d, g, W, ws)
            act_backward_bias(d, glayers[k - 1][1], outs[k - 1], act)
            g = d
        else:                              # input is z: go through the heads
            _matmul(g, W.T, out=p.dZ)
    H = outs[ne]
    g = dpres[ne]
    add = ws.lc[KIND] == TCVAE
    heads_backward(g, glayers[ne][1], p.dZ, H, p.S, ws.last_eps, c_kl, p.inv_b, G, add)
    for k in range(ne, -1, -1):            # heads and encoder hidden layers
        inp = outs[k - 1] if k > 0 else X
        dW, _ = glayers[k]
        _matmul(inp.T, g, out=dW)
        W, _ = layers[k]
        if k > 0:
            d = dpres[k - 1]
            _input_grad(d, g, W, ws)
            act_backward_bias(d, glayers[k - 1][1], outs[k - 1], act)
            g = d
        elif dX is not None:
            _matmul(g, W.T, out=dX)
            dX -= outs[last]               # recon depends on X directly: -dloss/dx_hat
