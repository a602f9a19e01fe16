"""The one range validator: a number (or a whole number) inside bounds, else one ConfigError sentence.

Used by the training configuration, ``fit``, the schedules and the analysis functions, so every
"must be ..." message reads the same way. Standard library only (the CLI imports it for ``--help``).
"""

from __future__ import annotations

import math
import numbers

from .exceptions import ConfigError

__all__ = ["in_range", "describe_range", "config_error"]


def config_error(message: str, field: str | None = None) -> ConfigError:
    """A :class:`ConfigError` that remembers which setting it is about (``err.field``).

    The command line uses ``field`` to name the option the user typed.
    """
    err = ConfigError(message)
    err.field = field
    return err


def describe_range(lo=None, hi=None, *, integer: bool = False, lo_open: bool = False,
                   hi_open: bool = False) -> str:
    """``"an integer >= 1"``, ``"a number in [0, 1)"``, ``"a number > 0"``..."""
    what = "an integer" if integer else "a number"
    if lo is not None and hi is not None:
        return f"{what} in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{what} {'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{what} {'<' if hi_open else '<='} {hi:g}"
    return what


def in_range(name: str, value, lo=None, hi=None, *, integer: bool = False, lo_open: bool = False,
             hi_open: bool = False, optional: bool = False, field: str | None = None):
    """Return ``value`` (as int or float) when it lies in the range, else raise ConfigError.

    Parameters
    ----------
    name : str
        How the value is named in the message (``"batch_size"``, ``"Linear warmup"``).
    value : object
        The value to check; bools are refused (``True`` is not a count).
    lo, hi : float, optional
        Bounds, inclusive unless ``lo_open``/``hi_open``.
    integer : bool
        Require a whole number (an ``int``, a NumPy integer, or an integral float such as ``4.0``).
    optional : bool
        Let ``None`` through unchanged.
    field : str, optional
        Stored on the error as ``err.field`` (default ``name``).

    Returns
    -------
    int or float or None

    Raises
    ------
    ConfigError
        ``"<name> must be <range>, got <value>."``: non-numbers, NaN/inf, out of range.
    """
    if value is None and optional:
        return None
    rng = describe_range(lo, hi, integer=integer, lo_open=lo_open, hi_open=hi_open)
    bad = config_error(f"{name} must be {rng}, got {value!r}.", field or name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise bad
    x = float(value)
    if not math.isfinite(x):
        raise bad
    if integer:
        if x != int(x):
            raise bad
        out = int(value)
    else:
        out = x
    if lo is not None and (x <= lo if lo_open else x < lo):
        raise bad
    if hi is not None and (x >= hi if hi_open else x > hi):
        raise bad
    return out
