"""``betavae-np train``: candles -> windows -> beta-VAE -> a model file that carries its context."""

from __future__ import annotations

import os

import click

from ._common import (bybit_options, emit_json, fmt, handle_errors, json_option, notice, parse_hidden,
                      render_table, source_options)
from ._progress import FetchProgress, TrainProgress


@click.command(short_help="Train a beta-VAE on a symbol's candles; write the model file.")
@click.argument("symbol")
@source_options("auto")
@click.option("--interval", default="60", show_default=True, help="Candle interval (Bybit code or alias: 60, 1h, 4h, D).")
@click.option("--category", type=click.Choice(["linear", "spot", "inverse"]), default="linear", show_default=True)
@click.option("--start", default=None, help="First candle (UTC). Default: 20,000 candles back (Bybit).")
@click.option("--end", default=None, help="Last candle (UTC). Default: now.")
@click.option("--window", type=click.IntRange(min=2), default=32, show_default=True, help="Candles per window.")
@click.option("--lookback", type=click.IntRange(min=2), default=128, show_default=True,
              help="Candles behind the causal min-max scale of each window (>= window).")
@click.option("--latent", type=click.IntRange(min=1), default=8, show_default=True, help="Latent dimensions.")
@click.option("--hidden", default="128,64", show_default=True, callback=parse_hidden,
              help="Encoder hidden sizes (the decoder mirrors them); 'none' for no hidden layer.")
@click.option("--activation", type=click.Choice(["relu", "tanh", "elu", "leaky_relu"]), default="relu",
              show_default=True)
@click.option("--beta", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="KL weight (gamma for capacity); see the README on its scale.")
@click.option("--anneal", type=click.Choice(["constant", "linear", "cyclical", "warmup", "capacity"]),
              default="linear", show_default=True, help="Beta schedule, evaluated every optimisation step.")
@click.option("--warmup", type=click.FloatRange(0, 1), default=0.2, show_default=True,
              help="Fraction of training spent warming beta up.")
@click.option("--cycles", type=click.IntRange(min=1), default=4, show_default=True,
              help="Cycles of the cyclical schedule.")
@click.option("--capacity", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Final KL capacity C in nats for --anneal capacity (then --beta is gamma).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Passes over the training windows. Default: about 12,000 steps (12-20 s on 2 cores).")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True,
              help="Latest share of windows held out for validation (never shuffled into training).")
@click.option("--early-stopping", type=click.IntRange(min=1), default=None, metavar="EPOCHS",
              help="Stop when validation loss has not improved for this many epochs; keep the best.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Model file. Default: betavae-<SYMBOL>-<interval>.npz")
@bybit_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@json_option
@handle_errors
def train(symbol, source, interval, category, start, end, window, lookback, latent, hidden, activation, beta,
          anneal, warmup, cycles, capacity, epochs, batch_size, lr, val_fraction, early_stopping, seed, out, base_url, cache_dir,
          quiet, as_json):
    """Train a beta-VAE on SYMBOL's candles and write the model file.

    Offline, --source auto falls back to the bundled real BTC sample and says so.

    Example: betavae-np train BTCUSDT --epochs 50 --beta 2
    """
    from ..data.intervals import normalize_interval
    from ..io import save
    from ..workflow import load_candles, train_on_candles

    interval = normalize_interval(interval)
    out = out or f"betavae-{symbol.upper()}-{interval}.npz"
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise click.BadParameter(f"folder {folder} does not exist", param_hint="--out")
    if lookback < window:
        raise click.BadParameter(f"lookback {lookback} is shorter than the window {window}", param_hint="--lookback")
    notices = []

    def on_notice(msg):
        notices.append(msg)
        notice(msg)

    fetch_bar = FetchProgress(f"fetching {symbol.upper()} {interval}", enabled=not quiet)
    try:
        df = load_candles(symbol, source=source, interval=interval, start=start, end=end, category=category,
                          base_url=base_url, cache_dir=cache_dir, on_notice=on_notice, on_progress=fetch_bar)
    finally:
        fetch_bar.close()
    prov = df.attrs.get("betavae_np", {})
    if not as_json or not quiet:
        click.echo(f"data: {_describe(prov, len(df))}", err=True)

    bars = {}

    def on_start(plan):
        bars["p"] = TrainProgress(plan["epochs"], plan["steps_per_epoch"], enabled=not quiet)
        click.echo(f"windows: {plan['windows']} ({plan['train']} train, {plan['validation']} validation), "
                   f"{plan['epochs']} epochs x {plan['steps_per_epoch']} steps", err=True)

    result = train_on_candles(df, window=window, lookback=lookback, latent=latent, hidden=hidden,
                              activation=activation, beta=beta, anneal=anneal, warmup=warmup, cycles=cycles,
                              capacity=capacity, epochs=epochs,
                              batch_size=batch_size, lr=lr, seed=seed, val_fraction=val_fraction,
                              early_stopping=early_stopping, on_start=on_start,
                              on_batch=lambda i: bars["p"].on_batch(i), on_epoch=lambda i: bars["p"].on_epoch(i))
    save(result.model, out)
    summary = _summary(result, out, notices)
    if as_json:
        emit_json(summary)
        return
    click.echo(_render(summary))
    click.echo(f"wrote {out}  (next: betavae-np traverse {out})")


def _describe(prov: dict, rows: int) -> str:
    """The ``data:`` line: source, symbol, interval, the candles' own range, and their gaps."""
    src = prov.get("source", "?")
    what = {"sample": "bundled sample", "bybit": "Bybit", "bybit-cache": "Bybit (cache)", "csv": "CSV"}.get(src, src)
    name = prov.get("pair") or prov.get("symbol") or "?"
    exchange = prov.get("exchange")
    where = f" {exchange}" if exchange and exchange.lower() not in what.lower() else ""
    inferred = " (inferred)" if prov.get("interval_inferred") else ""
    gaps = prov.get("gaps") or []
    if gaps:
        big = max(gaps, key=lambda g: g.get("missing", 0))
        missing = prov.get("missing_candles", sum(g.get("missing", 0) for g in gaps))
        gap_text = (f"{len(gaps)} gap{'s' if len(gaps) != 1 else ''} ({missing} missing candles; largest "
                    f"{big['missing']} from {str(big['start'])[:16]} to {str(big['end'])[:16]})")
    else:
        gap_text = "no gaps"
    return (f"{what}{where} {name} interval {prov.get('interval', '?')}{inferred}, {rows} candles "
            f"{str(prov.get('start', '?'))[:16]} .. {str(prov.get('end', '?'))[:16]}, {gap_text}")


def _summary(result, out, notices) -> dict:
    meta = result.model.metadata
    h = result.history
    stats = meta["latent_stats"]
    last = -1
    return {
        "model": os.path.abspath(out),
        "data": meta["data"],
        "split": meta["split"],
        "training": meta["training"],
        "train": {"total": h.train_total[last], "recon": h.train_recon[last], "kl": h.train_kl[last]},
        "validation": (None if not h.val_total or h.val_total[last] is None else
                       {"total": h.val_total[last], "recon": h.val_recon[last], "kl": h.val_kl[last]}),
        "kl_per_dim": stats["kl"],
        "mu_sd": stats["sd"],
        "active": stats["active"],
        "active_dims": int(sum(stats["active"])),
        "notices": notices,
    }


def _render(s: dict) -> str:
    rows = [["train", fmt(s["train"]["recon"]), fmt(s["train"]["kl"]), fmt(s["train"]["total"])]]
    if s["validation"]:
        v = s["validation"]
        rows.append(["validation", fmt(v["recon"]), fmt(v["kl"]), fmt(v["total"])])
    part1 = render_table(["", "recon", "KL", "loss"], rows, title="\nlosses (per window, last epoch):")
    dims = [[j, fmt(kl), fmt(sd), "yes" if act else "no (collapsed)"]
            for j, (kl, sd, act) in enumerate(zip(s["kl_per_dim"], s["mu_sd"], s["active"]))]
    part2 = render_table(["dim", "KL (nats)", "sd of mu", "active"], dims, title="\nlatent dimensions (training data):")
    t = s["training"]
    foot = (f"\nactive dimensions: {s['active_dims']} of {len(s['active'])}   "
            f"epochs {t['epochs_run']}/{t['epochs']}, {t['seconds']:.1f}s")
    return part1 + "\n" + part2 + foot
