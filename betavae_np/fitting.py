"""Training: :func:`fit` (minibatches, per-step beta schedule, Adam, NaN guard, early stopping).

The loop gathers each minibatch into one reused buffer, draws the reparameterisation noise from
the caller's generator into another, and calls the model's allocation-free fast path
(``forward_train`` / ``backward_train``) and one optimiser kernel per step.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ._blas import blas_threads, threads_for_batch
from .checks import in_range
from .exceptions import ConfigError, InputError, TrainingError
from .nn.adam import Adam
from .history import BatchInfo, EpochInfo, History
from .schedules import Constant, Schedule

__all__ = ["fit", "History", "BatchInfo", "EpochInfo", "VALIDATION_SEED"]

#: Seed of the fixed noise used for every validation pass (so epochs are comparable).
VALIDATION_SEED = 0x5EED_BE7A


def _count(name: str, value, lo: int = 1) -> int:
    return in_range(name, value, lo, integer=True)


def _source(X, n_input: int, dtype: np.dtype, what: str):
    """Return (array_or_source, n, is_array); arrays are checked and cast to the model dtype once."""
    if not isinstance(X, np.ndarray) and hasattr(X, "gather") and hasattr(X, "shape"):
        shape = tuple(X.shape)
        if len(shape) != 2 or shape[1] != n_input:
            raise InputError(f"the {what} window source has shape {shape}, the model expects "
                             f"(n, {n_input}).")
        if shape[0] < 1:
            raise InputError(f"the {what} window source is empty.")
        return X, int(shape[0]), False
    try:
        X = np.asarray(X)
    except (TypeError, ValueError):
        raise InputError(f"the {what} data must be a 2-D array or a window source.") from None
    if X.dtype.kind not in "biuf":
        raise InputError(f"the {what} data has dtype {X.dtype}; numbers are needed.")
    if X.ndim != 2 or X.shape[1] != n_input:
        raise InputError(f"the {what} data has shape {X.shape}, the model expects (n, {n_input}).")
    if X.shape[0] < 1:
        raise InputError(f"the {what} data is empty.")
    X = np.ascontiguousarray(X, dtype=dtype)
    if not np.isfinite(X).all():
        raise InputError(f"the {what} data contains NaN or infinite values (after casting to "
                         f"{dtype.name}).")
    return X, X.shape[0], True


def _record_windowing(model, windower) -> None:
    from dataclasses import replace

    from .records import Windowing, records_of

    if not hasattr(windower, "to_dict") or not hasattr(windower, "n_input"):
        raise ConfigError(f"windower must be a betavae_np.data.Windower, got {type(windower).__name__}.")
    if windower.n_input != model.config.n_input:
        raise ConfigError(f"the windower makes windows of {windower.n_input} values, the model takes "
                          f"{model.config.n_input}.")
    model.records = replace(records_of(model), windowing=Windowing.from_windower(windower))


def _evaluate(model, ws, src, is_array: bool, n: int, eps: np.ndarray, cap: int, xbuf):
    """Mean loss terms (recon, kl, mi, tc, kl_dim) over a data set in chunks of ``cap`` rows with
    the fixed ``eps`` (TC-VAE estimates are per chunk)."""
    t = np.zeros(5)
    for lo in range(0, n, cap):
        hi = min(lo + cap, n)
        if is_array:
            xb = src[lo:hi]
        else:
            xb = xbuf[:hi - lo]
            src.gather(np.arange(lo, hi, dtype=np.int64), xb)
        model.forward_train(ws, xb, eps[lo:hi])  # batch means into ws.terms
        t += ws.terms[:5] * (hi - lo)
    return t / n


def _loss(model, loss, n: int, batch_size: int, schedule):
    """The loss spec fit uses (the model's by default), its dataset size filled in, checked."""
    import dataclasses

    from . import losses
    from .schedules import Capacity

    loss = model._loss_for(loss)
    if isinstance(loss, losses.TCVAE):
        if loss.dataset_size is None:
            loss = dataclasses.replace(loss, dataset_size=n)
        losses.check_batch(loss, batch_size, n)
        if isinstance(schedule, Capacity):
            raise ConfigError("the capacity schedule targets the closed-form KL of a beta-VAE loss; "
                              "with TCVAE use a schedule for the TC weight (constant, linear, ...).")
    return loss


def fit(model, X, epochs: int = 30, batch_size: int = 256, optimizer=None, schedule: Schedule | None = None,
        rng=0, validation=None, on_batch=None, on_epoch=None, early_stopping: int | None = None,
        windower=None, sampler=None, loss=None) -> History:
    """Train ``model`` in place by minibatch Adam on ``recon + beta(step) * KL`` (or another loss).

    Parameters
    ----------
    model : BetaVAE
        Trained in place (its flat ``params``).
    X : ndarray (n, n_input) or window source
        Training windows, or an object with ``.shape == (n, n_input)`` and ``.gather(rows, out)``
        writing the windows ``rows`` (int64 (B,)) into ``out`` ((B, n_input), model dtype).
        Arrays are cast to the model dtype once and checked for NaN/inf up front; window
        sources are trusted.
    epochs : int
        Passes over the data, >= 1.
    batch_size : int
        Windows per step, 1 <= batch_size <= n. The last, smaller batch of an epoch is used.
    optimizer : Adam, optional
        Anything with ``step(params, grads) -> grad_norm``; default ``Adam(lr=1e-3)``.
    schedule : Schedule, optional
        Schedule of the loss's scheduled weight (the KL's beta, or the TC weight of a TCVAE),
        evaluated per optimisation step; default ``Constant(loss.beta)``.
    rng : int, numpy.random.Generator or None
        Source of the per-epoch shuffles and the per-step noise ``eps ~ N(0, 1)``. Same seed,
        same data, same model => bit-identical parameters.
    validation : ndarray (m, n_input) or window source, optional
        Evaluated after every epoch with fixed noise (drawn once from
        ``default_rng(VALIDATION_SEED)``), so values are comparable across epochs and runs.
    on_batch, on_epoch : callable, optional
        Called with a :class:`BatchInfo` after each step / an :class:`EpochInfo` after each epoch.
    early_stopping : int, optional
        Patience in epochs: stop when the validation objective has not improved for this many
        epochs, and restore the parameters of the best epoch (needs ``validation``).
    windower : Windower, optional
        The :class:`~betavae_np.data.Windower` that made ``X``. Recorded on the model
        (``model.records.windowing``) so that a file written by :func:`betavae_np.save` can be
        used by ``betavae-np traverse`` / ``evaluate`` and :func:`betavae_np.workflow.model_windower`.
    sampler : EpochSampler, optional
        Which rows an epoch visits (:class:`~betavae_np.data.sampler.EpochSampler`, e.g.
        ``UniverseWindowSet.sampler("equal")``): each epoch takes ``rows = sampler.epoch(rng)``
        (``n`` rows) instead of shuffling ``arange(n)``. A ``proportional`` sampler gives exactly
        the batches of no sampler.
    loss : betavae_np.losses.Loss, optional
        The loss (default the model's ``loss_spec``, ``BetaVAE(recon="sse")`` unless the model was
        made with another); recorded as ``model.loss_spec``. A TCVAE without ``dataset_size`` gets
        the number of training windows. A loss that learns sigma needs a model made with it.

    Returns
    -------
    History

    Raises
    ------
    ConfigError
        Bad epochs, batch_size (e.g. larger than the data) or early_stopping.
    InputError
        Wrong width, empty or non-finite data.
    TrainingError
        The loss or gradient norm became non-finite; the parameters (and optimiser state) of the
        end of the last good epoch, or the initial ones, are restored first.

    Notes
    -----
    Per step ``s`` of ``T = epochs * ceil(n / batch_size)``: gather the batch, draw
    ``eps ~ N(0, I)`` (model dtype), ``recon, kl = forward``, ``w = schedule.kl_weight(s, T, kl)``,
    backward of ``mean(recon) + w * mean(kl)``, one Adam step. ``KeyboardInterrupt`` re-raises
    with the model at its last finite parameters.
    """
    cfg = model.config
    dtype = np.dtype(model.dtype)
    epochs = _count("epochs", epochs)
    batch_size = _count("batch_size", batch_size)
    if early_stopping is not None:
        early_stopping = _count("early_stopping (patience)", early_stopping)
        if validation is None:
            raise ConfigError("early_stopping needs a validation set; pass validation=...")
    src, n, is_array = _source(X, cfg.n_input, dtype, "training")
    if windower is not None:
        _record_windowing(model, windower)
    if batch_size > n:
        raise ConfigError(f"batch size {batch_size} is larger than the {n} training windows.")
    if sampler is not None and len(sampler) != n:
        raise ConfigError(f"the sampler draws epochs of {len(sampler)} rows, the training data has {n}.")
    if validation is not None:
        vsrc, n_val, v_array = _source(validation, cfg.n_input, dtype, "validation")
        val_eps = np.random.default_rng(VALIDATION_SEED).standard_normal(
            (n_val, cfg.n_latent), dtype=dtype)
    optimizer = Adam() if optimizer is None else optimizer
    loss_spec = _loss(model, loss, n, batch_size, schedule)
    schedule = Constant(loss_spec.beta) if schedule is None else schedule
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    model.loss_spec = loss_spec
    from .losses import TCVAE
    tc = isinstance(loss_spec, TCVAE)

    ws = model.workspace(batch_size, loss=loss_spec)
    if validation is not None:   # validation runs in larger chunks when the batch is small
        v_cap = batch_size if tc else max(batch_size, min(n_val, 1024))
        v_ws = ws if v_cap == batch_size else model.workspace(v_cap, loss=loss_spec)
        v_buf = np.empty((v_cap, cfg.n_input), dtype=dtype) if not v_array else None
    params, grads = model.params, model.grads
    xbuf = np.empty((batch_size, cfg.n_input), dtype=dtype)       # (B, n_input) gathered batch
    # noise for up to ~4096 rows (whole batches) is drawn in one call: the generator yields the
    # same stream as per-step draws, without a Python call per step
    blk_rows = batch_size * max(1, 4096 // batch_size)
    ebuf = np.empty((blk_rows, cfg.n_latent), dtype=dtype)        # (steps * B, n_latent) noise
    perm = np.arange(n, dtype=np.int64) if sampler is None else None   # a sampler gives its own rows
    per_epoch = -(-n // batch_size)
    total = epochs * per_epoch
    kl_acc = np.zeros(cfg.n_latent)
    good = params.copy()                                          # last good parameters
    has_state = hasattr(optimizer, "state_dict") and hasattr(optimizer, "load_state_dict")
    good_opt = optimizer.state_dict() if has_state else None
    best = (math.inf, None)
    wait = 0
    hist = History()
    if tc:
        hist.train_mi, hist.train_tc, hist.train_dimwise_kl = [], [], []
    terms = ws.terms
    if validation is not None:
        hist.val_total, hist.val_recon, hist.val_kl = [], [], []
        if tc:
            hist.val_mi, hist.val_tc, hist.val_dimwise_kl = [], [], []
    take = np.take
    normal = rng.standard_normal
    forward, backward, opt_step = model.forward_train, model.backward_train, optimizer.step
    kl_weight = schedule.kl_weight
    # a plain Constant needs no per-step schedule calls: w = beta, loss = recon + beta * kl
    const_beta = schedule.beta if type(schedule) is Constant and not tc else None
    isfinite = math.isfinite

    def diverged(epoch: int, step: int, what: str) -> TrainingError:
        params[:] = good
        if has_state:
            optimizer.load_state_dict(good_opt)
        where = f"the end of epoch {epoch}" if epoch > 0 else "the start"
        return TrainingError(
            f"training diverged at epoch {epoch + 1}/{epochs}, step {step + 1}/{total} (non-finite "
            f"{what}); the parameters from {where} were restored - lower the learning rate or "
            "beta, or set Adam(clip_norm=...).")

    step = 0
    # divergence is detected, not warned; BLAS threads as the engine and batch want (see _blas)
    with np.errstate(over="ignore", invalid="ignore"), \
            blas_threads(threads_for_batch(batch_size, ws.engine)):
        try:
            for epoch in range(epochs):
                t0 = time.perf_counter()
                if sampler is None:
                    rng.shuffle(perm)
                else:
                    perm = sampler.epoch(rng)
                s_total = s_recon = s_kl = 0.0
                s_tc = np.zeros(3)
                kl_acc[:] = 0.0
                for lo in range(0, n, batch_size):
                    hi = lo + batch_size
                    if hi > n:
                        hi = n
                    nb = hi - lo
                    rows = perm[lo:hi]
                    xb = xbuf if nb == batch_size else xbuf[:nb]
                    e_lo = lo % blk_rows                 # blocks start at multiples of blk_rows
                    if e_lo == 0:
                        normal(dtype=dtype, out=ebuf[:min(blk_rows, n - lo)])
                    eb = ebuf[e_lo:e_lo + nb]
                    if is_array:
                        take(src, rows, axis=0, out=xb, mode="clip")
                    else:
                        src.gather(rows, xb)
                    if tc:                               # the weight the forward fuses in
                        ws.tc_beta = schedule(step, total)
                    recon, kl = forward(ws, xb, eb)
                    if not (isfinite(recon) and isfinite(kl)):
                        raise diverged(epoch, step, "loss")
                    if const_beta is None:
                        backward(ws, kl_weight(step, total, kl))
                    else:
                        backward(ws, const_beta)
                    gnorm = opt_step(params, grads)
                    if gnorm is not None and not isfinite(gnorm):
                        raise diverged(epoch, step, "gradient norm")
                    if const_beta is not None:
                        loss = recon + const_beta * kl
                    elif tc:
                        loss = loss_spec.objective(recon, kl, schedule(step, total), terms[2:5])
                        s_tc += terms[2:5] * nb
                    else:
                        loss = schedule.objective(recon, kl, step, total)
                    s_total += loss * nb
                    s_recon += recon * nb
                    s_kl += kl * nb
                    if nb == batch_size:
                        kl_acc += ws.kl_per_dim
                    else:
                        kl_acc += ws.kl_per_dim * (nb / batch_size)
                    if on_batch is not None:
                        on_batch(BatchInfo(epoch, epochs, step, total, loss, recon, kl,
                                           schedule(step, total)))
                    step += 1
                last = step - 1
                if not np.isfinite(params).all():
                    raise diverged(epoch, last, "parameters")
                kl_dim = (kl_acc * (batch_size / n)).tolist()
                beta = float(schedule(last, total))
                hist.train_total.append(s_total / n)
                hist.train_recon.append(s_recon / n)
                hist.train_kl.append(s_kl / n)
                hist.beta.append(beta)
                hist.kl_per_dim.append(kl_dim)
                if tc:
                    hist.train_mi.append(float(s_tc[0] / n))
                    hist.train_tc.append(float(s_tc[1] / n))
                    hist.train_dimwise_kl.append(float(s_tc[2] / n))
                hist.steps.append(step)
                v_total = v_recon = v_kl = None
                if validation is not None:
                    v_t = _evaluate(model, v_ws, vsrc, v_array, n_val, val_eps, v_cap, v_buf)
                    v_recon, v_kl = float(v_t[0]), float(v_t[1])
                    if tc:
                        v_total = float(loss_spec.objective(v_recon, v_kl, beta, v_t[2:5]))
                    else:
                        v_total = float(schedule.objective(v_recon, v_kl, last, total))
                    if not isfinite(v_total):
                        raise diverged(epoch, last, "validation loss")
                    hist.val_total.append(v_total)
                    hist.val_recon.append(v_recon)
                    hist.val_kl.append(v_kl)
                    if tc:
                        hist.val_mi.append(float(v_t[2]))
                        hist.val_tc.append(float(v_t[3]))
                        hist.val_dimwise_kl.append(float(v_t[4]))
                good[:] = params
                if has_state:
                    good_opt = optimizer.state_dict()
                stop = False
                if validation is not None:
                    if v_total < best[0]:
                        best = (v_total, epoch)
                        hist.best_epoch = epoch
                        if early_stopping is not None:
                            best_params = params.copy()
                        wait = 0
                    else:
                        wait += 1
                        stop = early_stopping is not None and wait >= early_stopping
                seconds = time.perf_counter() - t0
                hist.seconds.append(seconds)
                if on_epoch is not None:
                    on_epoch(EpochInfo(epoch, epochs, last, total, hist.train_total[-1],
                                       hist.train_recon[-1], hist.train_kl[-1], beta, v_total, v_recon,
                                       v_kl, tuple(kl_dim), seconds))
                if stop:
                    hist.stopped_early = True
                    break
        except KeyboardInterrupt:
            if not np.isfinite(params).all():
                params[:] = good
            raise
    if early_stopping is not None and hist.best_epoch is not None:
        params[:] = best_params
    return hist
