"""BLAS thread count for a block of work: :func:`blas_threads` (no dependency beyond ctypes).

The training step multiplies small matrices (batch 32 x a few hundred); for them OpenBLAS's
second thread gives nothing back (and stalls the step when a neighbour holds the other core),
while from batch 64 up two threads win.
:func:`fit` therefore sets the count once for the whole run (:func:`threads_for_batch`) and
restores it afterwards - never per matmul call.

Notes
-----
* Only numpy's own OpenBLAS is controlled: the library is found among the loaded shared objects
  (``/proc/self/maps`` on Linux; ``numpy.show_config()`` names it) and its
  ``*openblas_set_num_threads*`` / ``*openblas_get_num_threads*`` symbols (``scipy_openblas``
  builds suffix them, e.g. ``scipy_openblas_set_num_threads64_``) are called through ctypes.
  With any other BLAS, another OS, or missing symbols everything here is a no-op.
* An explicit ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS`` in the environment is the user's
  choice and is never overridden.
* The thread count is process-global: another thread doing BLAS work during ``fit`` sees it too.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

__all__ = ["blas_threads", "threads_for_batch", "SINGLE_THREAD_MAX_BATCH"]

#: Largest batch trained with one BLAS thread. Measured on the standard workload (2-core EPYC VM,
#: steady-state step, separate processes): batch 32 one thread 176-178 us vs two 178-182 us, and
#: one thread is not slowed when a neighbour takes the other core; batch 64 two threads already
#: win (280-286 vs 293-298 us), batch 128 by ~18%.
SINGLE_THREAD_MAX_BATCH = 32

_USER_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
_api = None          # (get, set) ctypes functions, False when unavailable, None before lookup


def _find_api():
    """The (get, set) thread-count functions of numpy's OpenBLAS, or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split(None, 5)[5].strip() for line in f if "openblas" in line.lower()
                     and len(line.split(None, 5)) == 6}
    except OSError:
        return None
    for path in sorted(paths):
        if not path.startswith("/") or not os.path.exists(path):
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"),
                               ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                set_.restype, set_.argtypes = None, [ctypes.c_int]
                return get, set_
    return None


def _get_api():
    global _api
    if _api is None:
        import numpy  # noqa: F401  (make sure numpy's BLAS is loaded before looking for it)
        _api = _find_api() or False
    return _api or None


def get_threads() -> int | None:
    """Current OpenBLAS thread count, or None when numpy's BLAS cannot be controlled."""
    api = _get_api()
    return None if api is None else int(api[0]())


def threads_for_batch(batch_size: int) -> int | None:
    """The BLAS thread count :func:`fit` uses for ``batch_size`` (1 for small batches), or None
    to leave the current setting alone (large batches)."""
    return 1 if batch_size <= SINGLE_THREAD_MAX_BATCH else None


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Run the block with ``n`` OpenBLAS threads, then restore the previous count.

    A no-op when ``n`` is None, when the user set ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``,
    or when numpy's OpenBLAS is not found.
    """
    api = None
    if n is not None and not any(os.environ.get(k) for k in _USER_ENV):
        api = _get_api()
    if api is None:
        yield
        return
    get, set_ = api
    before = int(get())
    if before == n:
        yield
        return
    set_(int(n))
    try:
        yield
    finally:
        set_(before)
