"""A synthetic market whose candles come from known, independent, discrete factors.

:class:`SyntheticMarket` follows disentanglement_lib's ground-truth-data interface
(``num_factors``, ``factors_num_values``, ``factor_names``, ``sample_factors``,
``sample_observations_from_factors``, ``sample``), so the supervised metrics of
:mod:`betavae_np.metrics` run on it exactly as on dSprites. Observations are windows cut by the same
:class:`~betavae_np.data.Windower` as real candles.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._kernels.synth import VOL_NOISE, synth_candles, synth_windows
from .data.frame import OHLCV, frame_from_arrays
from .data.windows import Windower
from .exceptions import ConfigError, InputError

__all__ = ["SyntheticMarket", "FACTOR_GRIDS", "REFERENCE", "VOL_NOISE", "OBS_CHUNK"]

#: Each factor's grid of values (the factor's integer value indexes its grid).
#: trend: drift of the log return per candle; volatility: sd of the log return per candle;
#: volume: mean volume per candle; momentum: lag-1 autocorrelation of the returns (AR(1) phi);
#: body: the candle body's share of its high-low range.
FACTOR_GRIDS = {
    "trend": (-0.004, -0.002, -0.001, 0.0, 0.001, 0.002, 0.004),
    "volatility": (0.0025, 0.005, 0.01, 0.02, 0.04),
    "volume": (250.0, 500.0, 1000.0, 2000.0, 4000.0),
    "momentum": (-0.6, -0.3, 0.0, 0.3, 0.6),
    "body": (0.1, 0.3, 0.5, 0.7, 0.9),
}

#: The reference regime of the candles before an observation's last window (``reference=True``).
REFERENCE = {"trend": 0.0, "volatility": 0.01, "volume": 1000.0, "momentum": 0.0, "body": 0.5}

#: First candle's open time of generated frames (hourly candles from here).
_EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
_HOUR_MS = 3_600_000
#: Series per draw of :meth:`SyntheticMarket.sample_observations_from_factors`: part of the stream's
#: definition (changing it changes the observations a seed gives).
OBS_CHUNK = 2048
#: Fewest observations per thread of the observation kernel.
_MIN_BLOCK = 256


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class SyntheticMarket:
    """Candles from five independent discrete factors, on the disentanglement_lib interface.

    Parameters
    ----------
    seed : int
        Seed of :meth:`sample` / :meth:`candles` when they are called without ``rng``.
    window, lookback : int
        The :class:`~betavae_np.data.Windower` settings (default: the CLI's, 32 and 128).
    features : sequence of str
        Window features (default OHLCV).
    representation : {"minmax", "returns", "both"}
        The windower's input representation (:class:`~betavae_np.data.Windower` ``representation``):
        observations are windowed as a model trained with ``--features`` of that name windows its
        candles. ``returns`` and ``both`` need ``features`` OHLCV and ``lookback > window``.
    reference : bool
        True (default): each observation's series follows the factors over its last ``window``
        candles only, after ``lookback - window`` candles of the fixed :data:`REFERENCE` regime.
        The rolling min-max scaling divides out any level that is constant over the lookback, so
        without this contrast the volatility and volume levels would be invisible in the windows
        (False: the factors hold over the whole lookback; then only the ratios survive scaling).
        The ``returns`` features are z-scored by statistics of the whole series (its ``lookback - 1``
        warm-up candles), so there too the reference candles are what a window stands out against.
    grids : mapping of str to sequence of float, optional
        Replace some of :data:`FACTOR_GRIDS` (same names; each grid 2..10 values).

    Attributes
    ----------
    factor_names : tuple of str
        ``("trend", "volatility", "volume", "momentum", "body")``.
    factors_num_values : list of int
        Grid size of each factor.
    num_factors : int
    windower : Windower
        Cuts the observations; it may be replaced by a model's own windower of the same ``window``
        and ``lookback`` (:func:`betavae_np.sources.synthetic_market`): observations follow its
        settings and representation.
    representation : str
        ``windower.representation``.

    Notes
    -----
    Candle model (see :mod:`betavae_np._kernels.synth`): AR(1) log returns with unit-variance
    innovations scaled by the volatility, ``r_t = drift + sigma * x_t``,
    ``x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t``; open = previous close; the wicks add
    ``|r_t| (1/body - 1)`` to the range, split uniformly between top and bottom; volume log-normal
    around the level with sd :data:`VOL_NOISE`. Factors are independent and uniform on their grids.
    Locatello et al. (2019), disentanglement_lib ``data/ground_truth/ground_truth_data.py``.
    """

    def __init__(self, seed: int = 0, window: int = 32, lookback: int = 128, features=OHLCV,
                 reference: bool = True, grids=None, representation: str = "minmax"):
        self.seed = seed
        self.windower = Windower(window=window, lookback=lookback, features=features, interval="60",
                                 representation=representation)
        self.reference = bool(reference)
        g = dict(FACTOR_GRIDS)
        for name, values in dict(grids or {}).items():
            if name not in g:
                raise ConfigError(f"unknown factor {name!r}; known: {', '.join(g)}")
            g[name] = tuple(float(v) for v in values)
        for name, values in g.items():
            if not 2 <= len(values) <= 10:
                raise ConfigError(f"factor {name!r} needs 2 to 10 grid values, got {len(values)}")
        if min(g["volatility"]) <= 0 or min(g["volume"]) <= 0:
            raise ConfigError("volatility and volume grid values must be positive")
        if max(abs(v) for v in g["momentum"]) >= 1:
            raise ConfigError("momentum grid values must lie in (-1, 1)")
        if not all(0 < v <= 1 for v in g["body"]):
            raise ConfigError("body grid values must lie in (0, 1]")
        self.grids = g
        self.factor_names = tuple(g)
        self._table = [np.asarray(g[k], dtype=np.float64) for k in self.factor_names]

    # -- the ground-truth interface ---------------------------------------------------------------
    @property
    def num_factors(self) -> int:
        return len(self.factor_names)

    @property
    def factors_num_values(self) -> list[int]:
        return [len(t) for t in self._table]

    @property
    def observation_shape(self) -> tuple[int]:
        return (self.windower.n_input,)

    @property
    def representation(self) -> str:
        return self.windower.representation

    @property
    def _cols(self) -> list[int]:
        """Each window feature's column in OHLCV order (of the current windower)."""
        return [OHLCV.index(f) for f in self.windower.features]

    def __repr__(self) -> str:
        return (f"SyntheticMarket(seed={self.seed!r}, window={self.windower.window}, "
                f"lookback={self.windower.lookback}, representation={self.representation!r}, "
                f"reference={self.reference})")

    def sample_factors(self, num: int, rng=None) -> np.ndarray:
        """Independent factors, uniform on each grid: int64 (num, num_factors)."""
        rng = _rng(self.seed if rng is None else rng)
        return np.stack([rng.integers(0, k, size=int(num)) for k in self.factors_num_values], axis=1)

    def factor_values(self, factors) -> np.ndarray:
        """Grid values of integer factors: float64 (n, num_factors) in :attr:`factor_names` order."""
        f = self._check_factors(factors)
        return np.stack([t[f[:, j]] for j, t in enumerate(self._table)], axis=1)

    def sample_observations_from_factors(self, factors, rng=None) -> np.ndarray:
        """One window per row of factors.

        Parameters
        ----------
        factors : array_like of int, shape (n, num_factors)
        rng : numpy.random.Generator or int, optional

        Returns
        -------
        ndarray of float32, shape (n, window * n_features)
            Row ``i`` is the last window of a fresh series of ``lookback`` candles with factors
            ``factors[i]``: bit for bit what :attr:`windower`'s
            :meth:`~betavae_np.data.Windower.transform` gives on that series (its last row).

        Notes
        -----
        The random numbers come from ``rng`` itself, in chunks of :data:`OBS_CHUNK` series: for
        each chunk the normal ``e``, the uniform ``u`` and the normal ``z``, each (chunk, lookback),
        in this order (the stream of earlier versions, so a seed gives the same windows), whatever
        the representation. ``minmax``: the compiled kernel turns each chunk into windows on all
        cores while the next chunk is drawn; the observations do not depend on the number of cores.
        ``returns`` and ``both``: each chunk's candles are generated, then windowed in batch by
        :meth:`Windower.last_windows <betavae_np.data.Windower.last_windows>`. ``lookback`` candles
        are enough: the first candle has no previous close, the other ``lookback - 1`` are the
        warm-up that seeds the statistics at the last candle, which ends the one window.
        """
        rng = _rng(self.seed if rng is None else rng)
        values = self.factor_values(factors)  # (n, 5)
        if self.windower.representation != "minmax":
            return self._windows_of_candles(values, rng)
        n, L, W = values.shape[0], self.windower.lookback, self.windower.window
        out = np.empty((n, self.windower.n_input), dtype=np.float32)
        params, bounds = self._observation_params(values)
        w = self.windower
        cols = np.asarray(self._cols, dtype=np.int64)
        workers = max(1, min(os.cpu_count() or 1, -(-n // _MIN_BLOCK)))

        def block(a, b, e, u, z, base):
            synth_windows(out[a:b], e[a - base:b - base], u[a - base:b - base], z[a - base:b - base],
                          params[a:b], bounds, np.log(100.0), cols, w._group, w._modes, w.log_volume,
                          np.empty(W * cols.size), np.empty((max(L - W, 0), 7)))

        if workers == 1:
            for a in range(0, n, OBS_CHUNK):
                m = min(OBS_CHUNK, n - a)
                block(a, a + m, *self._draws(rng, m, L), a)
            return out
        with ThreadPoolExecutor(workers) as pool:
            pending = []
            for a in range(0, n, OBS_CHUNK):
                m = min(OBS_CHUNK, n - a)
                draws = self._draws(rng, m, L)                        # the parent stream, in order
                cuts = np.linspace(a, a + m, workers + 1).astype(int)
                pending.append([pool.submit(block, lo, hi, *draws, a) for lo, hi in zip(cuts[:-1], cuts[1:])
                                if hi > lo])
                if len(pending) > 2:                                  # at most three chunks' draws alive
                    for f in pending.pop(0):
                        f.result()
            for fs in pending:
                for f in fs:
                    f.result()
        return out

    def sample_observations(self, num: int, rng=None) -> np.ndarray:
        """Windows for ``num`` random factor draws (disentanglement_lib's helper)."""
        return self.sample(num, rng)[1]

    def sample(self, num: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        """``(factors (num, num_factors) int64, windows (num, window*n_features) float32)``."""
        rng = _rng(self.seed if rng is None else rng)
        factors = self.sample_factors(num, rng)
        return factors, self.sample_observations_from_factors(factors, rng)

    # -- long series (training on the synthetic market) ----------------------------------------
    def candles(self, n_candles: int = 20_000, segment: int = 256, rng=None,
                return_factors: bool = False):
        """One long candle series whose factors are redrawn every ``segment`` candles.

        Parameters
        ----------
        n_candles : int
            Length of the series (>= the windower's lookback).
        segment : int
            Candles per regime; each regime's factors are drawn independently and uniformly.
        rng : numpy.random.Generator or int, optional
        return_factors : bool
            Also return the factors of each candle.

        Returns
        -------
        df : pandas.DataFrame
            The candle convention (``open_time`` hourly UTC index from 2020-01-01, float64 OHLCV),
            with provenance in ``attrs["betavae_np"]``.
        factors : ndarray of int64, shape (n_candles, num_factors)
            Only with ``return_factors``.
        """
        if int(n_candles) < self.windower.lookback:
            raise ConfigError(f"n_candles must be at least the lookback ({self.windower.lookback}), got {n_candles}")
        if int(segment) < 1:
            raise ConfigError(f"segment must be a positive number of candles, got {segment}")
        rng = _rng(self.seed if rng is None else rng)
        n, seg = int(n_candles), int(segment)
        bounds = np.arange(0, n, seg, dtype=np.int64)
        f = self.sample_factors(bounds.size, rng)
        params = np.ascontiguousarray(self.factor_values(f)[None])  # (1, S, 5)
        candles = self._generate(params, bounds, 1, n, rng)[0]
        df = frame_from_arrays(_EPOCH_MS + np.arange(n, dtype=np.int64) * _HOUR_MS, candles)
        df.attrs["betavae_np"] = {"source": "synthetic", "symbol": "SYNTH", "interval": "60",
                                  "seed": self.seed if isinstance(self.seed, int) else None,
                                  "segment": seg, "reference": self.reference}
        if return_factors:
            return df, np.repeat(f, np.diff(np.append(bounds, n)), axis=0)
        return df

    # -- internals ---------------------------------------------------------------------------------
    def _observation_params(self, values):
        """Per-observation segment parameters (n, S, 5) and segment starts (S,) for factor values (n, 5)."""
        L, W = self.windower.lookback, self.windower.window
        if self.reference and L > W:
            ref = np.array([REFERENCE[k] for k in self.factor_names])
            params = np.stack([np.broadcast_to(ref, values.shape), values], axis=1)
            return np.ascontiguousarray(params), np.array([0, L - W], dtype=np.int64)
        return np.ascontiguousarray(values[:, None, :]), np.array([0], dtype=np.int64)

    def _windows_of_candles(self, values, rng) -> np.ndarray:
        """Observations (n, n_input) float32 of factor values (n, 5): per chunk of :data:`OBS_CHUNK`
        series the candles of :meth:`_generate` (the draws of the min-max path, in its order), then
        the windower's last window of each series."""
        w = self.windower
        n, L = values.shape[0], w.lookback
        out = np.empty((n, w.n_input), dtype=np.float32)
        params, bounds = self._observation_params(values)
        for a in range(0, n, OBS_CHUNK):
            m = min(OBS_CHUNK, n - a)
            candles = self._generate(params[a:a + m], bounds, m, L, rng)   # (m, L, 5) OHLCV
            out[a:a + m] = w.last_windows(candles)
        return out

    @staticmethod
    def _draws(rng, n, L):
        """The random numbers of ``n`` series of ``L`` candles: e, u, z (n, L) float64, in this order."""
        return rng.standard_normal((n, L)), rng.random((n, L)), rng.standard_normal((n, L))

    def _generate(self, params, bounds, n, L, rng) -> np.ndarray:
        e, u, z = self._draws(rng, n, L)
        out = np.empty((n, L, 5))
        synth_candles(out, e, u, z, params, bounds, np.log(100.0))
        return out

    def _check_factors(self, factors) -> np.ndarray:
        f = np.asarray(factors)
        if f.ndim != 2 or f.shape[1] != self.num_factors or not (f.dtype.kind in "iu" or f.size == 0):
            raise InputError(f"factors must be an integer array of shape (n, {self.num_factors}), "
                             f"got shape {f.shape} dtype {f.dtype}")
        k = np.asarray(self.factors_num_values)
        if f.size and ((f < 0).any() or (f >= k).any()):
            raise InputError(f"factor values must lie in [0, num_values) per factor {self.factors_num_values}")
        return f.astype(np.int64, copy=False)

