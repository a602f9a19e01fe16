"""What every command shares: options defined once, error mapping, JSON output, tables, notices.

Only Click and the standard library are imported here, so ``betavae-np --help`` stays fast; the
commands import NumPy, Numba and pandas inside their bodies.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys

import click

__all__ = ["json_option", "source_options", "bybit_options", "handle_errors", "quiet_broken_pipe", "emit_json",
           "notice", "retry_notice", "render_table", "fmt", "atomic_path", "parse_hidden"]

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON object on stdout (progress and notices stay on stderr).")


def bybit_options(f):
    """--base-url and --cache-dir, shared by every command that may talk to Bybit."""
    f = click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                     help="Candle cache directory [env BETAVAE_NP_CACHE, default ~/.cache/betavae-np].")(f)
    f = click.option("--base-url", default=None, metavar="URL",
                     help="Bybit API base URL, or 'testnet' [env BETAVAE_NP_BYBIT_URL, default mainnet].")(f)
    return f


def source_options(default: str | None = "auto"):
    """--source, shared by train, traverse and evaluate."""
    help_ = ("Where candles come from: auto (cache, then Bybit, then the bundled sample), bybit, sample, "
             "or a PATH.csv.")
    if default is None:
        help_ += " Default: the source recorded in the model file."
    return click.option("--source", default=default, metavar="auto|bybit|sample|PATH.csv", help=help_,
                        show_default=default is not None)


def notice(message: str) -> None:
    """A notice for the user, on stderr."""
    click.echo(f"note: {message}", err=True)


def retry_notice():
    """An ``on_retry`` callback for the Bybit client: one "...; retrying..." notice at the first failure."""
    said = []

    def on_retry(attempt, delay, error):
        if not said:
            said.append(True)
            notice(f"{error}; retrying...")

    return on_retry


def handle_errors(fn):
    """Map the library's errors to one clear line and exit code 1 (failure) or 2 (misuse)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ..exceptions import BetaVAEError, ConfigError

        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
        except BetaVAEError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("\ninterrupted: nothing was written", err=True)
            raise click.exceptions.Exit(130) from None
        except BrokenPipeError:
            raise  # the reader went away (`| head`): not an error to report; see quiet_broken_pipe
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename}" if exc.filename
                                       else str(exc)) from None

    return wrapper


def quiet_broken_pipe() -> None:
    """After a command whose stdout reader went away (``betavae-np evaluate M | head -3``): point
    stdout at devnull so that the interpreter's final flush of the unwritten rest does not print
    "Exception ignored ... BrokenPipeError" (the recipe of the Python ``signal`` documentation;
    SIGPIPE keeps Python's handling, since a default SIGPIPE would also kill the process on a
    dropped socket). A no-op when stdout is fine."""
    stdout = sys.__stdout__
    if stdout is None:
        return
    try:
        stdout.flush()
    except BrokenPipeError:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
    except (OSError, ValueError):
        pass


def _default(obj):
    import numpy as np

    if isinstance(obj, (np.ndarray, np.generic)):
        from ..io import jsonable   # the package's one JSON conversion

        return jsonable(obj, "output")
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _finite(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def emit_json(obj) -> None:
    """Print exactly one JSON object on stdout (NaN/inf become null: strict JSON)."""
    text = json.dumps(obj, default=_default)
    click.echo(json.dumps(_finite(json.loads(text)), indent=2))


def fmt(value, digits: int = 4) -> str:
    """A number for a table: compact, signed where it is a change."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "nan"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 10 ** -(digits - 1)):
        return f"{value:.{max(1, digits - 2)}e}"
    return f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits}f}".rstrip("0").rstrip(".") or "0"


def render_table(headers, rows, *, title: str | None = None) -> str:
    """A plain-text table with right-aligned numbers and left-aligned text."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def is_num(s):
        return s[:1] in "+-0123456789" and s not in ("-",) or s == "nan"

    lines = []
    if title:
        lines.append(title)
    for k, row in enumerate(cells):
        parts = [c.rjust(w) if (k and is_num(c)) else c.ljust(w) for c, w in zip(row, widths)]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def atomic_path(path: str):
    """Context manager yielding a temp path beside ``path``; renamed over it only on success.

    The package's one atomic writer, :func:`betavae_np.io.atomic_path` (imported when used, so
    ``--help`` stays fast); a failure names ``path``, never the temporary file.
    """
    from ..io import atomic_path as _atomic

    return _atomic(os.path.abspath(path), "file")


def parse_hidden(ctx, param, value):
    """Click callback: ``"128,64"`` -> ``(128, 64)``; ``""`` or ``"none"`` -> ``()``."""
    if value is None:
        return None
    text = value.strip().lower()
    if text in ("", "none", "0"):
        return ()
    try:
        sizes = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of layer sizes, e.g. 128,64") from None
    if any(s < 1 for s in sizes):
        raise click.BadParameter(f"layer sizes must be positive, got {value!r}")
    return sizes
