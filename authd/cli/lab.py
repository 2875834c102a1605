"""``authd lab``: a DNS delegation lab in one command.

``init DIR`` writes a lab (``lab.yaml`` and zone files), ``up DIR`` serves it
from one authd process (each lab server a view chosen by destination address),
``down``/``status`` stop and show it, ``trace NAME [TYPE]`` resolves
iteratively from the lab's root and explains every step, ``resolver`` writes
an unbound config for the lab.  The lab model and the config translation are
the pure ``authd.lab``; the walk is the pure ``authd.labtrace``; this module
does the files, the process and the sockets.

Files in DIR: ``lab.yaml`` (the source), ``authd.yaml`` (generated on each
``up``), ``lab.run`` (JSON: pid and port of the running lab), ``authd.log``.
Exit codes: 0 fine, 1 a failure (lab refused, not running, SERVFAIL), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.rrset
import yaml

from authd import lab as labmodel
from authd import labchain, labcheck, labgraph, labscenarios, labtemplate, labtrace
from authd.cli.common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, Subparsers, error
from authd.errors import ConfigError
from authd.keyfiles import KeyFileError, ds_records
from authd.limits import DEFAULT_PORT, DEFAULT_UDP_PAYLOAD_MAX, LAB_TRACE_TIMEOUT, LAB_UP_TIMEOUT

PROG = "authd lab"
RUN_FILE = "lab.run"
LAB_HELP = "the lab folder (default: ., else $AUTHD_LAB, else the last lab brought up)"


def last_lab_file() -> Path:
    """Where ``lab up`` notes its folder, so later commands find it from anywhere."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "authd" / "last-lab"


def _remember_lab(folder: Path) -> None:
    """Note *folder* as the last lab brought up (best effort: a read-only home
    only loses the default)."""
    note = last_lab_file()
    try:
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(f"{folder}\n", encoding="utf-8")
    except OSError:
        pass


def lab_folder(given: str | None) -> str:
    """The lab a command means: *given*, else the current folder when it holds a
    lab, else $AUTHD_LAB, else the last one brought up (else the current folder)."""
    if given is not None:
        return given
    if Path(labmodel.LAB_FILE).is_file():
        return "."
    env = os.environ.get("AUTHD_LAB")
    if env:
        return env
    try:
        last = last_lab_file().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return "."
    return last if last and (Path(last) / labmodel.LAB_FILE).is_file() else "."


BROKEN_FILE = "broken.json"  # the scenario applied, and the files as they were
LAB_RELOAD_WAIT = 1.5  # seconds for the running lab to reload its config (reload_delay 0.2)
LOG_FILE = "authd.log"


def register(sub: Subparsers) -> None:
    """Add the ``lab`` subcommand and its own subcommands to *sub*."""
    lab = sub.add_parser("lab", help="a DNS delegation lab: init, up, trace, ...")
    cmds = lab.add_subparsers(dest="lab_command", required=True)
    p = cmds.add_parser("init", help="write a new lab into DIR")
    p.add_argument("dir")
    p.add_argument(
        "--template", default="basic", help="basic, or signed (every zone signed by authd)"
    )
    p.add_argument("--force", action="store_true", help="write into a folder that has files")
    p.set_defaults(func=run_init)
    p = cmds.add_parser("up", help="serve the lab in DIR from one authd process")
    p.add_argument("dir")
    p.add_argument(
        "--port",
        metavar="N",
        type=int,
        help=f"serve on port N (default: 53 when it can be bound, else {DEFAULT_PORT})",
    )
    p.add_argument("--detach", action="store_true", help="run in the background")
    p.set_defaults(func=run_up)
    p = cmds.add_parser("down", help="stop the lab in DIR")
    p.add_argument("dir")
    p.set_defaults(func=run_down)
    p = cmds.add_parser("status", help="is the lab in DIR running, and does each server answer")
    p.add_argument("dir")
    p.set_defaults(func=run_status)
    p = cmds.add_parser("trace", help="resolve NAME from the lab's root, explaining each step")
    p.add_argument("name")
    p.add_argument("type", nargs="?", default="A")
    p.add_argument("--lab", default=None, metavar="DIR", help=LAB_HELP)
    p.add_argument("--port", type=int, help="the lab's port (default: from DIR/lab.run)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    p.add_argument(
        "--dnssec",
        action="store_true",
        help="follow the chain of trust too: DS -> DNSKEY -> RRSIG (secure, insecure, bogus)",
    )
    p.set_defaults(func=run_trace)
    p = cmds.add_parser("scenarios", help="list the fault scenarios")
    p.set_defaults(func=run_scenarios)
    p = cmds.add_parser("break", help="apply a fault scenario (the running lab reloads)")
    p.add_argument("scenario")
    p.add_argument("zone", nargs="?")
    p.add_argument("--lab", default=None, metavar="DIR", help=LAB_HELP)
    p.set_defaults(func=run_break)
    p = cmds.add_parser("fix", help="undo the scenario applied")
    p.add_argument("--lab", default=None, metavar="DIR", help=LAB_HELP)
    p.set_defaults(func=run_fix)
    p = cmds.add_parser("check", help="a delegation health report of the running lab")
    p.add_argument("--lab", default=None, metavar="DIR", help=LAB_HELP)
    p.add_argument("--port", type=int, help="the lab's port (default: from DIR/lab.run)")
    p.set_defaults(func=run_check)
    p = cmds.add_parser("graph", help="draw the delegation tree (Graphviz)")
    p.add_argument("--lab", default=None, metavar="DIR", help=LAB_HELP)
    p.add_argument("-o", "--output", default="lab.svg", help="lab.svg (or .png, .pdf, .dot)")
    p.add_argument("--check", action="store_true", help="draw the running lab's findings in red")
    p.add_argument("--port", type=int, help="the lab's port (default: from DIR/lab.run)")
    p.set_defaults(func=run_graph)
    p = cmds.add_parser("resolver", help="write an unbound config for the lab")
    p.add_argument("dir")
    p.add_argument("--listen-port", type=int, default=5353, help="unbound's port (default 5353)")
    p.add_argument("--port", type=int, help="the lab's port (default: from DIR/lab.run)")
    p.set_defaults(func=run_resolver)


# ------------------------------------------------------------------ files


def read_lab(folder: str) -> labmodel.Lab:
    path = Path(folder) / labmodel.LAB_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError("", f"{path}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError("", f"{path}: not valid YAML: {e}") from None
    return labmodel.parse_lab(data)


def read_run(folder: str) -> dict[str, int] | None:
    """The running lab's pid and port, or None when it is not running."""
    try:
        run = json.loads((Path(folder) / RUN_FILE).read_text())
        pid, port = int(run["pid"]), int(run["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return {"pid": pid, "port": port}


def run_init(args: argparse.Namespace) -> int:
    if args.template not in labmodel.TEMPLATES:
        error(PROG, f"unknown template {args.template!r} (templates: basic, signed)")
        return EXIT_USAGE
    folder = Path(args.dir)
    if folder.exists() and any(folder.iterdir()) and not args.force:
        error(PROG, f"{folder} is not empty (use --force to write into it)")
        return EXIT_FINDINGS
    lab, files = labtemplate.signed() if args.template == "signed" else labtemplate.basic()
    if lab.signed:
        try:
            files = _make_keys(folder, lab, files)
        except KeyFileError as e:
            error(PROG, f"cannot make the lab's keys: {e}")
            return EXIT_FINDINGS
    for rel, text in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (folder / labmodel.LAB_FILE).write_text(
        "# An authd lab: each server is a loopback address; authd serves them all.\n"
        + yaml.safe_dump(labmodel.lab_to_dict(lab), sort_keys=False)
    )
    print(f"lab written to {folder}: {len(lab.servers)} servers, {len(lab.zones())} zones")
    print(f"next: authd lab up {folder}")
    return EXIT_OK


def _make_keys(folder: Path, lab: labmodel.Lab, files: dict[str, str]) -> dict[str, str]:
    """Each primary zone's first key (a CSK, as authd's default policy signs
    with) made now in the lab's key store, so every DS is known before ``up``:
    *files* with the DS records at the delegations, and the root's DS written
    to the trust anchor file."""
    from authd.adapters.keystore import generate_key, load_keys

    state = str(folder / labmodel.CONFIG_STATE_DIR)
    now = int(time.time())
    ds = {}
    for zone in lab.zones():
        keys = load_keys(state, zone)  # --force over an old lab: keep its keys
        if not keys:
            keys = (generate_key(state, zone, 13, "csk", now, publish=now, activate=now),)
        ds[zone] = ds_records(keys)
    anchor = "".join(f". {labtemplate.DS_TTL} IN DS {r.to_text()}\n" for r in ds[dns.name.root])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / labmodel.ANCHOR_FILE).write_text(
        "; the lab root's DS: the trust anchor of `authd lab resolver`'s unbound\n" + anchor
    )
    return labtemplate.with_ds(lab, files, ds)


# ------------------------------------------------------------------ up/down


def _can_bind(address: str, port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((address, port))
            except OSError:
                return False
    return True


def _answers(address: str, port: int, zone: dns.name.Name) -> bool:
    q = dns.message.make_query(zone, dns.rdatatype.SOA)
    try:
        r = dns.query.udp(q, address, port=port, timeout=0.5)
    except (OSError, dns.exception.DNSException):
        return False
    return bool(r.flags & dns.flags.AA) and bool(r.answer)


def read_broken(folder: Path) -> dict[str, object] | None:
    try:
        data = json.loads((folder / BROKEN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_config(folder: Path, lab: labmodel.Lab, port: int) -> Path:
    broken = read_broken(folder) or {}
    waive = tuple(str(x) for x in broken.get("waive", []))  # type: ignore[attr-defined]
    faults = tuple(
        (str(a), str(f))
        for a, f in broken.get("faults", [])  # type: ignore[attr-defined]
    )
    deaf = tuple(
        (str(a), str(z))
        for a, z in broken.get("deaf", [])  # type: ignore[attr-defined]
    )
    clock = tuple(
        (str(z), int(b))
        for z, b in broken.get("signing_clock", [])  # type: ignore[attr-defined]
    )
    path = folder / labmodel.CONFIG_FILE
    tmp = folder / (labmodel.CONFIG_FILE + ".tmp")
    config = labmodel.authd_config(lab, port, waive, faults, deaf, clock)
    tmp.write_text(
        "# Generated by `authd lab up` from lab.yaml: edit lab.yaml, not this file.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    os.replace(tmp, path)  # whole: the running lab's watcher reloads it
    return path


def run_up(args: argparse.Namespace) -> int:
    folder = Path(args.dir).resolve()
    try:
        lab = read_lab(str(folder))
    except ConfigError as e:
        error(PROG, f"lab refused: {e}")
        return EXIT_FINDINGS
    if read_run(str(folder)) is not None:
        error(PROG, f"the lab in {folder} is already running (authd lab down {args.dir})")
        return EXIT_FINDINGS
    _remember_lab(folder)
    first = lab.servers[0].address
    if args.port is not None:
        port = args.port
    else:
        port = 53 if _can_bind(first, 53) else DEFAULT_PORT
        if port != 53:
            print(f"port 53 cannot be bound here (not root?): using port {port}")
    config = write_config(folder, lab, port)
    argv = [sys.executable, "-m", "authd", "serve", "-c", str(config)]
    if not args.detach:
        process = subprocess.Popen(argv)
        _write_run(folder, process.pid, port)
        print(f"lab serving on port {port}; Ctrl-C stops it")
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.terminate()
            return process.wait()
        finally:
            (folder / RUN_FILE).unlink(missing_ok=True)
    with open(folder / LOG_FILE, "ab") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    _write_run(folder, process.pid, port)
    deadline = time.monotonic() + LAB_UP_TIMEOUT
    pending = [(s, z.name) for s in lab.servers for z in s.zones if z.file is not None]
    while pending and time.monotonic() < deadline:
        if process.poll() is not None:
            (folder / RUN_FILE).unlink(missing_ok=True)
            error(PROG, f"authd exited ({process.returncode}); see {folder / LOG_FILE}")
            return EXIT_FINDINGS
        pending = [(s, z) for s, z in pending if not _answers(s.address, port, z)]
        time.sleep(0.1)
    if pending:
        error(PROG, f"the lab did not answer within {LAB_UP_TIMEOUT:g}s; see {folder / LOG_FILE}")
        return EXIT_FINDINGS
    print(f"lab up: pid {process.pid}, {len(lab.servers)} servers on port {port}")
    print(f"try: authd lab trace www.example.com --lab {args.dir}")
    return EXIT_OK


def _write_run(folder: Path, pid: int, port: int) -> None:
    tmp = folder / (RUN_FILE + ".tmp")
    tmp.write_text(json.dumps({"pid": pid, "port": port}) + "\n")
    os.replace(tmp, folder / RUN_FILE)


def run_down(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    run = read_run(args.dir)
    if run is None:
        error(PROG, f"no lab running in {folder}")
        (folder / RUN_FILE).unlink(missing_ok=True)
        return EXIT_FINDINGS
    os.kill(run["pid"], signal.SIGTERM)
    deadline = time.monotonic() + LAB_UP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            os.kill(run["pid"], 0)
        except ProcessLookupError:
            break
        try:  # our own child when up ran in this process (tests): reap it
            os.waitpid(run["pid"], os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    else:
        os.kill(run["pid"], signal.SIGKILL)
    (folder / RUN_FILE).unlink(missing_ok=True)
    print(f"lab in {folder} stopped")
    return EXIT_OK


def run_status(args: argparse.Namespace) -> int:
    try:
        lab = read_lab(args.dir)
    except ConfigError as e:
        error(PROG, f"lab refused: {e}")
        return EXIT_FINDINGS
    run = read_run(args.dir)
    if run is None:
        print(f"lab in {args.dir}: not running")
        return EXIT_FINDINGS
    print(f"lab in {args.dir}: running, pid {run['pid']}, port {run['port']}")
    bad = 0
    for s in lab.servers:
        for z in s.zones:
            ok = _answers(s.address, run["port"], z.name)
            bad += not ok
            role = "primary" if z.file else f"secondary of {z.primary}"
            state = "answers" if ok else "NOT ANSWERING"
            print(f"  {s.name:<6} {s.address:<12} {z.name.to_text():<24} {role:<18} {state}")
    return EXIT_OK if not bad else EXIT_FINDINGS


# ------------------------------------------------------------------ trace


def make_ask(port: int, timeout: float = LAB_TRACE_TIMEOUT, dnssec: bool = False) -> labtrace.Ask:
    """The tracer's network: one non-recursive query, UDP with EDNS or TCP;
    with *dnssec* the DO bit asks for the signatures too."""

    def ask(
        address: str, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, tcp: bool
    ) -> dns.message.Message | None:
        q = dns.message.make_query(
            name, rdtype, use_edns=0, payload=DEFAULT_UDP_PAYLOAD_MAX, want_dnssec=dnssec
        )
        q.flags &= ~dns.flags.RD
        try:
            if tcp:
                return dns.query.tcp(q, address, port=port, timeout=timeout)
            return dns.query.udp(q, address, port=port, timeout=timeout, ignore_trailing=True)
        except (OSError, EOFError, dns.exception.DNSException):
            return None

    return ask


def lab_port(folder: str, given: int | None) -> int | None:
    if given is not None:
        return given
    run = read_run(folder)
    return run["port"] if run else None


def hints(lab: labmodel.Lab) -> list[labtrace.NameServer]:
    return [labtrace.NameServer(s.host, (s.address,)) for s in lab.root_servers()]


def run_trace(args: argparse.Namespace) -> int:
    args.lab = lab_folder(args.lab)
    try:
        lab = read_lab(args.lab)
        name = dns.name.from_text(args.name)
        rdtype = dns.rdatatype.from_text(args.type)
    except ConfigError as e:
        error(PROG, f"lab refused: {e}")
        return EXIT_FINDINGS
    except dns.exception.DNSException as e:
        error(PROG, f"bad question {args.name} {args.type}: {e}")
        return EXIT_USAGE
    port = lab_port(args.lab, args.port)
    if port is None:
        error(PROG, f"no lab running in {args.lab} (authd lab up {args.lab}, or give --port)")
        return EXIT_FINDINGS
    anchor = None
    if args.dnssec:
        try:
            anchor = read_anchor(args.lab)
        except (OSError, ValueError, dns.exception.DNSException) as e:
            error(PROG, f"{Path(args.lab) / labmodel.ANCHOR_FILE}: unreadable trust anchor: {e}")
            return EXIT_FINDINGS
    ask = make_ask(port, dnssec=args.dnssec)
    result = labtrace.trace(ask, hints(lab), name, rdtype)
    steps = [(s.depth, s.text) for s in result.steps]
    verdict = None
    if args.dnssec:
        chain_steps, verdict = labchain.follow(result, ask, anchor, time.time())
        steps += [(0, ""), *((0, text) for text in chain_steps)]
    if not args.quiet:
        n = 0
        for depth, text in steps:
            indent = "    " * depth
            if text.startswith("Ask "):
                n += 1
                print(f"{indent}{n}. {text}")
            else:
                print(f"{indent}{text}")
        print()
    for line in labtrace.summary(result, name, rdtype):
        print(line)
    if args.dnssec:
        print(labchain.summary(verdict))
    bogus = verdict is not None and verdict.state is labchain.State.BOGUS
    return EXIT_FINDINGS if result.outcome is labtrace.Outcome.SERVFAIL or bogus else EXIT_OK


def read_anchor(folder: str) -> dns.rrset.RRset | None:
    """The lab's trust anchor (None: the lab has none, the basic template)."""
    path = Path(folder) / labmodel.ANCHOR_FILE
    if not path.is_file():
        return None
    return labchain.anchor_from_text(path.read_text())


# ------------------------------------------------------------------ resolver


def run_resolver(args: argparse.Namespace) -> int:
    folder = Path(args.dir).resolve()
    try:
        lab = read_lab(str(folder))
    except ConfigError as e:
        error(PROG, f"lab refused: {e}")
        return EXIT_FINDINGS
    port = lab_port(str(folder), args.port)
    if port is None:
        port = 53
        print("the lab is not running: assuming it will serve on port 53")
    workdir = folder / "unbound"
    workdir.mkdir(exist_ok=True)
    (workdir / "lab.root").write_text(labmodel.root_hints(lab))
    conf = workdir / "unbound.conf"
    anchor = folder / labmodel.ANCHOR_FILE
    conf.write_text(
        labmodel.unbound_config(
            lab, port, str(workdir), args.listen_port, str(anchor) if lab.signed else None
        )
    )
    if lab.signed and not anchor.is_file():
        error(PROG, f"a signed lab without its trust anchor {anchor} (authd lab init made it)")
        return EXIT_FINDINGS
    print(f"wrote {conf}")
    if port != 53:
        print(f"(the lab is on port {port}: each lab zone is a stub zone, as unbound can only")
        print(" follow referrals to port 53)")
    print(f"start it:  unbound -d -c {conf}")
    print(f"ask it:    dig @127.0.0.1 -p {args.listen_port} www.example.com")
    return EXIT_OK


# ------------------------------------------------------------------ scenarios


def run_scenarios(args: argparse.Namespace) -> int:
    for s in labscenarios.SCENARIOS:
        where = f"{s.zone} (or any zone)" if s.any_zone else s.zone
        print(f"{s.name:<14} {s.summary}")
        print(f"{'':<14} zone {where}; try: authd lab trace {s.try_name}; symptom: {s.symptom}")
    return EXIT_OK


def _files(folder: Path, lab: labmodel.Lab) -> dict[str, str]:
    out = {}
    for s in lab.servers:
        for z in s.zones:
            if z.file is not None and (folder / z.file).is_file():
                out[z.file] = (folder / z.file).read_text()
    return out


def _rewrite(folder: Path, lab: labmodel.Lab) -> None:
    run = read_run(str(folder))
    if run is not None:
        write_config(folder, lab, run["port"])  # the lab's watcher reloads it


def run_break(args: argparse.Namespace) -> int:
    args.lab = lab_folder(args.lab)
    folder = Path(args.lab)
    try:
        lab = read_lab(args.lab)
    except ConfigError as e:
        error(PROG, f"lab refused: {e}")
        return EXIT_FINDINGS
    if read_broken(folder) is not None:
        error(PROG, f"a scenario is already applied: authd lab fix --lab {args.lab} first")
        return EXIT_FINDINGS
    files = _files(folder, lab)
    try:
        broken = labscenarios.plan(args.scenario, args.zone, lab, files)
    except ValueError as e:
        error(PROG, e)
        return EXIT_USAGE
    state = {
        "scenario": args.scenario,
        "zone": args.zone or labscenarios.BY_NAME[args.scenario].zone,
        "originals": {path: files[path] for path in broken.files},
        "waive": list(broken.waive),
        "faults": [list(f) for f in broken.faults],
        "deaf": [list(d) for d in broken.deaf],
        "signing_clock": [list(c) for c in broken.signing_clock],
    }
    (folder / BROKEN_FILE).write_text(json.dumps(state, indent=1) + "\n")
    _rewrite(folder, lab)
    if broken.deaf and read_run(str(folder)) is not None:
        # The secondary must refuse NOTIFY before the primary's serial goes up.
        time.sleep(LAB_RELOAD_WAIT)
    for path, text in broken.files.items():
        (folder / path).write_text(text)
    s = labscenarios.BY_NAME[args.scenario]
    print(f"broken: {s.name} on {state['zone']}: {s.summary}")
    print(f"see it: authd lab trace {s.try_name} --lab {args.lab}")
    return EXIT_OK


def run_fix(args: argparse.Namespace) -> int:
    args.lab = lab_folder(args.lab)
    folder = Path(args.lab)
    try:
        lab = read_lab(args.lab)
    except ConfigError as e:
        error(PROG, f"lab refused: {e}")
        return EXIT_FINDINGS
    broken = read_broken(folder)
    if broken is None:
        print("nothing to fix: no scenario applied")
        return EXIT_OK
    originals = broken.get("originals", {})
    for path, text in originals.items():  # type: ignore[attr-defined]
        current = (folder / path).read_text()
        # Back to the old content, under a higher serial: the lab reloads it.
        (folder / path).write_text(labscenarios.bump_serial(text, labscenarios.serial_of(current)))
    (folder / BROKEN_FILE).unlink()
    _rewrite(folder, lab)
    print(f"fixed: {broken.get('scenario')} undone")
    return EXIT_OK


# ------------------------------------------------------------------ check


def _probe(
    ask: labtrace.Ask, host: dns.name.Name, address: str | None, zone: dns.name.Name, port: int
) -> labcheck.ServerProbe:
    if address is None:
        return labcheck.ServerProbe(host, None, False, False, False, None)

    def authoritative(reply: dns.message.Message | None) -> bool:
        return reply is not None and bool(reply.flags & dns.flags.AA) and reply.rcode() == 0

    edns = ask(address, zone, dns.rdatatype.SOA, False)
    tcp = ask(address, zone, dns.rdatatype.SOA, True)
    q = dns.message.make_query(zone, dns.rdatatype.SOA, use_edns=False)
    q.flags &= ~dns.flags.RD
    try:
        plain: dns.message.Message | None = dns.query.udp(
            q, address, port=port, timeout=LAB_TRACE_TIMEOUT / 2
        )
    except (OSError, dns.exception.DNSException):
        plain = None
    serial = None
    cname = False
    for reply in (edns, plain, tcp):
        if authoritative(reply):
            assert reply is not None
            for r in reply.answer:
                if r.rdtype == dns.rdatatype.SOA and r.name == zone:
                    serial = int(r[0].serial)
                if r.rdtype == dns.rdatatype.CNAME and r.name == zone:
                    cname = True
            break
    return labcheck.ServerProbe(
        host,
        address,
        authoritative(edns),
        authoritative(plain),
        authoritative(tcp),
        serial,
        cname,
        replied=any(r is not None for r in (edns, plain, tcp)),
    )


def gather(
    lab: labmodel.Lab, port: int, timeout: float = LAB_TRACE_TIMEOUT
) -> list[labcheck.Delegation]:
    """Ask the running lab about each delegation (one per lab zone but the root)."""
    ask = make_ask(port, timeout)
    zones = lab.zones()
    address_of = {s.host: s.address for s in lab.servers}
    out = []
    for zone in sorted(zones):
        if zone == dns.name.root:
            continue
        parent = max((z for z in zones if zone.is_subdomain(z) and z != zone), key=len)
        pserver = zones[parent][0]
        ref = ask(pserver.address, zone, dns.rdatatype.NS, False)
        parent_ns: set[dns.name.Name] = set()
        glue: dict[dns.name.Name, set[str]] = {}
        if ref is not None:
            for r in (*ref.authority, *ref.answer):
                if r.rdtype == dns.rdatatype.NS and r.name == zone:
                    parent_ns |= {rd.target for rd in r}
            for r in ref.additional:
                if r.rdtype == dns.rdatatype.A:
                    glue.setdefault(r.name, set()).update(str(rd) for rd in r)
        child_ns: set[dns.name.Name] | None = None
        child_addr: dict[dns.name.Name, frozenset[str]] = {}
        probes = []
        for host in sorted(parent_ns):
            addresses: list[str | None] = [*sorted(glue.get(host, ()))] or [address_of.get(host)]
            for address in addresses:
                probes.append(_probe(ask, host, address, zone, port))
        for server in zones[zone]:  # the child's own view, from the servers that hold it
            reply = ask(server.address, zone, dns.rdatatype.NS, False)
            if reply is None or not reply.flags & dns.flags.AA:
                continue
            for r in reply.answer:
                if r.rdtype == dns.rdatatype.NS:
                    child_ns = {rd.target for rd in r}
            for host in sorted(parent_ns | (child_ns or set())):
                if host.is_subdomain(zone):
                    a = ask(server.address, host, dns.rdatatype.A, False)
                    got = {
                        str(rd)
                        for r in (a.answer if a else [])
                        if r.rdtype == dns.rdatatype.A
                        for rd in r
                    }
                    child_addr[host] = frozenset(got)
            break
        out.append(
            labcheck.Delegation(
                zone,
                parent,
                frozenset(parent_ns),
                {h: frozenset(a) for h, a in glue.items()},
                frozenset(child_ns) if child_ns is not None else None,
                child_addr,
                tuple(probes),
            )
        )
    return out


def gather_chain(
    lab: labmodel.Lab, folder: str, port: int, timeout: float = LAB_TRACE_TIMEOUT
) -> dict[dns.name.Name, labchain.Verdict | None]:
    """Each zone's chain of trust in a signed lab, from the trust anchor down
    (None: not judged, the chain above it is broken); every server of a zone
    must serve a good signature over its SOA."""
    chain = labchain.Chain(make_ask(port, timeout, dnssec=True), time.time(), read_anchor(folder))
    zones = lab.zones()
    out: dict[dns.name.Name, labchain.Verdict | None] = {}
    for zone in sorted(zones):  # canonical order: every parent before its children
        servers = zones[zone]
        parent = labmodel.parent_zone(lab, zone)
        if parent is None:
            verdict = chain.root(servers[0].address)
        elif parent in chain.keys:
            paddress = zones[parent][0].address
            verdict = chain.link(parent, zone, None, paddress, servers[0].address)
        else:
            out[zone] = None
            continue
        for s in servers if verdict is None else ():
            reply = chain.ask(s.address, zone, dns.rdatatype.SOA, False)
            soa, sigs = labchain.rrset_of(reply.answer if reply else [], zone, dns.rdatatype.SOA)
            if soa is None:
                continue  # no answer: the delegation checks report it
            problem, how = labchain.check_signature(soa, sigs, chain.keys[zone], chain.now)
            if problem is not None:
                verdict = labchain.Verdict(labchain.State.BOGUS, zone, problem, f"{s.host}: {how}")
                break
        out[zone] = verdict or labchain.Verdict(labchain.State.SECURE, zone)
    return out


def check_findings(
    lab: labmodel.Lab, folder: str, port: int
) -> tuple[
    list[labcheck.Delegation], dict[dns.name.Name, labchain.Verdict | None], list[labcheck.Finding]
]:
    """The delegations, the chain verdicts (signed lab) and every finding."""
    delegations = gather(lab, port)
    findings = [f for d in delegations for f in labcheck.judge(d)]
    chain = gather_chain(lab, folder, port) if lab.signed else {}
    for zone, verdict in chain.items():
        mine = labcheck.judge_chain(zone, verdict)
        if any(f.zone == zone for f in findings):
            # A server that does not answer gives no keys either: said once, above.
            mine = [f for f in mine if f.scenario != labcheck.DNSSEC_FINDING]
        findings += mine
    return delegations, chain, findings


def run_check(args: argparse.Namespace) -> int:
    args.lab = lab_folder(args.lab)
    try:
        lab = read_lab(args.lab)
    except ConfigError as e:
        error(PROG, f"lab refused: {e}")
        return EXIT_FINDINGS
    port = lab_port(args.lab, args.port)
    if port is None:
        error(PROG, f"no lab running in {args.lab} (authd lab up {args.lab}, or give --port)")
        return EXIT_FINDINGS
    delegations, chain, findings = check_findings(lab, args.lab, port)
    rows: list[tuple[dns.name.Name, dns.name.Name | None]] = []
    if dns.name.root in chain:
        rows.append((dns.name.root, None))
    rows += [(d.zone, d.parent) for d in delegations]
    for zone, parent in rows:
        mine = [f for f in findings if f.zone == zone]
        state = "ok" if not mine else f"{len(mine)} finding(s)"
        verdict = chain.get(zone)
        if verdict is not None:
            state += f", chain of trust {verdict.state.value}"
        where = f"from {parent.to_text()}" if parent is not None else "(trust anchor)"
        print(f"{zone.to_text():<24} {where:<19} {state}")
        for f in mine:
            print(f"    {f.text}  [scenario: {f.scenario}]")
    print(f"{len(delegations)} delegations, {len(findings)} findings")
    return EXIT_FINDINGS if findings else EXIT_OK


# ------------------------------------------------------------------ graph


def run_graph(args: argparse.Namespace) -> int:
    args.lab = lab_folder(args.lab)
    try:
        lab = read_lab(args.lab)
    except ConfigError as e:
        error(PROG, f"lab refused: {e}")
        return EXIT_FINDINGS
    findings: list[labcheck.Finding] = []
    chain: dict[dns.name.Name, labchain.Verdict | None] = {}
    if args.check:
        port = lab_port(args.lab, args.port)
        if port is None:
            error(PROG, f"--check needs the lab running (authd lab up {args.lab})")
            return EXIT_FINDINGS
        _, chain, findings = check_findings(lab, args.lab, port)
    source = labgraph.dot_source(lab, findings, chain)
    out = Path(args.output)
    if out.suffix == ".dot":
        out.write_text(source)
    else:
        dot = shutil.which("dot")
        if dot is None:
            error(
                PROG,
                "Graphviz `dot` is not installed (apt-get install graphviz), "
                "or write the source with -o lab.dot",
            )
            return EXIT_FINDINGS
        done = subprocess.run(
            [dot, "-T" + (out.suffix[1:] or "svg"), "-o", str(out)],
            input=source,
            text=True,
            capture_output=True,
            timeout=60,
        )
        if done.returncode != 0:
            error(PROG, f"dot failed: {done.stderr.strip()}")
            return EXIT_FINDINGS
    print(f"wrote {out}" + (f" ({len(findings)} findings in red)" if findings else ""))
    return EXIT_OK
