"""What every ``authd`` subcommand shares: loading a config, exit codes,
printing an error as one line, and pausing the cyclic GC for a one-shot run.

Invariant: subcommand modules import these helpers from here, never from
``authd.cli`` (the package imports them to build the parser: no cycle).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from authd.config import Config, default_config, load_config

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

#: The handler a subcommand stores with ``set_defaults(func=...)``.
Handler = Callable[[argparse.Namespace], int]
#: What ``register`` functions receive: ``ArgumentParser.add_subparsers()``.
Subparsers = argparse._SubParsersAction  # type: ignore[type-arg]


def load_host_config(path: str | None) -> Config:
    """The config at *path* (default: the bundled one), with ``localhost`` and
    ``localnets`` meaning this host's interfaces (read locally, no traffic)."""
    from authd.adapters.hostinfo import gather_host_info

    host = gather_host_info()
    return load_config(path, host) if path is not None else default_config(host)


def error(prog: str, message: object) -> None:
    """One line on stderr: ``prog: message``."""
    print(f"{prog}: {message}", file=sys.stderr)


__all__ = [
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXIT_USAGE",
    "Handler",
    "Subparsers",
    "error",
    "load_host_config",
]
