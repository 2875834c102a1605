"""The ``authd`` command line: ``serve``, ``check`` and ``version``.

Owns: argument parsing, exit codes, and turning errors into one clear line.
Exit codes: 0 fine, 1 findings or a refused config/zone, 2 usage.
"""

from __future__ import annotations

import argparse
import sys

from authd import __version__, ctl_cli, lint_cli, views_cli
from authd.config import Config, default_config, load_config
from authd.errors import AuthdError
from authd.snapshot import LoadOutcome, build_snapshot
from authd.views import shadowed_views


def _load_config(path: str | None) -> Config:
    # localhost/localnets mean this host's interfaces (read locally, no traffic).
    from authd.adapters.hostinfo import gather_host_info

    host = gather_host_info()
    return load_config(path, host) if path is not None else default_config(host)


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        config = _load_config(args.config)
    except AuthdError as e:
        print(f"authd: config refused: {e}", file=sys.stderr)
        return 1
    if args.check_config:
        for warning in (*config.warnings, *shadowed_views(config.views)):
            print(f"authd: warning: {warning}", file=sys.stderr)
        _, events = build_snapshot(config, None, 0)
        bad = 0
        for event in events:
            if event.outcome is LoadOutcome.FAILED:
                bad += 1
                print(f"authd: zone {event.zone}: {event.reason}", file=sys.stderr)
            else:
                for finding in event.findings:
                    print(f"authd: {finding}", file=sys.stderr)
        print(f"authd: config {config.path}: {len(events)} zones, {bad} refused", file=sys.stderr)
        return 1 if bad else 0
    from twisted.logger import LogLevel

    from authd.adapters.service import run, start_logging

    start_logging(LogLevel.debug if args.verbose else LogLevel.info)
    if args.query_log:
        import dataclasses

        config = dataclasses.replace(
            config, options=dataclasses.replace(config.options, query_log=True)
        )
    return run(config)


def _cmd_keygen(args: argparse.Namespace) -> int:
    from authd.keys import generate_key

    try:
        yaml_text, bind_text = generate_key(args.name, args.algorithm)
    except AuthdError as e:
        print(f"authd keygen: {e}", file=sys.stderr)
        return 2
    print("# authd config (under keys:)")
    print(yaml_text.rstrip())
    print()
    print("# BIND / the peer's named.conf")
    print(bind_text.rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authd", description="An authoritative DNS server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve zones (default: the bundled example zones)")
    serve.add_argument("-c", "--config", help="YAML config file (default: etc/authd.yaml)")
    serve.add_argument("--check-config", action="store_true", help="validate, load, exit 0/1")
    serve.add_argument("--query-log", action="store_true", help="log every query")
    serve.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    serve.set_defaults(func=_cmd_serve)
    lint_cli.register(sub)
    ctl_cli.register(sub)
    views_cli.register(sub)
    keygen = sub.add_parser("keygen", help="print a new TSIG key (authd config and BIND forms)")
    keygen.add_argument("name", help="key name, e.g. xfr.example.com")
    keygen.add_argument("--algorithm", default="hmac-sha256", help="default: hmac-sha256")
    keygen.set_defaults(func=_cmd_keygen)
    version = sub.add_parser("version", help="print the version")
    version.set_defaults(func=lambda args: print(f"authd {__version__}") or 0)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))
