"""``betavae-np encode``: every window's end time, posterior mean and log-variance, as CSV or Parquet."""

from __future__ import annotations

import os

import click

from ._common import atomic_path, bybit_options, emit_json, handle_errors, json_option, notice, source_options

#: Output formats by file extension.
FORMATS = {".csv": "csv", ".parquet": "parquet"}


def _target(path: str) -> tuple[str, str]:
    """The output path and its format, checked before any work (misuse: exit 2)."""
    from ..exceptions import ModelFileError
    from ..io import check_writable

    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise click.BadParameter(f"{path!r} must end in .csv or .parquet (the extension picks the format)",
                                 param_hint="--out")
    if FORMATS[ext] == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ModuleNotFoundError:
            raise click.ClickException("writing .parquet needs pyarrow: pip install pyarrow "
                                       "(or write .csv)") from None
        except ImportError as exc:   # installed but unusable, e.g. built for another NumPy
            raise click.ClickException(f"writing .parquet needs a working pyarrow, and importing it failed "
                                       f"({exc}); reinstall it or write .csv") from None
    try:
        check_writable(path, "latents file", error=ModelFileError)
    except ModelFileError as exc:
        raise click.BadParameter(str(exc).rstrip("."), param_hint="--out") from None
    return path, FORMATS[ext]


@click.command(short_help="Write each window's end time, mu and logvar (CSV or Parquet).")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@source_options(None)
@bybit_options
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), metavar="FILE.csv|FILE.parquet",
              help="Where to write the latents; the extension picks the format (.parquet needs pyarrow).")
@json_option
@handle_errors
def encode(model_path, source, base_url, cache_dir, out_path, as_json):
    """Encode every window of MODEL's data (or of --source) and write one row per window.

    Columns: end_time (UTC open time of the window's last candle), split (train, purged or
    validation under the model's recorded split; "all" when it records none), mu_0.. and
    logvar_0.. per latent dimension; for the synthetic market also the factors' grid indices at
    the window's last candle (factor_trend, ...). What a researcher feeds into their own tools.
    """
    path, fmt_ = _target(out_path)
    import numpy as np
    import pandas as pd

    from ..analysis.evaluate import encode_windows
    from ..io import load
    from ..records import records_of
    from ..sources import synthetic_factors
    from ..workflow import windows_for_model

    model = load(model_path)
    df, windows = windows_for_model(model, source=source, base_url=base_url, cache_dir=cache_dir,
                                    on_notice=notice)
    mu, logvar = (a.astype(model.dtype) for a in encode_windows(model, windows))   # exact: the model's own values
    k = model.config.n_latent
    ends = windows.end_times
    frame = pd.DataFrame({"end_time": ends})
    frame["split"] = _split_labels(records_of(model).split, windows)
    for j in range(k):
        frame[f"mu_{j}"] = mu[:, j]
    for j in range(k):
        frame[f"logvar_{j}"] = logvar[:, j]
    data = df.attrs.get("betavae_np", {})
    if data.get("source") == "synthetic":
        factors = synthetic_factors(data, ends)
        for j, name in enumerate(data.get("factor_names") or range(factors.shape[1])):
            frame[f"factor_{name}"] = factors[:, j].astype(np.int64)
    with atomic_path(path) as tmp:
        if fmt_ == "csv":
            frame.to_csv(tmp, index=False)   # end_time as 2024-01-01 00:00:00+00:00
        else:
            frame.to_parquet(tmp, index=False)
    summary = {"model": os.path.abspath(model_path), "out": os.path.abspath(path), "format": fmt_,
               "rows": int(len(frame)), "columns": list(frame.columns),
               "start": ends[0].isoformat() if len(ends) else None,
               "end": ends[-1].isoformat() if len(ends) else None, "data": data}
    if as_json:
        emit_json(summary)
        return
    click.echo(f"wrote {path}: {len(frame)} windows ({summary['start'][:16]} .. {summary['end'][:16]}), "
               f"{len(frame.columns)} columns (end_time, split, mu_0..mu_{k - 1}, logvar_0..logvar_{k - 1}"
               f"{', factors' if data.get('source') == 'synthetic' else ''})")


def _split_labels(split, windows):
    """'train', 'purged' or 'validation' per window under the recorded split ('all' without one)."""
    import numpy as np

    n = windows.shape[0]
    if split is None or not split.val_fraction:
        return np.full(n, "all" if split is None else "train", dtype=object)
    train, val = windows.split(split.val_fraction)
    labels = np.full(n, "purged", dtype=object)
    labels[:train.shape[0]] = "train"
    labels[n - val.shape[0]:] = "validation"
    return labels
