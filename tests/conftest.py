"""Shared fixtures and the hypothesis profiles.

Server helpers live in ``harness/peers.py`` and are imported, not injected.

Hypothesis profiles (invariant: a CI run draws the same examples on every
machine, so a failure there can be replayed anywhere):

- ``ci``, loaded when the ``CI`` environment variable is set: derandomized
  (examples depend only on the test's source), no example database (a CI
  checkout is fresh anyway), no deadline, the failing blob printed.
- ``dev``, the default: random draws as usual, no deadline (a loaded 2-core
  machine makes timing-based failures noise, not findings).
- ``explore``, ``HYPOTHESIS_PROFILE=explore``: ten times the examples, to hunt
  (a test's own ``max_examples`` is multiplied too, by the hook below).

``HYPOTHESIS_PROFILE`` names a profile explicitly and wins over ``CI``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from harness.peers import REPO_ROOT

# `authd lab up` notes the last lab under $XDG_STATE_HOME: never the tester's own.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="authd-test-state-")

# A test's own max_examples (its calibrated budget) wins over a profile's;
# CI_EXAMPLES is what a test without one gets in CI, fixed here so that a
# hypothesis upgrade cannot move it.
CI_EXAMPLES = 100
EXPLORE_FACTOR = 10

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    database=None,
    max_examples=CI_EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "explore",
    deadline=None,
    max_examples=CI_EXAMPLES * EXPLORE_FACTOR,
    suppress_health_check=[HealthCheck.too_slow],
)


def _profile() -> str:
    if name := os.environ.get("HYPOTHESIS_PROFILE"):
        return name
    # CI=true on CI services; CI=0 or CI=false read as unset.
    return "ci" if os.environ.get("CI", "").lower() not in ("", "0", "false") else "dev"


settings.load_profile(_profile())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``explore``, multiply every property test's own budget as well."""
    if settings.get_current_profile_name() != "explore":
        return
    for item in items:
        test = getattr(item, "obj", None)
        # Where @given keeps a test's settings (read again on every call).
        own = getattr(test, "_hypothesis_internal_use_settings", None)
        if own is not None:
            scaled = settings(own, max_examples=own.max_examples * EXPLORE_FACTOR)
            test._hypothesis_internal_use_settings = scaled  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def example_zones() -> dict[str, Path]:
    """The bundled zones (``zones/*.zone``): zone name -> file."""
    return {
        path.name.removesuffix(".zone"): path
        for path in sorted((REPO_ROOT / "zones").glob("*.zone"))
    }
