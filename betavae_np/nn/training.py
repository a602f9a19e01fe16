"""The training passes of :class:`~betavae_np.nn.model.BetaVAE`: workspace, forward/backward, losses.

:class:`TrainingPasses` holds what a model needs to be trained (the model inherits it): the
allocation-free :meth:`~TrainingPasses.forward_train`/:meth:`~TrainingPasses.backward_train` pair
``fit`` drives on a :class:`~betavae_np.nn.workspace.Workspace`, and the checked, allocating
:meth:`~TrainingPasses.loss` / :meth:`~TrainingPasses.loss_and_grad` for single calls and gradient
checks. Inference (``encode``/``decode``) stays in :mod:`betavae_np.nn.model`.
"""

from __future__ import annotations

import numpy as np

from .._blas import blas_threads, threads_for_batch
from .._kernels.step import (
    backward_chunks,
    backward_chunks_seq,
    forward_chunks,
    forward_chunks_seq,
    n_chunks_for,
)
from ..exceptions import ConfigError, InputError
from . import engine, numpy_engine
from .checks import as_beta, as_rows
from .loss import LossParts
from .params import layer_views, named_views
from .workspace import Workspace

__all__ = ["TrainingPasses"]


class TrainingPasses:
    """Training methods of :class:`~betavae_np.nn.model.BetaVAE` (a base class; not used alone).

    Relies on the model's ``_layout``, ``params``, ``grads``, ``dtype``, ``config`` and ``loss_spec``.
    """
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
        ws.tc_beta = beta              # the TC-VAE forward computes the gradients for this beta
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
