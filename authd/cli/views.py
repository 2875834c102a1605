"""``authd views``: inspect view selection.

``authd views explain ADDRESS [--destination ADDR] [--key NAME] [--ecs PREFIX]
[-c CONFIG]`` prints, for a query from ADDRESS, each view tried with the ACL
element that decided it (``Match.explain``) and the view chosen, or ``no view
matches: REFUSED``.  It asks ``authd.views.select`` and ``authd.ecs``, the
functions the server asks, so the two cannot disagree.

Exit codes: 0 a view matches, 1 no view matches or the config is refused,
2 usage (a bad address, key or prefix).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys

import dns.exception
import dns.name

from authd import ecs, views
from authd.cli.common import Subparsers, load_host_config
from authd.errors import AuthdError


def register(sub: Subparsers) -> None:
    """Add the ``views`` subcommand to *sub*."""
    parser = sub.add_parser("views", help="inspect view selection")
    commands = parser.add_subparsers(dest="views_command", required=True)
    explain = commands.add_parser(
        "explain",
        help="which view a client gets, and the ACL element that decided it",
        description="Exit 0: a view matches; 1: none does (REFUSED) or the config is refused.",
    )
    explain.add_argument("address", metavar="ADDRESS", help="the client's source address")
    explain.add_argument(
        "--destination", metavar="ADDR", help="the local address (default: first listen address)"
    )
    explain.add_argument("--key", metavar="NAME", help="the TSIG key the request is signed with")
    explain.add_argument(
        "--ecs", metavar="PREFIX", help="an EDNS Client Subnet the query carries (10.1.2.0/24)"
    )
    explain.add_argument("-c", "--config", help="YAML config file (default: etc/authd.yaml)")
    explain.set_defaults(func=_cmd_explain)


def _address(text: str, what: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        print(f"authd views: not an IP address for {what}: {text!r}", file=sys.stderr)
        return None


def _cmd_explain(args: argparse.Namespace) -> int:
    client = _address(args.address, "ADDRESS")
    if client is None:
        return 2
    key = None
    if args.key is not None:
        try:
            key = dns.name.from_text(args.key)
        except dns.exception.DNSException as e:
            print(f"authd views: not a key name: {args.key!r} ({e})", file=sys.stderr)
            return 2
    option = None
    if args.ecs is not None:
        try:
            option = ecs.parse_prefix(args.ecs)
        except ValueError as e:
            print(f"authd views: not a prefix for --ecs: {args.ecs!r} ({e})", file=sys.stderr)
            return 2
    try:
        config = load_host_config(args.config)
    except AuthdError as e:
        print(f"authd: config refused: {e}", file=sys.stderr)
        return 1
    if key is not None and config.keys.get(key) is None:
        print(
            f"authd views: note: no key {args.key!r} in this config; the server "
            "would answer a request signed with it NOTAUTH (BADKEY)"
        )
    local = args.destination or config.listen[0].address
    if args.destination is not None and _address(local, "--destination") is None:
        return 2
    print(f"client {client}, destination {local}, key {key or 'none'}")
    chosen_by = client
    subnet = None
    if option is not None:
        subnet = ecs.find([option], client, key, config.client_subnet)
        if subnet is None:
            print("ECS ignored and not echoed: client_subnet is not configured")
        elif not subnet.trusted:
            print(f"ECS ignored: {client} is not in client_subnet.trusted; echoed with scope /0")
        elif not subnet.steers:
            print("ECS source prefix /0: the client asked that no address be used; scope /0")
        else:
            chosen_by = subnet.address
            print(f"ECS {subnet.address}/{option.srclen} from a trusted source chooses the view")
    selection = views.select(config.views, chosen_by, local, key)
    for line in selection.explain():
        print(line)
    if subnet is not None:
        reply = subnet.reply(selection.scope)
        print(f"response ECS: {reply.address}/{reply.srclen}/{reply.scopelen}")
    return 0 if selection.view is not None else 1
