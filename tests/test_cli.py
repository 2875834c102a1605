"""The ``authd`` command line as a package, and what a new user hit with it.

The package's shape (one module per subcommand, no import cycle), exit codes
shared by every subcommand (``--version``, a closed pipe), and one regression
test per finding of issue 9 a new user hit: ``--against`` on a first commit,
an ``$INCLUDE``d file given to the hook, GitHub annotation paths from a
subfolder, the root zone's file names, ``--origin`` for several files,
cross-zone checks across ``-c`` configs, ``--check-config`` of a new
secondary, ``--listen``/``--port``, and the GC left on after ``check``.
"""

from __future__ import annotations

import ast
import gc
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rcode
import pytest
import yaml
from gitkit import git

from authd import __version__
from authd.cli import EXIT_BROKEN_PIPE, main
from authd.cli.check import origin_from_filename
from authd.cli.serve import OverrideError, listen_override, parse_listen
from authd.config import ListenConfig
from harness.peers import HOST, free_port

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "authd" / "cli"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SERVE_WITHIN = 30.0  # seconds for `authd serve` to answer its first query

NS = "@ NS ns\nns A 192.0.2.1\n"


def zone_text(origin: str, serial: int, extra: str = "") -> str:
    return f"$ORIGIN {origin}\n$TTL 300\n@ SOA ns hm {serial} 7200 3600 1209600 300\n" + NS + extra


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty git repository (no commit yet) as the working folder."""
    if shutil.which("git") is None:
        pytest.fail("git is needed (scripts/setup-and-test.sh installs it)")
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    git(tmp_path, "init", "-q")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- the package -----------------------------------------------------------------------


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
    return found


SUBCOMMANDS = sorted(p for p in CLI.glob("*.py") if p.name != "__init__.py")


def test_cli_is_a_package_with_one_module_per_subcommand() -> None:
    names = {p.stem for p in SUBCOMMANDS}
    assert {"serve", "check", "check_report", "ctl", "views", "keygen", "common"} <= names
    leftovers = ["cli.py", "lint_cli.py", "lint_report.py", "ctl_cli.py", "views_cli.py"]
    assert [n for n in leftovers if (ROOT / "authd" / n).exists()] == []


@pytest.mark.parametrize("path", SUBCOMMANDS, ids=[p.name for p in SUBCOMMANDS])
def test_subcommand_modules_do_not_import_the_package_init(path: Path) -> None:
    # ``from authd.cli import check`` is a submodule; ``from authd.cli import main``
    # (or anything else defined in __init__) would be the cycle views_cli had.
    submodules = {p.stem for p in CLI.glob("*.py")}
    bad = [
        m
        for m in _imports(path)
        if m.startswith("authd.cli.") and m.split(".")[2] not in submodules
    ]
    assert bad == [], f"{path.name} imports {bad} from authd.cli's __init__"


def test_importing_each_subcommand_first_works() -> None:
    # A cycle shows when a subcommand module is imported before the package's main.
    for path in SUBCOMMANDS:
        code = f"import authd.cli.{path.stem}"
        done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True)
        assert done.returncode == 0, (path.name, done.stderr.decode())


def test_gc_is_enabled_after_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zone = write(tmp_path / "z.test.zone", zone_text("z.test.", 1))
    assert gc.isenabled()
    code, _, _ = check(capsys, str(zone))
    assert code == 0
    assert gc.isenabled()
    check(capsys, "--disable", "no-such-check", str(zone))  # a usage error on the way
    assert gc.isenabled()


# --- --version, and a closed pipe ----------------------------------------------------


def test_version_flag_prints_the_version_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == f"authd {__version__}\n"
    assert main(["version"]) == 0
    assert capsys.readouterr().out == f"authd {__version__}\n"


def _closed_pipe(*argv: str) -> tuple[int, str]:
    """Run ``python -m authd ARGV`` with its stdout a pipe whose reader has
    closed before the process wrote (``authd ... | head -0``)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "authd", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the interpreter has started
    err = proc.stderr.read().decode()
    return proc.wait(timeout=60), err


@pytest.mark.parametrize(
    "argv",
    [["version"], ["keygen", "xfr.example.test"], ["check", "--format", "json", "{zone}"]],
    ids=["version", "keygen", "check"],
)
def test_broken_pipe_exits_quietly(argv: list[str], tmp_path: Path) -> None:
    zone = write(tmp_path / "z.test.zone", zone_text("z.test.", 1, "x CNAME ns\nx A 192.0.2.2\n"))
    code, err = _closed_pipe(*(a.replace("{zone}", str(zone)) for a in argv))
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code == EXIT_BROKEN_PIPE


# --- check: --against on the first commit ---------------------------------------------


def test_against_head_on_first_commit_skips_the_comparison(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo / "zones" / "z.test.zone", zone_text("z.test.", 1))
    git(repo, "add", ".")
    code, out, err = check(capsys, "--strict", "--against", "HEAD", "zones/z.test.zone")
    assert (code, out) == (0, "")
    assert "no commit yet" in err and "serial comparison skipped" in err
    # Other findings still decide the exit code.
    write(repo / "zones" / "z.test.zone", zone_text("z.test.", 1, "x CNAME ns\nx A 192.0.2.2\n"))
    code, out, err = check(capsys, "--strict", "--against", "HEAD", "zones/z.test.zone")
    assert code == 1 and "[cname-and-other-data]" in out and "skipped" in err


def test_against_missing_ref_in_a_repo_with_commits_is_a_usage_error(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo / "zones" / "z.test.zone", zone_text("z.test.", 1))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "zone")
    code, _, err = check(capsys, "--against", "no-such-branch", "zones/z.test.zone")
    assert code == 2 and "not a commit" in err


# --- check: an $INCLUDEd file --------------------------------------------------------


def _hook_pattern() -> re.Pattern[str]:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return re.compile(hook["files"])


def test_commit_of_an_included_file_alone_is_checked(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo / "zones" / "inc" / "hosts.inc", "mail A 192.0.2.25\n")
    write(repo / "zones" / "z.test.zone", zone_text("z.test.", 1, "$INCLUDE inc/hosts.inc\n"))
    write(repo / "zones" / "y.test.zone", zone_text("y.test.", 1))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "zones")
    # A commit that changes only the included file, without a serial increase.
    write(repo / "zones" / "inc" / "hosts.inc", "mail A 192.0.2.26\n")
    changed = git(repo, "diff", "--name-only").split()
    assert changed == ["zones/inc/hosts.inc"]
    assert all(_hook_pattern().search(name) for name in changed)  # the hook runs
    code, out, err = check(capsys, "--strict", "--against", "HEAD", *changed)
    assert code == 1
    assert out.startswith("zones/z.test.zone:3: error: serial 1 not increased")
    assert "zones/inc/hosts.inc is $INCLUDEd by zones/z.test.zone" in err
    assert "1 zone," in err  # y.test does not include it
    # With the serial raised, the commit passes.
    write(repo / "zones" / "z.test.zone", zone_text("z.test.", 2, "$INCLUDE inc/hosts.inc\n"))
    code, out, _ = check(capsys, "--strict", "--against", "HEAD", "zones/inc/hosts.inc")
    assert (code, out) == (0, "")


def test_included_file_through_another_include(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo / "inner.inc", "x CNAME ns\nx A 192.0.2.2\n")
    write(repo / "outer.inc", "$INCLUDE inner.inc\n")
    write(repo / "db.z.test", zone_text("z.test.", 1, "$INCLUDE outer.inc\n"))
    code, out, err = check(capsys, "inner.inc")
    assert code == 1 and out.startswith("inner.inc:1: error:") and "db.z.test" in err


def test_file_nobody_includes_is_checked_as_a_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "z.test", zone_text("z.test.", 1))
    monkeypatch.chdir(tmp_path)
    code, out, err = check(capsys, "z.test")
    assert (code, out) == (0, "") and "$INCLUDE" not in err and "1 zone," in err


# --- check: GitHub annotation paths -----------------------------------------------------


MIXED = zone_text("z.test.", 1, "x CNAME ns\nx A 192.0.2.2\n")  # an error on line 6


def test_github_paths_are_relative_to_the_repository_root(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(repo / "dns" / "zones" / "z.test.zone", MIXED)
    monkeypatch.chdir(repo / "dns")
    code, out, _ = check(capsys, "--format", "github", "zones/z.test.zone")
    assert code == 1
    assert out.startswith("::error file=dns/zones/z.test.zone,line=6,title=cname-and-other-data::")
    code, out, _ = check(capsys, "--format", "text", "zones/z.test.zone")
    assert out.startswith("zones/z.test.zone:6: error:")  # text stays relative to the folder


def test_github_paths_follow_github_workspace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "checkout" / "zones" / "z.test.zone", MIXED)
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path / "checkout"))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.chdir(tmp_path / "checkout" / "zones")
    code, out, _ = check(capsys, "--format", "github", "z.test.zone")
    assert out.startswith("::error file=zones/z.test.zone,line=6,")


def test_github_paths_outside_a_repository_stay_as_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "zones" / "z.test.zone", MIXED)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.chdir(tmp_path)
    code, out, _ = check(capsys, "--format", "github", "zones/z.test.zone")
    assert out.startswith("::error file=zones/z.test.zone,line=6,")


# --- check: the root zone's file names, --origin --------------------------------------


@pytest.mark.parametrize(
    "filename",
    ["root.zone", "root", "root.db", "db.root", "named.root", "root.hints", "dir/root.zone"],
)
def test_root_zone_file_names_mean_the_root(filename: str) -> None:
    assert origin_from_filename(filename) == "."


@pytest.mark.parametrize("filename", ["rootish.zone", "root.example.zone", "db.roots"])
def test_names_that_only_start_like_root_are_not_the_root(filename: str) -> None:
    assert origin_from_filename(filename) != "."


ROOT_ZONE = (
    "$TTL 86400\n. SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400\n"
    ". NS a.root-servers.net.\na.root-servers.net. A 198.41.0.4\n"
)


def test_check_root_zone_file_takes_the_root_origin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "root.zone", ROOT_ZONE)
    monkeypatch.chdir(tmp_path)
    code, out, _ = check(capsys, "--format", "json", "root.zone")
    assert code == 0, out
    assert '"zone": "."' in out


def test_one_origin_applies_to_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Split horizon: two versions of one zone, neither named after it.
    write(tmp_path / "inside.txt", zone_text("z.test.", 1))
    write(tmp_path / "outside.txt", zone_text("z.test.", 1))
    monkeypatch.chdir(tmp_path)
    code, out, err = check(
        capsys, "--format", "json", "--origin", "z.test", "inside.txt", "outside.txt"
    )
    assert code == 0, out
    assert out.count('"zone": "z.test."') == 2 and "2 zones" not in err


def test_origins_pair_with_files_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "a.txt", zone_text("a.test.", 1))
    write(tmp_path / "b.txt", zone_text("b.test.", 1))
    monkeypatch.chdir(tmp_path)
    argv = ["--format", "json", "--origin", "a.test", "--origin", "b.test", "a.txt", "b.txt"]
    code, out, _ = check(capsys, *argv)
    assert code == 0, out
    assert out.index('"zone": "a.test."') < out.index('"zone": "b.test."')
    # Swapped: each file's SOA is outside the zone it is said to be.
    argv = ["--origin", "b.test", "--origin", "a.test", "a.txt", "b.txt"]
    code, out, _ = check(capsys, *argv)
    assert code == 1


def test_more_files_than_origins_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(capsys, "--origin", "x", "--origin", "y", "db.a", "db.b", "db.c")
    assert code == 2
    assert "2 --origin for 3 ZONEFILEs" in err


# --- check: several -c configs are checked together ----------------------------------


def _kid(apex_ns: str) -> dict[str, str]:
    parent = zone_text(
        "p.test.", 1, "kid NS ns1.kid\nkid NS ns2.kid\nns1.kid A 192.0.2.9\nns2.kid A 192.0.2.10\n"
    )
    child = (
        "$ORIGIN kid.p.test.\n$TTL 300\n@ SOA ns1 hm 1 7200 3600 1209600 300\n"
        + "".join(f"@ NS {n}\n" for n in apex_ns.split())
        + "ns1 A 192.0.2.9\nns2 A 192.0.2.10\n"
    )
    return {"p.test": parent, "kid.p.test": child}


def test_configs_are_checked_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for origin, text in _kid("ns1").items():
        write(tmp_path / f"{origin}.zone", text)
    for name, zone in (("a", "p.test"), ("b", "kid.p.test")):
        config = {"zones": [{"name": zone, "file": f"{zone}.zone"}]}
        write(tmp_path / f"{name}.yaml", yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    code, files_out, _ = check(capsys, "p.test.zone", "kid.p.test.zone")
    assert "[delegation-ns-mismatch]" in files_out
    code, out, err = check(capsys, "-c", "a.yaml", "-c", "b.yaml")
    assert code == 0 and out == files_out and "2 zones" in err
    # Two views of one config, too.
    config = {
        "views": [
            {"name": "one", "match_clients": ["127.0.0.1"],
             "zones": [{"name": "p.test", "file": "p.test.zone"}]},
            {"name": "two", "zones": [{"name": "kid.p.test", "file": "kid.p.test.zone"}]},
        ]
    }  # fmt: skip
    write(tmp_path / "views.yaml", yaml.safe_dump(config))
    code, out, _ = check(capsys, "-c", "views.yaml")
    assert out == files_out


# --- serve --check-config: a new secondary ---------------------------------------------


def _secondary_config(tmp_path: Path, primary_zone: str) -> Path:
    write(tmp_path / "p.test.zone", primary_zone)
    config = {
        "listen": [{"address": "127.0.0.1", "port": 5300}],
        "zones": [
            {"name": "p.test", "file": "p.test.zone"},
            {"name": "s.test", "type": "secondary", "primaries": ["192.0.2.53"]},
        ],
    }
    return write(tmp_path / "authd.yaml", yaml.safe_dump(config))


def test_check_config_passes_a_secondary_with_no_copy_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _secondary_config(tmp_path, zone_text("p.test.", 1))
    code = main(["serve", "-c", str(path), "--check-config"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "secondary zone s.test.: no copy yet, will transfer from 192.0.2.53" in err
    assert "0 refused, 1 awaiting a first transfer" in err
    code, _, _ = check(capsys, "-c", str(path))  # as authd check -c says
    assert code == 0


def test_check_config_still_fails_a_bad_primary_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _secondary_config(tmp_path, zone_text("p.test.", 1, "x CNAME ns\nx A 192.0.2.2\n"))
    code = main(["serve", "-c", str(path), "--check-config"])
    err = capsys.readouterr().err
    assert code == 1 and "zone p.test.:" in err and "1 refused" in err


def test_check_config_still_fails_a_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "authd.yaml", "zones:\n  - {name: s.test, type: secondary}\n")
    code = main(["serve", "-c", str(path), "--check-config"])
    assert code == 1 and "config refused" in capsys.readouterr().err


# --- serve --listen / --port ------------------------------------------------------------


@pytest.mark.parametrize(
    "text,parsed",
    [
        ("127.0.0.1", ("127.0.0.1", None)),
        ("127.0.0.1:53", ("127.0.0.1", 53)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:5300", ("::1", 5300)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
        ("2001:db8::1", ("2001:db8::1", None)),
        ("[2001:DB8::1]:65535", ("2001:db8::1", 65535)),
    ],
)
def test_parse_listen(text: str, parsed: tuple[str, int | None]) -> None:
    assert parse_listen(text) == parsed


@pytest.mark.parametrize(
    "text,message",
    [
        ("localhost", "not an IP address"),
        ("127.0.0.1:", "not a port number"),
        ("127.0.0.1:65536", "not a port number"),
        ("127.0.0.1:-1", "not a port number"),
        ("127.0.0.1:x", "not a port number"),
        ("[::1", "missing ']'"),
        ("[::1]5300", "expected ':PORT'"),
        ("[127.0.0.1]:53", "brackets are for IPv6"),
        ("::1:5300:", "not an IP address"),
    ],
)
def test_parse_listen_refuses(text: str, message: str) -> None:
    with pytest.raises(OverrideError, match=re.escape(message)):
        parse_listen(text)


CONFIG_LISTEN = (ListenConfig("127.0.0.1", 5300), ListenConfig("::1", 5300))


@pytest.mark.parametrize(
    "listen,port,expected",
    [
        ([], None, CONFIG_LISTEN),
        ([], "5353", (ListenConfig("127.0.0.1", 5353), ListenConfig("::1", 5353))),
        (["127.0.0.2"], None, (ListenConfig("127.0.0.2", 5300),)),
        (["127.0.0.2"], "53", (ListenConfig("127.0.0.2", 53),)),
        (["127.0.0.2:54", "[::1]"], "53", (ListenConfig("127.0.0.2", 54), ListenConfig("::1", 53))),
    ],
)
def test_listen_override(
    listen: list[str], port: str | None, expected: tuple[ListenConfig, ...]
) -> None:
    assert listen_override(CONFIG_LISTEN, listen, port) == expected


@pytest.mark.parametrize(
    "listen,port,message",
    [
        ([], "99999", "--port 99999: not a port number"),
        ([], "http", "--port http: not a port number"),
        (["127.0.0.1:53", "127.0.0.1"], "53", "duplicate listen address 127.0.0.1 port 53"),
    ],
)
def test_listen_override_refuses(listen: list[str], port: str | None, message: str) -> None:
    with pytest.raises(OverrideError, match=re.escape(message)):
        listen_override(CONFIG_LISTEN, listen, port)


def test_bad_listen_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _secondary_config(tmp_path, zone_text("p.test.", 1))
    code = main(["serve", "-c", str(path), "--check-config", "--listen", "nowhere"])
    assert code == 2 and "--listen nowhere: not an IP address" in capsys.readouterr().err


@pytest.mark.timeout(90)
def test_serve_port_override_answers(tmp_path: Path) -> None:
    write(tmp_path / "p.test.zone", zone_text("p.test.", 7))
    config = {
        "listen": [{"address": HOST, "port": 5300}],
        "options": {"state_dir": "state"},
        "zones": [{"name": "p.test", "file": "p.test.zone"}],
    }
    path = write(tmp_path / "authd.yaml", yaml.safe_dump(config))
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "authd", "serve", "-c", str(path), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=ENV,
    )
    try:
        query = dns.message.make_query("p.test.", "SOA")
        deadline = time.monotonic() + SERVE_WITHIN
        reply = None
        while reply is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                reply = dns.query.udp(query, HOST, port=port, timeout=0.5)
            except (dns.exception.Timeout, OSError):
                time.sleep(0.1)
        assert reply is not None, (tmp_path / "serve.log").read_text()
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.answer[0][0].serial == 7
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


# --- README -------------------------------------------------------------------------


def test_readme_commands_table_lists_version_both_ways() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "`authd --version`" in readme and "`authd version`" in readme
    assert "--listen" in readme and "--port" in readme


def test_readme_documents_allow_query() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert "allow_query" in section and "default" in section


def test_included_files_given_together_check_only_the_top_zone(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A commit changing both links of an include chain, and a zone named otherwise.
    write(repo / "inner.inc", "www A 192.0.2.80\n")
    write(repo / "outer.inc", "$INCLUDE inner.inc\n")
    write(repo / "z.test", zone_text("z.test.", 1, "$INCLUDE outer.inc\n"))
    code, out, err = check(capsys, "inner.inc", "outer.inc", "z.test")
    assert (code, out) == (0, "")
    assert "inner.inc is $INCLUDEd by z.test" in err and "1 zone," in err
