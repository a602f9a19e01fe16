"""``betavae-np traverse``: what each latent dimension of a model means, as a table, JSON or a plot."""

from __future__ import annotations

import os

import click

from ._common import atomic_path, bybit_options, emit_json, fmt, handle_errors, json_option, notice, render_table, source_options


@click.command(short_help="Say what each latent dimension means (table, JSON, plot).")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.option("--dims", default=None, help="Dimensions to traverse, e.g. 0,2,5 (default: all).")
@click.option("--span", type=click.FloatRange(min=0, min_open=True), default=3.0, show_default=True,
              help="Move each dimension from -span to +span standard deviations.")
@click.option("--steps", type=click.IntRange(min=2), default=7, show_default=True)
@click.option("--at", "at", default=None, metavar="TIME",
              help="Traverse the window ending at/before this UTC time (loads data) instead of the latest.")
@click.option("--symbol", default=None, help="A model trained on many symbols: traverse this symbol's window.")
@source_options(None)
@bybit_options
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, metavar="FILE.png",
              help="Also draw the decoded candles per dimension and step (needs matplotlib). The extension "
                   "picks the format (.png .pdf .svg .jpg ...); without one, .png is appended.")
@json_option
@handle_errors
def traverse(model_path, dims, span, steps, at, symbol, source, base_url, cache_dir, plot_path, as_json):
    """Traverse every latent dimension of MODEL and name what it controls.

    Each dimension is moved from -span to +span sd of its encoded distribution around the reference
    window (the latest window of the training data by default), the others held; the table shows how
    the decoded window's level, trend, volatility, volume, momentum and body/range change, in training-data
    standard deviations of each measure.
    """
    plot_format = None
    if plot_path:  # before any work: a plot that cannot be written is known now
        from ..analysis.plot import plot_target
        from ..exceptions import ConfigError

        try:
            plot_path, plot_format = plot_target(plot_path)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--plot") from None
        folder = os.path.dirname(os.path.abspath(plot_path))
        if not os.path.isdir(folder):
            raise click.BadParameter(f"folder {folder} does not exist", param_hint="--plot")

    from ..analysis.interpret import interpret, window_layout
    from ..analysis.traversal import parse_dims
    from ..io import load
    from ..workflow import reference_window, windows_for_model

    model = load(model_path)
    dim_list = parse_dims(dims, model.config.n_latent)
    window, features = window_layout(model)
    windows = None
    if at is not None or source is not None:
        _, windows = windows_for_model(model, source=source, base_url=base_url, cache_dir=cache_dir,
                                       on_notice=notice, symbol=symbol)
    x, end_time = reference_window(model, at=at, windows=windows, symbol=symbol)
    interp = interpret(model, x, dim_list, span, steps)
    if plot_path:
        from ..analysis.plot import plot_traversal

        from ..records import records_of

        prov = records_of(model).provenance
        data = prov.to_dict() if prov is not None else {}
        title = (f"{data.get('pair') or data.get('symbol', '')} {data.get('interval', '')}: window ending "
                 f"{end_time[:16]}, traversals -{span:g}..+{span:g} sd")
        with atomic_path(plot_path) as tmp:
            plot_traversal(interp, tmp, window=window, features=features, title=title, format=plot_format)
    if as_json:
        out = interp.to_dict()
        out.update(model=os.path.abspath(model_path), reference_end_time=end_time, plot=plot_path)
        emit_json(out)
        return
    head = ["dim", "KL", *interp.measures, "meaning"]
    rows = [[r.dim, fmt(r.kl, 3), *[f"{r.effects[m]:+.2f}" for m in interp.measures], r.label]
            for r in interp.readings]
    click.echo(render_table(head, rows, title=f"reference window ends {end_time}; change from -{span:g} to "
                                              f"+{span:g} sd, in training sd of each measure:"))
    if plot_path:
        click.echo(f"wrote {plot_path}")
