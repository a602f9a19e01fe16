"""Matrix products from compiled code: numpy's own CBLAS ``?gemm``, bound by symbol name.

:func:`gemm` can be called inside ``@njit`` kernels. It calls the ``cblas_sgemm`` /
``cblas_dgemm`` of the BLAS that numpy already loaded (OpenBLAS in the wheels), so a whole
forward or backward pass is one compiled call with no per-matmul Python dispatch, and no
dependency beyond numpy and numba (Numba's own ``np.dot`` in nopython mode would need SciPy).

Notes
-----
* :func:`bind` looks the two functions up (:func:`betavae_np._blas.find_gemm`) and registers
  their addresses with LLVM under fixed names (``llvmlite.binding.add_symbol``). Compiled code
  refers to those *names*, never to an address, so kernels that call :func:`gemm` are cached on
  disk like any other; the addresses are filled in when a cached kernel is linked in a new
  process. :func:`bind` must therefore run before such a kernel is first called or loaded.
* The integer width of the BLAS interface (LP64 ``int32`` or ILP64 ``int64``, as numpy's
  ``scipy_openblas64_`` builds use) is chosen by the *type* of the ``iw`` argument
  (``np.int32(0)`` or ``np.int64(0)``), so it is part of every kernel's signature: a cached
  kernel compiled for one width is never linked against a BLAS of the other.
* Pointers: :func:`ptr_at` gives the address of ``a.flat[i]`` of a C-contiguous array; the
  callers pass flat buffers plus offsets.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

__all__ = ["bind", "gemm", "ptr_at", "ROW_MAJOR", "NO_TRANS", "TRANS", "SYMBOLS"]

#: CBLAS enum values (cblas.h).
ROW_MAJOR = 101
NO_TRANS = 111
TRANS = 112

#: LLVM symbol names of (dtype, integer bits): registered by :func:`bind`.
SYMBOLS = {("float32", 32): "betavae_np_cblas_sgemm_lp64",
           ("float32", 64): "betavae_np_cblas_sgemm_ilp64",
           ("float64", 32): "betavae_np_cblas_dgemm_lp64",
           ("float64", 64): "betavae_np_cblas_dgemm_ilp64"}

_bound: int | None = None          # integer width of the bound BLAS, None before/without binding


def _external(dtype: str, bits: int) -> types.ExternalFunction:
    f = types.float32 if dtype == "float32" else types.float64
    i = types.int32 if bits == 32 else types.int64
    e = types.int32                 # CBLAS enums are C ints in both interfaces
    p = types.voidptr
    sig = types.void(e, e, e, i, i, i, f, p, i, p, i, f, p, i)
    return types.ExternalFunction(SYMBOLS[(dtype, bits)], sig)


_EXTERNAL = {key: _external(*key) for key in SYMBOLS}


def bind() -> int | None:
    """Register numpy's CBLAS gemm functions for compiled code.

    Returns
    -------
    int or None
        The BLAS integer width in bits (32 or 64), or None when numpy's CBLAS could not be found
        (then :func:`gemm` must not be called and callers use ``np.matmul``).
    """
    global _bound
    if _bound is None:
        from .._blas import find_gemm
        found = find_gemm()
        if found is None:
            _bound = 0
        else:
            import llvmlite.binding as llb
            sgemm, dgemm, bits = found
            llb.add_symbol(SYMBOLS[("float32", bits)], sgemm)
            llb.add_symbol(SYMBOLS[("float64", bits)], dgemm)
            _bound = bits
    return _bound or None


@intrinsic
def ptr_at(typingctx, arr, index):
    """``void *`` address of ``arr.flat[index]`` (``arr`` C-contiguous; ``index`` not checked)."""
    if not isinstance(arr, types.Array) or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        a = cgutils.create_struct_proxy(sig.args[0])(context, builder, value=args[0])
        idx = context.cast(builder, args[1], sig.args[1], types.intp)
        return builder.bitcast(builder.gep(a.data, [idx]), cgutils.voidptr_t)

    return types.voidptr(arr, index), codegen


def gemm(ta, tb, M, N, K, A, a_off, lda, B, b_off, ldb, C, c_off, ldc, iw):
    """Row-major ``C[c_off:] = op(A[a_off:]) @ op(B[b_off:])`` (alpha 1, beta 0); compiled only.

    Parameters
    ----------
    ta, tb : int
        :data:`NO_TRANS` or :data:`TRANS` for A and B.
    M, N, K : int
        ``op(A)`` is (M, K), ``op(B)`` (K, N), C (M, N).
    A, B, C : ndarray, C-contiguous, all float32 or all float64
        Buffers; the matrices start at element offsets ``a_off``, ``b_off``, ``c_off``. Other
        dtypes, mixed dtypes or strided layouts are a ``TypingError`` at compile time.
    lda, ldb, ldc : int
        Row strides (elements) of the stored A, B, C.
    iw : np.int32 or np.int64
        Its type selects the BLAS integer width (see module notes); its value is ignored.
    """
    raise NotImplementedError("gemm is only callable from compiled kernels")


def _check_types(A, B, C, iw, ints) -> tuple[str, int]:
    """The (dtype, integer bits) of a gemm call, or a TypingError that says what is wrong.

    BLAS reads A and B and writes C through raw pointers with C's element type: buffers of
    another dtype or a strided layout would be misread, so they are refused at compile time.
    """
    for name, a in (("A", A), ("B", B), ("C", C)):
        if not isinstance(a, types.Array):
            raise TypingError(f"gemm needs arrays for A, B and C, got {name} of type {a}.")
        if a.layout != "C":
            raise TypingError(f"gemm needs C-contiguous A, B and C (it passes raw pointers), "
                              f"got {name} with layout {a.layout!r}; pass a contiguous buffer "
                              f"and an offset.")
    dtype = str(C.dtype)
    if dtype not in ("float32", "float64"):
        raise TypingError(f"gemm needs float32 or float64 buffers, got {dtype}.")
    if not (A.dtype == B.dtype == C.dtype):
        raise TypingError(f"gemm needs A, B and C of one dtype, got {A.dtype}, {B.dtype} and "
                          f"{C.dtype}.")
    if not isinstance(iw, types.Integer) or iw.bitwidth not in (32, 64):
        raise TypingError(f"gemm's iw must be np.int32(0) or np.int64(0) (it selects the BLAS "
                          f"integer width), got {iw}.")
    for name, t in ints:
        if not isinstance(t, types.Integer):
            raise TypingError(f"gemm's {name} must be an integer, got {t}.")
    return dtype, iw.bitwidth


@overload(gemm)
def _gemm_overload(ta, tb, M, N, K, A, a_off, lda, B, b_off, ldb, C, c_off, ldc, iw):
    ints = (("ta", ta), ("tb", tb), ("M", M), ("N", N), ("K", K), ("a_off", a_off),
            ("lda", lda), ("b_off", b_off), ("ldb", ldb), ("c_off", c_off), ("ldc", ldc))
    dtype, bits = _check_types(A, B, C, iw, ints)
    fn = _EXTERNAL[(dtype, bits)]
    ity = np.int32 if bits == 32 else np.int64
    fty = np.float32 if dtype == "float32" else np.float64

    def impl(ta, tb, M, N, K, A, a_off, lda, B, b_off, ldb, C, c_off, ldc, iw):
        fn(np.int32(ROW_MAJOR), np.int32(ta), np.int32(tb), ity(M), ity(N), ity(K), fty(1.0),
           ptr_at(A, a_off), ity(lda), ptr_at(B, b_off), ity(ldb), fty(0.0), ptr_at(C, c_off),
           ity(ldc))

    return impl
