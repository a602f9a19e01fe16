"""Time one training step (forward + backward + Adam) of two checkouts side by side.

    python bench/compare_step.py --base /path/to/old/checkout [--rounds 7] [--steps 400]

Each round runs one subprocess per checkout (alternating, so a shared machine's load hits both
alike) that times ``steps`` steps of the standard workload (n_input 160, hidden (128, 64),
latent 8, relu, float32, Adam) at batch 256 and 32 after a warm-up, and prints microseconds per
step. The medians over rounds and their ratio (this checkout / base) are printed with the
hardware. ``--tcvae`` also times this checkout's beta-TCVAE step (MWS) against its beta-VAE step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

_CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import numpy as np, betavae_np as bv
assert bv.__file__.startswith({root!r}), bv.__file__
out = {{}}
X = np.random.default_rng(0).random((4096, 160)).astype(np.float32)
for B in {batches!r}:
    for kind in {kinds!r}:
        model = bv.BetaVAE(bv.VAEConfig(n_input=160, hidden=(128, 64), n_latent=8), rng=0)
        if kind == "betavae":
            ws = model.workspace(B)
        else:
            ws = model.workspace(B, loss=bv.losses.TCVAE(estimator="mws", dataset_size=4096))
        opt = bv.Adam(1e-3)
        eps = np.random.default_rng(1).standard_normal((4096, 8)).astype(np.float32)
        n = 4096 // B
        def run(steps):
            for s in range(steps):
                i = (s % n) * B
                model.forward_train(ws, X[i:i + B], eps[i:i + B])
                model.backward_train(ws, 4.0)
                opt.step(model.params, model.grads)
        run(50)
        t0 = time.perf_counter()
        run({steps})
        out[f"{{kind}}/{{B}}"] = (time.perf_counter() - t0) / {steps} * 1e6
print(json.dumps(out))
"""


def _run(root: str, steps: int, kinds, batches) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env.setdefault(var, "2")
    code = _CHILD.format(root=root, steps=steps, kinds=list(kinds), batches=list(batches))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="root of the other checkout (holds betavae_np/)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--tcvae", action="store_true", help="also time the beta-TCVAE step")
    args = ap.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from conftest import hardware_info

    new_kinds = ("betavae", "tcvae") if args.tcvae else ("betavae",)
    runs = {"base": [], "new": []}
    for _ in range(args.rounds):
        runs["base"].append(_run(os.path.abspath(args.base), args.steps, ("betavae",), (256, 32)))
        runs["new"].append(_run(here, args.steps, new_kinds, (256, 32)))
    print("hardware:", json.dumps(hardware_info()))
    med = {k: {key: statistics.median(r[key] for r in v) for key in v[0]} for k, v in runs.items()}
    for key in ("betavae/256", "betavae/32"):
        b, n = med["base"][key], med["new"][key]
        print(f"{key:12s} base {b:8.1f} us  new {n:8.1f} us  new/base {n / b:.3f}  "
              f"(rounds: base {[round(r[key]) for r in runs['base']]}, "
              f"new {[round(r[key]) for r in runs['new']]})")
    if args.tcvae:
        for B in (256, 32):
            t, v = med["new"][f"tcvae/{B}"], med["new"][f"betavae/{B}"]
            print(f"tcvae/{B:<6d} {t:8.1f} us  betavae {v:8.1f} us  tcvae/betavae {t / v:.3f}")


if __name__ == "__main__":
    main()
