"""Input validation of the model's allocating entry points (one sentence per error)."""

from __future__ import annotations

import math

import numpy as np

from ..exceptions import ConfigError, InputError

__all__ = ["as_rows", "as_vector", "as_beta"]


def _as_float(name: str, a: object, dtype: np.dtype) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind != "f":
        raise InputError(f"{name} must be a floating-point array, got dtype {a.dtype}.")
    a = np.ascontiguousarray(a, dtype=dtype)
    if not np.isfinite(a).all():
        raise InputError(f"{name} contains NaN or infinite values; clean the data first.")
    return a


def as_rows(name: str, a: object, width: int, dtype: np.dtype) -> np.ndarray:
    """Return ``a`` as a C-contiguous (n, width) ``dtype`` array (n >= 1), or raise InputError."""
    arr = np.asarray(a)
    if arr.ndim != 2 or arr.shape[1] != width or arr.shape[0] < 1:
        raise InputError(f"{name} must have shape (n, {width}) with n >= 1, got {arr.shape}.")
    return _as_float(name, arr, dtype)


def as_vector(name: str, a: object, width: int, dtype: np.dtype) -> np.ndarray:
    """Return ``a`` as a C-contiguous (width,) array of ``dtype``, or raise InputError."""
    arr = np.asarray(a)
    if arr.shape != (width,):
        raise InputError(f"{name} must have shape ({width},), got {arr.shape}.")
    return _as_float(name, arr, dtype)


def as_beta(beta: object) -> float:
    """Return ``beta`` as a finite float >= 0, or raise ConfigError."""
    try:
        b = float(beta)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"beta must be a number >= 0, got {beta!r}.") from None
    if not math.isfinite(b) or b < 0:
        raise ConfigError(f"beta must be a finite number >= 0, got {beta!r}.")
    return b
