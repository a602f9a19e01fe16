"""Shared test configuration: hypothesis profiles and common fixtures.

Profiles: ``dev`` (default, small and fast) and ``ci`` (more examples), chosen with the
``HYPOTHESIS_PROFILE`` environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
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

#: ``../shared`` beside the checkout (absent on a user's machine).
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """The development data folder; tests that need it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present (development data only)")
    return SHARED
