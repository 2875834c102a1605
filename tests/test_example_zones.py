"""The zone files we ship and test with are valid for BIND, Knot DNS and NSD too.

``zones/`` is what README points users at, so it must load in any server;
``tests/zones/`` must load in the peers of the differential tests.  NSD 4 and
Knot 3 do not read BIND's ``$GENERATE``, so they check a copy expanded by
``named-compilezone`` (as the differential feeds them).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.peers import REPO_ROOT, require_binary

CHECK_TIMEOUT = 30  # seconds for one checker run
ZONE_FILES = sorted((REPO_ROOT / "zones").glob("*.zone")) + sorted(
    (REPO_ROOT / "tests" / "zones").glob("*.zone")
)


def _origin(path: Path) -> str:
    return path.name.removesuffix(".zone")


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False
    )


def _expanded(path: Path, tmp_path: Path) -> Path:
    flat = tmp_path / f"{path.name}.flat"
    done = _run(
        [require_binary("named-compilezone"), "-q", "-s", "full", "-o", str(flat)]
        + [_origin(path), path.name],
        path.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return flat


@pytest.mark.parametrize("path", ZONE_FILES, ids=_origin)
def test_bind_accepts(path: Path) -> None:
    done = _run([require_binary("named-checkzone"), _origin(path), path.name], path.parent)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", ZONE_FILES, ids=_origin)
def test_knot_accepts(path: Path, tmp_path: Path) -> None:
    flat = _expanded(path, tmp_path)
    done = _run([require_binary("kzonecheck"), "-o", _origin(path), str(flat)], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", ZONE_FILES, ids=_origin)
def test_nsd_accepts(path: Path, tmp_path: Path) -> None:
    flat = _expanded(path, tmp_path)
    done = _run([require_binary("nsd-checkzone"), _origin(path), str(flat)], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_com_uses_include_and_generate() -> None:
    # The bundled zone is the showcase for both directives; keep them in it.
    text = (REPO_ROOT / "zones" / "example.com.zone").read_text()
    assert "\n$INCLUDE example.com.inc" in text
    assert "\n$GENERATE " in text
