"""Slow, obviously correct plain-NumPy references for every kernel (``ref_*``).

Tests compare the compiled kernels (``comp``) against these (``ref``). Keep each function short and
written straight from the math; no Numba here.
"""

from __future__ import annotations

import numpy as np
