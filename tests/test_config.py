"""The JIT settings live in one place: every kernel decorator takes its flags from betavae_np.config."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_config_fastmath_keeps_nan_inf_semantics_and_accurate_functions():
    assert not {"nnan", "ninf", "afn", "fast"} & set(config.FASTMATH)
    assert config.JIT_SERIAL["fastmath"] == set(config.FASTMATH)


def test_config_every_flag_set_caches_like_the_serial_one():
    for flags in (config.JIT_SERIAL, config.JIT_EXACT, config.JIT_PARALLEL, config.JIT_EXACT_PARALLEL):
        assert flags["cache"] is config.CACHE
    assert config.JIT_PARALLEL["parallel"] is True and config.JIT_EXACT_PARALLEL["parallel"] is True
    assert config.JIT_EXACT["fastmath"] is False and config.JIT_EXACT_PARALLEL["fastmath"] is False
