"""Latent traversals: decode windows with one latent dimension swept, the others held.

:func:`traverse` reads one window; :func:`traverse_windows` reads many, in a few large decoder calls.
"""

from __future__ import annotations

import numpy as np

from ..checks import in_range
from ..exceptions import ConfigError, InputError

__all__ = ["traverse", "traverse_windows", "parse_dims", "CHUNK_ROWS"]

#: Decoded rows per ``model.decode`` call in :func:`traverse_windows`: bounds the memory of a
#: traversal of many windows to about CHUNK_ROWS x n_input values (and the decoder's hidden layers).
CHUNK_ROWS = 16384


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
    d, offsets, sd, stats = _settings(model, dims, span, steps, scale)
    x = np.asarray(x)
    if x.shape != (model.config.n_input,):
        raise InputError(f"reference window has shape {x.shape}; expected ({model.config.n_input},)")
    mu, _ = model.encode(x[None, :])
    base = mu.astype(np.float64)  # (1, k)
    Z = _codes(base, _center(center, base, stats), d, offsets, sd)  # (1, n_dims, steps, k)
    out = model.decode(Z.reshape(-1, Z.shape[-1]).astype(model.dtype))
    return np.asarray(out).reshape(len(d), len(offsets), model.config.n_input)


def traverse_windows(model, X, dims=None, span: float = 3.0, steps: int = 7, *, scale=None,
                     center: str = "reference", chunk_rows: int = CHUNK_ROWS):
    """Traverse many windows at once, in chunks: :func:`traverse` of every row, batched.

    Parameters
    ----------
    model : BetaVAE
    X : ndarray, shape (n, n_input)
        Windows (normalised like the training windows).
    dims, span, steps, scale, center
        As :func:`traverse`.
    chunk_rows : int
        At most this many latent codes go through one ``model.decode`` call (at least one window's
        ``n_dims * steps + 1`` codes); memory stays bounded whatever ``n``.

    Yields
    ------
    start, stop : int
        The rows ``X[start:stop]`` of this chunk (consecutive chunks cover ``0..n``).
    grid : ndarray, shape (stop - start, n_dims, steps, n_input)
        ``grid[w]`` equals ``traverse(model, X[start + w], dims, span, steps)``.
    recon : ndarray, shape (stop - start, n_input)
        ``decode(mu(x))``: each window's own reconstruction, the point the traversal moves around.

    Notes
    -----
    Each chunk encodes its windows in one call and decodes the traversal codes of all its windows
    and dimensions together with their reconstructions in one more.
    """
    d, offsets, sd, stats = _settings(model, dims, span, steps, scale)
    X = np.asarray(X)
    n_input, k = model.config.n_input, model.config.n_latent
    if X.ndim != 2 or X.shape[1] != n_input:
        raise InputError(f"windows have shape {X.shape}; expected (n, {n_input})")
    per_window = len(d) * len(offsets) + 1
    chunk_rows = in_range("chunk_rows", chunk_rows, 1, integer=True)
    size = max(1, chunk_rows // per_window)
    for start in range(0, X.shape[0], size):
        stop = min(start + size, X.shape[0])
        mu, _ = model.encode(X[start:stop])
        base = mu.astype(np.float64)  # (m, k)
        Z = _codes(base, _center(center, base, stats), d, offsets, sd)  # (m, n_dims, steps, k)
        m = stop - start
        codes = np.concatenate([Z.reshape(-1, k), base]).astype(model.dtype)  # traversals, then mu
        out = np.asarray(model.decode(codes))
        yield start, stop, out[: -m].reshape(m, len(d), len(offsets), n_input), out[-m:]


def _settings(model, dims, span, steps, scale):
    """Checked dims, the step offsets (in sd) and each dimension's sd; the latent statistics."""
    k = model.config.n_latent
    d = parse_dims(dims, k)
    span = in_range("span (standard deviations)", span, 0, lo_open=True)
    steps = in_range("steps", steps, 2, integer=True)
    from ..records import records_of

    stats = records_of(model).latent_stats
    sd = np.asarray(scale if scale is not None else (stats.sd if stats is not None else np.ones(k)),
                    dtype=np.float64)
    if sd.shape != (k,):
        raise InputError(f"scale has {sd.size} entries; expected {k}")
    return d, np.linspace(-span, span, steps), sd, stats


def _center(center: str, base: np.ndarray, stats) -> np.ndarray:
    """What each traversal moves around: the windows' own codes ``base`` (m, k) or the training mean (k,)."""
    if center == "mean":
        if stats is None:
            raise ConfigError("center='mean' needs latent statistics in the model file; train with bv.train")
        return np.asarray(stats.mean, dtype=np.float64)[None, :]
    if center == "reference":
        return base
    raise ConfigError(f"center must be 'reference' or 'mean', got {center!r}")


def _codes(base, mid, d, offsets, sd) -> np.ndarray:
    """Codes (m, n_dims, steps, k): ``base`` with ``z[dims[i]] = mid[dims[i]] + offsets * sd[dims[i]]``."""
    Z = np.repeat(base[:, None, None, :], len(d), axis=1).repeat(len(offsets), axis=2)
    for i, j in enumerate(d):
        Z[:, i, :, j] = mid[:, j, None] + offsets[None, :] * sd[j]
    return Z
