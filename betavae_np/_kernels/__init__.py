"""Numba kernels: pure functions over arrays; the Python API that validates and allocates lives elsewhere."""
