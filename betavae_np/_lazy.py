"""Lazy re-exports (PEP 562) so that ``import betavae_np`` and ``betavae-np --help`` stay fast.

A package ``__init__`` lists ``name -> module`` and calls :func:`attach`; the module (and NumPy,
Numba, pandas behind it) is imported on first attribute access only.
"""

from __future__ import annotations

import importlib
from typing import Callable


def attach(package: str, exports: dict[str, str], submodules: tuple[str, ...] = ()) -> tuple[
        Callable[[str], object], Callable[[], list[str]]]:
    """Return ``__getattr__`` and ``__dir__`` for a package with lazily imported exports.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict of str to str
        Public name -> relative module that defines it (``"BetaVAE": ".nn.model"``).
    submodules : tuple of str
        Submodules reachable as attributes (``bv.data``, ``bv.schedules``).
    """

    def __getattr__(name: str) -> object:
        if name in exports:
            module = importlib.import_module(exports[name], package)
            value = getattr(module, name)
        elif name in submodules:
            value = importlib.import_module("." + name, package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import sys
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(exports) | set(submodules))

    return __getattr__, __dir__
