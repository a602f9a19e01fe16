"""``betavae-np fetch``: every Bybit candle of a range, of one symbol or many, through the cache."""

from __future__ import annotations

import os

import click

from ._common import (atomic_path, bybit_options, emit_json, handle_errors, json_option, notice, render_table,
                      retry_notice)
from ._progress import FetchProgress


@click.command(short_help="Fetch Bybit candles of one or many symbols (paged, paced, cached).")
@click.argument("symbols", nargs=-1, metavar="[SYMBOL]...")
@click.option("--symbols-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Fetch the symbols listed in this file: one per line, '#' starts a comment.")
@click.option("--top", type=click.IntRange(min=1), default=None, metavar="N",
              help="Fetch the N symbols of --category with the largest 24h turnover (USDT-quoted for "
                   "linear and spot, USD for inverse).")
@click.option("--interval", default="60", show_default=True,
              help="Bybit interval: 1 3 5 15 30 60 120 240 360 720 D W M, or 1m 5m 1h 4h 1d 1w...")
@click.option("--category", type=click.Choice(["linear", "spot", "inverse"]), default="linear", show_default=True)
@click.option("--start", default=None, help="First candle open time (UTC date/time or ms). Default: 1000 candles back.")
@click.option("--end", default=None, help="Last candle open time (UTC). Default: now.")
@bybit_options
@click.option("--out", type=click.Path(), default=None,
              help="One symbol: write its candles to this CSV file. Several: a directory (created if "
                   "needed) receiving one <SYMBOL>_<interval>.csv per symbol.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the candle cache.")
@click.option("--include-open", is_flag=True, help="Keep the newest, still-open candle.")
@json_option
@handle_errors
def fetch(symbols, symbols_file, top, interval, category, start, end, base_url, cache_dir, out, no_cache,
          include_open, as_json):
    """Fetch candles from Bybit's v5 kline endpoint (paged, paced, retried, cached).

    \b
    One symbol:   betavae-np fetch BTCUSDT --interval 1h --start 2024-01-01 --out btc.csv
    Several:      betavae-np fetch BTCUSDT ETHUSDT SOLUSDT --start 2024-01-01 --out candles/
    From a file:  betavae-np fetch --symbols-file universe.txt --out candles/
    Most traded:  betavae-np fetch --top 20 --start 2024-01-01 --out candles/

    Several symbols are fetched concurrently through one connection pool and one request pacer
    (Bybit's IP limit is never approached), each through the cache; a line per symbol reports it
    as it completes, then a table sums them up. A symbol that fails (unknown, delisted, no candles
    in the range) is reported and the others still complete; the exit code is then 1 (0 when
    every symbol was fetched).
    """
    if len(symbols) == 1 and symbols_file is None and top is None:
        if out is not None and os.path.isdir(out):
            raise click.BadParameter(f"File {out!r} is a directory.", param_hint="'--out'")
        return _fetch_one(symbols[0], interval, category, start, end, base_url, cache_dir, out, no_cache,
                          include_open, as_json)
    names = list(symbols)
    if symbols_file is not None:
        names += _read_symbols_file(symbols_file)
    if top is not None and names:
        raise click.UsageError("--top picks the symbols itself; give SYMBOL..., --symbols-file or --top, "
                               "not several")
    if top is None and not names:
        raise click.UsageError("give a SYMBOL, several, --symbols-file FILE or --top N")
    if out is not None and os.path.exists(out) and not os.path.isdir(out):
        raise click.UsageError(f"--out {out} is a file; with several symbols --out names a directory")
    _fetch_many(names, top, interval, category, start, end, base_url, cache_dir, out, no_cache, include_open,
                as_json)


def _to_utc(value, name: str):
    """A user's time as a UTC Timestamp (see :func:`betavae_np.data.intervals.to_utc`)."""
    from ..data.intervals import to_utc

    return to_utc(value, name)


def _read_symbols_file(path: str) -> list[str]:
    """Symbols of a file: one per line (commas and spaces also separate), '#' starts a comment."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError:
        raise click.BadParameter(f"{path} is not a text file of symbols", param_hint="--symbols-file") from None
    names = [tok for line in lines for tok in line.split("#", 1)[0].replace(",", " ").split()]
    if not names:
        raise click.BadParameter(f"{path} lists no symbol (one per line, '#' starts a comment)",
                                 param_hint="--symbols-file")
    return names


def _write_csv(df, path: str) -> None:
    """The candles as CSV (open_time ISO, timestamp_ms, columns), written atomically."""
    from ..data.frame import index_to_ms

    table = df.copy()
    table.insert(0, "timestamp_ms", index_to_ms(df.index))
    table.index = table.index.map(lambda t: t.isoformat())
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index_label="open_time")


def _summary(symbol: str, df, category: str, interval: str, out) -> dict:
    prov = dict(df.attrs.get("betavae_np", {}))
    gaps = prov.get("gaps", [])
    return {"symbol": symbol.upper(), "category": category, "interval": prov.get("interval", interval),
            "rows": len(df), "start": df.index[0].isoformat() if len(df) else None,
            "end": df.index[-1].isoformat() if len(df) else None, "gaps": gaps,
            "missing_candles": int(sum(g.get("missing", 0) for g in gaps)),
            "requests": prov.get("requests"), "retries": prov.get("retries"),
            "from_cache": prov.get("from_cache"), "out": out}


def _fetch_one(symbol, interval, category, start, end, base_url, cache_dir, out, no_cache, include_open, as_json):
    from ..data.fetch import fetch_klines

    progress = FetchProgress(f"{symbol.upper()} {interval}")
    try:
        df = fetch_klines(symbol, interval=interval, start=_to_utc(start, "--start"), end=_to_utc(end, "--end"),
                          category=category, base_url=base_url, cache_dir=cache_dir, use_cache=not no_cache,
                          include_open=include_open, on_progress=progress, on_retry=retry_notice())
    finally:
        progress.close()
    if out:
        _write_csv(df, out)
    summary = _summary(symbol, df, category, interval, out)
    gaps = summary["gaps"]
    if as_json:
        emit_json(summary)
        return
    click.echo(f"{summary['symbol']} {category} {summary['interval']}: {len(df)} candles"
               + (f" from {summary['start']} to {summary['end']}" if len(df) else ""))
    click.echo(f"requests {summary['requests']} (retries {summary['retries']}), "
               f"from cache {summary['from_cache']}; gaps {len(gaps)} ({summary['missing_candles']} missing candles)")
    for g in gaps[:10]:
        click.echo(f"  gap {g['start']} .. {g['end']} ({g['missing']} candles)")
    if len(gaps) > 10:
        click.echo(f"  ... and {len(gaps) - 10} more gaps")
    if out:
        click.echo(f"wrote {out}")
    elif len(df):
        tail = df.tail(5)
        click.echo(render_table(["open_time", *tail.columns],
                                [[t.isoformat(), *[f"{v:g}" for v in row]] for t, row in
                                 zip(tail.index, tail.to_numpy())], title="latest candles:"))


def _fetch_many(names, top, interval, category, start, end, base_url, cache_dir, out, no_cache, include_open,
                as_json):
    from ..data.fetch import fetch_universe, top_symbols
    from ..data.intervals import normalize_interval

    code = normalize_interval(interval)
    on_retry = retry_notice()
    if top is not None:
        names = top_symbols(top, category, base_url=base_url, on_retry=on_retry)
        if not names:
            raise click.ClickException(f"Bybit lists no {category} symbol to rank")
        notice(f"the {len(names)} {category} symbols with the largest 24h turnover: {' '.join(names)}")
    if out is not None:
        os.makedirs(out, exist_ok=True)
    written = {}

    def on_symbol(sym, result):
        if isinstance(result, Exception):
            click.echo(f"{sym}: failed: {result}", err=True)
            return
        path = None
        if out is not None:
            path = os.path.join(out, f"{sym}_{code}.csv")
            _write_csv(result, path)
            written[sym] = path
        s = _summary(sym, result, category, code, path)
        click.echo(f"{sym}: {s['rows']} candles {s['start']} .. {s['end']}, {len(s['gaps'])} gaps, "
                   f"{s['from_cache']} from cache, {s['requests']} requests"
                   + (f", wrote {path}" if path else ""), err=True)

    got = fetch_universe(names, code, _to_utc(start, "--start"), _to_utc(end, "--end"), category,
                         base_url=base_url, cache_dir=cache_dir, use_cache=not no_cache,
                         include_open=include_open, on_symbol=on_symbol, on_retry=on_retry)
    rows = [_summary(s, df, category, code, written.get(s)) for s, df in got.items()]
    failed = [{"symbol": s, "error": str(e)} for s, e in got.errors.items()]
    if as_json:
        emit_json({"category": category, "interval": code, "symbols": rows, "failed": failed, "out": out})
    else:
        table = [[r["symbol"], r["rows"], r["start"], r["end"], f"{len(r['gaps'])} ({r['missing_candles']})",
                  r["from_cache"], r["requests"]] for r in rows]
        table += [[f["symbol"], "-", "failed", "", "", "", ""] for f in failed]
        click.echo(render_table(["symbol", "candles", "first", "last", "gaps (missing)", "from cache",
                                 "requests"], table, title=f"{category} {code}:"))
        if out is not None:
            click.echo(f"wrote {len(written)} CSV files to {out}")
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(names)} symbols failed: "
                                   + ", ".join(f["symbol"] for f in failed))
