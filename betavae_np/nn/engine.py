"""Which training engine runs a workspace, and whether its chunks run in parallel.

Two engines compute the same passes (:mod:`betavae_np.nn.workspace`):

* ``"compiled"`` (the default when available): one compiled call per forward or backward pass,
  matrix products through numpy's own CBLAS called from Numba (:mod:`betavae_np._kernels.gemm`),
  large batches split into row chunks on two threads (:mod:`betavae_np._kernels.step`).
* ``"numpy"``: ``np.matmul`` per layer plus compiled elementwise kernels. Used when numpy's CBLAS
  cannot be found (another OS or BLAS build) or when ``BETAVAE_NP_ENGINE=numpy`` asks for it.

Notes
-----
Chunks run under Numba's ``prange`` only when its threading layer launches cheaply: the
``workqueue`` layer (chosen when neither TBB nor OpenMP is available) costs ~130 us per launch,
more than the split saves, so after the first parallel call reveals it the sequential kernels
(bit-identical results) are used instead; likewise with a single Numba thread.
"""

from __future__ import annotations

import os

import numpy as np

from ..exceptions import ConfigError

__all__ = ["ENGINES", "compiled_available", "resolve", "blas_int_type", "parallel_chunks",
           "note_parallel_call"]

ENGINES = ("auto", "compiled", "numpy")

_parallel: bool | None = None      # None until the first parallel call has shown the layer


def compiled_available() -> bool:
    """True when numpy's CBLAS gemm is bound for compiled code (:func:`._kernels.gemm.bind`)."""
    from .._kernels.gemm import bind
    return bind() is not None


def resolve(name: str = "auto") -> str:
    """The engine a workspace uses for ``name`` (``"auto"``: env ``BETAVAE_NP_ENGINE``, then
    ``"compiled"`` when available, else ``"numpy"``).

    Raises
    ------
    ConfigError
        Unknown name, or ``"compiled"`` asked for but not available here.
    """
    if name == "auto":
        name = os.environ.get("BETAVAE_NP_ENGINE", "auto").strip().lower() or "auto"
    if name not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {name!r}.")
    if name == "numpy":
        return name
    if compiled_available():
        return "compiled"
    if name == "compiled":
        raise ConfigError("the compiled engine needs numpy's CBLAS (OpenBLAS on Linux), which was "
                          "not found; use engine 'numpy'.")
    return "numpy"


def blas_int_type():
    """``np.int32`` or ``np.int64``: the integer type of the bound BLAS interface."""
    from .._kernels.gemm import bind
    return np.int64 if bind() == 64 else np.int32


def parallel_chunks() -> bool:
    """Whether split batches should run their chunks in parallel (see module notes)."""
    return _parallel is not False


def note_parallel_call() -> None:
    """After the first parallel call: fall back to the sequential kernels when the threading
    layer is ``workqueue`` or Numba runs one thread."""
    global _parallel
    if _parallel is None:
        import numba
        try:
            layer = numba.threading_layer()
        except ValueError:                   # no parallel region has run yet
            return
        _parallel = layer != "workqueue" and numba.get_num_threads() > 1
