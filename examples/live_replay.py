"""Live use: replay candles one by one through the ring buffer and encode every new window.

    python examples/live_replay.py MODEL.npz [--candles 500]

This is what a trading loop does on every closed candle: ``Windower.push`` (causal normalisation
in a ring buffer, no pandas) and ``BetaVAE.encode_into`` (one compiled call, no allocation). It prints
the latent vector for the last few candles and the time per candle for both steps.
Without a MODEL it trains a small one on the bundled sample first.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import betavae_np as bv
from betavae_np.workflow import model_windower, train_on_candles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=None)
    ap.add_argument("--candles", type=int, default=500, help="how many of the latest sample candles to replay")
    args = ap.parse_args()

    df = bv.data.load_sample()
    if args.model:
        model = bv.load(args.model)
    else:
        print("no model given: training a small one on the bundled sample (10 epochs)...")
        model = train_on_candles(df.iloc[:-args.candles], epochs=10).model
    windower = model_windower(model)
    features = windower.features
    replay = df[list(features)].to_numpy(dtype=np.float64)[-(args.candles + windower.lookback):]

    mu = np.empty(model.config.n_latent, dtype=model.dtype)
    logvar = np.empty_like(mu)
    model.encode(np.zeros(model.config.n_input, dtype=model.dtype))  # compile/load kernels first
    push_ns, enc_ns, shown = [], [], 0
    for i, candle in enumerate(replay):
        t0 = time.perf_counter_ns()
        x = windower.push_array(np.ascontiguousarray(candle))
        t1 = time.perf_counter_ns()
        if x is None:
            continue
        model.encode_into(x, mu, logvar)
        t2 = time.perf_counter_ns()
        push_ns.append(t1 - t0)
        enc_ns.append(t2 - t1)
        if i >= len(replay) - 5:
            shown += 1
            print(f"candle {i:4d}  z = [" + " ".join(f"{v:+.2f}" for v in mu) + "]")
    print(f"\n{len(enc_ns)} windows: push {np.median(push_ns) / 1e3:.2f} us, encode {np.median(enc_ns) / 1e3:.2f} us "
          "per candle (median)")


if __name__ == "__main__":
    main()
