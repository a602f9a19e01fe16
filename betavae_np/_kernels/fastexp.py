"""An ``exp`` and a ``2**x`` that LLVM can vectorise: range reduction and a polynomial, in
float32 or float64.

Numba lowers ``math.exp`` to a libm call per element, which no loop around it can vectorise
(short of Intel's SVML). :func:`fexp` is written with operations that vectorise (multiply-add,
compare-select and an integer shift into the exponent bits), so a loop over ``exp`` in a
``@njit`` kernel runs 4 (float64) or 8 (float32) lanes at a time on AVX2, twice that with
AVX-512 (:mod:`.simd`).

Notes
-----
``exp(x) = 2**n * exp(r)`` with ``n = round(x / ln 2)`` (the round-to-nearest "shifter":
``kf = x log2(e) + 1.5 * 2**m`` holds ``n`` in its low mantissa bits, ``m`` the mantissa width)
and ``r = x - n ln 2`` in two parts (Cody & Waite 1980), ``|r| <= ln(2) / 2``; ``exp(r)`` is its
Taylor polynomial (degree 12 in float64, error below 2e-16; degree 7 in float32, below 6e-9),
and ``2**n`` is built by shifting ``n`` plus the exponent bias into the exponent field. Every
multiply-add is a fused ``llvm.fma`` (one rounding, one instruction on FMA hardware).

Range: subnormal results are flushed to 0 (``x < -708.3`` in float64, ``x < -87.3`` in float32)
and ``x > 709.4`` (float64) / ``x > 88.3`` (float32) gives ``inf`` (the last half-binade below
the overflow threshold is given up); NaN stays NaN. Within the range the result is within 3 ulp
of ``np.exp`` (``tests/test_tc_kernel.py``).

:func:`fexp2` is ``2**x`` for ``LO <= x <= HI`` (``LO, HI`` = -100, 127 in float32; -1000, 1023
in float64), 0 below ``LO`` and ``2**HI`` above it (NaN stays NaN). ``LO`` lies well above the
subnormal range: a product of a result with a factor down to ``2**-20`` stays normal (subnormal
arithmetic costs a microcode assist per instruction). The reduction is exact (``f = x - n``,
``|f| <= 1/2``) and ``2**f`` is a polynomial with ``p(0) = 1`` exactly: degree 5 in float32
(coefficients fitted for the least maximum relative error, 9e-8), the Taylor series of
``exp(f ln 2)`` to degree 13 in float64; within 2 ulp of ``np.exp2`` in ``[LO, HI]`` (tested).
:func:`exp2_shifted` is the same power for ``y - m`` with an integer ``m`` folded into the
shifter (``kf = y + (1.5 * 2**m_bits - m)``, exact): one addition rounds and one subtraction
reduces, with no clamp (the caller bounds ``y - m``). The TC-VAE rows use them where a power
below ``2**LO`` is negligible next to the own component's (about 1).

The kernels are compiled without fast-math (``JIT_EXACT``): reassociation would undo the shifter
and merge the two parts of ``ln 2``; the fused multiply-adds are explicit instead. Their instructions keep these semantics when LLVM inlines
them into a fast-math loop.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from ..config import JIT_EXACT

__all__ = ["fexp", "exp32", "exp64", "fexp2", "exp2_32", "exp2_64", "EXP2_LO", "EXP2_HI", "fma",
           "exp2_shifted", "SHIFT32", "SHIFT64"]

_SHIFT64 = 6755399441055744.0            # 1.5 * 2**52
_LN2_HI64 = 6.93147180369123816490e-01   # ln 2 in two parts (fdlibm)
_LN2_LO64 = 1.90821492927058770002e-10
_LO64 = -708.3                          # 2**n stays normal: n >= -1022
_HI64 = 709.4                           # n <= 1023

_f32 = np.float32
_SHIFT32 = _f32(12582912.0)              # 1.5 * 2**23
_LOG2E32 = _f32(1.4426950408889634)
_LN2_HI32 = _f32(0.693359375)            # 9 significant bits: n * hi is exact
_LN2_LO32 = _f32(-2.12194440e-4)
_LO32 = _f32(-87.3)                      # n >= -126
_HI32 = _f32(88.3)                       # n <= 127


@intrinsic
def _pow2_of_shifted(typingctx, kf):
    """``2**n`` from ``kf = n + 1.5 * 2**m`` (float32 or float64): ``(bits(kf) + bias) << m``."""
    if kf == types.float64:
        ity, fty, bias, m = ir.IntType(64), ir.DoubleType(), 1023, 52
    elif kf == types.float32:
        ity, fty, bias, m = ir.IntType(32), ir.FloatType(), 127, 23
    else:
        return None

    def codegen(context, builder, signature, args):
        i = builder.bitcast(args[0], ity)
        i = builder.shl(builder.add(i, ir.Constant(ity, bias)), ir.Constant(ity, m))
        return builder.bitcast(i, fty)

    return kf(kf), codegen


@intrinsic
def _pow2_of_biased(typingctx, kf):
    """``2**n`` from ``kf = n + bias + 1.5 * 2**m`` (the exponent bias already added): one shift,
    ``bits(kf) << m``."""
    if kf == types.float64:
        ity, fty, m = ir.IntType(64), ir.DoubleType(), 52
    elif kf == types.float32:
        ity, fty, m = ir.IntType(32), ir.FloatType(), 23
    else:
        return None

    def codegen(context, builder, signature, args):
        i = builder.shl(builder.bitcast(args[0], ity), ir.Constant(ity, m))
        return builder.bitcast(i, fty)

    return kf(kf), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` with one rounding (``llvm.fma``, which vectorises), for float32 or float64."""
    if not (a == b == c and a in (types.float32, types.float64)):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


#: ``fma(a, b, c) = a * b + c`` with one rounding, for kernels compiled without contraction.
fma = _fma


@njit(**JIT_EXACT)
def exp64(x):  # pragma: no cover - compiled
    """``exp(x)`` of a float64 (module notes for the range)."""
    xc = x if x > _LO64 else _LO64           # NaN -> _LO64 here, but r below stays NaN
    xc = xc if xc < _HI64 else _HI64
    kf = _fma(xc, 1.4426950408889634, _SHIFT64)
    n = kf - _SHIFT64
    r = _fma(n, -_LN2_LO64, _fma(n, -_LN2_HI64, x))
    p = 1.0 / 479001600.0
    p = _fma(p, r, 1.0 / 39916800.0)
    p = _fma(p, r, 1.0 / 3628800.0)
    p = _fma(p, r, 1.0 / 362880.0)
    p = _fma(p, r, 1.0 / 40320.0)
    p = _fma(p, r, 1.0 / 5040.0)
    p = _fma(p, r, 1.0 / 720.0)
    p = _fma(p, r, 1.0 / 120.0)
    p = _fma(p, r, 1.0 / 24.0)
    p = _fma(p, r, 1.0 / 6.0)
    p = _fma(p, r, 0.5)
    p = _fma(p, r, 1.0)
    p = _fma(p, r, 1.0)
    e = p * _pow2_of_shifted(kf)
    if x < _LO64:
        e = 0.0
    if x > _HI64:
        e = math.inf
    return e


@njit(**JIT_EXACT)
def exp32(x):  # pragma: no cover - compiled
    """``exp(x)`` of a float32, in float32 (module notes for the range)."""
    xc = x if x > _LO32 else _LO32
    xc = xc if xc < _HI32 else _HI32
    kf = _fma(xc, _LOG2E32, _SHIFT32)
    n = kf - _SHIFT32
    r = _fma(n, -_LN2_LO32, _fma(n, -_LN2_HI32, x))
    p = _f32(1.0 / 5040.0)
    p = _fma(p, r, _f32(1.0 / 720.0))
    p = _fma(p, r, _f32(1.0 / 120.0))
    p = _fma(p, r, _f32(1.0 / 24.0))
    p = _fma(p, r, _f32(1.0 / 6.0))
    p = _fma(p, r, _f32(0.5))
    p = _fma(p, r, _f32(1.0))
    p = _fma(p, r, _f32(1.0))
    e = p * _pow2_of_shifted(kf)
    if x < _LO32:
        e = _f32(0.0)
    if x > _HI32:
        e = _f32(math.inf)
    return e


_EXP2_32 = tuple(_f32(c) for c in (           # 2**f = 1 + f p(f) on |f| <= 1/2 (fitted)
    0.6931470036506653, 0.24022242426872253, 0.05550733581185341, 0.009671512991189957,
    0.001326472731307149))
_EXP2_64 = (                                   # (ln 2)**k / k!, k = 1..13
    0.6931471805599453, 0.24022650695910072, 0.05550410866482158, 0.009618129107628477,
    0.0013333558146428443, 0.0001540353039338161, 1.5252733804059841e-05,
    1.321548679014431e-06, 1.01780860092397e-07, 7.054911620801123e-09,
    4.4455382718708116e-10, 2.5678435993488206e-11, 1.3691488853904128e-12)
#: The range of :func:`fexp2`'s argument, per dtype: 0 below LO, 2**HI above HI.
EXP2_LO = {np.dtype(np.float32): -100.0, np.dtype(np.float64): -1000.0}
EXP2_HI = {np.dtype(np.float32): 127.0, np.dtype(np.float64): 1023.0}


@njit(**JIT_EXACT)
def _poly2_32(f):  # pragma: no cover - compiled
    """``2**f`` for ``|f| <= 1/2`` in float32: ``1 + f p(f)``, Horner with fused multiply-adds."""
    c = _EXP2_32
    p = _fma(c[4], f, c[3])
    p = _fma(p, f, c[2])
    p = _fma(p, f, c[1])
    p = _fma(p, f, c[0])
    p = _fma(p, f, _f32(1.0))
    return p


@njit(**JIT_EXACT)
def _poly2_64(f):  # pragma: no cover - compiled
    """``2**f`` for ``|f| <= 1/2`` in float64 (module notes)."""
    c = _EXP2_64
    p = _fma(c[12], f, c[11])
    p = _fma(p, f, c[10])
    p = _fma(p, f, c[9])
    p = _fma(p, f, c[8])
    p = _fma(p, f, c[7])
    p = _fma(p, f, c[6])
    p = _fma(p, f, c[5])
    p = _fma(p, f, c[4])
    p = _fma(p, f, c[3])
    p = _fma(p, f, c[2])
    p = _fma(p, f, c[1])
    p = _fma(p, f, c[0])
    p = _fma(p, f, 1.0)
    return p


@njit(**JIT_EXACT)
def exp2_32(x):  # pragma: no cover - compiled
    """``2**x`` of a float32 in float32: 0 below -100, ``2**127`` above 127 (module notes)."""
    xc = _f32(-100.0) if x < _f32(-100.0) else x      # written so that NaN passes through
    xc = _f32(127.0) if xc > _f32(127.0) else xc
    kf = xc + _SHIFT32                               # n = round(xc) in the low mantissa bits
    f = xc - (kf - _SHIFT32)                         # exact, |f| <= 1/2
    p = _poly2_32(f)
    e = p * _pow2_of_shifted(kf)
    return _f32(0.0) if x < _f32(-100.0) else e


@njit(**JIT_EXACT)
def exp2_64(x):  # pragma: no cover - compiled
    """``2**x`` of a float64: 0 below -1000, ``2**1023`` above 1023 (module notes)."""
    xc = -1000.0 if x < -1000.0 else x
    xc = 1023.0 if xc > 1023.0 else xc
    kf = xc + _SHIFT64
    f = xc - (kf - _SHIFT64)
    p = _poly2_64(f)
    e = p * _pow2_of_shifted(kf)
    return 0.0 if x < -1000.0 else e


#: The round-to-nearest shifters of :func:`exp2_shifted` with the exponent bias added
#: (``1.5 * 2**m + bias``, m the mantissa width): ``K = SHIFT - m`` for an integer shift ``m``.
SHIFT32 = _f32(_SHIFT32 + _f32(127.0))
SHIFT64 = _SHIFT64 + 1023.0


@njit(**JIT_EXACT)
def _exp2_shifted32(y, K, ylo):  # pragma: no cover - compiled
    kf = y + K                                       # SHIFT32 + round(y - m), biased
    f = y - (kf - K)                                 # y - m - round(y - m), exact
    p = _poly2_32(f)
    e = p * _pow2_of_biased(kf)
    return _f32(0.0) if y < ylo else e               # NaN passes through


@njit(**JIT_EXACT)
def _exp2_shifted64(y, K, ylo):  # pragma: no cover - compiled
    kf = y + K
    f = y - (kf - K)
    p = _poly2_64(f)
    e = p * _pow2_of_biased(kf)
    return 0.0 if y < ylo else e


def exp2_shifted(y, K, ylo):
    """``2**(y - m)`` for an integer shift ``m`` given as ``K = SHIFT - m`` (exact; ``SHIFT`` is
    :data:`SHIFT32` or :data:`SHIFT64`, which carry the exponent bias, so ``2**n`` is one shift
    of the sum's bits), 0 where ``y < ylo``; NaN stays NaN. The caller keeps ``y - m`` at most
    the largest normal exponent (127 in float32, 1023 in float64) and sets ``ylo >= m - 126``
    (``m - 1022``) so no result is subnormal. One addition rounds ``y - m`` (the shifter
    absorbs ``m``), and the reduction is exact: the subtraction and the clamp of :func:`fexp2`
    are not needed. Compiled code only (float32 or float64)."""
    raise NotImplementedError("exp2_shifted is for compiled kernels")


@overload(exp2_shifted)
def _exp2_shifted_typed(y, K, ylo):
    if y == types.float32:
        return lambda y, K, ylo: _exp2_shifted32(y, K, ylo)
    if y == types.float64:
        return lambda y, K, ylo: _exp2_shifted64(y, K, ylo)
    return None


def fexp2(x):
    """``2**x`` in ``x``'s own precision, 0 below LO and ``2**HI`` above HI (module notes):
    :func:`exp2_32` or :func:`exp2_64` in compiled code; called from Python, the same through
    NumPy."""
    lo, hi = (-100.0, 127.0) if isinstance(x, np.float32) else (-1000.0, 1023.0)
    return 0.0 * x if x < lo else np.exp2(np.minimum(x, hi))


@overload(fexp2)
def _fexp2_typed(x):
    if x == types.float32:
        return lambda x: exp2_32(x)
    if x == types.float64:
        return lambda x: exp2_64(x)
    return None


def fexp(x):
    """``exp(x)`` in ``x``'s own precision: :func:`exp32` for float32, :func:`exp64` for float64.

    Compiled code picks the kernel by type (an ``overload``); called from Python it is
    ``math.exp``.
    """
    return math.exp(x)


@overload(fexp)
def _fexp_typed(x):
    if x == types.float32:
        return lambda x: exp32(x)
    if x == types.float64:
        return lambda x: exp64(x)
    return None
