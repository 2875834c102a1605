"""The three rings: the core imports neither Twisted nor watchdog.

Every module directly under ``authd/`` except the entry points (``cli.py``,
``__main__.py``) must stay free of Twisted and watchdog.  Checked two ways: the
source's import statements (AST, including imports inside functions), and what
importing those modules actually loads into a fresh interpreter.  Besides, the
pure core never reaches into the adapters or the command line; the ``*_cli.py``
modules are subcommands of ``cli.py`` and may import it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "authd"
ENTRY_POINTS = {"cli.py", "__main__.py"}
FORBIDDEN = ("twisted", "watchdog", "zope")
CORE = sorted(p for p in PACKAGE.glob("*.py") if p.name not in ENTRY_POINTS)


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            # importlib.import_module("twisted...") would dodge the statement check.
            if node.args and isinstance(node.args[0], ast.Constant):
                found.append(str(node.args[0].value))
    return found


def test_core_modules_exist() -> None:
    names = {p.name for p in CORE}
    assert {"engine.py", "query.py", "render.py", "wire.py", "zone.py", "snapshot.py"} <= names


@pytest.mark.parametrize("path", CORE, ids=[p.name for p in CORE])
def test_core_module_does_not_import_io_libraries(path: Path) -> None:
    bad = [m for m in _imports(path) if m.split(".")[0] in FORBIDDEN]
    assert bad == [], f"{path.name} imports {bad}"


PURE = [p for p in CORE if not p.stem.endswith("_cli")]  # *_cli.py: subcommands of cli.py


@pytest.mark.parametrize("path", PURE, ids=[p.name for p in PURE])
def test_core_module_does_not_import_adapters_or_cli(path: Path) -> None:
    bad = [m for m in _imports(path) if m.startswith(("authd.adapters", "authd.cli"))]
    assert bad == [], f"{path.name} imports {bad}"


@pytest.mark.timeout(60)
def test_importing_the_core_loads_no_io_library() -> None:
    modules = [f"authd.{p.stem}" for p in CORE if p.stem != "__init__"]
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(n for n in sys.modules if n.split('.')[0] in {FORBIDDEN!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout) == []
