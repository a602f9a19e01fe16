"""The one place for JIT settings and the default dtype.

Every ``@njit`` in the package takes its flags from here (``tests/test_config.py`` greps for
violations), so that the fastmath set, caching and parallelism are decided once.

Notes
-----
* ``FASTMATH`` leaves out ``nnan`` and ``ninf`` so that ``np.isfinite`` guards inside kernels
  keep working, and ``afn`` so that ``exp``/``log`` keep full accuracy (gradient checks in float64
  compare against finite differences at ~1e-7).
* Every kernel is cached on disk, parallel ones included: with Numba 0.68 a ``parallel=True``
  kernel cached under one thread count loads and gives the same results under another
  (``NUMBA_NUM_THREADS`` 1, 2 and 4 checked; ``tests/test_step.py`` runs such a load).
  Kernels never take function arguments (those would defeat the cache).
* ``BETAVAE_NP_NO_CACHE=1`` turns the on-disk kernel cache off (useful when the package directory
  and ``NUMBA_CACHE_DIR`` are both read-only).
"""

from __future__ import annotations

import os

#: Fast-math flags: reassociation and contraction for SIMD, but NaN/Inf semantics kept.
FASTMATH = frozenset({"nsz", "arcp", "contract", "reassoc"})

#: Whether compiled kernels are cached on disk (second runs do not recompile).
CACHE = os.environ.get("BETAVAE_NP_NO_CACHE", "") not in ("1", "true", "yes")

#: Flags for serial, cacheable kernels: ``@njit(**JIT_SERIAL)``.
JIT_SERIAL = dict(fastmath=set(FASTMATH), cache=CACHE, nogil=True, error_model="numpy")

#: Flags for kernels that need exact IEEE semantics (reductions we compare bit for bit).
JIT_EXACT = dict(fastmath=False, cache=CACHE, nogil=True, error_model="numpy")

#: Flags for parallel kernels: ``@njit(**JIT_PARALLEL)``.
JIT_PARALLEL = dict(fastmath=set(FASTMATH), cache=CACHE, nogil=True, parallel=True,
                    error_model="numpy")

#: Exact IEEE semantics in parallel (row-independent loops whose results must equal the serial
#: kernels bit for bit, e.g. the batch window transform).
JIT_EXACT_PARALLEL = dict(fastmath=False, cache=CACHE, nogil=True, parallel=True, error_model="numpy")

#: The default floating dtype of models and windows.
DEFAULT_DTYPE = "float32"

#: The dtypes a model may use.
DTYPES = ("float32", "float64")
