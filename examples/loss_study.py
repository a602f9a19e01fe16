"""Gaussian beta-VAE against beta-TCVAE on the synthetic market, three seeds each (issue 11).

Same market, data, architecture, number of steps, KL/TC warm-up and metric sample sizes as
``synthetic_study.py`` (whose functions this script reuses), so its rows compare with that table.
Rows:

* ``PCA (8)``: deterministic, fitted once.
* ``SSE beta=0.5``: the default loss at its default beta (seed 0 is synthetic_study's beta=0.5 row).
* ``Gaussian beta=b``: ``BetaVAE(recon="gaussian", learn_sigma=True)``, b in --betas. The noise is
  learned (one log-sigma per window value, trained with the weights): a fixed sigma would have to
  be guessed, and any guess rescales beta (sigma^2 = 1/2 is the SSE loss); the maximum-likelihood
  sigma is what makes beta = 1 the ELBO of the data. The median learned sigma is reported.
* ``TC-VAE beta=b``: ``TCVAE(alpha=1, beta=b, gamma=1, estimator="mws", dataset_size=N)`` with the
  same learned-sigma Gaussian likelihood, N the number of training windows. MWS is the estimator
  of the main text of Chen et al. (2018); MSS is their appendix's variant.

The schedule is synthetic_study's (and the CLI's): the scheduled weight (beta of the KL, or of
the TC term) rises linearly from 0 over the first 20% of the steps; alpha and gamma are constant.
The seeds vary the model (initial weights, batch order, noise), not the data. Reconstruction is in
one unit for every row: the held-out sum of squared errors of decode(mu) per window, and R^2 of
the held-out windows (1 - SSE / the sum of squares about their column means).

    python examples/loss_study.py [--seeds 0,1,2] [--betas 1,2,4,8] [--rows pca,sse,gaussian,tcvae]
                                  [--out study.json] [--resume] [--quick]
    python examples/loss_study.py --shard 0/2 --out a.json &  python examples/loss_study.py --shard 1/2 --out b.json
    python examples/loss_study.py --merge a.json b.json --out study.json

Prints a markdown table on stdout (mean +- sample sd over seeds); progress on stderr. With --out
the JSON is rewritten after every model, and --resume skips the models it already holds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

import betavae_np as bv
from betavae_np.metrics import factor_vae_score
from betavae_np.metrics.report import synthetic_report


def _sibling(name):
    """Import the example ``name``.py beside this file (the examples are no package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


#: synthetic_study.py: the shared data, training settings and scoring.
ss = _sibling("synthetic_study")

#: Columns of the table: (JSON key, header).
COLUMNS = (("mig", "MIG"), ("dci_disentanglement", "DCI-D"), ("factor_vae", "FactorVAE"),
           ("recon", "recon SSE"), ("r2", "R^2"), ("active_units", "active units"),
           ("kl", "KL (nats)"), ("sigma", "median sigma"))
#: Kinds of rows (--rows).
KINDS = ("pca", "sse", "gaussian", "tcvae")
#: Baseline SSE beta-VAE: the default loss at the default beta.
SSE_BETA = 0.5
#: Tiny sizes for --quick (a smoke run of every path in seconds; the numbers mean nothing).
QUICK = {"n_train": 512, "n_test": 256, "steps": 16, "seeds": (0,), "betas": (1.0,),
         "metrics": {"num_train": 300, "num_test": 200, "fv_batch_size": 16, "fv_num_train": 40,
                     "fv_num_eval": 20, "fv_num_variance_estimate": 300}}


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def configs(betas, n_train) -> dict:
    """Row name -> loss spec (None for PCA), in table order."""
    rows = {"PCA (8)": None, f"SSE beta={SSE_BETA:g}": bv.losses.BetaVAE(beta=SSE_BETA)}
    for b in betas:
        rows[f"Gaussian beta={b:g}"] = bv.losses.BetaVAE(recon="gaussian", learn_sigma=True, beta=b)
    for b in betas:
        rows[f"TC-VAE beta={b:g}"] = bv.losses.TCVAE(alpha=1.0, beta=b, gamma=1.0, estimator="mws",
                                                     dataset_size=n_train, recon="gaussian",
                                                     learn_sigma=True)
    return rows


def kind(loss) -> str:
    """The --rows name of a row's loss spec: pca, sse, gaussian or tcvae."""
    if loss is None:
        return "pca"
    if isinstance(loss, bv.losses.TCVAE):
        return "tcvae"
    return loss.recon


def jobs(rows: dict, seeds, kinds=KINDS) -> list:
    """(row, seed) pairs of the rows of ``kinds``, seed-major so that a partial run has every row
    of its first seeds; PCA once (seed None)."""
    out = [("PCA (8)", None)] if "pca" in kinds else []
    for s in seeds:
        out += [(name, s) for name, loss in rows.items() if loss is not None and kind(loss) in kinds]
    return out


def make_report(market, scores_rng, metrics):
    """``represent -> metrics dict``: synthetic_study's report, or smaller samples (--quick)."""
    if metrics is None:
        return partial(synthetic_report, market, rng=scores_rng, beta_vae=False)

    def report(represent):
        g = np.random.default_rng(scores_rng)
        r = synthetic_report(market, represent, rng=g, num_train=metrics["num_train"],
                             num_test=metrics["num_test"], factor_vae=False, beta_vae=False)
        fv = factor_vae_score(market, represent, rng=g, batch_size=metrics["fv_batch_size"],
                              num_train=metrics["fv_num_train"], num_eval=metrics["fv_num_eval"],
                              num_variance_estimate=metrics["fv_num_variance_estimate"])
        r["factor_vae"], r["factor_vae_active_dims"] = fv["eval_accuracy"], fv["num_active_dims"]
        return r
    return report


def r_squared(recon: float, X_te) -> float:
    """1 - (mean SSE per window) / (mean sum of squares per window about the column means)."""
    X = np.asarray(X_te, np.float64)
    return 1.0 - recon / float(np.mean(np.sum((X - X.mean(0)) ** 2, axis=1)))


def run_job(name, loss, seed, X, X_te, epochs, report) -> dict:
    """Train (unless PCA) and score one row for one seed; a diverged fit is recorded, not raised."""
    if loss is None:
        r = ss.score_pca(report, X, X_te)
    else:
        t = time.perf_counter()
        cfg = bv.VAEConfig(n_input=X.shape[1], hidden=ss.HIDDEN, n_latent=ss.N_LATENT)
        model = bv.BetaVAE(cfg, rng=seed, loss=loss)
        try:
            hist = bv.fit(model, X, epochs=epochs, batch_size=ss.BATCH, rng=seed, loss=loss,
                          schedule=bv.schedules.Linear(beta=loss.beta, warmup=ss.WARMUP))
        except bv.TrainingError as e:
            return {"row": name, "seed": seed, "error": str(e)}
        r = ss.score_model(report, model, X_te, time.perf_counter() - t)
        r["train_recon"] = hist.train_recon[-1]
        if hist.train_tc is not None:
            r.update(train_mi=hist.train_mi[-1], train_tc=hist.train_tc[-1],
                     train_dimwise_kl=hist.train_dimwise_kl[-1])
        if loss.learn_sigma:
            r["sigma"] = float(np.median(np.exp(model.named_parameters()["out.logsigma"])))
    r["r2"] = r_squared(r["recon"], X_te)
    return {"row": name, "seed": seed, **r}


def summarise(settings, runs) -> dict:
    """Row -> {column: {"mean", "sd", "n"}} over the seeds that finished (sd: ddof=1, None if n < 2)."""
    out = {}
    for name in configs(settings["betas"], settings["n_train"]):
        mine = [r for r in runs if r["row"] == name]
        ok = [r for r in mine if "error" not in r]
        if not mine:
            continue
        cols = {}
        for key, _ in COLUMNS:
            v = [float(r[key]) for r in ok if isinstance(r.get(key), (int, float))]
            v = [x for x in v if math.isfinite(x)]
            if v:
                cols[key] = {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)) if len(v) > 1 else None,
                             "n": len(v)}
        out[name] = {"seeds": sorted(r["seed"] for r in ok if r["seed"] is not None),
                     "diverged": sorted(r["seed"] for r in mine if "error" in r), **cols}
    return out


def markdown(result) -> str:
    head = ["model", *(h for _, h in COLUMNS), "seeds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in result["summary"].items():
        cells = [name]
        for key, _ in COLUMNS:
            c = row.get(key)
            if c is None:
                cells.append("")
            elif key == "active_units":
                cells.append(f"{c['mean']:.1f}" + (f" +- {c['sd']:.1f}" if c["sd"] is not None else ""))
            else:
                cells.append(f"{c['mean']:.3f}" + (f" +- {c['sd']:.3f}" if c["sd"] is not None else ""))
        seeds = ",".join(map(str, row["seeds"])) or "-"
        if row["diverged"]:
            seeds += " (diverged: " + ",".join(map(str, row["diverged"])) + ")"
        cells.append(seeds)
        lines.append("| " + " | ".join(cells) + " |")
    s = result["settings"]
    lines += ["", f"{s['n_train']} training windows (data seed {s['data_seed']}), {s['steps']} steps "
              f"({s['epochs']} epochs of batch {s['batch']}), linear warm-up of the scheduled weight over "
              f"{s['warmup']:.0%} of the steps; model seeds {','.join(map(str, s['seeds']))} requested "
              "(the last column lists those each row has); "
              f"metrics with rng {s['scores_rng']}"
              + (" at --quick sample sizes" if s["quick"] else " at disentanglement_lib's sample sizes")
              + f"; recon and R^2 on {s['n_test']} held-out windows; mean +- sd (ddof 1) over seeds."]
    return "\n".join(lines)


def _settings(a) -> dict:
    q = QUICK if a.quick else None
    n_train = q["n_train"] if q else a.n_train
    epochs = ss.epochs_for(q["steps"] if q else a.steps, n_train)
    return {"betas": list(q["betas"] if q else a.betas), "seeds": list(q["seeds"] if q else a.seeds),
            "sse_beta": SSE_BETA, "n_train": n_train, "n_test": q["n_test"] if q else a.n_test,
            "epochs": epochs, "steps": epochs * -(-n_train // ss.BATCH), "batch": ss.BATCH,
            "hidden": list(ss.HIDDEN), "n_latent": ss.N_LATENT, "warmup": ss.WARMUP,
            "estimator": "mws", "sigma": "learned per window value",
            "data_seed": a.data_seed, "scores_rng": a.data_seed + 2, "quick": bool(a.quick),
            "metrics": q["metrics"] if q else "synthetic_report defaults (beta_vae=False)",
            **({"rows": list(a.rows)} if tuple(a.rows) != KINDS else {})}


def _write(path, result):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=1)
    os.replace(tmp, path)


#: Settings that only select which models run (merged files may differ in them).
_SELECTION = ("shard", "rows", "seeds", "betas")


def _shared(settings, selection=True):
    """The settings without the shard (and, unless ``selection``, without the job selection)."""
    drop = ("shard",) if selection else _SELECTION
    return {k: v for k, v in settings.items() if k not in drop}


def merge(paths) -> dict:
    """Union of the runs of several --out files made with the same data, training and metric
    settings (shards, or runs of other betas, seeds or rows); later files win on duplicates."""
    results = []
    for p in paths:
        with open(p) as fh:
            results.append(json.load(fh))
    settings = _shared(results[0]["settings"], selection=False)
    for p, r in zip(paths[1:], results[1:]):
        if _shared(r["settings"], selection=False) != settings:
            raise SystemExit(f"{p} was made with other settings than {paths[0]}; not merging.")
    runs = {(r["row"], r["seed"]): r for res in results for r in res["runs"]}
    runs = list(runs.values())
    settings["betas"] = sorted({b for r in results for b in r["settings"]["betas"]})
    settings["seeds"] = sorted({s for r in results for s in r["settings"]["seeds"]})
    return {"settings": settings, "runs": runs, "summary": summarise(settings, runs)}


def study(settings, shard=(0, 1), done=(), on_result=None) -> dict:
    """Run the jobs of ``shard`` (i, k) not in ``done``; returns the result dict."""
    market, X, X_te = ss.data(settings["data_seed"], settings["n_train"], settings["n_test"])
    metrics = settings["metrics"] if settings["quick"] else None
    report = make_report(market, settings["scores_rng"], metrics)
    rows = configs(settings["betas"], settings["n_train"])
    runs = list(done)
    have = {(r["row"], r["seed"]) for r in runs}
    todo = jobs(rows, settings["seeds"], settings.get("rows", KINDS))
    todo = [j for i, j in enumerate(todo) if i % shard[1] == shard[0]]
    for name, seed in todo:
        if (name, seed) in have:
            continue
        t = time.perf_counter()
        r = run_job(name, rows[name], seed, X, X_te, settings["epochs"], report)
        runs.append(r)
        _log(f"{name}, seed {seed}: " + (r["error"] if "error" in r else
             f"MIG {r['mig']:.3f}, recon {r['recon']:.3f}") + f" ({time.perf_counter() - t:.0f} s)")
        result = {"settings": settings, "runs": runs, "summary": summarise(settings, runs)}
        if on_result is not None:
            on_result(result)
    return {"settings": settings, "runs": runs, "summary": summarise(settings, runs)}


def _kinds(text):
    out = tuple(k for k in KINDS if k in text.split(","))
    bad = set(text.split(",")) - set(KINDS)
    if bad or not out:
        raise argparse.ArgumentTypeError(f"rows are any of {','.join(KINDS)}, got {text!r}")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--betas", default="1,2,4,8", type=lambda s: [float(b) for b in s.split(",")])
    p.add_argument("--seeds", default="0,1,2", type=lambda s: [int(b) for b in s.split(",")])
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--n-train", type=int, default=20_000)
    p.add_argument("--n-test", type=int, default=5_000)
    p.add_argument("--data-seed", type=int, default=0, help="the market's and the data's seed")
    p.add_argument("--rows", default=",".join(KINDS), type=_kinds,
                   help="which rows: any of pca,sse,gaussian,tcvae (default all)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (seconds; numbers mean nothing)")
    p.add_argument("--shard", default="0/1", help="I/K: run every K-th model starting at I")
    p.add_argument("--resume", action="store_true", help="keep the models --out already holds")
    p.add_argument("--merge", nargs="+", default=None, metavar="FILE", help="merge --out files, then print")
    p.add_argument("--out", default=None, help="JSON file of every run and the summary")
    a = p.parse_args(argv)
    if a.merge:
        result = merge(a.merge)
    else:
        i, k = (int(x) for x in a.shard.split("/"))
        settings = _settings(a)
        done = []
        if a.resume and a.out and os.path.exists(a.out):
            with open(a.out) as fh:
                old = json.load(fh)
            if _shared(old["settings"]) != settings:
                raise SystemExit(f"{a.out} was made with other settings; drop --resume or change --out.")
            done = old["runs"]
        settings = {**settings, "shard": a.shard} if k > 1 else settings
        write = partial(_write, a.out) if a.out else None
        result = study(settings, (i, k), done, on_result=write)
    print(markdown(result))
    if a.out:
        _write(a.out, result)
    return result


if __name__ == "__main__":
    main()
