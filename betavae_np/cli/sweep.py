"""``betavae-np sweep``: train a grid of betas x seeds (x latent sizes x schedules) on processes or
Dask, tabulate mean and spread over seeds, and pick beta at the elbow of the trade-off."""

from __future__ import annotations

import os

import click

from ..train_config import cli_fields
from ._common import bybit_options, emit_json, fmt, handle_errors, json_option, notice, render_table
from .train import _type, field_option

#: Fields the sweep varies itself (list options below), so their single-value train options are left out.
_SWEPT = ("beta", "seed", "latent", "anneal")


def _fixed_options(fn):
    """The train options (declared once by TrainConfig's fields) other than the swept ones."""
    for f in reversed([f for f in cli_fields() if f.name not in _SWEPT]):
        fn = field_option(f)(fn)
    return fn


def _list_of(name: str, cast):
    """A Click callback: a comma-separated list, each value checked as the TrainConfig field ``name``."""
    import dataclasses

    from ..train_config import TrainConfig

    field = {f.name: f for f in dataclasses.fields(TrainConfig)}[name]
    t = _type(field)

    def callback(ctx, param, value):
        if value is None:
            return None
        out = []
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                v = cast(part)
            except ValueError:
                raise click.BadParameter(f"{part!r} is not a valid value in {value!r}") from None
            out.append(t.convert(v, param, ctx) if t is not None else v)
        if not out:
            raise click.BadParameter("give at least one value")
        return list(dict.fromkeys(out))
    return callback


def _help(name):
    import dataclasses

    from ..train_config import TrainConfig

    return {f.name: f for f in dataclasses.fields(TrainConfig)}[name].metadata["help"]


@click.command(short_help="Train betas x seeds on processes or Dask; table, elbow, trade-off plot.")
@click.argument("symbol", required=False)
@click.option("--betas", default="0.25,0.5,1,2,4,8", show_default=True, callback=_list_of("beta", float),
              help="Comma-separated betas. " + _help("beta"))
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Seeds per configuration (--seed, --seed+1, ...).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="First seed.")
@click.option("--latent", default="8", show_default=True, callback=_list_of("latent", int),
              help="Comma-separated latent sizes. " + _help("latent"))
@click.option("--anneal", default="linear", show_default=True, callback=_list_of("anneal", str),
              metavar="SCHEDULE[,...]", help="Comma-separated beta schedules (constant, linear, cyclical, warmup, "
                                            "capacity).")
@_fixed_options
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (spawn; 1 thread each unless --threads). Default: the cores. 1: train "
                   "the jobs one after another in this process.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Numba and BLAS threads per worker. Default: cores / workers.")
@click.option("--dask", "dask_address", default=None, metavar="ADDRESS|local",
              help="Run the jobs on a Dask cluster: a scheduler address (tcp://host:8786) or 'local' for a "
                   "LocalCluster of --workers processes x 1 thread.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="betavae-sweep", show_default=True,
              help="Directory for the models (<key>.npz + <key>.json); finished jobs there are not rerun.")
@click.option("--metric-samples", type=click.IntRange(min=50), default=10_000, show_default=True,
              help="Observations for the supervised metrics on --source synthetic.")
@click.option("--elbow", "elbow_score", type=click.Choice(["auto", "mig", "coverage", "units_off"]), default="auto",
              show_default=True, help="What beta should buy at the elbow: MIG (synthetic), indicator coverage (real "
                                      "candles), or latent dimensions switched off; auto picks the first available.")
@click.option("--plot", "plot_path", default=None, metavar="FILE.png", help="Write the trade-off plot.")
@bybit_options
@click.option("-q", "--quiet", is_flag=True, help="No per-job progress lines.")
@json_option
@handle_errors
def sweep(symbol, betas, seeds, seed, latent, anneal, workers, threads, dask_address, out_dir, metric_samples,
          elbow_score, plot_path, base_url, cache_dir, quiet, as_json, **settings):
    """Train one model per beta x seed (x --latent x --anneal) and pick beta at the elbow.

    SYMBOL is needed with --source auto or bybit. Each job's model goes to --out with its
    configuration; run the same command again to resume an interrupted sweep. The table shows the
    mean and the spread (sd) over seeds of held-out reconstruction, KL, active units and the
    data's measures: MIG/SAP/DCI on --source synthetic, indicator alignment and IC on real candles.

    Example: betavae-np sweep --source sample --betas 0.5,1,2,4 --seeds 3 --workers 2
    """
    from ..exceptions import ConfigError, InputError
    from ..train_config import TrainConfig
    from ..sweep_elbow import choose_beta, plot_tradeoff, summarize
    from ..sweeps import grid, sweep as run_sweep, varying_fields
    from .train import _bad_setting, cli_words

    ctx = click.get_current_context()
    source = settings.get("source", "auto")
    if symbol is None and source in ("auto", "bybit"):
        raise click.UsageError(f"SYMBOL is needed with --source {source} (e.g. betavae-np sweep BTCUSDT); "
                               "--source sample, synthetic or a CSV path need none")
    if workers is not None and dask_address is not None and dask_address != "local":
        raise click.UsageError("--workers sets the processes of --dask local; an existing Dask cluster "
                               "has its own workers")
    if plot_path is not None:
        from ..analysis.plot import plot_target

        try:
            plot_path, _ = plot_target(plot_path)
        except ConfigError as exc:
            raise click.BadParameter(str(exc).rstrip("."), param_hint="--plot") from None
    try:
        base = TrainConfig(**({"symbol": symbol} if symbol else {}), seed=seed, beta=betas[0], latent=latent[0],
                           anneal=anneal[0], **settings)
        configs = grid(base, betas=betas, seeds=seeds, latent=latent, anneal=anneal)
    except ConfigError as exc:
        raise _bad_setting(exc, ctx) from None
    cores = os.cpu_count() or 1
    n_workers = workers or cores
    per_worker = threads or max(1, cores // n_workers)
    candles = _candles(base, base_url, cache_dir)
    total = len(configs)
    varying = set(varying_fields(configs))
    done = []

    def on_job(row):
        done.append(row)
        if quiet:
            return
        what = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in row.items() if k in varying)
        if row.get("status") == "failed":
            click.echo(f"[{len(done)}/{total}] {what}: failed: {row.get('error')}", err=True)
        else:
            click.echo(f"[{len(done)}/{total}] {what}: recon {fmt(row.get('recon'))}, KL {fmt(row.get('kl'))}, "
                       f"active {row.get('active_units')} ({row['status']})", err=True)

    kw = dict(out_dir=out_dir, threads=per_worker, candles=candles, metric_samples=metric_samples,
              base_url=base_url, cache_dir=cache_dir, on_job=on_job)
    try:
        if dask_address is not None:
            table = _on_dask(dask_address, n_workers, configs, kw)
        elif n_workers == 1 and threads is None:
            table = run_sweep(configs, **dict(kw, threads=None))
        else:
            table = run_sweep(configs, workers=n_workers, **kw)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: {sum(r.get('status') != 'failed' for r in done)} finished job(s) are kept in "
                   f"{out_dir}; run the same command again to resume", err=True)
        raise click.exceptions.Exit(130) from None
    summary = summarize(table)
    try:
        elbows = choose_beta(summary, elbow_score)
    except InputError as exc:
        raise click.BadParameter(str(exc).rstrip("."), param_hint="--elbow") from None
    if plot_path is not None:
        plot_tradeoff(summary, elbows, plot_path)
    failed = table[table["status"] == "failed"]
    for _, r in failed.iterrows():
        click.echo(f"warning: job beta={r['beta']:g} seed={r['seed']} failed: {cli_words(str(r['error']))}", err=True)
    if as_json:
        emit_json({"out": os.path.abspath(out_dir), "jobs": table.to_dict(orient="records"),
                   "summary": summary.to_dict(orient="records"), "choice": [e.to_dict() for e in elbows],
                   "plot": None if plot_path is None else os.path.abspath(plot_path)})
    else:
        click.echo(_render(summary))
        for e in elbows:
            click.echo(f"\nchosen: {e.reason}")
        click.echo(f"\nmodels in {out_dir}" + (f"; plot {plot_path}" if plot_path else ""))
    if len(failed) == len(table):
        raise click.ClickException(f"every job failed; the first error: {cli_words(str(failed['error'].iloc[0]))}")


def _candles(base, base_url, cache_dir):
    """The candles every job trains on, loaded once here (notices said once; no fetch per worker)."""
    from .. import sources

    # seed: the synthetic market's (one market for every job; the jobs' seeds vary the models)
    return sources.load_candles(base.symbol, source=base.source, interval=base.interval, start=base.start,
                                end=base.end, category=base.category, base_url=base_url, cache_dir=cache_dir,
                                on_notice=notice, seed=base.seed)


def _on_dask(address, n_workers, configs, kw):
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise click.ClickException("--dask needs Dask: pip install 'betavae-np[dask]'") from None
    from ..sweeps import sweep as run_sweep

    if address == "local":
        from ..sweeps import dask_training_config

        with dask_training_config(), LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                                  dashboard_address=None) as cluster, Client(cluster) as client:
            return run_sweep(configs, client, **kw)
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise click.ClickException(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with client:
        return run_sweep(configs, client, **kw)


def _render(summary) -> str:
    varying = [f for f in summary.attrs.get("varying", []) if f != "seed"]
    cols = [("recon", "recon"), ("kl", "KL"), ("active_units", "active")]
    for m, label in (("mig", "MIG"), ("sap", "SAP"), ("dci_disentanglement", "DCI-D"), ("alignment", "align"),
                     ("coverage", "coverage"), ("ic", "IC")):
        if f"{m}_mean" in summary and summary[f"{m}_mean"].notna().any():
            cols.append((m, label))
    head = varying + ["seeds"] + [label for _, label in cols]
    rows = []
    for _, r in summary.iterrows():
        cells = [str(r[f]) if not isinstance(r[f], float) else f"{r[f]:g}" for f in varying]
        cells.append(str(int(r["seeds"])) + (f" ({int(r['failed'])} failed)" if r["failed"] else ""))
        for m, _ in cols:
            mean, sd = r[f"{m}_mean"], r[f"{m}_sd"]
            cells.append(fmt(mean) + ("" if sd != sd else f" ±{sd:.2g}"))
        rows.append(cells)
    return render_table(head, rows, title="sweep (mean ±sd over seeds; held-out windows):")
