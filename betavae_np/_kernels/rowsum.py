"""A row sum in a fixed order that still runs on SIMD lanes: ``row_sum(X, r, n)``.

A fast-math reduction (``s += x[k]`` with reassociation) is vectorised by LLVM in whatever shape
its cost model picks, and a kernel inlined into two callers can be vectorised two ways: the same
sum then has different bits in the two places (a kernel loaded from the on-disk cache and the
same kernel freshly compiled were seen to differ this way). Without reassociation the sum stays
scalar (about 5x slower at 256 terms). :func:`row_sum` writes the vector code itself: the
full vectors of ``W`` terms (16 float32, 8 float64: one 512-bit register, two 256-bit ones
where that is the widest) go in turn to ``CHAINS = 4`` accumulators (vector ``v`` to
accumulator ``v mod 4``, so four adds are in flight instead of each waiting on the last), each
lane adding its terms in ``k`` order; the accumulators are combined lane-wise as
``(0 + 1) + (2 + 3)``, then halved: lanes ``i`` and ``i + W/2`` are added (``i < W/2``), and so
on down to one lane, and the tail ``k >= W floor(n / W)`` is added one by one. The order is
the same on every machine (a vector wider than the registers is split lane for lane). The
instructions carry no fast-math flags (they live in a ``JIT_EXACT`` kernel: an intrinsic inlined
into a fast-math caller would take the caller's flags), so every compilation gives the same bits.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ..config import JIT_EXACT

__all__ = ["row_sum", "row_sum_inline", "lanes_for", "CHAINS"]

#: Independent vector accumulators (vector ``v`` of ``W`` terms goes to ``v mod CHAINS``): one
#: chain would wait on the add latency at every vector; the combination below assumes 4.
CHAINS = 4


def lanes_for(dtype) -> int:
    """SIMD lanes :func:`row_sum` uses for ``dtype``: 16 for float32, 8 for float64."""
    return 16 if np.dtype(dtype) == np.float32 else 8


def row_sum(X, r, n):
    """``sum(X[r, :n])`` of a C-contiguous 2-D float32/float64 array, in the fixed order of the
    module notes (the same bits compiled or, as here from Python, in NumPy)."""
    W = lanes_for(X.dtype)
    x = X[r, :n]
    nv = n // W
    accs = [np.zeros(W, X.dtype) for _ in range(CHAINS)]
    for v in range(nv):                     # vector v into accumulator v mod CHAINS, in v order
        accs[v % CHAINS] = accs[v % CHAINS] + x[v * W:(v + 1) * W]
    lanes = (accs[0] + accs[1]) + (accs[2] + accs[3])
    while lanes.shape[0] > 1:                # halve: lane i + lane i + w
        w = lanes.shape[0] // 2
        lanes = lanes[:w] + lanes[w:]
    s = lanes[0]
    for k in range(nv * W, n):
        s = X.dtype.type(s + x[k])
    return s


@intrinsic
def _row_sum(typingctx, X, r, n):
    if not (isinstance(X, types.Array) and X.ndim == 2 and X.layout == "C"
            and X.dtype in (types.float32, types.float64)
            and isinstance(r, types.Integer) and isinstance(n, types.Integer)):
        return None
    dt = X.dtype
    W = 16 if dt == types.float32 else 8

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        intp = context.get_value_type(types.intp)
        r_ = context.cast(builder, args[1], sig.args[1], types.intp)
        n_ = context.cast(builder, args[2], sig.args[2], types.intp)
        ety = context.get_value_type(dt)
        vty = ir.VectorType(ety, W)
        row = builder.gep(ary.data, [builder.mul(r_, builder.extract_value(ary.shape, 1))])
        nvec = builder.sdiv(n_, ir.Constant(intp, W))
        zero = ir.Constant(vty, [ir.Constant(ety, 0.0)] * W)
        accs = [cgutils.alloca_once_value(builder, zero) for _ in range(CHAINS)]

        def add_vector(q, acc):              # acc += X[r, q W:(q + 1) W]
            p = builder.gep(row, [builder.mul(q, ir.Constant(intp, W))])
            v = builder.load(builder.bitcast(p, vty.as_pointer()), align=dt.bitwidth // 8)
            builder.store(builder.fadd(builder.load(acc), v), acc)

        ngroups = builder.sdiv(nvec, ir.Constant(intp, CHAINS))
        with cgutils.for_range(builder, ngroups, intp=intp) as loop:
            q0 = builder.mul(loop.index, ir.Constant(intp, CHAINS))
            for u in range(CHAINS):
                add_vector(builder.add(q0, ir.Constant(intp, u)), accs[u])
        qrest = builder.mul(ngroups, ir.Constant(intp, CHAINS))
        for u in range(CHAINS - 1):          # the last nvec mod CHAINS vectors
            q = builder.add(qrest, ir.Constant(intp, u))
            with builder.if_then(builder.icmp_signed("<", q, nvec)):
                add_vector(q, accs[u])
        av = [builder.load(a_) for a_ in accs]
        a = builder.fadd(builder.fadd(av[0], av[1]), builder.fadd(av[2], av[3]))
        i32 = ir.IntType(32)
        w = W
        while w > 1:                         # halve: lane i + lane i + w / 2
            w //= 2
            lo = builder.shuffle_vector(a, a, ir.Constant(ir.VectorType(i32, w), list(range(w))))
            hi = builder.shuffle_vector(a, a, ir.Constant(ir.VectorType(i32, w),
                                                          list(range(w, 2 * w))))
            a = builder.fadd(lo, hi)
        tot = cgutils.alloca_once_value(builder, builder.extract_element(a, ir.Constant(i32, 0)))
        start = builder.mul(nvec, ir.Constant(intp, W))
        with cgutils.for_range(builder, n_, start=start, intp=intp) as loop:
            x = builder.load(builder.gep(row, [loop.index]))
            builder.store(builder.fadd(builder.load(tot), x), tot)
        return builder.load(tot)

    return dt(X, r, n), codegen


#: The same sum inlined into its caller (no call, so no reference counting of ``X``, which costs
#: a locked add per call): ONLY for callers compiled without fast-math (``JIT_EXACT``), whose
#: flags its instructions take; other callers use :func:`row_sum`.
row_sum_inline = _row_sum


@njit(**JIT_EXACT)
def _row_sum_exact(X, r, n):  # pragma: no cover - compiled
    """The intrinsic in a function of its own without fast-math flags: Numba gives an inlined
    intrinsic's instructions the caller's flags, and reassociation would reorder the lanes."""
    return _row_sum(X, r, n)


@overload(row_sum)
def _row_sum_typed(X, r, n):
    if isinstance(X, types.Array) and X.ndim == 2 and X.layout == "C":
        return lambda X, r, n: _row_sum_exact(X, r, n)
    return None
