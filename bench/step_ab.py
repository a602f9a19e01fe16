"""A/B timing of the training step in ONE process, alternating blocks of steps.

    python bench/step_ab.py --base /path/to/old/checkout [--blocks 60] [--steps 20] [--threads 2]
    python bench/step_ab.py --tcvae [--threads 1|2]          # beta-TCVAE step vs beta-VAE step

With ``--base`` the other checkout's package is copied to a temporary directory as
``betavae_np_base`` (the package imports itself only relatively), so both run in the same
process, on the same data, with the same BLAS; blocks of ``steps`` steps (forward + backward +
Adam, standard workload: n_input 160, hidden (128, 64), latent 8, relu, float32) alternate
between them, and the median block time per step of each and their ratio are printed.
Alternating blocks within one process makes a shared machine's load hit both alike.
``--tcvae`` also times this checkout's beta-TCVAE step (MWS, dataset size 4096, TC weight 4, the
weight every step passes, as ``fit`` sets it before each forward) and prints its ratio to this
checkout's beta-VAE step; with ``--base`` too, the other checkout's TC-VAE step is timed
alongside (its ratio to its own beta-VAE step, and new/base of the two TC-VAE steps).

``--threads`` is Numba's thread count (the chunks of a split batch and the TC-VAE stage's row
blocks); BLAS runs on one thread during the timed steps, as :func:`betavae_np.fit` runs it with
the compiled engine (BLAS's own threads inside the parallel chunks would oversubscribe the
cores). ``--clock cpu`` times by process CPU time: on a shared machine with ``--threads 1`` it
leaves out the time the process waited for a core.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", help="root of the other checkout (holds betavae_np/)")
    ap.add_argument("--blocks", type=int, default=60)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="256,32")
    ap.add_argument("--tcvae", action="store_true")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: the process's CPU time (with --threads 1 it ignores time spent "
                         "descheduled on a busy machine; with more threads it counts spinning)")
    args = ap.parse_args()
    if args.base is None and not args.tcvae:
        ap.error("give --base (A/B against another checkout) and/or --tcvae")
    os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:0] = [here, os.path.dirname(os.path.abspath(__file__))]
    old = None
    if args.base is not None:
        tmp = tempfile.mkdtemp()
        shutil.copytree(os.path.join(args.base, "betavae_np"), os.path.join(tmp, "betavae_np_base"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        sys.path.insert(1, tmp)
        import betavae_np_base as old
    import numpy as np
    from conftest import hardware_info

    import betavae_np as new
    from betavae_np._blas import blas_threads

    X = np.random.default_rng(0).random((4096, 160)).astype(np.float32)
    E = np.random.default_rng(1).standard_normal((4096, 8)).astype(np.float32)

    def stepper(bv, B, loss=None):
        model = bv.BetaVAE(bv.VAEConfig(n_input=160, hidden=(128, 64), n_latent=8), rng=0)
        ws = model.workspace(B) if loss is None else model.workspace(B, loss=loss)
        opt = bv.Adam(1e-3)
        fwd, bwd, step = model.forward_train, model.backward_train, opt.step
        params, grads = model.params, model.grads
        n = 4096 // B
        state = [0]

        def run(k):
            s0 = state[0]
            for s in range(s0, s0 + k):
                i = (s % n) * B
                fwd(ws, X[i:i + B], E[i:i + B])
                bwd(ws, 4.0)
                step(params, grads)
            state[0] = s0 + k
        run(10)                                   # compile / load the cache
        return run

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print("hardware:", hardware_info(), "numba threads:", args.threads, "blas threads: 1",
          "clock:", args.clock, "load:", os.getloadavg())
    with blas_threads(1):                         # as fit() runs the compiled engine
        for B in (int(b) for b in args.batches.split(",")):
            runs = {"new": stepper(new, B)}
            if old is not None:
                runs["base"] = stepper(old, B)
            if args.tcvae:
                runs["tcvae"] = stepper(new, B, new.losses.TCVAE(beta=4.0, estimator="mws",
                                                                  dataset_size=4096))
                if old is not None:
                    runs["tcvae_base"] = stepper(old, B, old.losses.TCVAE(
                        beta=4.0, estimator="mws", dataset_size=4096))
            times = {k: [] for k in runs}
            for _ in range(args.blocks):
                for k, run in runs.items():
                    t0 = clock()
                    run(args.steps)
                    times[k].append((clock() - t0) / args.steps * 1e6)
            med = {k: statistics.median(v) for k, v in times.items()}
            line = f"batch {B:4d}: new {med['new']:8.1f} us/step"
            if old is not None:
                line += f"  base {med['base']:8.1f} us/step  new/base {med['new'] / med['base']:.3f}"
            if args.tcvae:
                # per block pair, so a load change between blocks hits both sides of a ratio
                pair = statistics.median(t / b for t, b in zip(times["tcvae"], times["new"]))
                line += (f"  tcvae {med['tcvae']:8.1f} us/step  tcvae/new {med['tcvae'] / med['new']:.2f}"
                         f" (median of block pairs {pair:.2f})")
            if args.tcvae and old is not None:
                pair = statistics.median(t / b for t, b in zip(times["tcvae_base"], times["base"]))
                line += (f"\n            base tcvae {med['tcvae_base']:8.1f} us/step  tcvae/base "
                         f"{med['tcvae_base'] / med['base']:.2f} (median of block pairs {pair:.2f})"
                         f"  tcvae new/base {med['tcvae'] / med['tcvae_base']:.3f}")
            print(line, flush=True)
    print("load after:", os.getloadavg())


if __name__ == "__main__":
    main()
