"""The JIT settings live in one place: every kernel decorator takes its flags from betavae_np.config."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from betavae_np import config

PACKAGE = Path(__file__).resolve().parents[1] / "betavae_np"
DECORATOR = re.compile(r"^\s*@(?:numba\.)?(?:njit|jit|vectorize|guvectorize|stencil)\b(.*)")


def _decorators():
    for path in sorted(PACKAGE.rglob("*.py")):
        for no, line in enumerate(path.read_text().splitlines(), 1):
            m = DECORATOR.search(line)
            if m:
                yield f"{path.relative_to(PACKAGE)}:{no}", m.group(1).strip()


def test_config_every_kernel_uses_the_shared_flags():
    found = list(_decorators())
    assert len(found) >= 10, "expected the package's kernels to be found"
    bad = [(where, args) for where, args in found if not re.fullmatch(r"\(\*\*JIT_(SERIAL|EXACT|PARALLEL|EXACT_PARALLEL)\)", args)]
    assert not bad, f"kernels with their own Numba flags (use **config.JIT_*): {bad}"


def _dispatchers():
    """Every compiled kernel of the package, as Numba sees it (not as config.py spells it)."""
    from numba.core.registry import CPUDispatcher

    import betavae_np

    found = {}
    for info in pkgutil.walk_packages(betavae_np.__path__, "betavae_np."):
        if info.name.endswith("__main__"):
            continue
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == mod.__name__:
                found[f"{mod.__name__}.{name}"] = obj
    return found


def test_config_compiled_kernels_keep_nan_inf_semantics_and_are_cached():
    kernels = _dispatchers()
    assert len(kernels) >= 10, "expected the package's kernels to be found"
    for name, disp in kernels.items():
        fm = disp.targetoptions.get("fastmath") or set()
        fm = set(fm) if not isinstance(fm, bool) else ({"fast"} if fm else set())
        assert not {"nnan", "ninf", "afn", "fast"} & fm, f"{name} compiled with {fm}"
        # caching on (the default) means a real on-disk cache behind every kernel
        assert (type(disp._cache).__name__ != "NullCache") is config.CACHE, name


def test_config_flags_keep_isfinite_guards_working_in_compiled_code():
    """A NaN/inf guard compiled with the shared fast-math flags still sees NaN and inf."""
    import numba

    @numba.njit(**dict(config.JIT_SERIAL, cache=False))
    def n_finite(a):
        n = 0
        for i in range(a.shape[0]):
            if np.isfinite(a[i]):
                n += 1
        return n

    @numba.njit(**dict(config.JIT_SERIAL, cache=False))
    def any_non_finite(a):                   # the O(n) idiom of _kernels/encode.py: x * 0.0 is NaN
        chk = 0.0                            # for NaN and inf, and the sum carries it
        for i in range(a.shape[0]):
            chk += a[i] * 0.0
        return not np.isfinite(chk)

    assert n_finite(np.array([1.0, np.nan, np.inf, -np.inf, 2.0])) == 2
    for bad in (np.nan, np.inf, -np.inf):
        for dtype in (np.float32, np.float64):
            a = np.ones(7, dtype)
            a[3] = bad
            assert any_non_finite(a), (bad, dtype)
    assert not any_non_finite(np.ones(7))


def test_config_no_cache_env_turns_every_kernel_cache_off():
    code = ("import importlib, pkgutil, betavae_np\n"
            "from numba.core.registry import CPUDispatcher\n"
            "kinds = set()\n"
            "for i in pkgutil.walk_packages(betavae_np.__path__, 'betavae_np.'):\n"
            "    if i.name.endswith('__main__'): continue\n"
            "    m = importlib.import_module(i.name)\n"
            "    kinds |= {type(v._cache).__name__ for v in vars(m).values() if isinstance(v, CPUDispatcher)}\n"
            "print(sorted(kinds))\n")
    env = dict(os.environ, BETAVAE_NP_NO_CACHE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['NullCache']", out.stdout + out.stderr
