"""Why no beta beats PCA on the synthetic market: training variants and the factors' identifiability.

``examples/synthetic_study.py`` finds every disentanglement metric falling as beta rises and PCA
ahead of every beta. This script tests the explanations the beta-VAE literature offers, each on
the same market, windows, seeds and metric settings as that study:

* **annealing**: beta constant from the first step instead of the CLI's linear warm-up;
* **capacity schedule** (Burgess et al. 2018): ``recon + gamma |KL - C|`` with C rising linearly
  to 2.5 nats over training (gamma 20; beta 1's KL is about 2.4 nats);
* **latent size**: 5 latents (one per factor) instead of 8;
* **longer training**: 4x the steps;
* **identifiability**: how much of each factor one window carries at all. A gradient-boosted
  classifier (scikit-learn's ``HistGradientBoostingClassifier``) predicts each factor from the raw
  window, from PCA's 8 codes and from a model's codes; test accuracy against chance;
* **a more identifiable market**: wider grids (trend 2.5x stronger, momentum +-0.8), then the
  same betas and PCA again.

    python examples/synthetic_investigation.py [--json out.json] [--no-factor-vae] [--quick]

Prints markdown tables on stdout (progress on stderr). With ``--json`` rows already in the file are
reused, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import betavae_np as bv  # noqa: E402
from betavae_np.analysis.baselines import PCA  # noqa: E402
from betavae_np.synth import FACTOR_GRIDS, SyntheticMarket  # noqa: E402
from betavae_np.metrics.report import synthetic_report  # noqa: E402
from synthetic_study import BATCH, HIDDEN, WARMUP, epochs_for, score_model, score_pca  # noqa: E402

COLUMNS = ("mig", "dci_disentanglement", "sap", "factor_vae", "recon", "kl", "active_units",
           "dci_informativeness")

#: A market whose factors are easier to read from one window (wider trend and momentum grids).
STRONG_GRIDS = {"trend": tuple(2.5 * v for v in FACTOR_GRIDS["trend"]),
                "momentum": (-0.8, -0.4, 0.0, 0.4, 0.8)}


def variants(quick: bool) -> list[dict]:
    """Every row of the study: (name, market, beta or schedule, latent, steps multiplier)."""
    rows = []

    def add(group, label, beta, **kw):
        rows.append({"group": group, "label": label, "beta": beta, **kw})

    for b in (0.25, 1.0):
        add("default (linear warm-up, 8 latents)", f"beta={b:g}", b)
    add("default (linear warm-up, 8 latents)", "PCA (8)", None)
    add("no annealing (constant beta)", "beta=1", 1.0, anneal="constant")
    for c in (2.5,):
        add("capacity schedule (gamma 20)", f"C={c:g} nats", 20.0, anneal="capacity", c_max=c)
    add("5 latents", "beta=1", 1.0, latent=5)
    add("4x longer training", "beta=1", 1.0, steps_x=4)
    for b in (0.25, 1.0, 2.0):
        add("identifiable market", f"beta={b:g}", b, market="strong")
    add("identifiable market", "PCA (8)", None, market="strong")
    if quick:
        rows = [rows[1], rows[4], rows[-1]]   # default beta 1, the capacity schedule, PCA on the other market
    return rows


def make_market(kind: str, seed: int) -> SyntheticMarket:
    if kind == "strong":
        return SyntheticMarket(seed=seed, grids=STRONG_GRIDS)
    return SyntheticMarket(seed=seed)


def fit_model(X, v, steps, seed):
    """synthetic_study's model and training for variant ``v``: (model, fit seconds)."""
    model = bv.BetaVAE(bv.VAEConfig(n_input=X.shape[1], hidden=HIDDEN, n_latent=v.get("latent", 8)), rng=seed)
    schedule = _schedule(v) or bv.schedules.Linear(beta=v["beta"], warmup=WARMUP)
    t = time.perf_counter()
    bv.fit(model, X, epochs=epochs_for(steps * v.get("steps_x", 1), len(X)), batch_size=BATCH, schedule=schedule,
           rng=seed)
    return model, time.perf_counter() - t


def _schedule(v):
    if v.get("anneal") == "constant":
        return bv.schedules.Constant(beta=v["beta"])
    if v.get("anneal") == "capacity":
        return bv.schedules.Capacity(gamma=v["beta"], c_max=v["c_max"], ramp=1.0)
    return None   # the study's default: linear warm-up over 20% of the steps


def _needs_codes(v) -> bool:
    """The rows whose codes the identifiability table also reads (beta 1, default training)."""
    return v["label"] == "beta=1" and v["group"].startswith(("default", "identifiable"))


def identifiability(market, X, F, X_te, F_te, codes: dict, seed: int) -> dict:
    """Per factor, the test accuracy of a boosted-tree classifier from the raw window and from each
    set of codes, with chance (the largest class share of the test factors)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    out = {}
    inputs = {"window": (X, X_te), **codes}
    for j, name in enumerate(market.factor_names):
        chance = float(np.bincount(F_te[:, j]).max() / len(F_te))
        row = {"values": int(market.factors_num_values[j]), "chance": chance}
        for key, (a, b) in inputs.items():
            clf = HistGradientBoostingClassifier(max_iter=50, random_state=seed).fit(a, F[:, j])
            row[key] = float(clf.score(b, F_te[:, j]))
        out[name] = row
    return out


def _fmt(v):
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return "%.3f" % v if np.isfinite(v) else "-"


def markdown(result) -> str:
    lines = ["| variant | setting | " + " | ".join(COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 2)]
    for r in result["rows"]:
        lines.append(f"| {r['group']} | {r['label']} | " + " | ".join(_fmt(r.get(c, float("nan"))) for c in COLUMNS)
                     + " |")
    for kind, ident in result["identifiability"].items():
        lines += ["", f"Identifiability ({kind} market): boosted-tree test accuracy per factor",
                  "", "| factor | values | chance | " + " | ".join(k for k in next(iter(ident.values())) if
                                                                 k not in ("values", "chance")) + " |"]
        keys = [k for k in next(iter(ident.values())) if k not in ("values", "chance")]
        lines.append("|" + "---|" * (len(keys) + 3))
        for name, row in ident.items():
            lines.append(f"| {name} | {row['values']} | {row['chance']:.3f} | "
                         + " | ".join("%.3f" % row[k] for k in keys) + " |")
    s = result["settings"]
    lines += ["", f"{s['n_train']} training / {s['n_test']} held-out windows, about {s['steps']} steps of batch 256 "
              f"(4x for the longer runs), seed {s['seed']}; MIG/DCI/SAP on {s['metric_samples']} + "
              f"{s['metric_samples'] // 2} fresh observations"
              + ("; FactorVAE with disentanglement_lib's sizes." if s["factor_vae"] else "; FactorVAE not run.")]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--n-train", type=int, default=20_000)
    p.add_argument("--n-test", type=int, default=5_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metric-samples", type=int, default=10_000,
                   help="observations for MIG/DCI/SAP (half as many for testing); disentanglement_lib's 10,000")
    p.add_argument("--no-factor-vae", action="store_true", help="skip the FactorVAE score (the slowest metric)")
    p.add_argument("--quick", action="store_true", help="three rows, 300 steps, 2,000 windows: a smoke run")
    p.add_argument("--json", dest="json_path", default=None, help="write (and resume from) this file")
    a = p.parse_args(argv)
    if a.quick:
        a.steps, a.n_train, a.n_test, a.metric_samples = 300, 2_000, 1_000, 1_000
    settings = {"steps": a.steps, "n_train": a.n_train, "n_test": a.n_test, "seed": a.seed,
                "factor_vae": not a.no_factor_vae, "metric_samples": a.metric_samples, "strong_grids": STRONG_GRIDS}
    old = {}
    if a.json_path and os.path.exists(a.json_path):
        with open(a.json_path) as fh:
            prev = json.load(fh)
        if prev.get("settings") == json.loads(json.dumps(settings)):
            old = {(r["group"], r["label"]): r for r in prev["rows"]}
    data = {}

    def market_data(kind):
        if kind not in data:
            m = make_market(kind, a.seed)
            F, X = m.sample(a.n_train, np.random.default_rng(a.seed))
            F_te, X_te = m.sample(a.n_test, np.random.default_rng(a.seed + 1))
            data[kind] = (m, X, F, X_te, F_te)
        return data[kind]

    sizes = {"num_train": a.metric_samples, "num_test": max(2, a.metric_samples // 2)}
    result = {"settings": settings, "rows": [], "identifiability": {}}
    models = {}
    for v in variants(a.quick):
        kind = v.get("market", "default")
        market, X, F, X_te, F_te = market_data(kind)
        key = (v["group"], v["label"])
        t = time.perf_counter()
        report = partial(synthetic_report, market, rng=a.seed + 2, factor_vae=not a.no_factor_vae, **sizes)
        if v["beta"] is None:
            row = old.get(key) or score_pca(report, X, X_te)
        elif key in old and not _needs_codes(v):
            row = old[key]
        else:
            model, fit_s = fit_model(X, v, a.steps, a.seed)
            models[(kind, v["label"], v["group"])] = model
            row = old.get(key) or score_model(report, model, X_te, fit_s)
        row = {k: val for k, val in row.items() if k != "seconds"}
        row.update(group=v["group"], label=v["label"])
        result["rows"].append(row)
        print(f"{v['group']} / {v['label']}: MIG {row['mig']:.3f} DCI-D {row['dci_disentanglement']:.3f} "
              f"recon {row['recon']:.3f} ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
        if a.json_path:
            with open(a.json_path + ".tmp", "w") as fh:
                json.dump(result, fh, indent=1, default=float)
            os.replace(a.json_path + ".tmp", a.json_path)
    for kind in data:
        market, X, F, X_te, F_te = data[kind]
        pca = PCA(8).fit(X)
        codes = {"pca8": (pca.transform(X), pca.transform(X_te))}
        for (mk, label, group), model in models.items():
            if mk == kind and _needs_codes({"label": label, "group": group}):
                codes["vae_beta1"] = (model.encode(X)[0], model.encode(X_te)[0])
        result["identifiability"][kind] = identifiability(market, X, F, X_te, F_te, codes, a.seed)
    if a.json_path:
        with open(a.json_path + ".tmp", "w") as fh:
            json.dump(result, fh, indent=1, default=float)
        os.replace(a.json_path + ".tmp", a.json_path)
    print(markdown(result))


if __name__ == "__main__":
    main()
