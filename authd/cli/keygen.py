"""``authd keygen NAME``: print a new TSIG key in authd's, BIND's, Knot's and NSD's forms.

Exit codes: 0 printed, 2 a bad name or algorithm.
"""

from __future__ import annotations

import argparse

from authd.cli.common import EXIT_OK, EXIT_USAGE, Subparsers, error
from authd.errors import AuthdError


def register(sub: Subparsers) -> None:
    """Add the ``keygen`` subcommand to *sub*."""
    keygen = sub.add_parser(
        "keygen", help="print a new TSIG key (authd, BIND, Knot and NSD config forms)"
    )
    keygen.add_argument("name", help="key name, e.g. xfr.example.com")
    keygen.add_argument("--algorithm", default="hmac-sha256", help="default: hmac-sha256")
    keygen.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``authd keygen``; returns the exit code."""
    from authd.keys import key_snippets, new_secret, parse_key_name, peer_snippets

    try:
        name = parse_key_name(args.name, "name")
        secret = new_secret(args.algorithm)
        yaml_text, bind_text = key_snippets(name, args.algorithm, secret)
        knot_text, nsd_text = peer_snippets(name, args.algorithm, secret)
    except AuthdError as e:
        error("authd keygen", e)
        return EXIT_USAGE
    print("# authd config (under keys:)")
    print(yaml_text.rstrip())
    print()
    print("# BIND / the peer's named.conf")
    print(bind_text.rstrip())
    print()
    print("# Knot DNS / knot.conf")
    print(knot_text.rstrip())
    print()
    print("# NSD / nsd.conf")
    print(nsd_text.rstrip())
    return EXIT_OK
