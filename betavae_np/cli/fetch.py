"""``betavae-np fetch``: every Bybit candle of a range, through the cache, to CSV or a summary."""

from __future__ import annotations

import click

from ._common import (atomic_path, bybit_options, emit_json, handle_errors, json_option, render_table,
                      retry_notice)
from ._progress import FetchProgress


@click.command(short_help="Fetch Bybit candles of any range (paged, paced, cached).")
@click.argument("symbol")
@click.option("--interval", default="60", show_default=True,
              help="Bybit interval: 1 3 5 15 30 60 120 240 360 720 D W M, or 1m 5m 1h 4h 1d 1w...")
@click.option("--category", type=click.Choice(["linear", "spot", "inverse"]), default="linear", show_default=True)
@click.option("--start", default=None, help="First candle open time (UTC date/time or ms). Default: 1000 candles back.")
@click.option("--end", default=None, help="Last candle open time (UTC). Default: now.")
@bybit_options
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the candles to this CSV file.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the candle cache.")
@click.option("--include-open", is_flag=True, help="Keep the newest, still-open candle.")
@json_option
@handle_errors
def fetch(symbol, interval, category, start, end, base_url, cache_dir, out, no_cache, include_open, as_json):
    """Fetch SYMBOL's candles from Bybit's v5 kline endpoint (paged, paced, retried, cached).

    Example: betavae-np fetch BTCUSDT --interval 1h --start 2024-01-01 --out btc.csv
    """
    from ..data.fetch import fetch_klines
    from ..data.frame import index_to_ms
    from ..workflow import _to_utc

    progress = FetchProgress(f"{symbol.upper()} {interval}")
    try:
        df = fetch_klines(symbol, interval=interval, start=_to_utc(start, "--start"), end=_to_utc(end, "--end"),
                          category=category, base_url=base_url, cache_dir=cache_dir, use_cache=not no_cache,
                          include_open=include_open, on_progress=progress, on_retry=retry_notice())
    finally:
        progress.close()
    prov = dict(df.attrs.get("betavae_np", {}))
    if out:
        table = df.copy()
        table.insert(0, "timestamp_ms", index_to_ms(df.index))
        table.index = table.index.map(lambda t: t.isoformat())
        with atomic_path(out) as tmp:
            table.to_csv(tmp, index_label="open_time")
    gaps = prov.get("gaps", [])
    summary = {"symbol": symbol.upper(), "category": category, "interval": prov.get("interval", interval),
               "rows": len(df), "start": df.index[0].isoformat() if len(df) else None,
               "end": df.index[-1].isoformat() if len(df) else None, "gaps": gaps,
               "missing_candles": int(sum(g.get("missing", 0) for g in gaps)),
               "requests": prov.get("requests"), "retries": prov.get("retries"),
               "from_cache": prov.get("from_cache"), "out": out}
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
