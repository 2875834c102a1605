"""``authd check``: the zone linter's command line (registered by ``authd.cli``)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``check`` subcommand to *sub*."""
    from authd.cli import _cmd_check

    check = sub.add_parser("check", help="check zone files as the server would load them")
    check.add_argument("files", nargs="+", metavar="ZONEFILE")
    check.add_argument("--origin", help="zone name (default: from the file name)")
    check.add_argument("--strict", action="store_true", help="warnings are errors")
    check.set_defaults(func=_cmd_check)
