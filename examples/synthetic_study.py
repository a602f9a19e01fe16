"""Beta sweep on the synthetic market: disentanglement vs reconstruction, against PCA.

Trains the default architecture (window 32 x OHLCV, hidden 128,64, 8 latents, the default loss
``recon (SSE) + beta * KL`` with the CLI's linear KL warm-up over 20% of the steps) on windows of
:class:`betavae_np.synth.SyntheticMarket` for each beta, then scores the posterior means with
disentanglement_lib's metrics and sample sizes. Beta multiplies a KL in nats against a
reconstruction summed over 160 window values in [0, 1] (not a per-pixel Bernoulli likelihood as in
the image papers), so its useful range sits lower than there: 0.25..8.

``--features returns`` or ``both`` trains and scores on the market's windows in that input
representation instead (window 32 x 6 z-scored return features, or x 11: min-max OHLCV and the
return features; see ``Windower(representation=...)``); PCA is fitted on the same inputs.

    python examples/synthetic_study.py [--steps 6000] [--features minmax] [--recon sse|gaussian] [--json out.json]

Prints a markdown table on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial

import numpy as np

import betavae_np as bv
from betavae_np.analysis.baselines import PCA
from betavae_np.data.features import REPRESENTATIONS
from betavae_np.metrics.report import synthetic_report
from betavae_np.synth import SyntheticMarket

COLUMNS = ("mig", "dci_disentanglement", "factor_vae", "sap", "recon", "dci_completeness",
           "dci_informativeness", "active_units", "kl")
#: The default architecture and the CLI's batch and KL warm-up (shared with loss_study.py).
HIDDEN, N_LATENT, BATCH, WARMUP = (128, 64), 8, 256, 0.2


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def reconstruction(decode, codes, X) -> float:
    """Mean over windows of the summed squared error of decoding the codes (the loss's recon term)."""
    return float(np.mean(np.sum((np.asarray(X, np.float64) - decode(codes)) ** 2, axis=1)))


def data(seed, n_train, n_test, features="minmax"):
    """The market (windows in representation ``features``) and its training / held-out windows
    (seeds ``seed`` and ``seed + 1``)."""
    market = SyntheticMarket(seed=seed, representation=features)
    _, X = market.sample(n_train, np.random.default_rng(seed))
    _, X_te = market.sample(n_test, np.random.default_rng(seed + 1))
    return market, X, X_te


def epochs_for(steps, n, batch=BATCH):
    """Whole epochs of ``batch`` over ``n`` windows closest to ``steps`` optimisation steps (>= 1)."""
    return max(1, round(steps / -(-n // batch)))


def score_model(report, model, X_te, fit_s):
    """``report(represent)`` of ``model``'s posterior means, with recon and KL on the held-out windows."""
    mu, logvar = model.encode(X_te)
    kl = float(np.mean(np.sum(-0.5 * (1 + logvar - mu ** 2 - np.exp(logvar)), axis=1)))
    r = report(lambda W: model.encode(W)[0])
    r.update(recon=reconstruction(model.decode, mu, X_te), kl=kl, fit_seconds=fit_s)
    return r


def score_pca(report, X, X_te):
    """The same for PCA with 8 components fitted on the training windows."""
    pca = PCA(8).fit(X)
    r = report(pca.transform)
    r.update(recon=reconstruction(pca.inverse_transform, pca.transform(X_te), X_te), kl=float("nan"))
    return r


def run(betas, steps, n_train, n_test, seed, scores_rng, beta_vae, features="minmax", recon="sse"):
    market, X, X_te = data(seed, n_train, n_test, features)
    report = partial(synthetic_report, market, rng=scores_rng, beta_vae=beta_vae)
    rows = {}
    epochs = epochs_for(steps, n_train)
    for beta in betas:
        t = time.perf_counter()
        loss = bv.losses.BetaVAE(recon="gaussian", learn_sigma=True, beta=beta) if recon == "gaussian" else None
        model = bv.BetaVAE(bv.VAEConfig(n_input=X.shape[1], hidden=HIDDEN, n_latent=N_LATENT), rng=seed, loss=loss)
        bv.fit(model, X, epochs=epochs, batch_size=BATCH, loss=loss,
               schedule=bv.schedules.Linear(beta=beta, warmup=WARMUP), rng=seed)
        fit_s = time.perf_counter() - t
        r = score_model(report, model, X_te, fit_s)
        rows[f"beta={beta:g}"] = r
        _log(f"beta={beta:g}: fit {fit_s:.0f} s, metrics {sum(r['seconds'].values()):.0f} s, "
             f"MIG {r['mig']:.3f}")
    rows["PCA (8)"] = score_pca(report, X, X_te)
    settings = {"betas": list(betas), "steps": epochs * -(-n_train // BATCH), "epochs": epochs,
                "n_train": n_train, "n_test": n_test, "seed": seed, "factors": market.factor_names,
                "factors_num_values": market.factors_num_values}
    if features != "minmax":   # minmax results keep the settings they always had
        settings["features"] = features
    if recon != "sse":
        settings["recon"] = "gaussian, learned sigma per window value"
    return {"settings": settings, "rows": rows}


def markdown(result) -> str:
    head = ["model", *COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in result["rows"].items():
        cells = [name] + [("%.3f" % r[c]) if isinstance(r.get(c), float) else str(r.get(c, "")) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    s = result["settings"]
    lines.append("")
    lines.append(f"{s['n_train']} training windows, {s['steps']} steps ({s['epochs']} epochs of batch 256), "
                 f"seed {s['seed']}; recon and KL on {s['n_test']} held-out windows"
                 + (f"; inputs: {s['features']} features" if "features" in s else "")
                 + (f"; likelihood: {s['recon']}." if "recon" in s else "."))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--betas", default="0.25,0.5,1,2,4,8")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--n-train", type=int, default=20_000)
    p.add_argument("--n-test", type=int, default=5_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--features", default="minmax", choices=REPRESENTATIONS,
                   help="input representation of the windows (default minmax)")
    p.add_argument("--recon", default="sse", choices=("sse", "gaussian"),
                   help="reconstruction term: sse (default) or gaussian with a learned sigma per window value")
    p.add_argument("--beta-vae", action="store_true", help="also the BetaVAE score (2M observations per model)")
    p.add_argument("--json", dest="json_path", default=None)
    a = p.parse_args(argv)
    betas = [float(b) for b in a.betas.split(",")]
    result = run(betas, a.steps, a.n_train, a.n_test, a.seed, scores_rng=a.seed + 2, beta_vae=a.beta_vae,
                 features=a.features, recon=a.recon)
    print(markdown(result))
    if a.json_path:
        with open(a.json_path, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
