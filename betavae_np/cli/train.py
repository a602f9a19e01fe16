"""``betavae-np train``: candles -> windows -> beta-VAE -> a model file that carries its context."""

from __future__ import annotations

import os
import re

import click
from click.core import ParameterSource

from ..train_config import cli_fields
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


def field_option(f):
    """The Click option of one TrainConfig field: name, type, default and help from the field."""
    kw = {"help": f.metadata["help"], "metavar": f.metadata["metavar"], "type": _type(f)}
    if f.name == "hidden":
        kw.update(default=",".join(map(str, f.default)) or "none", callback=parse_hidden, type=None)
    elif isinstance(f.default, bool):
        kw.update(default=f.default, is_flag=True, type=None, metavar=None)
    elif f.metadata.get("flag_off"):
        kw.update(default=None, type=None, metavar=None)
        kw["show_default"] = False
        return click.option(f"{option_name(f.name)}/{f.metadata['flag_off']}", f.name, **kw)
    else:
        kw["default"] = f.default
    kw["show_default"] = f.default is not None
    return click.option(option_name(f.name), f.name, **kw)


def config_options(fn):
    """One option per TrainConfig field that the CLI exposes."""
    for f in reversed(cli_fields()):
        fn = field_option(f)(fn)
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


@click.command(short_help="Train a beta-VAE on a symbol's (or many symbols') candles; write the model file.")
@click.argument("symbol", required=False)
@config_options
@click.option("--symbols-file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Train on the symbols listed in FILE (one per line; # starts a comment).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Model file. Default: betavae-<SYMBOL>-<interval>.npz (betavae-universe-<interval>.npz "
                   "for many symbols)")
@bybit_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no data/windows lines.")
@json_option
@handle_errors
def train(symbol, symbols_file, out, base_url, cache_dir, quiet, as_json, **settings):
    """Train a beta-VAE on SYMBOL's candles and write the model file.

    Offline, --source auto falls back to the bundled real BTC sample and says so. With --symbols,
    --symbols-file or a --source directory of <SYMBOL>_<interval>.csv files, one model is trained
    on the windows of all the symbols (each windowed and normalised on its own; validation is the
    same latest calendar period for every symbol).
    With --source synthetic there is no SYMBOL: the candles come from the synthetic market with
    known factors (seeded by --seed), and evaluate then reports the supervised disentanglement metrics.

    Examples: betavae-np train BTCUSDT --epochs 50 --beta 2;
    betavae-np train --source ../shared/data/bybit_perp_1h/ --out univ.npz
    """
    from ..exceptions import BetaVAEError, ConfigError, ModelFileError
    from ..io import check_writable, save
    from ..run import train as run_train
    from ..train_config import TrainConfig

    ctx = click.get_current_context()
    if settings.get("source") == "synthetic":
        if symbol is not None:
            raise click.UsageError(f"--source synthetic generates its own candles; leave out SYMBOL ({symbol}).")
        if settings.get("symbols") or symbols_file:
            raise click.UsageError("--source synthetic generates its own candles; leave out --symbols.")
        symbol = "SYNTH"
    else:
        settings["symbols"] = _universe_symbols(symbol, symbols_file, settings.get("symbols"), settings["source"])
        if symbol is None and settings["symbols"] is None and not os.path.isdir(settings["source"]):
            if settings["source"] not in ("auto", "bybit", "sample") and not os.path.exists(settings["source"]):
                raise click.BadParameter(f"{settings['source']} does not exist", param_hint="--source")
            raise click.UsageError("name a SYMBOL, or many with --symbols / --symbols-file, or give a --source "
                                   "directory of candle CSV files")
    try:
        cfg = TrainConfig(symbol=symbol or "BTCUSDT", **settings)
    except ConfigError as exc:
        raise _bad_setting(exc, ctx) from None
    universe = cfg.is_universe
    # a CSV's interval is known only once it is read: check the folder now, name the file then
    provisional = out or (f"betavae-universe-{cfg.interval or '60'}.npz" if universe
                          else f"betavae-{symbol.upper()}-{cfg.interval or '60'}.npz")
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
            text = (_describe_universe(df) if universe else _describe(df.attrs.get('betavae_np', {}), len(df)))
            click.echo(f"data: {text}", err=True)

    bars = {}

    def on_start(plan):
        bars["p"] = TrainProgress(plan["epochs"], plan["steps_per_epoch"], enabled=not quiet)
        if not quiet:
            click.echo(f"windows: {plan['windows']} ({plan['train']} train, {plan['validation']} validation), "
                       f"{_count(plan['epochs'], 'epoch')} x {_count(plan['steps_per_epoch'], 'step')}", err=True)

    if universe:
        fetch_bar = _SymbolProgress(quiet or not cfg.symbols or cfg.source not in ("auto", "bybit"))
    else:
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
        name = "universe" if universe else symbol.upper()
        out = f"betavae-{name}-{interval or cfg.interval or '60'}.npz"
    save(result.model, out)
    summary = _summary(result, out, notices)
    for w in summary["warnings"]:
        click.echo(f"warning: {w}", err=True)
    if as_json:
        emit_json(summary)
        return
    click.echo(_render(summary))
    click.echo(f"wrote {out}  (next: betavae-np traverse {out})")


def _universe_symbols(symbol, symbols_file, symbols, source):
    """The symbols to train on: --symbols, or --symbols-file's lines; SYMBOL with a directory picks one file."""
    if symbols_file is not None:
        if symbols is not None:
            raise click.UsageError("give the symbols once: --symbols or --symbols-file, not both")
        try:
            with open(symbols_file, encoding="utf-8") as fh:
                lines = [ln.split("#", 1)[0].strip() for ln in fh]
        except OSError as exc:
            raise click.BadParameter(f"cannot read {symbols_file} ({exc.strerror or exc})",
                                     param_hint="--symbols-file") from None
        symbols = ",".join(ln for ln in lines if ln)
        if not symbols:
            raise click.BadParameter(f"{symbols_file} lists no symbol", param_hint="--symbols-file")
    if symbol is not None and symbols is not None:
        raise click.UsageError("give either a SYMBOL or --symbols/--symbols-file, not both")
    if symbol is not None and os.path.isdir(source):
        return symbol
    return symbols


class _SymbolProgress:
    """Fetch progress of many symbols: one line per symbol as it completes (stderr)."""

    def __init__(self, quiet: bool):
        self.quiet, self.done = quiet, set()

    def __call__(self, symbol, fetched, expected):
        if not self.quiet and fetched >= expected and symbol not in self.done:
            self.done.add(symbol)
            click.echo(f"fetched {symbol}: {fetched} candles", err=True)

    def close(self):
        pass


def _describe_universe(uni) -> str:
    """The ``data:`` line of a universe: symbols, interval, candles, overall range, gaps, skipped."""
    prov = uni.provenance.values()
    starts = [p["start"] for p in prov if p.get("start")]
    ends = [p["end"] for p in prov if p.get("end")]
    missing = sum(int(p.get("missing_candles", 0)) for p in prov)
    gappy = sum(1 for p in prov if p.get("gaps"))
    gaps = f"{missing} missing candles in {gappy} symbol(s)" if missing else "no gaps"
    return (f"{len(uni)} symbols ({', '.join(uni.symbols[:5])}{', ...' if len(uni) > 5 else ''}) from "
            f"{uni.source}, interval {uni.interval}, {uni.n_candles} candles {min(starts)[:16]} .. "
            f"{max(ends)[:16]}, {gaps}" + (f"; {len(uni.skipped)} skipped" if uni.skipped else ""))


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
        **({"universe": {"symbols": list(rec.universe.symbols), "weighting": rec.universe.weighting,
                         "cutoff": rec.universe.cutoff, "windows": rec.universe.windows,
                         "skipped": rec.universe.skipped}} if rec.universe is not None else {}),
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
    if s.get("universe"):
        u = s["universe"]
        foot0 = (f"\nuniverse: {len(u['symbols'])} symbols, {u['weighting']} weighting, validation from "
                 f"{str(u['cutoff'] or 'none')[:16]} for every symbol")
    else:
        foot0 = ""
    foot = foot0 + (f"\nactive dimensions: {s['active_dims']} of {len(s['active'])}   "
            f"epochs {t['epochs_run']}/{t['epochs']}, {t['seconds']:.1f}s")
    return part1 + "\n" + part2 + foot
