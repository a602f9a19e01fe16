"""The beta-VAE: an MLP encoder to ``(mu, logvar)``, reparameterised sampling, an MLP decoder.

Parameters and gradients live in one flat buffer each (see :mod:`betavae_np.nn.params`). A
training pass is one compiled call that calls numpy's CBLAS from Numba (the ``"compiled"``
engine, :mod:`betavae_np.nn.engine`), or, where that is not available, ``np.matmul(out=)`` per
layer with the elementwise work in fused Numba kernels (the ``"numpy"`` engine,
:mod:`betavae_np.nn.numpy_engine`, also the reference the tests compare with). Inference (``encode``/``decode``) uses ``np.matmul``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._blas import blas_threads, threads_for_batch
from .._kernels.dense import bias_act
from .._kernels.encode import encode_one_local
from .._kernels.step import (backward_chunks, backward_chunks_seq, forward_chunks,
                             forward_chunks_seq, n_chunks_for)
from ..exceptions import ConfigError, InputError
from . import engine, numpy_engine
from .checks import as_beta, as_rows, as_vector
from .config import ACTIVATIONS, VAEConfig
from .loss import LossParts
from .params import init_params, layer_views, make_layout, named_views
from .workspace import Workspace

__all__ = ["BetaVAE", "VAEConfig", "LossParts", "Workspace"]

_matmul = np.matmul


class BetaVAE:
    """A beta-VAE with fully connected encoder and decoder, trained by manual backprop.

    Parameters
    ----------
    cfg : VAEConfig
        Architecture and dtype.
    rng : int or numpy.random.Generator, default 0
        Seed or generator for the weight initialisation.

    Attributes
    ----------
    config : VAEConfig
    dtype : numpy.dtype
    params, grads : ndarray, shape (n_params,)
        The flat parameter and gradient buffers (write into them, never rebind).
    loss_spec : betavae_np.losses.Loss
        The loss the model is trained with (default ``BetaVAE(recon="sse")``); with a learned
        sigma the model has the extra parameter ``out.logsigma`` (n_input,).
    metadata : dict
        JSON-able extra information carried by save/load.

    Notes
    -----
    Per sample, with ``s = exp(0.5 logvar)`` and ``eps ~ N(0, I)`` (Kingma & Welling 2014)::

        mu, logvar = enc(x);   z = mu + s * eps;   x_hat = dec(z)
        recon = sum_i (x_i - x_hat_i)^2
        kl    = -0.5 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))
        loss  = recon + beta * kl            (Higgins et al. 2017)

    A minibatch loss is the mean over its rows.
    """

    def __init__(self, cfg: VAEConfig, rng: int | np.random.Generator | None = 0, *, loss=None):
        from .. import losses
        if not isinstance(cfg, VAEConfig):
            raise ConfigError(f"cfg must be a VAEConfig, got {type(cfg).__name__}.")
        loss = losses.default() if loss is None else loss
        if not isinstance(loss, losses.Loss):
            raise ConfigError(f"loss must be a betavae_np.losses spec, got {type(loss).__name__}.")
        self.config = cfg
        self.loss_spec = loss
        self.dtype = np.dtype(cfg.dtype)
        self._act = ACTIVATIONS[cfg.activation]
        self._layout = lay = make_layout(cfg, loss.learn_sigma)
        self._params = np.zeros(lay.size, self.dtype)
        self._grads = np.zeros(lay.size, self.dtype)
        self.metadata: dict[str, Any] = {}
        layers = (*lay.encoder, lay.heads, *lay.decoder, lay.out)
        self._n_enc = len(lay.encoder)
        self._n_input = cfg.n_input
        self._n_latent = cfg.n_latent
        self._layers = [layer_views(self._params, ly) for ly in layers]   # (W, b) per layer
        self._glayers = [layer_views(self._grads, ly) for ly in layers]   # (dW, db) per layer
        self._named = named_views(self._params, lay)
        self._gnamed = named_views(self._grads, lay)
        # single-window encode: (W offset, b offset, n_in, n_out) of encoder layers + heads
        self._enc_table = np.array([[ly.w_off, ly.b_off, ly.n_in, ly.n_out]
                                    for ly in (*lay.encoder, lay.heads)], np.int64)
        # its scratch: two layer outputs, made per call (no state shared between threads)
        self._n_scratch = 2 * max(ly.n_out for ly in (*lay.encoder, lay.heads))
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        init_params(self._params, lay, cfg.activation, rng)

    # ------------------------------------------------------------------ buffers
    @property
    def params(self) -> np.ndarray:
        """The flat parameter buffer, shape (n_params,)."""
        return self._params

    @property
    def grads(self) -> np.ndarray:
        """The flat gradient buffer, shape (n_params,), filled by :meth:`backward_train`."""
        return self._grads

    @property
    def n_params(self) -> int:
        """Number of scalar parameters."""
        return int(self._params.size)

    def named_parameters(self) -> dict[str, np.ndarray]:
        """Name -> view into :attr:`params` (``mu.W``/``logvar.W`` are strided views)."""
        return dict(self._named)

    def named_gradients(self) -> dict[str, np.ndarray]:
        """Name -> view into :attr:`grads`, same names and shapes as :meth:`named_parameters`."""
        return dict(self._gnamed)

    def __repr__(self) -> str:
        c = self.config
        return (f"BetaVAE(n_input={c.n_input}, hidden={c.hidden}, n_latent={c.n_latent}, "
                f"activation={c.activation!r}, dtype={c.dtype!r}, n_params={self.n_params})")

    # ------------------------------------------------------------------ inference
    def _encoder_rows(self, X: np.ndarray) -> np.ndarray:
        """(n, n_input) -> H (n, 2L) = [mu | logvar]."""
        h = X
        for W, b in self._layers[:self._n_enc]:
            h = _matmul(h, W)
            bias_act(h, b, self._act)
        W, b = self._layers[self._n_enc]
        H = _matmul(h, W)
        bias_act(H, b, 0)
        return H

    def encode(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior parameters of windows.

        Parameters
        ----------
        X : ndarray, shape (n, n_input) or (n_input,)
            Windows; float arrays of another dtype are cast to the model dtype.

        Returns
        -------
        mu, logvar : ndarray, shape (n, n_latent) or (n_latent,)
            A single window goes through one compiled call (as :meth:`encode_into`).

        Notes
        -----
        Safe to call on one model from several threads at once (e.g. stream callbacks): every
        call has its own scratch and outputs and only reads the parameters. Do not update
        :attr:`params` (train, load) while other threads encode.
        """
        if (type(X) is np.ndarray and X.ndim == 1 and X.dtype == self.dtype
                and X.flags.c_contiguous and X.shape[0] == self._n_input):
            x = X                              # fast path: the kernel checks finiteness
        else:
            X = np.asarray(X)
            x = as_vector("x", X, self._n_input, self.dtype) if X.ndim == 1 else None
        if x is not None:                      # one window: one compiled call, safe from threads
            L = self._n_latent
            mu = np.empty(L, self.dtype)
            logvar = np.empty(L, self.dtype)
            if encode_one_local(mu, logvar, x, self._params, self._enc_table, self._act,
                                self._n_scratch):
                self._encode_into_error(x, mu, logvar)
            return mu, logvar
        X = as_rows("X", X, self.config.n_input, self.dtype)
        H = self._encoder_rows(X)
        L = self.config.n_latent
        return np.ascontiguousarray(H[:, :L]), np.ascontiguousarray(H[:, L:])

    def encode_into(self, x: np.ndarray, mu_out: np.ndarray, logvar_out: np.ndarray) -> None:
        """Encode one window into preallocated outputs (no allocation; live inference path).

        Parameters
        ----------
        x : ndarray, shape (n_input,), model dtype, C-contiguous
        mu_out, logvar_out : ndarray, shape (n_latent,), model dtype
            Overwritten with the posterior mean and log-variance.

        Raises
        ------
        InputError
            Wrong shape or dtype, or a non-finite value in ``x``.

        Notes
        -----
        One compiled call over the flat parameter buffer (layer offsets in a small int64 table);
        its scratch memory is made per call, nothing of the model is written.

        Contract: ``mu_out`` and ``logvar_out`` are owned by the caller, and they are the only
        memory written. Several threads may call this on one model at once provided each uses
        its own output arrays (an output pair shared between concurrent calls gives torn
        results). ``x`` is only read.
        """
        dt = self.dtype
        if (type(x) is not np.ndarray or type(mu_out) is not np.ndarray
                or type(logvar_out) is not np.ndarray
                or (x.dtype is not dt and x.dtype != dt)
                or (mu_out.dtype is not dt and mu_out.dtype != dt)
                or (logvar_out.dtype is not dt and logvar_out.dtype != dt)
                or x.ndim != 1 or mu_out.ndim != 1 or logvar_out.ndim != 1):
            self._encode_into_error(x, mu_out, logvar_out)
        if encode_one_local(mu_out, logvar_out, x, self._params, self._enc_table, self._act,
                            self._n_scratch):
            self._encode_into_error(x, mu_out, logvar_out)

    def _encode_into_error(self, x, mu_out, logvar_out) -> None:
        dt = self.dtype
        n, L = self.config.n_input, self.config.n_latent
        for name, a, w in (("x", x, n), ("mu_out", mu_out, L), ("logvar_out", logvar_out, L)):
            if type(a) is not np.ndarray or a.dtype != dt or a.shape != (w,):
                raise InputError(f"{name} must be a {dt.name} array of shape ({w},); "
                                 f"use encode() to convert.")
        raise InputError("x contains NaN or infinite values; clean the window first.")

    def decode(self, Z: np.ndarray) -> np.ndarray:
        """Decoder mean for latent codes.

        Parameters
        ----------
        Z : ndarray, shape (n, n_latent) or (n_latent,)

        Returns
        -------
        X_hat : ndarray, shape (n, n_input) or (n_input,)
        """
        Z = np.asarray(Z)
        if Z.ndim == 1:
            z = as_vector("z", Z, self.config.n_latent, self.dtype)
            return self.decode(z[None, :])[0]
        h = as_rows("Z", Z, self.config.n_latent, self.dtype)
        nh = len(self._layers)
        for k in range(self._n_enc + 1, nh):
            W, b = self._layers[k]
            h = _matmul(h, W)
            bias_act(h, b, self._act if k < nh - 1 else 0)
        return h

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        """``decode(encode(X)[0])``: the deterministic reconstruction, same shape as ``X``."""
        return self.decode(self.encode(X)[0])

    # ------------------------------------------------------------------ training fast path
    def workspace(self, batch_size: int, engine: str = "auto", *, loss=None,
                  n_data: int | None = None) -> Workspace:
        """Allocate the buffers of :meth:`forward_train`/:meth:`backward_train`.

        Parameters
        ----------
        batch_size : int
            The largest batch served; smaller batches use the leading rows.
        engine : {"auto", "compiled", "numpy"}
            See :mod:`betavae_np.nn.engine`; ``"auto"`` picks ``"compiled"`` when available.
        loss : betavae_np.losses.Loss, optional
            The loss the steps compute; default :attr:`loss_spec`.
        n_data : int, optional
            Dataset size for a TC-VAE spec without ``dataset_size``.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
        loss = self.loss_spec if loss is None else loss
        return Workspace(self._layout, int(batch_size), self.dtype, engine, loss, n_data)

    def forward_train(self, ws: Workspace, X: np.ndarray, eps: np.ndarray) -> tuple[float, float]:
        """Forward pass of one minibatch (O(1) argument checks, no conversion, no allocation).

        Parameters
        ----------
        ws : Workspace
            From this model's :meth:`workspace`, capacity >= B.
        X : ndarray, shape (B, n_input), 1 <= B <= ws.capacity
            Model dtype and C-contiguous on the compiled engine.
        eps : ndarray, shape (B, n_latent)
            Standard normal noise; model dtype and C-contiguous on the compiled engine.

        Returns
        -------
        recon, kl : float
            Batch means; ``ws.kl_per_dim`` (n_latent,) float64 is filled. ``X`` and ``eps`` are
            referenced (not copied) until :meth:`backward_train`.

        Raises
        ------
        InputError
            Another model's workspace, wrong shapes, a batch above the workspace capacity, or
            (compiled engine) another dtype or layout. Values are not checked (no O(n) work).
        """
        # the kernels read X, eps and the workspace through raw pointers or unchecked indexing:
        # every shape they rely on is checked here, in O(1)
        if (not isinstance(ws, Workspace) or ws.layout is not self._layout
                or not isinstance(X, np.ndarray) or not isinstance(eps, np.ndarray)
                or X.ndim != 2 or eps.ndim != 2):
            self._train_args_error(ws, X, eps)
        B, n_in = X.shape
        if (n_in != self._n_input or eps.shape[0] != B or eps.shape[1] != self._n_latent
                or B < 1 or B > ws.capacity):
            self._train_args_error(ws, X, eps)
        if ws.engine == "compiled":
            # compiled code reads these through raw pointers: never hand it another layout
            dt = self.dtype
            if not (X.dtype == dt and eps.dtype == dt and X.flags.c_contiguous
                    and eps.flags.c_contiguous):
                raise InputError(f"forward_train needs C-contiguous {dt.name} X and eps, got "
                                 f"{X.dtype} and {eps.dtype}; convert with np.ascontiguousarray(a, dtype).")
            ws.last_X = X
            ws.last_eps = eps
            n = ws.last_chunks = n_chunks_for(B)
            parallel = n > 1 and engine.parallel_chunks()
            fwd = forward_chunks if parallel else forward_chunks_seq
            out = fwd(self._params, ws.tab, self._n_enc, self._act, X, eps, ws.acts, ws.zs,
                      ws.klp, ws.sums, ws.kl_per_dim, ws.chunk_cap, n, ws.iw, ws.lc, ws.lw, ws.sw,
                      ws.gls, ws.tcb, ws.terms)
            if parallel:
                engine.note_parallel_call()
            return out
        return numpy_engine.forward(self, ws, X, eps, B)

    def _train_args_error(self, ws, X, eps) -> None:
        """Raise the InputError that names what :meth:`forward_train` cannot take."""
        if not isinstance(ws, Workspace):
            raise InputError(f"ws must be a Workspace from model.workspace(batch_size), got "
                             f"{type(ws).__name__}.")
        if ws.layout is not self._layout:
            raise InputError("this workspace belongs to another model; make one with "
                             "model.workspace(batch_size) on the model you train.")
        n, L = self._n_input, self._n_latent
        for name, a in (("X", X), ("eps", eps)):
            if not isinstance(a, np.ndarray):
                raise InputError(f"{name} must be a numpy array, got {type(a).__name__}.")
        if X.ndim != 2 or X.shape[1] != n:
            raise InputError(f"X must have shape (B, {n}), got {X.shape}.")
        B = X.shape[0]
        if eps.shape != (B, L):
            raise InputError(f"eps must have shape ({B}, {L}) like X's rows, got {eps.shape}.")
        if B < 1:
            raise InputError("forward_train needs a batch of at least one row.")
        raise InputError(f"a batch of {B} rows exceeds the workspace capacity {ws.capacity}; "
                         f"make a larger one with model.workspace({B}).")

    def backward_train(self, ws: Workspace, beta: float) -> None:
        """Overwrite :attr:`grads` with d(mean recon + beta * mean kl)/dparams of the last batch.

        Parameters
        ----------
        ws : Workspace
            The workspace of the preceding :meth:`forward_train`.
        beta : float
            KL weight; any finite value (the Capacity schedule passes -gamma below its
            target), not checked.

        Notes
        -----
        Per dense layer (numpy-ml form): ``dZ = dA * act'(Z)``, ``dW = X.T @ dZ``,
        ``db = dZ.sum(0)``, ``dX = dZ @ W.T``; see :mod:`betavae_np._kernels.vae` for the heads.
        """
        if not isinstance(ws, Workspace) or ws.layout is not self._layout or ws.last_X is None:
            if isinstance(ws, Workspace) and ws.layout is self._layout:
                raise InputError("backward_train needs a forward_train on this workspace first.")
            self._train_args_error(ws, None, None)
        if ws.engine == "compiled":
            self._backward_compiled(ws, beta, self._grads)
        else:
            numpy_engine.backward(self, ws, beta, self._glayers, None, self._grads)

    def _backward_compiled(self, ws: Workspace, beta: float, grads: np.ndarray) -> None:
        n = ws.last_chunks
        bwd = backward_chunks if n > 1 and engine.parallel_chunks() else backward_chunks_seq
        bwd(self._params, grads, ws.gparts, ws.tab, self._n_enc, self._act, ws.last_X,
            ws.last_eps, float(beta), ws.acts, ws.dpre, ws.zs, ws.tmp, ws.chunk_cap, n, ws.iw,
            ws.lc, ws.lw, ws.G, ws.gls, ws.tcb)

    # ------------------------------------------------------------------ validated, allocating
    def loss(self, X: np.ndarray, eps: np.ndarray, beta: float, *, loss=None,
             chunk: int = 4096) -> LossParts:
        """Loss terms of a dataset (forward only; processed in chunks of ``chunk`` rows).

        Parameters
        ----------
        X : ndarray, shape (n, n_input)
        eps : ndarray, shape (n, n_latent)
            Reparameterisation noise (zeros give the deterministic ``z = mu``).
        beta : float
            The scheduled weight (of the KL, or of the TC term for beta-TCVAE), >= 0.
        loss : betavae_np.losses.Loss, optional
            Default :attr:`loss_spec`. A TC-VAE without ``dataset_size`` takes N = n.
        chunk : int
            Rows per pass; the TC-VAE's minibatch estimates are per chunk (then averaged).

        Returns
        -------
        LossParts
            Means over the ``n`` rows.
        """
        X, eps, beta = self._check_batch(X, eps, beta)
        loss = self._loss_for(loss)
        n = X.shape[0]
        ws = Workspace(self._layout, min(n, max(1, int(chunk))), self.dtype, "auto", loss, n)
        t = np.zeros(5)
        kl_dim = np.zeros(self.config.n_latent)
        with blas_threads(threads_for_batch(ws.capacity, ws.engine)):
            for start in range(0, n, ws.capacity):
                stop = min(n, start + ws.capacity)
                self.forward_train(ws, X[start:stop], eps[start:stop])
                w = (stop - start) / n
                t += ws.terms[:5] * w
                kl_dim += ws.kl_per_dim * w
        return self._parts(loss, beta, t, kl_dim)

    def _loss_for(self, loss):
        """The loss spec to use (default :attr:`loss_spec`), checked against the layout."""
        from .. import losses
        if loss is None:
            return self.loss_spec
        if not isinstance(loss, losses.Loss):
            raise ConfigError(f"loss must be a betavae_np.losses spec (BetaVAE or TCVAE), got "
                              f"{type(loss).__name__}.")
        if loss.learn_sigma != (self._layout.ls_off >= 0):
            raise ConfigError("a loss that learns sigma needs a model made with it (it adds the "
                              "out.logsigma parameter), and a model made with it needs such a "
                              "loss: BetaVAE(cfg, loss=bv.losses.BetaVAE(recon='gaussian', "
                              "learn_sigma=True)).")
        return loss

    @staticmethod
    def _parts(loss, beta: float, t, kl_dim) -> LossParts:
        from .. import losses
        recon, kl = float(t[0]), float(t[1])
        if isinstance(loss, losses.TCVAE):
            mi, tc, dw = (float(v) for v in t[2:5])
            return LossParts(loss.objective(recon, kl, beta, (mi, tc, dw)), recon, kl, kl_dim,
                             mi, tc, dw)
        return LossParts(recon + beta * kl, recon, kl, kl_dim)

    def loss_and_grad(self, X: np.ndarray, eps: np.ndarray, beta: float, loss=None, *,
                      return_dX: bool = False):
        """Loss terms and exact gradients of the batch-mean loss over ``X``.

        Parameters
        ----------
        X : ndarray, shape (n, n_input)
        eps : ndarray, shape (n, n_latent)
        beta : float
            The scheduled weight, >= 0: the KL's beta (beta-VAE) or the TC term's (beta-TCVAE;
            pass ``loss.beta`` for the loss as specified).
        loss : betavae_np.losses.Loss, optional
            Default :attr:`loss_spec` (``BetaVAE(recon="sse")`` unless the model was made with
            another). A TC-VAE without ``dataset_size`` takes N = n.
        return_dX : bool, default False
            Also return the gradient w.r.t. ``X`` (it enters both the encoder and the recon term).

        Returns
        -------
        parts : LossParts
        grads : dict of str to ndarray
            Same names and shapes as :meth:`named_parameters`, fresh arrays (``model.grads`` is
            left untouched).
        dX : ndarray, shape (n, n_input)
            Only when ``return_dX``.
        """
        X, eps, beta = self._check_batch(X, eps, beta)
        loss = self._loss_for(loss)
        # the input gradient is only on the numpy engine's path (it is no training quantity)
        ws = Workspace(self._layout, X.shape[0], self.dtype, "numpy" if return_dX else "auto",
                       loss, X.shape[0])
        flat = np.zeros_like(self._grads)
        lay = self._layout
        dX = None
        with blas_threads(threads_for_batch(ws.capacity, ws.engine)):
            self.forward_train(ws, X, eps)
            if ws.engine == "compiled":
                self._backward_compiled(ws, beta, flat)
            else:
                glayers = [layer_views(flat, ly)
                           for ly in (*lay.encoder, lay.heads, *lay.decoder, lay.out)]
                dX = np.empty_like(X) if return_dX else None
                numpy_engine.backward(self, ws, beta, glayers, dX, flat)
        parts = self._parts(loss, beta, ws.terms, ws.kl_per_dim.copy())
        grads = named_views(flat, lay)
        return (parts, grads, dX) if return_dX else (parts, grads)

    def _check_batch(self, X, eps, beta):
        X = as_rows("X", X, self.config.n_input, self.dtype)
        eps = as_rows("eps", eps, self.config.n_latent, self.dtype)
        if eps.shape[0] != X.shape[0]:
            raise InputError(f"eps must have one row per row of X ({X.shape[0]}), "
                             f"got {eps.shape[0]}.")
        return X, eps, as_beta(beta)
