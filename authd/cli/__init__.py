"""The ``authd`` command line: one module per subcommand.

``serve`` (``authd.cli.serve``), ``check`` (``authd.cli.check``, output formats
in ``authd.cli.check_report``), ``ctl``, ``views``, ``keygen``, ``keys`` (DNSSEC
keys), ``lab``, and ``version``
(here, with ``--version``).  Shared helpers live in ``authd.cli.common``;
subcommand modules never import this package's ``__init__`` (no cycle).

Owns: building the parser, dispatching, and one behaviour every subcommand
shares: output to a closed pipe (``authd ctl status | head -3``) ends the run
quietly with exit code 141 (128 + SIGPIPE, what a shell reports for a command
killed by it), no traceback.

Exit codes: 0 fine, 1 findings or a refused config/zone, 2 usage.
"""

from __future__ import annotations

import argparse
import os
import sys

from authd import __version__
from authd.cli import check, ctl, keygen, keys, lab, serve, views
from authd.cli.common import EXIT_OK

#: 128 + SIGPIPE: the status of a command whose reader went away.
EXIT_BROKEN_PIPE = 141


def _version(args: argparse.Namespace) -> int:
    print(f"authd {__version__}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authd", description="An authoritative DNS server.")
    parser.add_argument(
        "--version", action="version", version=f"authd {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve.register(sub)
    check.register(sub)
    ctl.register(sub)
    views.register(sub)
    keygen.register(sub)
    keys.register(sub)
    lab.register(sub)
    version = sub.add_parser("version", help="print the version")
    version.set_defaults(func=_version)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # inside the try: a closed pipe shows at the flush
    except BrokenPipeError:
        # As Python's docs advise (signal module, "Note on SIGPIPE"): point
        # stdout at devnull so the interpreter's last flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    return code


__all__ = ["EXIT_BROKEN_PIPE", "build_parser", "main"]
