"""Cross-sectional measures of factors on a panel: do they rank the symbols by their next returns?

At every time step ``t`` the Spearman rank IC of a factor with the symbols' forward log returns
``log(close_{t+h} / close_t)`` (candles ``t+1..t+h`` only) is taken across the symbols present at
``t``. Over time steps: mean, sd, ICIR (mean / sd) and two t-statistics that account for the overlap
of ``h``-candle returns (consecutive ICs share ``h - 1`` candles of return): a Newey-West t with
``h - 1`` Bartlett lags, and the plain t of every ``h``-th time step (non-overlapping, as
:func:`~betavae_np.analysis.ic.predictive_ic` does). The factor's rank autocorrelation (Spearman across
symbols of its values at ``t`` and ``t - 1``, averaged) says how fast its ranking turns over.

:func:`cross_section_report` puts a universe model's latents next to PCA codes of the same size
(fitted on its training windows), hand factors (momentum, short-term reversal, realised volatility,
volume z-score), and a control with the returns permuted across symbols at each time step, which
must come out ~0.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..exceptions import ConfigError, InputError
from .ic import _horizon

__all__ = ["cross_sectional_ic", "rank_autocorrelation", "cross_section_report", "CrossSectionReport",
           "MIN_SYMBOLS", "HORIZONS"]

#: Time steps with fewer symbols than this have no cross-sectional IC.
MIN_SYMBOLS = 5
#: Forward-return horizons in candles.
HORIZONS = (1, 4, 24)


def _row_ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks along each row, NaN kept NaN."""
    return pd.DataFrame(a).rank(axis=1, method="average").to_numpy(dtype=np.float64)


def row_spearman(a: np.ndarray, b: np.ndarray, min_count: int = MIN_SYMBOLS) -> np.ndarray:
    """Spearman correlation of ``a[t]`` with ``b[t]`` for every row ``t``.

    Parameters
    ----------
    a, b : ndarray, shape (T, S)
        NaN where a symbol has no value; a row uses the symbols where both are finite.
    min_count : int
        Rows with fewer such symbols (or a constant side) give NaN.

    Returns
    -------
    ndarray, shape (T,)
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise InputError(f"row_spearman needs two (T, S) arrays of one shape, got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    ra = _row_ranks(np.where(keep, a, np.nan))
    rb = _row_ranks(np.where(keep, b, np.nan))
    cnt = keep.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # rows without a symbol: NaN, dropped below
        ra = ra - np.nanmean(ra, axis=1, keepdims=True)
        rb = rb - np.nanmean(rb, axis=1, keepdims=True)
        num = np.nansum(ra * rb, axis=1)
        den = np.sqrt(np.nansum(ra * ra, axis=1) * np.nansum(rb * rb, axis=1))
        out = num / den
    out[(cnt < max(3, int(min_count))) | ~(den > 0)] = np.nan
    return out


def _nw_t(x: np.ndarray, lags: int) -> float:
    """Newey-West (Bartlett) t-statistic of the mean of ``x`` (NaN dropped) with ``lags`` lags."""
    x = x[np.isfinite(x)]
    n = x.size
    if n < 3:
        return float("nan")
    e = x - x.mean()
    s = float(e @ e) / n
    for L in range(1, min(lags, n - 1) + 1):
        s += 2.0 * (1.0 - L / (lags + 1)) * float(e[L:] @ e[:-L]) / n
    return float(x.mean() / np.sqrt(s / n)) if s > 0 else float("nan")


def _ic_stats(ic: np.ndarray, h: int) -> dict:
    ok = ic[np.isfinite(ic)]
    n = ok.size
    mean = float(ok.mean()) if n else float("nan")
    sd = float(ok.std(ddof=1)) if n > 1 else float("nan")
    sub = ic[::h]
    sub = sub[np.isfinite(sub)]
    m = sub.size
    t_no = (float(sub.mean() / (sub.std(ddof=1) / np.sqrt(m))) if m > 2 and sub.std(ddof=1) > 0
            else float("nan"))
    return {"ic_mean": mean, "ic_sd": sd, "icir": mean / sd if sd and np.isfinite(sd) and sd > 0 else float("nan"),
            "t_nw": _nw_t(ic, h - 1), "t_nonoverlap": t_no, "n_steps": int(n), "n_nonoverlap": int(m)}


def rank_autocorrelation(values: np.ndarray, min_count: int = MIN_SYMBOLS) -> float:
    """Mean over ``t`` of the Spearman correlation across symbols of ``values[t]`` and ``values[t-1]``.

    1: the ranking never changes; 0: it is redrawn every step (turnover is ``1 - this``).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.shape[0] < 2:
        return float("nan")
    r = row_spearman(v[1:], v[:-1], min_count)
    return float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")


def _wide(panel: pd.DataFrame, col) -> np.ndarray:
    return panel[col].unstack("symbol").to_numpy(dtype=np.float64)


def cross_sectional_ic(factors: pd.DataFrame, returns: pd.DataFrame, *, min_symbols: int = MIN_SYMBOLS,
                       control: bool = False, rng=0) -> pd.DataFrame:
    """Cross-sectional rank IC of every factor with every forward return.

    Parameters
    ----------
    factors : pandas.DataFrame
        Index ``(time, symbol)`` (as :func:`~betavae_np.analysis.panel.encode_panel`); one column per
        factor, known at ``time``.
    returns : pandas.DataFrame
        Same index (rows are aligned to ``factors``); columns ``fwd_<h>``: log return from the close
        of candle ``time`` to the close of candle ``time + h``.
    min_symbols : int
        A time step needs at least this many symbols with both values.
    control : bool
        Permute each time step's returns across its symbols first (a control: every IC ~0).
    rng : int or numpy.random.Generator
        For the control's permutations.

    Returns
    -------
    pandas.DataFrame
        One row per (factor, horizon): ``ic_mean``, ``ic_sd``, ``icir``, ``t_nw`` (Newey-West,
        ``h - 1`` lags), ``t_nonoverlap`` (every ``h``-th step), ``n_steps``, ``n_nonoverlap``,
        ``rank_autocorr`` (the factor's, the same for each horizon) and ``mean_symbols``.
    """
    if not isinstance(factors.index, pd.MultiIndex) or list(factors.index.names) != ["time", "symbol"]:
        raise InputError("factors must be indexed by (time, symbol), as encode_panel returns them")
    if isinstance(min_symbols, bool) or not isinstance(min_symbols, (int, np.integer)) or min_symbols < 3:
        raise ConfigError(f"min_symbols must be an integer >= 3, got {min_symbols!r}")
    returns = returns.reindex(factors.index)
    both = factors.join(returns, how="left")
    wide_r = {c: _wide(both, c) for c in returns.columns}
    if control:
        g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        for c, R in wide_r.items():
            R = R.copy()
            for t in range(R.shape[0]):
                ok = np.flatnonzero(np.isfinite(R[t]))
                R[t, ok] = R[t, g.permutation(ok)]
            wide_r[c] = R
    rows = []
    for f in factors.columns:
        F = _wide(both, f)
        auto = rank_autocorrelation(F, min_symbols)
        for c, R in wide_r.items():
            h = _horizon(c)
            ic = row_spearman(F, R, min_symbols)
            both_ok = (np.isfinite(F) & np.isfinite(R)).sum(axis=1)
            rows.append({"factor": f, "horizon": h, **_ic_stats(ic, h), "rank_autocorr": auto,
                         "mean_symbols": float(both_ok[both_ok >= min_symbols].mean()) if (both_ok >= min_symbols).any()
                         else 0.0})
    return pd.DataFrame(rows).set_index(["factor", "horizon"])


def forward_return_panel(frames, index: pd.MultiIndex, horizons=HORIZONS) -> pd.DataFrame:
    """Forward log returns per (time, symbol) of ``index`` from each symbol's candles (NaN past the data)."""
    from .proxies import forward_returns

    parts = []
    for sym, df in frames.items():
        times = index.get_level_values("time")[index.get_level_values("symbol") == sym]
        if len(times):
            fr = forward_returns(df, pd.DatetimeIndex(times), horizons)
            fr.index = pd.MultiIndex.from_arrays([pd.DatetimeIndex(times), [sym] * len(times)],
                                                 names=["time", "symbol"])
            parts.append(fr)
    if not parts:
        raise InputError("no symbol of the panel has candles to compute forward returns from")
    return pd.concat(parts).reindex(index)


def hand_factor_panel(frames, index: pd.MultiIndex, window: int, lookback: int) -> pd.DataFrame:
    """Hand factors per (time, symbol): ``momentum`` (log return over ``window`` candles),
    ``reversal`` (minus the last candle's log return), ``realised_vol``, ``volume_z``; causal."""
    from .baselines import hand_factors

    parts = []
    for sym, df in frames.items():
        times = index.get_level_values("time")[index.get_level_values("symbol") == sym]
        if len(times):
            hf = hand_factors(df, pd.DatetimeIndex(times), window=window, lookback=lookback)
            out = pd.DataFrame({"momentum": hf["past_return"].to_numpy(), "reversal": -hf["last_return"].to_numpy(),
                                "realised_vol": hf["realised_vol"].to_numpy(), "volume_z": hf["volume_z"].to_numpy()},
                               index=pd.MultiIndex.from_arrays([pd.DatetimeIndex(times), [sym] * len(times)],
                                                               names=["time", "symbol"]))
            parts.append(out)
    return pd.concat(parts).reindex(index)


@dataclass
class CrossSectionReport:
    """The cross-sectional table of a universe model and its baselines.

    Attributes
    ----------
    table : pandas.DataFrame
        Rows (kind, factor, horizon) with kind ``latent``, ``pca``, ``hand`` or ``control`` (the
        latents with permuted returns); columns as :func:`cross_sectional_ic`.
    part : str
        Which windows: ``held-out`` (from the recorded cutoff on), ``all``.
    start, end : str
        First and last time step.
    symbols : int
        Symbols in the panel.
    windows : int
        Panel rows.
    windows_per_second : float
        Gather + encode speed of the panel.
    notes : list of str
    """

    table: pd.DataFrame
    part: str
    start: str
    end: str
    symbols: int
    windows: int
    windows_per_second: float
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        t = self.table.reset_index()
        return {"part": self.part, "start": self.start, "end": self.end, "symbols": self.symbols,
                "windows": self.windows, "windows_per_second": self.windows_per_second, "notes": list(self.notes),
                "rows": [{k: (None if isinstance(v, float) and not np.isfinite(v) else
                              (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
                         for r in t.to_dict("records")]}


def cross_section_report(model, frames=None, windows=None, *, part: str = "held-out", source=None,
                         base_url=None, cache_dir=None, on_notice=None, horizons=HORIZONS,
                         min_symbols: int = MIN_SYMBOLS, pca_windows: int = 100_000, rng=0) -> CrossSectionReport:
    """The cross-sectional table of a universe model: latents vs PCA vs hand factors, and a control.

    Parameters
    ----------
    model : BetaVAE
        Trained on a universe (its records carry the symbols, the cutoff and the windowing).
    frames : mapping of str to pandas.DataFrame, optional
        The candles per symbol; default the model's own data (:func:`~betavae_np.workflow.universe_for_model`,
        with ``source``, ``base_url``, ``cache_dir``, ``on_notice``).
    windows : UniverseWindowSet, optional
        The frames windowed as the model expects (made from ``frames`` when omitted).
    part : {"held-out", "all"}
        ``held-out``: the time steps from the model's recorded cutoff on (validation, never
        trained on); ``all``: every window. A model trained without validation reports ``all``.
    horizons : sequence of int
        Forward-return horizons in candles.
    pca_windows : int
        PCA (as many components as latents) is fitted on at most this many training windows (before
        the cutoff), drawn at random with ``rng``.

    Returns
    -------
    CrossSectionReport
    """
    from ..records import records_of
    from ..workflow import model_windower, universe_for_model
    from .baselines import PCA
    from .panel import _frame, encode_windows

    rec = records_of(model)
    if part not in ("held-out", "all"):
        raise ConfigError(f"part must be held-out or all, got {part!r}")
    if frames is None:
        frames, windows = universe_for_model(model, source=source, base_url=base_url, cache_dir=cache_dir,
                                             on_notice=on_notice)
    elif windows is None:
        from ..data.universe import load_universe

        windows = load_universe(frames, on_notice=on_notice).windows(model_windower(model), on_notice=on_notice)
    notes = []
    cutoff = rec.universe.cutoff if rec.universe is not None else None
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    k = model.config.n_latent
    pca = None
    if cutoff is not None:
        train, held = windows.split_at(cutoff)
    else:
        train, held = windows, windows
        if part == "held-out":
            notes.append("the model records no train/validation cutoff: every window is reported (in-sample)")
        part = "all"
    if part == "all":
        held = windows
    if windows.shape[1] >= k:
        m = train.shape[0]
        rows = np.sort(g.choice(m, min(m, int(pca_windows)), replace=False)).astype(np.int64)
        pca = PCA(k).fit(train.gather(rows, np.empty((rows.size, train.shape[1]), dtype=np.float64)))
        notes.append(f"PCA({k}) fitted on {rows.size} of the {m} training windows (before the cutoff)")
    pcs = np.empty((held.shape[0], k)) if pca is not None else None

    def project(xb, sl):
        if pcs is not None:
            pcs[sl] = pca.transform(xb)

    mu, _, seconds = encode_windows(model, held, extra=project)
    panel = _frame(held, mu, None, seconds)
    speed = panel.attrs["betavae_np"]["windows_per_second"]
    order = np.lexsort((held.codes, held.end_times.asi8))
    idx = panel.index
    fwd = forward_return_panel(frames, idx, horizons)
    tables = {"latent": cross_sectional_ic(panel, fwd, min_symbols=min_symbols)}
    if pcs is not None:
        pc = pd.DataFrame(pcs[order], index=idx, columns=[f"pc{j}" for j in range(k)])
        tables["pca"] = cross_sectional_ic(pc, fwd, min_symbols=min_symbols)
    w = model_windower(model)
    hand = hand_factor_panel(frames, idx, w.window, w.lookback)
    tables["hand"] = cross_sectional_ic(hand, fwd, min_symbols=min_symbols)
    tables["control"] = cross_sectional_ic(panel, fwd, min_symbols=min_symbols, control=True, rng=g)
    table = pd.concat(tables, names=["kind"])
    times = idx.get_level_values("time")
    return CrossSectionReport(table=table, part=part, start=times.min().isoformat(), end=times.max().isoformat(),
                              symbols=int(len(set(held.codes.tolist()))), windows=int(held.shape[0]),
                              windows_per_second=float(speed), notes=notes)
