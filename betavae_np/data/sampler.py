"""Which windows an epoch visits when the windows come from many symbols.

A universe's windows are ordered by symbol (``counts[k]`` windows of symbol ``k``, one block after
the other). ``proportional`` weighting visits every window once per epoch, so a symbol weighs as
much as its history is long; ``equal`` gives every symbol the same share of each epoch.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import ConfigError

__all__ = ["WEIGHTINGS", "EpochSampler", "window_weights"]

#: How an epoch draws windows from the symbols of a universe.
WEIGHTINGS = ("proportional", "equal")


def _check_weighting(weighting: str) -> str:
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    return weighting


def window_weights(codes: np.ndarray, n_symbols: int, weighting: str = "proportional") -> np.ndarray:
    """Probability of drawing each window in one draw.

    Parameters
    ----------
    codes : ndarray of int, shape (n,)
        Each window's symbol index.
    n_symbols : int
        Number of symbols the codes index.
    weighting : {"proportional", "equal"}

    Returns
    -------
    ndarray of float64, shape (n,)
        Sums to 1. ``proportional``: ``1/n`` each. ``equal``: ``1/(K * n_k)`` for a window of
        symbol ``k``, ``K`` the symbols with at least one window, so each symbol totals ``1/K``.
    """
    _check_weighting(weighting)
    codes = np.asarray(codes)
    n = codes.size
    if weighting == "proportional":
        return np.full(n, 1.0 / n)
    counts = np.bincount(codes, minlength=n_symbols)
    per = np.divide(1.0, np.count_nonzero(counts) * counts, out=np.zeros(counts.size), where=counts > 0)
    return per[codes]


class EpochSampler:
    """The order in which one training epoch visits the windows of a universe.

    Parameters
    ----------
    counts : array_like of int, shape (K,)
        Windows per symbol; symbol ``k`` owns rows ``offsets[k]:offsets[k+1]`` of the window set
        (``offsets = [0, cumsum(counts)]``), as in :class:`~betavae_np.data.window_set.UniverseWindowSet`.
    weighting : {"proportional", "equal"}

    Notes
    -----
    How training uses it: ``fit`` shuffles ``arange(n)`` in place with ``rng.shuffle`` at the start
    of every epoch and cuts it into batches. With a sampler it takes ``rows = sampler.epoch(rng)``
    instead and gathers ``rows[lo:hi]``; an epoch has ``n`` rows (the same number of steps) either way.

    * ``proportional``: :meth:`epoch` is exactly ``fit``'s own shuffle (one ``rng.shuffle`` of the
      same persistent permutation), so the same seed gives the same batches as without a sampler.
    * ``equal``: each symbol with windows contributes ``n // K`` rows, and one more for ``n % K``
      symbols drawn at random: a symbol with more windows than that gives a random subset of them
      (without replacement; a different subset each epoch), one with fewer repeats all of them as
      often as fits and adds a random subset for the rest. The rows of all symbols are then shuffled
      together. In expectation every window of symbol ``k`` is drawn ``quota / n_k`` times per epoch.
    """

    def __init__(self, counts, weighting: str = "proportional"):
        self.weighting = _check_weighting(weighting)
        counts = np.asarray(counts, dtype=np.int64).reshape(-1)
        if counts.size == 0 or (counts < 0).any() or counts.sum() < 1:
            raise ConfigError(f"a sampler needs non-negative window counts with at least one window, got {counts}")
        self.counts = counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.n = int(self.offsets[-1])
        self._perm = None   # proportional: the persistent permutation, made at the first epoch

    def __len__(self) -> int:
        return self.n

    def epoch(self, rng) -> np.ndarray:
        """Rows of the next epoch, shape (n,) int64 (for ``proportional`` the sampler's own buffer:
        read it before the next call, do not modify it)."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        if self.weighting == "proportional":
            if self._perm is None:
                self._perm = np.arange(self.n, dtype=np.int64)
            rng.shuffle(self._perm)
            return self._perm
        present = np.flatnonzero(self.counts)
        K = present.size
        quota = np.full(K, self.n // K, dtype=np.int64)
        quota[rng.permutation(K)[: self.n % K]] += 1
        out = np.empty(self.n, dtype=np.int64)
        pos = 0
        for k, q in zip(present, quota):
            c, base = int(self.counts[k]), int(self.offsets[k])
            reps, rest = divmod(int(q), c)
            for _ in range(reps):
                out[pos:pos + c] = base + np.arange(c)
                pos += c
            out[pos:pos + rest] = base + rng.choice(c, rest, replace=False)
            pos += rest
        rng.shuffle(out)
        return out

    def weights(self) -> np.ndarray:
        """(n,) float64 expected share of each window in an epoch (:func:`window_weights`)."""
        codes = np.repeat(np.arange(self.counts.size), self.counts)
        return window_weights(codes, self.counts.size, self.weighting)
