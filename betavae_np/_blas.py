"""numpy's BLAS, seen through ctypes: the thread count for a block of work (:func:`blas_threads`)
and the CBLAS gemm addresses compiled kernels call (:func:`find_gemm`). No dependency beyond
ctypes.

The training step multiplies small matrices (batch 32 x a few hundred). The compiled engine
splits a batch into row chunks on Numba's threads and wants single-threaded BLAS; on the numpy
engine OpenBLAS's second thread gives nothing back at batch 32 (and stalls the step when a
neighbour holds the other core), while from batch 64 up two threads win.
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
  cap: never exceeded, but a block may run with fewer threads (the compiled engine needs one
  BLAS thread per chunk thread, whatever the cap).
* The thread count is process-global: another thread doing BLAS work during ``fit`` sees it too.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

__all__ = ["blas_threads", "threads_for_batch", "find_gemm", "SINGLE_THREAD_MAX_BATCH"]

#: Largest batch trained with one BLAS thread. Measured on the standard workload (2-core EPYC VM,
#: steady-state step, separate processes): batch 32 one thread 176-178 us vs two 178-182 us, and
#: one thread is not slowed when a neighbour takes the other core; batch 64 two threads already
#: win (280-286 vs 293-298 us), batch 128 by ~18%.
SINGLE_THREAD_MAX_BATCH = 32

_USER_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
_api = None          # (get, set) ctypes functions, False when unavailable, None before lookup


def _numpy_blas_libs():
    """ctypes handles of the loaded shared objects whose path names a BLAS (Linux only)."""
    import numpy  # noqa: F401  (make sure numpy's BLAS is loaded before looking for it)
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split(None, 5)[5].strip() for line in f
                     if len(line.split(None, 5)) == 6 and "blas" in line.lower()}
    except OSError:
        return
    # numpy's own library first: a BLAS that something else loaded is never preferred
    for path in sorted(paths, key=lambda p: ("numpy" not in p, p)):
        if not path.startswith("/") or not os.path.exists(path):
            continue
        try:
            yield ctypes.CDLL(path)
        except OSError:
            continue


def find_gemm() -> tuple[int, int, int] | None:
    """Addresses of numpy's ``cblas_sgemm`` and ``cblas_dgemm`` and the BLAS integer width.

    Returns
    -------
    (sgemm, dgemm, bits) or None
        Function addresses and 32 (LP64) or 64 (ILP64, e.g. ``scipy_cblas_sgemm64_``); None when
        no loaded BLAS exports both (another OS, or a BLAS without the CBLAS interface), or when
        ``BETAVAE_NP_BLAS=numpy`` asks for numpy's ``matmul`` instead.
    """
    if os.environ.get("BETAVAE_NP_BLAS", "").lower() == "numpy":
        return None
    for lib in _numpy_blas_libs():
        for prefix, suffix, bits in (("scipy_cblas_", "64_", 64), ("cblas_", "64_", 64),
                                     ("scipy_cblas_", "", 32), ("cblas_", "", 32)):
            s = getattr(lib, f"{prefix}sgemm{suffix}", None)
            d = getattr(lib, f"{prefix}dgemm{suffix}", None)
            if s is not None and d is not None:
                return (ctypes.cast(s, ctypes.c_void_p).value,
                        ctypes.cast(d, ctypes.c_void_p).value, bits)
    return None


def _find_api():
    """The (get, set) thread-count functions of numpy's OpenBLAS, or None."""
    for lib in _numpy_blas_libs():
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
        _api = _find_api() or False
    return _api or None


def get_threads() -> int | None:
    """Current OpenBLAS thread count, or None when numpy's BLAS cannot be controlled."""
    api = _get_api()
    return None if api is None else int(api[0]())


def threads_for_batch(batch_size: int, engine: str = "numpy") -> int | None:
    """The BLAS thread count :func:`fit` uses, or None to leave the current setting alone.

    The compiled engine always wants 1: it runs its row chunks on Numba's threads, each calling
    BLAS on its own rows (BLAS's threads would oversubscribe the cores). The numpy engine wants
    1 for small batches and the current setting for large ones.
    """
    if engine == "compiled":
        return 1
    return 1 if batch_size <= SINGLE_THREAD_MAX_BATCH else None


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Run the block with ``n`` OpenBLAS threads, then restore the previous count.

    A no-op when ``n`` is None, when numpy's OpenBLAS is not found, or when ``n`` is above the
    current count and the user set ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` (a cap).
    """
    api = None if n is None else _get_api()
    if api is None:
        yield
        return
    get, set_ = api
    before = int(get())
    capped = any(os.environ.get(k) for k in _USER_ENV)
    if before == n or (capped and n > before):
        yield
        return
    set_(int(n))
    try:
        yield
    finally:
        set_(before)
