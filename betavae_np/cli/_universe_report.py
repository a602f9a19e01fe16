"""``betavae-np evaluate`` on a model trained on many symbols: held-out reconstruction over all of them,
then the cross-sectional table (latents vs PCA vs hand factors, and the permuted control)."""

from __future__ import annotations

import os

import click

from ._common import emit_json, fmt, notice, render_table


def evaluate_universe(model, model_path, *, source=None, base_url=None, cache_dir=None, as_json=False) -> None:
    """Print (or emit as JSON) the evaluation of a universe model; the hook ``cli/evaluate.py`` calls."""
    from ..analysis.cross_section import cross_section_report
    from ..analysis.evaluate import evaluate as run_evaluate
    from ..records import records_of
    from ..workflow import universe_for_model

    frames, windows = universe_for_model(model, source=source, base_url=base_url, cache_dir=cache_dir,
                                         on_notice=notice)
    cutoff = records_of(model).universe.cutoff
    held = windows.split_at(cutoff)[1] if cutoff is not None else windows
    part = "held-out" if cutoff is not None else "training"
    report = run_evaluate(model, held)
    cs = cross_section_report(model, frames, windows, on_notice=notice)
    out = report.to_dict()
    out.update(model=os.path.abspath(model_path), part=part, symbols=list(windows.symbols), cutoff=cutoff,
               cross_section=cs.to_dict())
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)
    if as_json:
        emit_json(out)
        return
    label = ("held-out windows (from the common cutoff on, every symbol)" if part == "held-out"
             else "training windows (the model was trained with --val-fraction 0: nothing was held out)")
    click.echo(f"{label}: {report.n} over {len(windows.symbols)} symbols")
    click.echo(f"reconstruction error {fmt(report.recon)} per window ({fmt(report.recon_per_value)} per value); "
               f"mean-window baseline {fmt(report.baseline)} ({report.baseline_kind}); R^2 {report.r2:.3f}")
    rows = [[j, fmt(kl), fmt(sd), "yes" if a else "no (collapsed)"]
            for j, (kl, sd, a) in enumerate(zip(report.kl_per_dim, report.stats.sd, report.stats.active))]
    click.echo(render_table(["dim", "KL (nats)", "sd of mu", "active"], rows, title="latent dimensions:"))
    click.echo(f"active dimensions: {report.n_active} of {model.config.n_latent}; total KL {fmt(report.kl)} nats")
    click.echo("")
    click.echo(render_cross_section(cs))


def render_cross_section(cs) -> str:
    """The cross-sectional table as text: per factor the mean IC and Newey-West t per horizon, rank autocorrelation."""
    t = cs.table
    hs = sorted(set(t.index.get_level_values("horizon")))
    head = ["kind", "factor", *[x for h in hs for x in (f"IC {h}", f"t {h}")], "rank ac"]
    rows = []
    for (kind, factor), g in t.groupby(level=["kind", "factor"], sort=False):
        g = g.droplevel(["kind", "factor"])
        cells = []
        for h in hs:
            cells += [f"{g.loc[h, 'ic_mean']:+.4f}", f"{g.loc[h, 't_nw']:+.2f}"] if h in g.index else ["", ""]
        rows.append([kind, factor, *cells, f"{g['rank_autocorr'].iloc[0]:.3f}"])
    title = (f"cross-sectional rank IC with forward log returns over {cs.symbols} symbols, {cs.part} "
             f"{cs.start[:16]} .. {cs.end[:16]} (mean over time steps; t: Newey-West, h-1 lags; "
             f"control: returns permuted across symbols, should be ~0):")
    notes = "".join(f"\nnote: {n}" for n in cs.notes)
    return render_table(head, rows, title=title) + notes
