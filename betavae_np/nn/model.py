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

from .._kernels.dense import bias_act
from .._kernels.encode import encode_one_local
from ..exceptions import ConfigError, InputError
from .checks import as_rows, as_vector
from .config import ACTIVATIONS, VAEConfig
from .loss import LossParts
from .params import init_params, layer_views, make_layout, named_views
from .training import TrainingPasses
from .workspace import Workspace, aligned_zeros

__all__ = ["BetaVAE", "LossParts", "VAEConfig", "Workspace"]

_matmul = np.matmul


class BetaVAE(TrainingPasses):
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
        self._params = aligned_zeros((lay.size,), self.dtype)     # 64-byte aligned, as the
        self._grads = aligned_zeros((lay.size,), self.dtype)      # workspace's buffers
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
