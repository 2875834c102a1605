"""Shared fixtures.  Server helpers live in ``peers.py`` and are imported, not injected."""

from __future__ import annotations

from pathlib import Path

import pytest
from peers import REPO_ROOT


@pytest.fixture(scope="session")
def example_zones() -> dict[str, Path]:
    """The bundled zones (``zones/*.zone``): zone name -> file."""
    return {
        path.name.removesuffix(".zone"): path
        for path in sorted((REPO_ROOT / "zones").glob("*.zone"))
    }
