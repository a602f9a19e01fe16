"""betavae-np vs PyTorch eager on the standard workload, both measured in this one run.

Usage: ``python bench/compare_torch.py [--windows 65536] [--rounds 3]`` (exits 0 with a message
when torch is not installed).

Workload: windows 32x5 (n_input 160), hidden (128, 64), latent 8, relu, beta 4, Adam(1e-3),
float32, 2 threads, batch 256 and 32; one epoch over the windows per round, shuffled each epoch,
fresh N(0, 1) noise every step. betavae-np is timed through the real ``bv.fit`` (JIT warmed
first); torch through the equivalent eager loop (randperm, index, randn, forward, backward,
``optimizer.step``, ``zero_grad``), with its default Adam and, when available, fused Adam. Rounds
interleave the sides and each side's best round is reported (the machine may be shared). Encode: one (160,) window, torch under
``no_grad`` vs ``model.encode(x)`` and the zero-allocation ``model.encode_into``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# numpy's OpenBLAS is capped at 2 threads in main() rather than through OPENBLAS_NUM_THREADS /
# OMP_NUM_THREADS: fit() treats those as the user's choice and would not pick its own count
os.environ.setdefault("MKL_NUM_THREADS", "2")
os.environ.setdefault("NUMBA_NUM_THREADS", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from conftest import hardware_info  # noqa: E402

N_INPUT, HIDDEN, LATENT, BETA, LR = 160, (128, 64), 8, 4.0, 1e-3


def synthetic_windows(n: int, seed: int = 0) -> np.ndarray:
    """Random-walk 'candles' min-max scaled per window: (n, 160) float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(size=(n, N_INPUT)), axis=1)
    lo, hi = walk.min(1, keepdims=True), walk.max(1, keepdims=True)
    return ((walk - lo) / (hi - lo)).astype(np.float32)


def torch_model(torch):
    nn = torch.nn

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Linear(N_INPUT, HIDDEN[0]), nn.ReLU(),
                                     nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU())
            self.heads = nn.Linear(HIDDEN[1], 2 * LATENT)
            self.dec = nn.Sequential(nn.Linear(LATENT, HIDDEN[1]), nn.ReLU(),
                                     nn.Linear(HIDDEN[1], HIDDEN[0]), nn.ReLU(),
                                     nn.Linear(HIDDEN[0], N_INPUT))

        def encode(self, x):
            mu, logvar = self.heads(self.enc(x)).chunk(2, dim=-1)
            return mu, logvar

        def loss(self, x, eps):
            mu, logvar = self.encode(x)
            z = mu + torch.exp(0.5 * logvar) * eps
            x_hat = self.dec(z)
            recon = ((x - x_hat) ** 2).sum(1).mean()
            kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)).mean()
            return recon + BETA * kl

    return VAE()


def torch_epoch(torch, model, opt, X, batch):
    n = X.shape[0]
    perm = torch.randperm(n)
    for lo in range(0, n, batch):
        xb = X[perm[lo:lo + batch]]
        eps = torch.randn(xb.shape[0], LATENT)
        loss = model.loss(xb, eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def best_rate(fn, n, rounds):
    best = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = max(best, n / (time.perf_counter() - t))
    return best


def best_us(fn, calls=2000, rounds=5):
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t) / calls * 1e6)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", type=int, default=65536)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to compare against (pip install torch to run this).")
        return 0
    import betavae_np as bv
    from betavae_np._blas import blas_threads

    with blas_threads(2):         # at most 2 BLAS threads for numpy, like torch below
        return _compare(args, torch, bv)


def _compare(args, torch, bv) -> int:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    X = synthetic_windows(args.windows)
    Xt = torch.from_numpy(X)
    n = X.shape[0]
    cfg = bv.VAEConfig(n_input=N_INPUT, hidden=HIDDEN, n_latent=LATENT, activation="relu",
                       dtype="float32")
    schedule = bv.schedules.Constant(BETA)
    rows = []
    for batch in (256, 32):
        model = bv.BetaVAE(cfg, rng=0)
        bv.fit(model, X[:4 * batch], epochs=1, batch_size=batch, schedule=schedule, rng=0)  # JIT
        gen = np.random.default_rng(1)
        sides = {"ours": lambda: bv.fit(model, X, epochs=1, batch_size=batch, optimizer=bv.Adam(LR),
                                        schedule=schedule, rng=gen)}
        for name, kw in (("adam", {}), ("adam fused", {"fused": True})):
            tm = torch_model(torch)
            try:
                opt = torch.optim.Adam(tm.parameters(), lr=LR, **kw)
                torch_epoch(torch, tm, opt, Xt[:4 * batch], batch)  # warm-up
            except (RuntimeError, TypeError) as exc:
                print(f"torch {name} unavailable: {exc}", file=sys.stderr)
                continue
            sides[name] = (lambda tm=tm, opt=opt: torch_epoch(torch, tm, opt, Xt, batch))
        # rounds interleave the sides so that load from other processes hits them alike
        rates = {name: 0.0 for name in sides}
        for _ in range(args.rounds):
            for name, fn in sides.items():
                rates[name] = max(rates[name], best_rate(fn, n, 1))
        ours = rates.pop("ours")
        best_name = max(rates, key=rates.get)
        rows.append((batch, ours, rates, best_name))

    # single-window encode
    model = bv.BetaVAE(cfg, rng=0)
    x = X[0].copy()
    mu_out, lv_out = np.empty(LATENT, np.float32), np.empty(LATENT, np.float32)
    model.encode(x)
    model.encode_into(x, mu_out, lv_out)
    ours_enc = best_us(lambda: model.encode(x))
    ours_into = best_us(lambda: model.encode_into(x, mu_out, lv_out))
    tm = torch_model(torch).eval()
    xt = torch.from_numpy(x)

    def t_encode():
        with torch.no_grad():
            return tm.encode(xt)

    t_encode()
    torch_enc = best_us(t_encode)

    print("hardware:")
    for k, v in hardware_info().items():
        print(f"  {k:15s} {v}")
    print(f"\nworkload: {n} windows x {N_INPUT}, hidden {HIDDEN}, latent {LATENT}, relu, beta {BETA}, "
          f"Adam({LR}), float32, best of {args.rounds} epochs\n")
    print(f"{'batch':>5}  {'betavae-np fit':>16}  {'torch adam':>12}  {'torch fused':>12}  "
          f"{'ratio vs best torch':>20}")
    for batch, ours, theirs, best_name in rows:
        ratio = ours / theirs[best_name]
        print(f"{batch:>5}  {ours:>12,.0f} /s  {theirs.get('adam', float('nan')):>10,.0f}/s  "
              f"{theirs.get('adam fused', float('nan')):>10,.0f}/s  {ratio:>9.2f}x ({best_name})")
    print(f"\nsingle-window encode (160,): betavae-np encode {ours_enc:.2f} us, encode_into "
          f"{ours_into:.2f} us, torch eager no_grad {torch_enc:.2f} us -> "
          f"{torch_enc / ours_enc:.1f}x / {torch_enc / ours_into:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
