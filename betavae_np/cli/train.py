"""``betavae-np train``: candles -> windows -> beta-VAE -> a model file that carries its context."""

from __future__ import annotations

import os
import re

import click
from click.core import ParameterSource

from ..run import cli_fields
from ._common import bybit_options, emit_json, fmt, handle_errors, json_option, notice, parse_hidden, render_table
from ._progress import FetchProgress, TrainProgress


def _type(f):
    """The Click type of a TrainConfig field, from the range and choices it declares."""
    m = f.metadata
    if m["choices"] is not None:
        return click.Choice(list(m["choices"]))
    if m["integer"]:
        return click.IntRange(min=m["lo"], max=m["hi"], min_open=m["lo_open"], max_open=m["hi_open"])
    if m["lo"] is not None or m["hi"] is not None:
        return click.FloatRange(min=m["lo"], max=m["hi"], min_open=m["lo_open"], max_open=m["hi_open"])
    return None


def config_options(fn):
    """One option per TrainConfig field that the CLI exposes: name, type, default and help from the field."""
    for f in reversed(cli_fields()):
        kw = {"help": f.metadata["help"], "metavar": f.metadata["metavar"], "type": _type(f)}
        if f.name == "hidden":
            kw.update(default=",".join(map(str, f.default)) or "none", callback=parse_hidden, type=None)
        elif isinstance(f.default, bool):
            kw.update(default=f.default, is_flag=True, type=None, metavar=None)
        else:
            kw["default"] = f.default
        kw["show_default"] = f.default is not None
        fn = click.option(option_name(f.name), f.name, **kw)(fn)
    return fn


def option_name(field: str) -> str:
    """``batch_size`` -> ``--batch-size``."""
    return "--" + field.replace("_", "-")


def cli_words(message: str) -> str:
    """A library message in the words of the command line: ``batch_size=64`` -> ``--batch-size 64``."""
    names = "|".join(sorted((f.name for f in cli_fields()), key=len, reverse=True))
    message = re.sub(rf"\b({names})=(['\"]?)([^\s,;'\"]*)\2", lambda m: f"{option_name(m[1])} {m[3]}", message)
    return re.sub(r"\b(batch_size|val_fraction|early_stopping)\b", lambda m: option_name(m[1]), message)


def _bad_setting(exc, ctx) -> click.BadParameter:
    """A TrainConfig error as misuse of the option the user typed."""
    field = getattr(exc, "field", None)
    if field == "lookback" and ctx.get_parameter_source("lookback") == ParameterSource.DEFAULT:
        p = ctx.params
        return click.BadParameter(f"--window {p['window']} is longer than --lookback {p['lookback']} (its "
                                  f"default); raise --lookback to at least {p['window']} or shorten --window",
                                  param_hint="--window")
    hint = option_name(field) if field in {f.name for f in cli_fields()} else None
    return click.BadParameter(cli_words(str(exc)).rstrip("."), param_hint=hint)


@click.command(short_help="Train a beta-VAE on a symbol's candles; write the model file.")
@click.argument("symbol")
@config_options
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Model file. Default: betavae-<SYMBOL>-<interval>.npz")
@bybit_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no data/windows lines.")
@json_option
@handle_errors
def train(symbol, out, base_url, cache_dir, quiet, as_json, **settings):
    """Train a beta-VAE on SYMBOL's candles and write the model file.

    Offline, --source auto falls back to the bundled real BTC sample and says so.

    Example: betavae-np train BTCUSDT --epochs 50 --beta 2
    """
    from ..exceptions import BetaVAEError, ConfigError, ModelFileError
    from ..io import check_writable, save
    from ..run import TrainConfig, train as run_train

    ctx = click.get_current_context()
    try:
        cfg = TrainConfig(symbol=symbol, **settings)
    except ConfigError as exc:
        raise _bad_setting(exc, ctx) from None
    # a CSV's interval is known only once it is read: check the folder now, name the file then
    provisional = out or f"betavae-{symbol.upper()}-{cfg.interval or '60'}.npz"
    try:
        check_writable(provisional, "model file", error=ModelFileError)   # before any work
    except ModelFileError as exc:
        raise click.BadParameter(str(exc).rstrip("."), param_hint="--out") from None
    notices = []

    def on_notice(msg):
        notices.append(msg)
        notice(cli_words(msg))

    def close_bar(closed=[]):
        if not closed:
            closed.append(True)
            fetch_bar.close()

    def on_data(df):
        close_bar()
        if not quiet:
            click.echo(f"data: {_describe(df.attrs.get('betavae_np', {}), len(df))}", err=True)

    bars = {}

    def on_start(plan):
        bars["p"] = TrainProgress(plan["epochs"], plan["steps_per_epoch"], enabled=not quiet)
        if not quiet:
            click.echo(f"windows: {plan['windows']} ({plan['train']} train, {plan['validation']} validation), "
                       f"{_count(plan['epochs'], 'epoch')} x {_count(plan['steps_per_epoch'], 'step')}", err=True)

    fetch_bar = FetchProgress(f"fetching {symbol.upper()} {cfg.interval or '60'}", enabled=not quiet)
    try:
        result = run_train(cfg, base_url=base_url, cache_dir=cache_dir, on_notice=on_notice,
                           on_progress=fetch_bar, on_data=on_data, on_start=on_start,
                           on_batch=lambda i: bars["p"].on_batch(i), on_epoch=lambda i: bars["p"].on_epoch(i))
    except ConfigError as exc:
        raise _bad_setting(exc, ctx) from None
    except BetaVAEError as exc:
        raise click.ClickException(cli_words(str(exc))) from None
    finally:
        close_bar()
    if out is None:
        interval = (result.model.records.provenance.interval if result.model.records.provenance else None)
        out = f"betavae-{symbol.upper()}-{interval or cfg.interval or '60'}.npz"
    save(result.model, out)
    summary = _summary(result, out, notices)
    for w in summary["warnings"]:
        click.echo(f"warning: {w}", err=True)
    if as_json:
        emit_json(summary)
        return
    click.echo(_render(summary))
    click.echo(f"wrote {out}  (next: betavae-np traverse {out})")


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


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
    rec = result.model.records
    h = result.history
    stats = rec.latent_stats
    last = -1
    return {
        "model": os.path.abspath(out),
        "data": rec.provenance.to_dict(),
        "split": rec.split.to_dict(),
        "training": rec.run.summary(),
        "train": {"total": h.train_total[last], "recon": h.train_recon[last], "kl": h.train_kl[last]},
        "validation": (None if not h.val_total or h.val_total[last] is None else
                       {"total": h.val_total[last], "recon": h.val_recon[last], "kl": h.val_kl[last]}),
        "kl_per_dim": stats.kl,
        "mu_sd": stats.sd,
        "active": stats.active,
        "active_dims": stats.n_active,
        "notices": notices,
        "warnings": [cli_words(w) for w in result.warnings],
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
