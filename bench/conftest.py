"""Benchmark configuration: print the hardware and library versions in the pytest header.

``hardware_info()`` is also used by ``bench/compare_torch.py`` so every published number sits next
to the machine that produced it.
"""

from __future__ import annotations

import os
import platform


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> str:
    try:
        import numpy as np
        cfg = np.show_config(mode="dicts")
        b = cfg["Build Dependencies"]["blas"]
        return f"{b.get('name', '?')} {b.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - best effort, informational only
        return "unknown"


def hardware_info() -> dict:
    """CPU model, logical cores, affinity, Python/NumPy/Numba(/torch) versions and the BLAS."""
    import numba
    import numpy as np
    info = {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "blas": _blas(),
    }
    try:
        import threadpoolctl
        pools = threadpoolctl.threadpool_info()
        info["blas_threads"] = ", ".join(f"{p.get('internal_api')}:{p.get('num_threads')}" for p in pools)
    except ImportError:
        pass
    # torch's version from its metadata: importing torch here would load its own OpenMP runtime
    # and MKL into every benchmark process, next to the threads being measured
    from importlib import metadata
    try:
        info["torch"] = metadata.version("torch")
    except metadata.PackageNotFoundError:
        info["torch"] = None
    return info


def pytest_report_header(config):
    info = hardware_info()
    return ["hardware: " + "; ".join(f"{k}={v}" for k, v in info.items())]
