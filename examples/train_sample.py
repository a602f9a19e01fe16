"""Train on the bundled real BTC sample and print what each latent dimension means.

    python examples/train_sample.py [--epochs 40]

Runs offline in well under a minute on 2 cores; the same as ``betavae-np train BTCUSDT --source sample``
followed by ``betavae-np traverse``, written as library calls.
"""

from __future__ import annotations

import argparse

import betavae_np as bv
from betavae_np.workflow import reference_window, train_on_candles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--beta", type=float, default=0.5)
    ap.add_argument("--out", default="sample-model.npz")
    args = ap.parse_args()

    df = bv.data.load_sample()
    info = df.attrs["betavae_np"]
    print(f"data: {info['exchange']} {info['pair']} 1h, {len(df)} candles {info['start'][:10]} .. {info['end'][:10]}")

    result = train_on_candles(df, epochs=args.epochs, beta=args.beta, seed=0,
                              on_epoch=lambda e: print(f"  epoch {e.epoch + 1:3d}  loss {e.loss:8.3f}  "
                                                       f"val {e.val_loss:8.3f}  beta {e.beta:.3f}")
                              if (e.epoch + 1) % 10 == 0 else None)
    bv.save(result.model, args.out)

    x, end_time = reference_window(result.model)
    interp = bv.interpret(result.model, x)
    print(f"\nlatest window ends {end_time}; effect of moving each dimension -3..+3 sd "
          "(in training sd of each measure):")
    print(f"{'dim':>3} {'KL':>6} " + " ".join(f"{m:>10}" for m in interp.measures) + "  meaning")
    for r in interp.readings:
        kl = f"{r.kl:6.3f}" if r.kl is not None else "     -"
        print(f"{r.dim:>3} {kl} " + " ".join(f"{r.effects[m]:>+10.2f}" for m in interp.measures) + f"  {r.label}")
    print(f"\nmodel written to {args.out}")


if __name__ == "__main__":
    main()
