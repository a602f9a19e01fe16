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
@click.option("--windows", "n_windows", type=click.IntRange(min=2), default=256, show_default=True, metavar="N",
              help="Read each dimension on N windows spread evenly over the training windows (all of them "
                   "when fewer; all windows of a --source other than the model's own data).")
@click.option("--at", "at", default=None, metavar="TIME",
              help="Read one window instead: the one ending at/before this UTC time (loads data).")
@click.option("--symbol", default=None, help="A model trained on many symbols: read only this symbol's windows.")
@source_options(None)
@bybit_options
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, metavar="FILE.png",
              help="Also draw the reading (needs matplotlib): per dimension, the mean change of each measure "
                   "along the traversal with a band of +-1 sd over the windows (with --at: the decoded "
                   "candles). The extension picks the format (.png .pdf .svg .jpg ...); without one, .png "
                   "is appended.")
@click.option("--plot-inactive", is_flag=True, help="Also plot the inactive dimensions (left out by default).")
@json_option
@handle_errors
def traverse(model_path, dims, span, steps, n_windows, at, symbol, source, base_url, cache_dir, plot_path,
             plot_inactive, as_json):
    """Traverse every latent dimension of MODEL on many windows and name what it controls.

    Each dimension is moved from -span to +span sd of its encoded distribution around a window's own
    code, the others held, and the decoded window's level, trend, volatility, volume, momentum and
    body/range are measured; the change, in training-data standard deviations of each measure, is
    read on N windows spread over the training data (the model's own data source; offline for the
    bundled sample or a CSV). A dimension is named by the measures whose change keeps the sign of
    its mean on at least 80% of the windows (and moves at least 0.1 sd), "mixed" when none does.
    When the data cannot be loaded, the stored latest window is read alone, with a notice.
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
    from ..records import records_of

    model = load(model_path)
    dim_list = parse_dims(dims, model.config.n_latent)
    window, features = window_layout(model)
    x, basis = _reading_windows(model, at, source, base_url, cache_dir, n_windows, symbol)
    interp = interpret(model, x, dim_list, span, steps)
    if plot_path:
        from ..analysis.plot import plot_interpretation, plot_traversal

        prov = records_of(model).provenance
        data = prov.to_dict() if prov is not None else {}
        name = f"{data.get('pair') or data.get('symbol', '')} {_interval_words(data.get('interval'))}".strip()
        with atomic_path(plot_path) as tmp:
            if interp.n_windows == 1:
                title = f"{name}: window ending {basis['last_end'][:16]}, traversals -{span:g}..+{span:g} sd"
                plot_traversal(interp, tmp, window=window, features=features, title=title, format=plot_format)
            else:
                title = (f"{name}: what each latent dimension does, read on {interp.n_windows} {basis['from']} "
                         f"windows ({basis['first_end'][:10]} .. {basis['last_end'][:10]})")
                plot_interpretation(interp, tmp, title=title, include_inactive=plot_inactive, format=plot_format)
    if as_json:
        out = interp.to_dict()
        out.update(model=os.path.abspath(model_path), reading="single" if interp.n_windows == 1 else "windows",
                   windows=basis, reference_end_time=basis["last_end"] if interp.n_windows == 1 else None,
                   plot=plot_path)
        emit_json(out)
        return
    click.echo(_render(interp, basis, span))
    if plot_path:
        click.echo(f"wrote {plot_path}")


def _reading_windows(model, at, source, base_url, cache_dir, n_windows, symbol=None):
    """The window(s) to read and what they are: ``(x, basis)``.

    ``x`` is one window (``--at``, or the stored reference when the data cannot be loaded) or
    ``(n, n_input)`` windows spread over the training part of the model's own data (all windows of
    another source). ``basis`` says so: ``from`` (training, all, at, reference), ``available``, ``n``,
    ``first_end``, ``last_end``.
    """
    import numpy as np

    from ..analysis.interpret import spread_rows
    from ..exceptions import BetaVAEError, ConfigError, InputError
    from ..records import records_of
    from ..workflow import reference_window, windows_for_model

    if at is not None:
        _, windows = windows_for_model(model, source=source, base_url=base_url, cache_dir=cache_dir,
                                       on_notice=notice, symbol=symbol)
        x, end = reference_window(model, at=at, windows=windows, symbol=symbol)
        return x, {"from": "at", "available": windows.shape[0], "n": 1, "first_end": end, "last_end": end}
    rec = records_of(model)
    try:
        if source is None and rec.provenance is None:  # do not guess whose candles these were
            raise InputError("the model file does not say where its data came from; give --source to read "
                             "many windows")
        df, windows = windows_for_model(model, source=source, base_url=base_url, cache_dir=cache_dir,
                                        on_notice=notice, symbol=symbol)
    except ConfigError:
        raise
    except BetaVAEError as exc:
        if source is not None or rec.reference is None:  # asked for that data, or nothing to fall back on
            raise
        why = str(exc) if rec.provenance is None else f"the model's data could not be loaded ({exc})"
        notice(f"{why}; reading only the stored latest window, ending {rec.reference.end_time}: a "
               "single-window reading, which other windows may contradict")
        x, end = reference_window(model, symbol=symbol)
        return x, {"from": "reference", "available": 1, "n": 1, "first_end": end, "last_end": end}
    part = "all"
    split = rec.split
    if isinstance(df, dict):   # a universe model: its training windows end before the common cutoff
        if source is None and rec.universe is not None and rec.universe.cutoff:
            train, _ = windows.split_at(rec.universe.cutoff)
            if train.shape[0] > 0:
                windows, part = train, "training"
    elif split is not None and split.train_end and _own_data(model, df):
        import pandas as pd

        n_train = int(windows.end_times.searchsorted(pd.Timestamp(split.train_end), side="right"))
        if n_train > 0:
            windows, part = windows.subset(0, n_train), "training"
    if windows.shape[0] == 0:
        raise InputError("the data hold no window to read")
    rows = spread_rows(windows.shape[0], n_windows)
    x = windows.gather(rows, np.empty((rows.size, windows.shape[1]), dtype=model.dtype))
    ends = windows.end_times[rows]   # (a universe's windows are ordered by symbol, then time)
    return x, {"from": part, "available": windows.shape[0], "n": int(rows.size),
               "first_end": ends.min().isoformat(), "last_end": ends.max().isoformat()}


def _own_data(model, df) -> bool:
    """True when ``df`` holds the candles the model was trained on (same source, symbol, interval)."""
    from ..records import records_of

    prov = records_of(model).provenance
    now = df.attrs.get("betavae_np", {})
    if prov is None:
        return False
    kind = {"bybit-cache": "bybit"}
    same = (kind.get(prov.source, prov.source) == kind.get(now.get("source"), now.get("source"))
            and prov.symbol == now.get("symbol") and str(prov.interval) == str(now.get("interval")))
    if prov.source == "csv":
        same = same and prov.get("path") == now.get("path")
    if prov.source in ("bybit", "bybit-cache"):
        same = same and prov.get("category", "linear") == now.get("category", "linear")
    return same


def _interval_words(code) -> str:
    return {"60": "1h", "240": "4h", "D": "1d", "W": "1w", "M": "1M"}.get(str(code), str(code or ""))


def _render(interp, basis, span) -> str:
    """The table(s): one window as before; many windows with agreement and a spread table."""
    ms = interp.measures
    if interp.n_windows == 1:
        where = "stored latest window" if basis["from"] == "reference" else "reference window"
        head = ["dim", "KL", *ms, "meaning"]
        rows = [[r.dim, fmt(r.kl, 3), *[f"{r.effects[m]:+.2f}" for m in ms], r.label] for r in interp.readings]
        return render_table(head, rows, title=f"{where} ends {basis['last_end']} (one window: a single-window "
                                              f"reading); change from -{span:g} to +{span:g} sd, in training "
                                              "sd of each measure:")
    what = f"{basis['n']} of {basis['available']} {basis['from']} windows" if basis["from"] != "all" \
        else f"{basis['n']} of {basis['available']} windows"
    title = (f"read on {what}, ending {basis['first_end'][:16]} .. {basis['last_end'][:16]}.\n"
             f"Change from -{span:g} to +{span:g} sd of each dimension, in training sd of each measure:\n"
             "the mean over the windows and the share of them that agree with its sign.")
    head = ["dim", "KL", *ms, "meaning"]
    rows = [[r.dim, fmt(r.kl, 3), *[f"{r.effects[m]:+.2f} {r.agreement[m]:4.0%}" for m in ms], r.label]
            for r in interp.readings]
    spread = [[r.dim, *[f"{r.spread[m]:.2f}" for m in ms]] for r in interp.readings if r.active]
    lines = [render_table(head, rows, title=title),
             f"A dimension is named by the measures whose change keeps its sign on >= {interp.agreement:.0%} of "
             f"the windows\nand averages >= {interp.weak:g} sd; mixed: it moves the windows, but in no consistent "
             "direction."]
    if spread:
        lines += ["", render_table(["dim", *ms], spread, title="spread of the change over the windows "
                                                                "(sd, active dimensions):")]
    return "\n".join(lines)
