"""``authd keygen NAME``: print a new TSIG key in authd's and BIND's forms.

Exit codes: 0 printed, 2 a bad name or algorithm.
"""

from __future__ import annotations

import argparse

from authd.cli.common import EXIT_OK, EXIT_USAGE, Subparsers, error
from authd.errors import AuthdError


def register(sub: Subparsers) -> None:
    """Add the ``keygen`` subcommand to *sub*."""
    keygen = sub.add_parser("keygen", help="print a new TSIG key (authd config and BIND forms)")
    keygen.add_argument("name", help="key name, e.g. xfr.example.com")
    keygen.add_argument("--algorithm", default="hmac-sha256", help="default: hmac-sha256")
    keygen.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``authd keygen``; returns the exit code."""
    from authd.keys import generate_key

    try:
        yaml_text, bind_text = generate_key(args.name, args.algorithm)
    except AuthdError as e:
        error("authd keygen", e)
        return EXIT_USAGE
    print("# authd config (under keys:)")
    print(yaml_text.rstrip())
    print()
    print("# BIND / the peer's named.conf")
    print(bind_text.rstrip())
    return EXIT_OK
