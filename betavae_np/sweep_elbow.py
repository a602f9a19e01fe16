"""A sweep's table (mean and spread over seeds), the beta it picks, and the trade-off plot.

The rule (:func:`choose_beta`): per beta take the mean over seeds of the held-out reconstruction
error ``x`` and of a score ``y`` that beta should buy - MIG on the synthetic market (whose factors
are known); on real candles the indicator coverage (the mean over the volatility, trend and volume
groups of the best |Spearman rho| of an active latent with the group's indicators), or the number
of latent dimensions switched off (``n_latent - active_units``) when asked. Rescale both to [0, 1] over the sweep and pick the beta that maximises ``y_n - x_n``:
Kneedle's difference curve (Satopaa et al. 2011, "Finding a 'Kneedle' in a Haystack"), i.e. the
beta past which raising beta costs more reconstruction than it gains in score, each measured as a
share of its range over the sweep. Ties go to the lower beta (better reconstruction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .exceptions import InputError

__all__ = ["summarize", "choose_beta", "Elbow", "plot_tradeoff", "MEASURES", "SCORES"]

#: Numeric columns of a sweep row that the summary averages (those present).
MEASURES = ("recon", "r2", "kl", "active_units", "mig", "sap", "dci_disentanglement", "dci_completeness",
            "dci_informativeness", "alignment", "coverage", "coverage_volatility", "coverage_trend",
            "coverage_volume", "ic", "ic_t", "windows_trained", "train_seconds")


def _groups(table) -> list:
    return [f for f in table.attrs.get("varying", ["beta", "seed"]) if f != "seed"]


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread (sample sd, NaN for one seed) over seeds of every measure, per configuration.

    Parameters
    ----------
    table : DataFrame
        :func:`betavae_np.sweep`'s rows.

    Returns
    -------
    DataFrame
        One row per combination of the varying fields other than ``seed``; columns ``seeds`` (jobs
        that finished), ``failed``, and ``<measure>_mean`` / ``<measure>_sd``.
        ``attrs["varying"]`` is carried over.
    """
    keys = _groups(table)
    ok = table[table["status"] != "failed"] if "status" in table else table
    cols = [m for m in MEASURES if m in table.columns]
    rows = []
    for values, part in table.groupby(keys, sort=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        good = ok.loc[ok.index.intersection(part.index)]
        row = dict(zip(keys, values))
        row["seeds"] = int(len(good))
        row["failed"] = int(len(part) - len(good))
        for m in cols:
            v = pd.to_numeric(good[m], errors="coerce").to_numpy(dtype=np.float64) if len(good) else np.array([])
            v = v[~np.isnan(v)]
            row[f"{m}_mean"] = float(v.mean()) if v.size else float("nan")
            row[f"{m}_sd"] = float(v.std(ddof=1)) if v.size > 1 else float("nan")
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs.update(table.attrs)
    out.attrs.setdefault("varying", ["beta", "seed"])
    return out


@dataclass
class Elbow:
    """The beta a sweep picks, and why.

    Attributes
    ----------
    beta : float or None
        None when no beta has results.
    score : str
        The score traded against reconstruction (``mig`` or ``units_off``).
    group : dict
        The other varying fields of this trade-off curve ({} when only beta and seed vary).
    reason : str
        One sentence.
    points : DataFrame
        Per beta: ``recon``, ``score``, their rescaled ``x``, ``y`` and ``gain = y - x``.
    """

    beta: float | None
    score: str
    group: dict
    reason: str
    points: pd.DataFrame

    def to_dict(self) -> dict:
        return {"beta": self.beta, "score": self.score, "group": self.group, "reason": self.reason,
                "points": self.points.reset_index().to_dict(orient="records")}


#: Scores the elbow can trade against reconstruction, and how they are named in sentences.
SCORES = {"mig": "MIG", "coverage": "indicator coverage", "units_off": "latent dimensions switched off"}


def _score(summary: pd.DataFrame, score: str = "auto") -> tuple[str, pd.Series]:
    if score not in ("auto", *SCORES):
        raise InputError(f"score must be auto, {', '.join(SCORES)}; got {score!r}.")
    for name in (("mig", "coverage") if score == "auto" else (score,)):
        if name in SCORES and name != "units_off":
            col = f"{name}_mean"
            if col in summary and summary[col].notna().any():
                return name, summary[col]
            if score != "auto":
                raise InputError(f"the sweep table has no {SCORES[name]} to choose beta by.")
    if "active_units_mean" not in summary:
        raise InputError("the sweep table has no active units to choose beta by.")
    n_latent = summary["latent"] if "latent" in summary else summary.attrs.get(
        "latent", summary["active_units_mean"].max())
    return "units_off", n_latent - summary["active_units_mean"]


def choose_beta(summary: pd.DataFrame, score: str = "auto", latent: int | None = None) -> list:
    """The elbow of the reconstruction / score trade-off, per curve (see the module notes for the rule).

    Parameters
    ----------
    summary : DataFrame
        :func:`summarize`'s table.
    score : {"auto", "mig", "coverage", "units_off"}
        What beta should buy. ``auto``: MIG when the table has it (synthetic market), else the
        indicator coverage (real candles), else the latent dimensions switched off.
    latent : int, optional
        Latent dimensions of the models when ``latent`` is not a column (real data: the score is
        the dimensions switched off).

    Returns
    -------
    list of Elbow
        One per combination of the varying fields other than beta and seed.
    """
    s = summary.copy()
    if latent is not None and "latent" not in s:
        s["latent"] = latent
    name, values = _score(s, score)
    s["_score"] = values
    others = [f for f in _groups(summary) if f != "beta"]
    parts = s.groupby(others, sort=True, dropna=False) if others else [((), s)]
    out = []
    for values, part in parts:
        values = values if isinstance(values, tuple) else (values,)
        group = dict(zip(others, values))
        out.append(_knee(part, name, group))
    return out


def _knee(part: pd.DataFrame, name: str, group: dict) -> Elbow:
    p = part[["beta", "recon_mean", "_score"]].dropna().sort_values("beta")
    pts = pd.DataFrame({"recon": p["recon_mean"].to_numpy(), "score": p["_score"].to_numpy()},
                       index=pd.Index(p["beta"].to_numpy(), name="beta"))
    label = SCORES[name]
    where = "".join(f", {k}={v}" for k, v in group.items())
    if pts.empty:
        return Elbow(None, name, group, f"no beta{where} finished with results, so none is chosen.", pts)
    if len(pts) == 1:
        b = float(pts.index[0])
        return Elbow(b, name, group, f"beta={b:g}{where} is the only beta with results.", _with_gain(pts))
    pts = _with_gain(pts)
    x_range = np.ptp(pts["recon"].to_numpy())
    y_range = np.ptp(pts["score"].to_numpy())
    if y_range == 0:
        b = float(pts["recon"].idxmin())
        reason = (f"beta={b:g}{where}: {label} is the same for every beta, so the beta with the lowest "
                  "held-out reconstruction error is chosen.")
    elif x_range == 0:
        b = float(pts["score"].idxmax())
        reason = (f"beta={b:g}{where}: every beta reconstructs the held-out windows equally well, so the "
                  f"beta with the most {label} is chosen.")
    elif pts["recon"].idxmin() == pts["score"].idxmax():
        b = float(pts["recon"].idxmin())
        reason = (f"beta={b:g}{where} has both the lowest held-out reconstruction error and the most {label} "
                  "of the sweep, so nothing is traded off.")
    elif pts["gain"].max() <= 0:
        b = float(pts["recon"].idxmin())
        reason = (f"beta={b:g}{where}: no beta gains more {label} than it loses in held-out reconstruction "
                  "(both as shares of their range over the sweep), so the best-reconstructing beta is chosen.")
    else:
        b = float(pts["gain"].idxmax())   # idxmax: first maximum, i.e. the lower beta on ties
        r = pts.loc[b]
        reason = (f"beta={b:g}{where} is the knee (Kneedle): it gains the most {label} for the held-out "
                  f"reconstruction it gives up (score {r['y']:.0%} of its range, error {r['x']:.0%} of its "
                  "range); beyond it each step costs more reconstruction than it gains.")
    return Elbow(b, name, group, reason, pts)


def _with_gain(pts: pd.DataFrame) -> pd.DataFrame:
    pts = pts.copy()
    for col, new in (("recon", "x"), ("score", "y")):
        v = pts[col].to_numpy(dtype=np.float64)
        r = np.ptp(v)
        pts[new] = (v - v.min()) / r if r > 0 else 0.0
    pts["gain"] = pts["y"] - pts["x"]
    return pts


def plot_tradeoff(summary: pd.DataFrame, elbows: list, path: str) -> str:
    """The trade-off plot: score against held-out reconstruction error, one point per beta (error
    bars: sd over seeds), the chosen beta ringed; a second panel shows both against beta.

    Needs matplotlib (the ``plot`` extra). Written atomically; returns the path.
    """
    from .analysis.plot import _pyplot
    from .io import atomic_path

    plt = _pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, e in enumerate(elbows):
        c = colors[i % len(colors)]
        pts = e.points
        if pts.empty:
            continue
        label = ", ".join(f"{k}={v}" for k, v in e.group.items()) or None
        ysd = _sd(summary, e, "active_units" if e.score == "units_off" else e.score)
        xsd = _sd(summary, e, "recon")
        ax.errorbar(pts["recon"], pts["score"], xerr=xsd, yerr=ysd, fmt="o-", color=c, capsize=3, label=label)
        for b, r in pts.iterrows():
            ax.annotate(f"{b:g}", (r["recon"], r["score"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
        if e.beta is not None:
            r = pts.loc[e.beta]
            ax.plot([r["recon"]], [r["score"]], "o", ms=16, mfc="none", mec="red", mew=2)
        ax2.plot(pts.index, pts["x"], "o-", color=c, label=f"reconstruction error (rescaled){' ' + label if label else ''}")
        ax2.plot(pts.index, pts["y"], "s--", color=c, label=f"score (rescaled){' ' + label if label else ''}")
        if e.beta is not None:
            ax2.axvline(e.beta, color="red", lw=1)
    score = {"mig": "MIG (synthetic market)", "coverage": "indicator coverage (mean best |rho|: vol, trend, volume)",
             "units_off": "latent dimensions switched off"}[elbows[0].score] if elbows else "score"
    ax.set_xlabel("held-out reconstruction error (mean SSE per window)")
    ax.set_ylabel(score)
    ax.set_title("trade-off (labels: beta; ring: chosen)")
    if any(e.group for e in elbows):
        ax.legend(fontsize=8)
    ax2.set_xscale("log", base=2)
    ax2.set_xlabel("beta")
    ax2.set_ylabel("share of range over the sweep")
    ax2.set_title("Kneedle: chosen beta maximises score - error")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    ext = str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else "png"
    with atomic_path(path, "plot") as tmp:
        fig.savefig(tmp, format=ext, dpi=110)
    plt.close(fig)
    return str(path)


def _sd(summary, e, measure):
    col = f"{measure}_sd"
    if col not in summary:
        return None
    s = summary
    for k, v in e.group.items():
        s = s[s[k] == v]
    sd = s.set_index("beta")[col].reindex(e.points.index).to_numpy(dtype=np.float64)
    return None if np.isnan(sd).all() else np.nan_to_num(sd)
