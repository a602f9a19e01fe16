"""Which input representation lets the model find factors PCA cannot? (issue 13)

For each input representation x loss x beta (x seed) one model is trained on the development
universe (a directory of ``<SYMBOL>_<interval>.csv``, default ``../shared/data/bybit_perp_1h``: 20
Bybit perpetuals, hourly) with the CLI's other settings (its calendar cutoff puts the latest ~20% of
the windows in validation; the loss settings are always given explicitly). Every figure is measured
on windows the model never trained on, beside PCA with as many components fitted on the same
training windows of the same representation:

* ``univ``: the universe's validation period (every symbol after the cutoff);
* ``sample``: the bundled sample (Coinbase BTC-USD hourly, 2017-2019: another exchange, years earlier).

Per model and set:

* proxy alignment: Spearman rho of each latent's posterior mean (PCA: each score) with the causal
  indicators of :func:`betavae_np.analysis.proxies.indicators` plus ``momentum`` (log return over
  the window), ``body_abs`` (mean |close - open| / (high - low) over the window: candle shape) and
  ``volume_level`` (the window's mean log volume against the lookback's, a z-score; ``volume_z``
  scores the last candle alone). ``cover`` gives per family (volatility: realised_vol, atr_14;
  trend: momentum, sma20_slope, close_sma50; volume: volume_z, volume_level; shape: body_abs;
  rsi/obv: rsi_14, obv_slope) the largest |rho| of any active latent. Universe rho is taken per
  symbol over time and averaged over symbols (``ts``: does the latent move with the indicator?) and
  pooled over all held-out windows (``pooled``: also ranks the symbols). The goal's "three different
  latents" is checked by assigning volatility, trend and volume to distinct active latents (the
  assignment with the largest smallest |rho|).
* ``gap``: the MIG-like proxy gap, the mean over indicators of the best minus the second-best |rho|.
* ``pca_linearity``: per latent, R^2 of its linear regression on the PCA scores (plus intercept);
  ``nonlinear``: active latents with R^2 < 0.9.
* ``r2``: held-out reconstruction R^2 (decode of the posterior mean against the training mean
  window), ``pca_r2`` PCA's; ``active``: active units.
* IC: ``cs`` the cross-sectional rank IC with forward log returns over 1, 4, 24 candles (Newey-West t,
  :func:`betavae_np.analysis.cross_section.cross_section_report`, universe held-out) and ``ts`` the
  time-series IC on the bundled sample (its 30-day periods' mean and the t over periods,
  :func:`betavae_np.analysis.ic.predictive_ic`; the universe's held-out period is shorter than two
  periods); the table gives the largest |t| of the latents and of PCA's components per horizon.

The synthetic market's MIG / DCI-D / FactorVAE per representation come from
``examples/synthetic_study.py --features ...``.

    python examples/representation_study.py [--features minmax,returns,both] [--betas 0.25,0.5,1,2]
        [--recon sse,gaussian] [--seeds 0] [--universe DIR] [--out study.json] [--resume] [--quick]

Prints markdown tables on stdout; progress on stderr; with --out the JSON is rewritten after every
model and --resume keeps the models it already holds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time

import numpy as np
import pandas as pd

import betavae_np as bv
from betavae_np.analysis.baselines import PCA
from betavae_np.analysis.cross_section import cross_section_report
from betavae_np.analysis.evaluate import encode_windows, evaluate
from betavae_np.analysis.proxies import forward_returns, indicators, spearman

#: Indicator families of the coverage table (indicators as named by :func:`indicators` plus the
#: two this script adds).
FAMILIES = {"volatility": ("realised_vol", "atr_14"), "trend": ("momentum", "sma20_slope", "close_sma50"),
            "volume": ("volume_z", "volume_level"), "shape": ("body_abs",), "rsi_obv": ("rsi_14", "obv_slope")}
HORIZONS = (1, 4, 24)
#: Latents whose regression on the PCA scores explains less than this are "not near-linear".
LINEAR_R2 = 0.9
#: Goal threshold of the volatility, trend and volume latents.
GOAL_RHO = 0.7
DEFAULT_UNIVERSE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "bybit_perp_1h")


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def study_indicators(df, ends, window, lookback) -> pd.DataFrame:
    """:func:`indicators` at ``ends`` plus, over the ``window`` candles ending there, ``momentum`` (log
    return), ``body_abs`` (mean |close - open| / (high - low)) and ``volume_level`` (mean log1p volume
    as a z-score against the ``lookback`` candles, as ``volume_z`` scores the last candle alone)."""
    ind = indicators(df, ends, window=window, lookback=lookback)
    c = df["close"].to_numpy(np.float64)
    rng = (df["high"] - df["low"]).to_numpy(np.float64)
    body = np.divide(np.abs(df["close"].to_numpy(np.float64) - df["open"].to_numpy(np.float64)), rng,
                     out=np.zeros_like(rng), where=rng > 0)
    lv = pd.Series(np.log1p(df["volume"].to_numpy(np.float64)))
    mean, sd = lv.rolling(lookback).mean(), lv.rolling(lookback).std()
    level = ((lv.rolling(window).mean() - mean) / sd.where(sd > 0)).to_numpy()
    extra = pd.DataFrame({"momentum": np.log(c / np.roll(c, window)),
                          "body_abs": pd.Series(body).rolling(window).mean().to_numpy(),
                          "volume_level": level}, index=df.index)
    extra.iloc[:window] = np.nan
    extra = extra.reindex(pd.DatetimeIndex(ends))
    return pd.concat([ind.reset_index(drop=True), extra.reset_index(drop=True)], axis=1)


def linearity(codes, pcs) -> np.ndarray:
    """R^2 of each code column's least-squares regression on ``pcs`` (n, k) plus an intercept."""
    A = np.hstack([np.ones((pcs.shape[0], 1)), pcs])
    coef, *_ = np.linalg.lstsq(A, codes, rcond=None)
    res = codes - A @ coef
    tot = ((codes - codes.mean(0)) ** 2).sum(0)
    return 1.0 - (res ** 2).sum(0) / np.where(tot > 0, tot, np.nan)


def _best_distinct(rho_abs: np.ndarray, fam_cols: list[list[int]]) -> tuple[float, list[int]]:
    """Assign each family of (volatility, trend, volume) a distinct latent; maximise the smallest
    |rho|. rho_abs (n_latent, n_indicators) restricted to active latents by the caller."""
    per_fam = np.stack([rho_abs[:, cols].max(axis=1) for cols in fam_cols], axis=1)   # (latent, fam)
    best, pick = -1.0, []
    n = per_fam.shape[0]
    for perm in itertools.permutations(range(n), len(fam_cols)):
        v = min(per_fam[perm[f], f] for f in range(len(fam_cols)))
        if v > best:
            best, pick = v, list(perm)
    return best, pick


def alignment(codes, ind: pd.DataFrame, groups, active) -> dict:
    """Per-family coverage, distinct assignment and proxy gap of ``codes`` against ``ind``.

    ``groups`` (n,) labels the series (symbols): ``ts`` rho is per group, averaged over groups."""
    names = list(ind.columns)
    X = ind.to_numpy(np.float64)
    ok = np.isfinite(X).all(axis=1) & np.isfinite(codes).all(axis=1)
    pooled = spearman(codes[ok], X[ok])
    per = []
    for g in np.unique(groups):
        m = ok & (groups == g)
        if m.sum() > 50:
            per.append(spearman(codes[m], X[m]))
    ts = np.nanmean(np.stack(per), axis=0) if per else pooled
    out = {}
    for kind, rho in (("pooled", pooled), ("ts", ts)):
        a = np.abs(np.nan_to_num(rho))
        act = a[active] if active.any() else np.zeros((1, a.shape[1]))
        cover = {f: float(act[:, [names.index(c) for c in cols]].max()) for f, cols in FAMILIES.items()}
        order = np.sort(a, axis=0)[::-1]
        gap = float(np.mean(order[0] - (order[1] if a.shape[0] > 1 else 0.0)))
        fam = [[names.index(c) for c in FAMILIES[f]] for f in ("volatility", "trend", "volume")]
        idx = np.flatnonzero(active)
        distinct, pick = _best_distinct(act, fam) if idx.size >= 3 else (0.0, [])
        best = [{"indicator": names[int(np.argmax(a[j]))], "rho": float(rho[j, int(np.argmax(a[j]))])}
                for j in range(a.shape[0])]
        out[kind] = {"cover": cover, "gap": gap, "distinct": float(distinct),
                     "distinct_latents": [int(idx[p]) for p in pick], "best": best,
                     "rho": np.round(rho, 4).tolist()}
    out["indicators"] = names
    return out


def ts_ic(codes, fwd: pd.DataFrame) -> dict:
    """Per horizon: the time-series IC of each code (one series, in time order) over 30-day periods:
    ``ic`` their mean and ``t`` the t over periods (:func:`~betavae_np.analysis.ic.predictive_ic`)."""
    from betavae_np.analysis.ic import predictive_ic

    t = predictive_ic(codes, fwd).reset_index()
    return {int(h): {"ic": g["ic_mean"].tolist(), "t": g["t_periods"].tolist(), "periods": int(g["n_periods"].iloc[0])}
            for h, g in t.groupby("horizon")}


def measure(model, pca, frames, sets, tr_mean) -> dict:
    """The measures of ``model`` and ``pca`` on each named window set (``sets``: name -> (windows,
    symbols per window, frames))."""
    w = bv.workflow.model_windower(model)
    res = {}
    for name, (ws, sym) in sets.items():
        X = ws.array(np.float64) if hasattr(ws, "array") else np.asarray(ws, np.float64)
        ev = evaluate(model, X, train_mean=tr_mean)
        active = np.asarray(ev.stats.active, dtype=bool)
        mu, _ = encode_windows(model, X)
        pc = pca.transform(X)
        base = float(((X - tr_mean) ** 2).sum(1).mean())
        pca_r2 = 1.0 - float(((X - pca.inverse_transform(pc)) ** 2).sum(1).mean()) / base
        ends = ws.end_times
        parts_i, parts_f = [], []
        for s in np.unique(sym):
            m = sym == s
            parts_i.append(study_indicators(frames[s], ends[m], w.window, w.lookback).set_index(np.flatnonzero(m)))
            parts_f.append(forward_returns(frames[s], ends[m], HORIZONS).reset_index(drop=True)
                           .set_index(np.flatnonzero(m)))
        ind = pd.concat(parts_i).sort_index()
        fwd = pd.concat(parts_f).sort_index()
        fwd.columns = [f"fwd_{h}" for h in HORIZONS]
        lin = linearity(mu, pc)
        r = {"windows": int(X.shape[0]), "r2": ev.r2, "pca_r2": pca_r2, "active": int(active.sum()),
             "kl_per_dim": list(ev.kl_per_dim), "pca_linearity": [float(v) for v in lin],
             "nonlinear": int(np.sum(active & (lin < LINEAR_R2))),
             "model": alignment(mu, ind, sym, active),
             "pca": alignment(pc, ind, sym, np.ones(pc.shape[1], dtype=bool)),
             }
        if len(np.unique(sym)) == 1:
            r["ts_ic"] = {"model": ts_ic(mu, fwd), "pca": ts_ic(pc, fwd)}
        res[name] = r
    return res


def cs_ic(model, frames, windows) -> dict:
    """Largest |Newey-West t| per horizon of the latents and of PCA (held-out, cross-sectional)."""
    rep = cross_section_report(model, frames, windows)   # the windows already cut: not windowed again
    t = rep.table.reset_index()
    out = {}
    for kind in ("latent", "pca", "hand"):
        rows = t[t["kind"] == kind]
        out[kind] = {int(h): {"max_abs_t": float(rows[rows["horizon"] == h]["t_nw"].abs().max()),
                              "max_abs_ic": float(rows[rows["horizon"] == h]["ic_mean"].abs().max())}
                     for h in HORIZONS}
    return out


def run_one(job, universe_dir, sample_df, quick):
    rep, recon, beta, seed = job
    # every loss setting explicit: the run must not follow later changes of train's defaults
    settings = dict(source=universe_dir, features=rep, beta=beta, seed=seed, recon=recon,
                    learn_sigma=recon == "gaussian")
    if quick:
        settings.update(epochs=1)
    t0 = time.perf_counter()
    result = bv.train(**settings)
    fit = time.perf_counter() - t0
    model = result.model
    frames, windows = bv.workflow.universe_for_model(model, source=universe_dir)
    cutoff = model.records.universe.cutoff
    train, held = windows.split_at(cutoff)
    Xtr = train.array(np.float64)
    tr_mean = Xtr.mean(0)
    pca = PCA(model.config.n_latent).fit(Xtr)
    del Xtr
    held_sym = held.symbol_of(np.arange(len(held)))
    w = bv.workflow.model_windower(model)
    sws = w.windows(sample_df)
    sets = {"univ": (held, held_sym), "sample": (sws, np.array(["SAMPLE"] * len(sws)))}
    fr = dict(frames)
    fr["SAMPLE"] = sample_df
    out = measure(model, pca, fr, sets, tr_mean)
    out["cs_ic"] = cs_ic(model, frames, windows)
    out["fit_seconds"] = fit
    out["epochs"] = int(model.records.run.epochs)
    if recon == "gaussian":
        out["median_sigma"] = float(np.median(np.exp(model.named_parameters()["out.logsigma"])))
    return out


def key(job) -> str:
    rep, recon, beta, seed = job
    return f"{rep}|{recon}|{beta:g}|{seed}"


def _fmt(v, d=2):
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{d}f}"


def _mean(rs, f):
    v = [f(r) for r in rs]
    v = [x for x in v if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def _h(d, h):
    """JSON turns the horizon keys into strings."""
    return d[str(h)] if str(h) in d else d[h]


REPS = ("minmax", "returns", "both")


def tables(runs: dict) -> str:
    """Markdown: per set, one row per (representation, loss, beta) (means over the seeds it has) and
    one PCA row per representation; then the IC table."""
    rows = {}
    for k, r in runs.items():
        rep, recon, beta, seed = k.split("|")
        rows.setdefault((REPS.index(rep) if rep in REPS else 9, rep, recon, float(beta)), []).append(r)
    order = sorted(rows)
    fams = ("volatility", "trend", "volume", "shape", "rsi_obv")
    lines = []
    for where, title in (("univ", "Universe, held-out period (|rho| per symbol over time, averaged over the symbols)"),
                         ("sample", "Bundled sample (Coinbase BTC-USD 2017-2019, never trained on)")):
        lines += [f"\n{title}\n",
                  "| features | model | seeds | R^2 | active | R^2 on PCA < 0.9 | vol | trend | volume | shape | "
                  "rsi/obv | distinct | gap |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        last = None
        for key in order + [(9, None, None, None)]:
            rep = key[1]
            if last is not None and rep != last:        # the representation's PCA row after its models
                rs = next(v for k2, v in rows.items() if k2[1] == last)
                pc = lambda f: _mean(rs, lambda r: f(r[where]))   # noqa: E731
                cells = " | ".join(f"{pc(lambda x: x['pca']['ts']['cover'][f]):.2f}" for f in fams)
                lines.append(f"| {last} | PCA (8) | - | {pc(lambda x: x['pca_r2']):.3f} | 8 | - | {cells} | "
                             f"{pc(lambda x: x['pca']['ts']['distinct']):.2f} | {pc(lambda x: x['pca']['ts']['gap']):.3f} |")
            if rep is None:
                break
            last = rep
            rs = rows[key]
            m = lambda f: _mean(rs, lambda r: f(r[where]))   # noqa: E731
            cells = " | ".join(f"{m(lambda x: x['model']['ts']['cover'][f]):.2f}" for f in fams)
            lines.append(f"| {rep} | {key[2]} beta={key[3]:g} | {len(rs)} | {m(lambda x: x['r2']):.3f} | "
                         f"{m(lambda x: x['active']):.1f} | {m(lambda x: x['nonlinear']):.1f} | {cells} | "
                         f"{m(lambda x: x['model']['ts']['distinct']):.2f} | {m(lambda x: x['model']['ts']['gap']):.3f} |")
    lines += ["\nIC: the largest |t| of the codes per horizon in candles (PCA's in brackets); cs: cross-sectional on "
              "the universe's held-out period (Newey-West t), ts: time series on the bundled sample (t over its "
              "30-day periods)\n",
              "| features | model | cs 1 | cs 4 | cs 24 | ts 1 | ts 4 | ts 24 |", "|---|---|---|---|---|---|---|---|"]
    for key in order:
        rs = rows[key]
        cells = []
        for h in HORIZONS:
            a = _mean(rs, lambda r: _h(r["cs_ic"]["latent"], h)["max_abs_t"])
            b = _mean(rs, lambda r: _h(r["cs_ic"]["pca"], h)["max_abs_t"])
            cells.append(f"{a:.2f} ({b:.2f})")
        for h in HORIZONS:
            a = _mean(rs, lambda r: float(np.nanmax(np.abs(_h(r["sample"]["ts_ic"]["model"], h)["t"]))))
            b = _mean(rs, lambda r: float(np.nanmax(np.abs(_h(r["sample"]["ts_ic"]["pca"], h)["t"]))))
            cells.append(f"{a:.2f} ({b:.2f})")
        lines.append(f"| {key[1]} | {key[2]} beta={key[3]:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--features", default="minmax,returns,both")
    p.add_argument("--recon", default="sse,gaussian")
    p.add_argument("--betas", default="0.25,0.5,1,2")
    p.add_argument("--seeds", default="0")
    p.add_argument("--universe", default=DEFAULT_UNIVERSE)
    p.add_argument("--out")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--quick", action="store_true", help="one epoch per model (a smoke run; numbers mean nothing)")
    p.add_argument("--tables", help="only print the tables of this JSON")
    a = p.parse_args(argv)
    if a.tables:
        print(tables(json.load(open(a.tables))["runs"]))
        return
    if not os.path.isdir(a.universe):
        raise SystemExit(f"{a.universe} is not a directory of candle CSVs; pass --universe DIR")
    runs = {}
    if a.resume and a.out and os.path.exists(a.out):
        runs = json.load(open(a.out))["runs"]
    sample_df = bv.data.load_sample()
    jobs = [(r, l, float(b), int(s)) for s in a.seeds.split(",") for r in a.features.split(",")
            for l in a.recon.split(",") for b in a.betas.split(",")]
    for job in jobs:
        if key(job) in runs:
            continue
        t0 = time.perf_counter()
        runs[key(job)] = run_one(job, a.universe, sample_df, a.quick)
        _log(f"{key(job)}: {time.perf_counter() - t0:.0f} s")
        if a.out:
            tmp = a.out + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"settings": vars(a), "runs": runs}, f)
            os.replace(tmp, a.out)
    print(tables(runs))


if __name__ == "__main__":
    main()
