"""Latent traversals: decode one window with one latent dimension swept, the others held."""

from __future__ import annotations

import numpy as np

from ..checks import in_range
from ..exceptions import ConfigError, InputError

__all__ = ["traverse", "parse_dims"]


def parse_dims(dims, n_latent: int) -> list[int]:
    """Normalise a dims argument (None, int, iterable or ``"0,2,5"``) to a checked list.

    Raises
    ------
    ConfigError
        A dimension outside ``0..n_latent-1``, a duplicate, or an unparseable entry.
    """
    if dims is None:
        return list(range(n_latent))
    if isinstance(dims, str):
        try:
            dims = [int(p) for p in dims.replace(" ", "").split(",") if p != ""]
        except ValueError:
            raise ConfigError(f"dims {dims!r} is not a comma-separated list of integers") from None
    elif np.isscalar(dims):
        dims = [int(dims)]
    out = [int(d) for d in dims]
    if not out:
        raise ConfigError("dims is empty; name at least one latent dimension")
    bad = [d for d in out if not 0 <= d < n_latent]
    if bad:
        raise ConfigError(f"latent dimension {bad[0]} is out of range; this model has dimensions 0..{n_latent - 1}")
    if len(set(out)) != len(out):
        raise ConfigError(f"dims {out} names a dimension twice")
    return out


def traverse(model, x, dims=None, span: float = 3.0, steps: int = 7, *, scale=None,
             center: str = "reference") -> np.ndarray:
    """Decode a window with each chosen latent dimension moved from -span to +span sd.

    Parameters
    ----------
    model : BetaVAE
    x : ndarray, shape (n_input,)
        The reference window (normalised like the training windows).
    dims : None, int, sequence of int or str
        Dimensions to traverse (default all).
    span : float
        How far to move, in standard deviations of the dimension's encoded distribution.
    steps : int
        Points from -span to +span (odd numbers include the reference itself).
    scale : sequence of float, length n_latent, optional
        The standard deviation of each dimension's encoded distribution. Default: the training
        statistics in the model's records (``model.records.latent_stats.sd``), else 1 (the prior's).
    center : {"reference", "mean"}
        Move around the reference window's own code ``mu(x)`` (default) or around the training
        data's mean code ``model.records.latent_stats.mean``.

    Returns
    -------
    ndarray, shape (n_dims, steps, n_input)
        ``out[i, s]`` decodes ``z`` with ``z[dims[i]] = c + offsets[s] * sd[dims[i]]``, where
        ``offsets = linspace(-span, span, steps)``; the other coordinates stay at ``mu(x)``.

    Notes
    -----
    Higgins et al. (2017), "beta-VAE: learning basic visual concepts with a constrained variational
    framework", sec. 4: traversals of single latents with the others fixed.
    """
    k = model.config.n_latent
    d = parse_dims(dims, k)
    span = in_range("span (standard deviations)", span, 0, lo_open=True)
    steps = in_range("steps", steps, 2, integer=True)
    x = np.asarray(x)
    if x.shape != (model.config.n_input,):
        raise InputError(f"reference window has shape {x.shape}; expected ({model.config.n_input},)")
    from ..records import records_of

    stats = records_of(model).latent_stats
    sd = np.asarray(scale if scale is not None else (stats.sd if stats is not None else np.ones(k)),
                    dtype=np.float64)
    if sd.shape != (k,):
        raise InputError(f"scale has {sd.size} entries; expected {k}")
    mu, _ = model.encode(x[None, :])
    base = mu[0].astype(np.float64)
    if center == "mean":
        if stats is None:
            raise ConfigError("center='mean' needs latent statistics in the model file; train with bv.train")
        mid = np.asarray(stats.mean, dtype=np.float64)
    elif center == "reference":
        mid = base
    else:
        raise ConfigError(f"center must be 'reference' or 'mean', got {center!r}")
    offsets = np.linspace(-span, span, steps)
    Z = np.repeat(base[None, None, :], len(d), axis=0).repeat(steps, axis=1)  # (n_dims, steps, k)
    for i, j in enumerate(d):
        Z[i, :, j] = mid[j] + offsets * sd[j]
    out = model.decode(Z.reshape(-1, k).astype(model.dtype))
    return np.asarray(out).reshape(len(d), steps, model.config.n_input)
