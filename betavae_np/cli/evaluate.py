"""``betavae-np evaluate``: held-out reconstruction, KL per dimension, active units, collapse warnings."""

from __future__ import annotations

import os

import click

from ._common import bybit_options, emit_json, fmt, handle_errors, json_option, notice, render_table, source_options


@click.command(short_help="Held-out error, KL per dimension, active units, collapse warnings.")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@source_options(None)
@bybit_options
@json_option
@handle_errors
def evaluate(model_path, source, base_url, cache_dir, as_json):
    """Evaluate MODEL on the held-out (latest) windows of its data, or of --source.

    Reports reconstruction error against the mean-window baseline, KL per dimension, active units
    (dimensions whose posterior mean varies over the data), and warns when the model looks collapsed
    or beta looks too high.
    """
    from ..analysis.evaluate import evaluate as run_evaluate
    from ..io import load
    from ..workflow import evaluation_windows, windows_for_model

    model = load(model_path)
    if getattr(model.records, "universe", None) is not None:   # trained on many symbols
        from ._universe_report import evaluate_universe

        return evaluate_universe(model, model_path, source=source, base_url=base_url, cache_dir=cache_dir,
                                 as_json=as_json)
    df, windows = windows_for_model(model, source=source, base_url=base_url, cache_dir=cache_dir,
                                    on_notice=notice)
    held, part = evaluation_windows(model, windows)   # the recorded split says what is held out
    report = run_evaluate(model, held)
    out = report.to_dict()
    out.update(model=os.path.abspath(model_path), data=df.attrs.get("betavae_np", {}), part=part,
               heldout_start=held.end_times[0].isoformat(), heldout_end=held.end_times[-1].isoformat())
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)
    if as_json:
        emit_json(out)
        return
    label = {"held-out": "held-out windows",
             "training": "training windows (the model was trained with --val-fraction 0: nothing was held out)",
             "all": "all windows (the model file records no train/validation split)"}[part]
    click.echo(f"{label}: {report.n} ({out['heldout_start'][:16]} .. {out['heldout_end'][:16]})")
    click.echo(f"reconstruction error {fmt(report.recon)} per window ({fmt(report.recon_per_value)} per value); "
               f"mean-window baseline {fmt(report.baseline)} ({report.baseline_kind}); R^2 {report.r2:.3f}")
    rows = [[j, fmt(kl), fmt(sd), "yes" if a else "no (collapsed)"]
            for j, (kl, sd, a) in enumerate(zip(report.kl_per_dim, report.stats.sd, report.stats.active))]
    click.echo(render_table(["dim", "KL (nats)", "sd of mu", "active"], rows,
                            title=f"latent dimensions ({'held-out' if part == 'held-out' else part + ' windows'}):"))
    click.echo(f"active dimensions: {report.n_active} of {model.config.n_latent}; total KL {fmt(report.kl)} nats")
