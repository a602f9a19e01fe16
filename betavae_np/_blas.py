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
* Only numpy's own BLAS is used: the library that numpy's ``_multiarray_umath`` extension links
  (its ELF ``DT_NEEDED`` entries, opened with ``RTLD_NOLOAD``), never a BLAS that another
  package loaded. The gemm binding (:func:`find_gemm`) takes the integer width from the symbol
  suffix (``64_``) cross-checked with numpy's build configuration (``np.show_config``), and runs
  one product against ``np.matmul`` before it is used; any doubt is logged (logger
  ``betavae_np._blas``) and training falls back to numpy's ``matmul``.
* Thread control: numpy's OpenBLAS
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
import logging
import os
import struct

__all__ = ["blas_threads", "threads_for_batch", "find_gemm", "config_width",
           "SINGLE_THREAD_MAX_BATCH"]

_log = logging.getLogger(__name__)

#: Largest batch trained with one BLAS thread. Measured on the standard workload (2-core EPYC VM,
#: steady-state step, separate processes): batch 32 one thread 176-178 us vs two 178-182 us, and
#: one thread is not slowed when a neighbour takes the other core; batch 64 two threads already
#: win (280-286 vs 293-298 us), batch 128 by ~18%.
SINGLE_THREAD_MAX_BATCH = 32

_USER_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
_api = None          # (get, set) ctypes functions, False when unavailable, None before lookup


def _elf_needed(path: str) -> list[str]:
    """The DT_NEEDED names of a little-endian ELF64 shared object ([] when not one)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return []
            shoff, = struct.unpack_from("<Q", head, 0x28)
            shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
            f.seek(shoff)
            shdrs = f.read(shentsize * shnum)
            secs = [struct.unpack_from("<IIQQQQII", shdrs, i * shentsize) for i in range(shnum)]
            for _name, typ, _flags, _addr, off, size, link, _info in secs:
                if typ != 6:                           # SHT_DYNAMIC
                    continue
                f.seek(off)
                dyn = f.read(size)
                s_off, s_size = secs[link][4], secs[link][5]
                f.seek(s_off)
                strtab = f.read(s_size)
                names = []
                for i in range(0, len(dyn) - 15, 16):
                    tag, val = struct.unpack_from("<qQ", dyn, i)
                    if tag == 0:
                        break
                    if tag == 1:                       # DT_NEEDED
                        names.append(strtab[val:strtab.index(b"\0", val)].decode())
                return names
    except (OSError, struct.error, ValueError, IndexError):
        return []
    return []


def _numpy_blas_lib():
    """(ctypes handle, path) of the BLAS numpy's ``_multiarray_umath`` is linked against.

    The library is the one of the extension's ``DT_NEEDED`` entries that is already loaded and
    exports ``*gemm*`` (found with ``RTLD_NOLOAD``, so nothing new is loaded and a BLAS that
    another package loaded first is never taken). Returns (None, reason) when there is none
    (another OS, a statically linked BLAS).
    """
    try:                                      # importing it loads numpy's BLAS
        from numpy._core import _multiarray_umath as mu
    except ImportError:                       # numpy < 2
        from numpy.core import _multiarray_umath as mu
    path = getattr(mu, "__file__", None)
    if not path:
        return None, "numpy's _multiarray_umath has no file to inspect"
    needed = _elf_needed(path)
    if not needed:
        return None, "numpy's _multiarray_umath is not a dynamically linked ELF object"
    mode = getattr(os, "RTLD_NOLOAD", 4) | getattr(os, "RTLD_LAZY", 1)
    for name in needed:
        if "blas" not in name.lower() and "mkl" not in name.lower():
            continue
        try:
            lib = ctypes.CDLL(name, mode=mode)
        except OSError:
            continue
        return lib, name
    return None, f"none of numpy's linked libraries ({', '.join(needed)}) is a loaded BLAS"


def _numpy_blas_libs():
    """ctypes handles of numpy's own BLAS (at most one)."""
    lib, _ = _numpy_blas_lib()
    if lib is not None:
        yield lib


def config_width() -> int | None:
    """The BLAS integer width numpy's build configuration states: 64, 32, or None (not stated).

    ``np.show_config(mode="dicts")`` (numpy >= 1.26) names the BLAS and, for OpenBLAS, its
    build flags: ``USE64BITINT`` means ILP64; a name with ``ilp64``/``lp64`` says so directly.
    """
    import numpy as np
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:                         # noqa: BLE001 - older numpy or another layout
        return None
    name = str(blas.get("name", "")).lower()
    conf = str(blas.get("openblas configuration", "")).upper()
    if "ilp64" in name or "64BITINT" in conf or name.endswith("64"):
        return 64
    if "lp64" in name or ("openblas" in name and conf.startswith("OPENBLAS")):
        return 32
    return None


#: (prefix, suffix, width) of the CBLAS symbol families, most specific first.
_FAMILIES = (("scipy_cblas_", "64_", 64), ("cblas_", "64_", 64), ("scipy_cblas_", "", None),
             ("cblas_", "", None))


def _self_test(sgemm: int, dgemm: int, bits: int) -> str | None:
    """Multiply two non-square matrices at non-trivial leading dimensions through the bound
    functions (both dtypes, one transposed operand) and compare with ``np.matmul``.

    Returns None when both agree, else the reason.
    """
    import numpy as np
    ity = ctypes.c_int64 if bits == 64 else ctypes.c_int32
    rng = np.random.default_rng(12345)
    M, N, K, lda, ldb, ldc = 5, 3, 4, 7, 6, 9      # A (K, M) stored transposed; B (K, N); C (M, N)
    for name, addr, dt, ct, tol in (("sgemm", sgemm, np.float32, ctypes.c_float, 1e-5),
                                    ("dgemm", dgemm, np.float64, ctypes.c_double, 1e-12)):
        A = rng.standard_normal((K, lda)).astype(dt)
        B = rng.standard_normal((K, ldb)).astype(dt)
        C = np.full((M + 1, ldc), 7.0, dt)             # a spare row: must stay untouched
        fn = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int, ity, ity, ity, ct,
                              ctypes.c_void_p, ity, ctypes.c_void_p, ity, ct, ctypes.c_void_p,
                              ity)(addr)
        fn(101, 112, 111, M, N, K, 1.0, A.ctypes.data, lda, B.ctypes.data, ldb, 0.0,
           C.ctypes.data, ldc)                         # row-major, A transposed, B not
        ref = np.matmul(A[:, :M].T, B[:, :N])
        got = C[:M, :N]
        spare = np.concatenate([C[:M, N:].ravel(), C[M].ravel()])
        if not (np.allclose(got, ref, rtol=tol, atol=tol) and np.all(spare == 7.0)):
            return (f"the bound {name} ({bits}-bit integers) disagrees with np.matmul on a 5x4 "
                    f"by 4x3 product")
    return None


def find_gemm() -> tuple[int, int, int] | None:
    """Addresses of numpy's ``cblas_sgemm`` and ``cblas_dgemm`` and the BLAS integer width.

    Returns
    -------
    (sgemm, dgemm, bits) or None
        Function addresses and 32 (LP64) or 64 (ILP64, e.g. ``scipy_cblas_sgemm64_``). None (with
        the reason logged) when ``BETAVAE_NP_BLAS=numpy`` asks for numpy's ``matmul``, when
        numpy's own BLAS (the library its ``_multiarray_umath`` links) is not found or lacks the
        CBLAS gemm functions, when the integer width cannot be confirmed (symbol suffix and
        ``np.show_config`` disagree, or neither states it), or when a bind-time product through
        the found functions differs from ``np.matmul``.
    """
    if os.environ.get("BETAVAE_NP_BLAS", "").lower() == "numpy":
        _log.info("compiled engine off: BETAVAE_NP_BLAS=numpy asks for numpy's matmul.")
        return None
    lib, where = _numpy_blas_lib()
    if lib is None:
        _log.info("compiled engine off: %s; training uses numpy's matmul.", where)
        return None
    stated = config_width()
    for prefix, suffix, sym_bits in _FAMILIES:
        s = getattr(lib, f"{prefix}sgemm{suffix}", None)
        d = getattr(lib, f"{prefix}dgemm{suffix}", None)
        if s is None or d is None:
            continue
        sym = f"{prefix}dgemm{suffix}"
        if sym_bits is not None and stated is not None and sym_bits != stated:
            _log.warning("compiled engine off: %s in %s is %d-bit but numpy's build config says "
                         "%d-bit integers; training uses numpy's matmul.", sym, where, sym_bits,
                         stated)
            return None
        bits = sym_bits or stated
        if bits is None:
            _log.warning("compiled engine off: the integer width of %s in %s cannot be "
                         "confirmed from numpy's build config; training uses numpy's matmul.",
                         sym, where)
            return None
        sgemm = ctypes.cast(s, ctypes.c_void_p).value
        dgemm = ctypes.cast(d, ctypes.c_void_p).value
        bad = _self_test(sgemm, dgemm, bits)
        if bad is not None:
            _log.warning("compiled engine off: %s (%s); training uses numpy's matmul.", bad, where)
            return None
        _log.debug("compiled engine: %s from %s, %d-bit integers, self-test passed.", sym,
                   where, bits)
        return sgemm, dgemm, bits
    _log.info("compiled engine off: numpy's BLAS %s exports no CBLAS gemm; training uses "
              "numpy's matmul.", where)
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
