"""Shared test configuration: hypothesis profiles and common fixtures.

Profiles: ``dev`` (default, small and fast) and ``ci`` (more examples), chosen with the
``HYPOTHESIS_PROFILE`` environment variable.
"""

from __future__ import annotations

import inspect
import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=False,
)
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True, print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# The CLI tests read stdout and stderr apart, as Click's CliRunner always does from 8.2 on;
# before that (the declared minimum is 8.0) it mixes them unless asked not to.
_runner_init = CliRunner.__init__
if "mix_stderr" in inspect.signature(_runner_init).parameters:
    def _separate_stderr(self, *args, mix_stderr=False, **kwargs):
        _runner_init(self, *args, mix_stderr=mix_stderr, **kwargs)

    CliRunner.__init__ = _separate_stderr

# A run started in the background by a non-interactive shell (as CI may be) inherits SIGINT
# ignored, and so would every CLI process a test starts (Python keeps an ignored SIGINT): give
# the session Python's own handler back, so that tests sending Ctrl-C see what a terminal gives.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

#: ``../shared`` beside the checkout (absent on a user's machine).
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """The development data folder; tests that need it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present (development data only)")
    return SHARED


def pytest_report_header(config):
    """Name the training engine and library versions the run uses (CI runs the suite on several)."""
    import numba
    import numpy
    import pandas

    from betavae_np.nn import engine

    return (f"betavae-np engine: {engine.resolve()} (BETAVAE_NP_ENGINE="
            f"{os.environ.get('BETAVAE_NP_ENGINE', '') or 'unset'}); numpy {numpy.__version__}, "
            f"numba {numba.__version__}, pandas {pandas.__version__}")
