"""The three rings: the core imports no I/O library, toggles no process state, writes nothing.

The core is every module directly under ``authd/`` except the entry point
(``__main__.py``) and the command line (``cli*``, ``*_cli.py``,
``lint_report.py``: moving to ``authd/cli/``).  Checked two ways: the source
(AST, including imports inside functions), and what importing the core
actually loads into a fresh interpreter.  The source check forbids:

* importing Twisted, watchdog, zope (I/O frameworks), ``gc`` (process state),
  ``time`` (a clock), ``threading`` or ``subprocess``;
* importing the outer rings (``authd.adapters``, ``authd.cli``);
* writing files: ``open`` with a mode that writes, ``os.replace``/``rename``/
  ``fsync``/``makedirs``/``mkdir``/``remove``/``unlink`` (and their kin),
  ``Path.write_text``/``write_bytes``/``mkdir``/``unlink``/..., any ``shutil``.

Reading zone and key files is fine.  ``check_source`` is the checker; a test
plants violations in small sources to show it catches them.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "authd"
FORBIDDEN = ("twisted", "watchdog", "zope", "gc", "time", "threading", "subprocess", "shutil")
OUTER_RINGS = ("authd.adapters", "authd.cli")
# os functions that change the file system (or the process's view of it).
OS_READ_FLAGS = frozenset({"O_RDONLY", "O_NONBLOCK", "O_CLOEXEC", "O_NOFOLLOW"})
OS_WRITES = frozenset(
    {
        "replace",
        "rename",
        "renames",
        "fsync",
        "fdatasync",
        "makedirs",
        "mkdir",
        "remove",
        "removedirs",
        "rmdir",
        "unlink",
        "truncate",
        "ftruncate",
        "write",
        "link",
        "symlink",
        "chmod",
        "chown",
        "utime",
        "mkfifo",
    }
)
# pathlib.Path methods that write; called on anything, they are suspect in the core
# (not rename/replace: str.replace and dataclasses.replace are everywhere).
PATH_WRITES = frozenset(
    {
        "write_text",
        "write_bytes",
        "mkdir",
        "unlink",
        "rmdir",
        "touch",
        "symlink_to",
        "hardlink_to",
    }
)
WRITE_MODE_LETTERS = frozenset("wax+")


def is_core(path: Path) -> bool:
    """Whether *path* (a module directly under ``authd/``) belongs to the pure core."""
    name = path.name
    if name == "__main__.py" or name == "lint_report.py":
        return False
    return not (name.startswith("cli") or path.stem.endswith("_cli"))


CORE = sorted(p for p in PACKAGE.glob("*.py") if is_core(p))


def _imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level == 0:
                found.append(node.module)
            elif node.level == 1:
                found.append(f"authd.{node.module}")  # from .adapters import x
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            found.extend(f"authd.{alias.name}" for alias in node.names)  # from . import cli
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            # importlib.import_module("twisted...") would dodge the statement check.
            if node.args and isinstance(node.args[0], ast.Constant):
                found.append(str(node.args[0].value))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            if node.args and isinstance(node.args[0], ast.Constant):
                found.append(str(node.args[0].value))
    return found


def _mode(call: ast.Call, position: int) -> str | None:
    """The mode of an ``open``-like *call* (positional at *position* or ``mode=``):
    "r" when absent, None when it is not a literal."""
    mode: ast.expr | None = call.args[position] if len(call.args) > position else None
    for kw in call.keywords:
        if kw.arg == "mode":
            mode = kw.value
    if mode is None:
        return "r"
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return mode.value
    return None


def _writes(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            found.extend(f"from os import {a.name}" for a in node.names if a.name in OS_WRITES)
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        where = f"line {node.lineno}"
        if isinstance(func, ast.Name):
            if func.id == "open":
                mode = _mode(node, 1)
            else:
                continue
        elif isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else None
            if owner == "os" and func.attr in OS_WRITES:
                found.append(f"{where}: os.{func.attr}")
                continue
            if owner == "os" and func.attr == "open":
                # os.open reads only when its flags are literally O_RDONLY with
                # harmless modifiers (O_NONBLOCK: a FIFO must not block).
                flags = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
                flags.discard("open")
                if not flags or not flags <= OS_READ_FLAGS:
                    found.append(f"{where}: os.open with flags other than {sorted(OS_READ_FLAGS)}")
                continue
            if owner == "shutil":
                found.append(f"{where}: shutil.{func.attr}")
                continue
            if func.attr in PATH_WRITES:
                found.append(f"{where}: .{func.attr}()")
                continue
            if func.attr != "open":
                continue
            # io.open(path, mode) like open(); Path(...).open(mode) takes the mode first.
            mode = _mode(node, 1 if owner in ("io", "builtins", "codecs") else 0)
        else:
            continue
        if mode is None:
            found.append(f"{where}: open with a mode that is not a literal")
        elif WRITE_MODE_LETTERS & set(mode):
            found.append(f"{where}: open(..., {mode!r})")
    return found


def check_source(source: str, filename: str = "<core>") -> list[str]:
    """Every purity violation in the module *source*, as readable lines ([] when pure)."""
    tree = ast.parse(source, filename)
    problems = []
    for module in _imports(tree):
        if module.split(".")[0] in FORBIDDEN:
            problems.append(f"imports {module}")
        if module.startswith(OUTER_RINGS):
            problems.append(f"imports {module} (an outer ring)")
    problems.extend(f"writes: {w}" for w in _writes(tree))
    return problems


def test_core_modules_exist() -> None:
    names = {p.name for p in CORE}
    assert {
        "engine.py",
        "query.py",
        "render.py",
        "wire.py",
        "zone.py",
        "snapshot.py",
        "build.py",
        "journal.py",
    } <= names
    assert not names & {"cli.py", "__main__.py", "lint_cli.py", "lint_report.py", "ctl_cli.py"}


@pytest.mark.parametrize("path", CORE, ids=[p.name for p in CORE])
def test_core_module_is_pure(path: Path) -> None:
    assert check_source(path.read_text(), str(path)) == [], path.name


@pytest.mark.parametrize(
    "source",
    [
        "import twisted.internet.reactor",
        "from watchdog.observers import Observer",
        "import zope.interface",
        "import gc",
        "import time",
        "from time import monotonic",
        "import threading",
        "import subprocess",
        "def f():\n    import gc\n    gc.disable()",
        "import importlib\nimportlib.import_module('twisted.internet')",
        "__import__('time')",
        "from authd.adapters.state import write_journal",
        "from authd.adapters import state",
        "from .adapters import state",
        "from . import cli",
        "import authd.cli",
        "open(p, 'w')",
        "open(p, 'wb')",
        "open(p, 'a')",
        "open(p, 'x')",
        "open(p, 'r+b')",
        "open(p, mode='ab')",
        "open(p, m)",
        "with open(p, 'w', encoding='utf-8') as f:\n    f.write('x')",
        "Path(p).open('w')",
        "import os\nos.replace(a, b)",
        "import os\nos.rename(a, b)",
        "import os\nos.fsync(fd)",
        "import os\nos.makedirs(d, exist_ok=True)",
        "import os\nos.mkdir(d)",
        "import os\nos.remove(p)",
        "import os\nos.unlink(p)",
        "import os\nos.open(p, os.O_WRONLY | os.O_CREAT)",
        "import os\nos.open(p, os.O_RDWR)",
        "import os\nos.open(p, flags)",
        "Path(p).write_text('x')",
        "Path(p).write_bytes(b'x')",
        "Path(p).mkdir()",
        "Path(p).unlink()",
        "import shutil\nshutil.copy(a, b)",
        "import shutil",
        "from os import replace",
    ],
)
def test_purity_check_catches_a_planted_violation(source: str) -> None:
    assert check_source(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "open(p)",
        "open(p, 'r')",
        "open(p, 'rb')",
        "open(p, encoding='utf-8-sig')",
        "import os\nos.open(p, os.O_RDONLY | os.O_NONBLOCK)",
        "Path(p).read_text()",
        "import os\nos.path.exists(p)",
        "import datetime\nimport hashlib\nimport dns.name",
        "from authd.journal import Journal",
        "d = {}\nd.update(x)",
        "'a.b'.replace('.', '-')",
        "import dataclasses\ndataclasses.replace(x, a=1)",
    ],
)
def test_purity_check_allows_reading(source: str) -> None:
    assert check_source(source) == []


@pytest.mark.timeout(60)
def test_importing_the_core_loads_no_io_library() -> None:
    modules = [f"authd.{p.stem}" for p in CORE if p.stem != "__init__"]
    frameworks = ("twisted", "watchdog", "zope")
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(n for n in sys.modules if n.split('.')[0] in {frameworks!r}"
        " or n.startswith(('authd.adapters', 'authd.cli')))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout) == []


def test_readme_design_names_every_module() -> None:
    """README's "Design" lists each module of the three rings and the harness, and no other."""
    readme = (PACKAGE.parent / "README.md").read_text()
    block = readme.split("\n## Design\n", 1)[1].split("```", 2)[1]
    listed: set[str] = set()
    folder = ""
    for line in block.splitlines():
        if not line.strip():
            continue
        name = line.split()[0]
        if name.endswith("/"):
            folder = name
        else:
            listed.add(folder + name)
    root = PACKAGE.parent
    modules = {
        str(p.relative_to(root))
        for d in ("authd", "authd/adapters", "authd/cli", "harness")
        for p in (root / d).glob("*.py")
        if p.name != "__main__.py" and not (p.name == "__init__.py" and d != "authd/cli")
    }
    assert listed == modules
