"""A validating resolver gets the right DNSSEC status through authd (RFC 4035 section 4).

A signed root -> ``test.`` -> leaves hierarchy (``signkit.hierarchy``) is
served by one server on loopback: the root (NSEC) delegates ``test.``
securely and ``plain.`` insecurely; ``test.`` (NSEC3 with opt-out)
delegates ``secure.test.`` (NSEC3) and ``nsec.test.`` (NSEC) securely,
``insecure.test.`` insecurely (inside an opt-out span) and ``bogus.test.``
with a DS that matches none of its keys.

unbound, with the root's KSK as its only trust anchor, is asked every
question of ``signkit.HIERARCHY_STATUS``: a secure answer carries AD, an
insecure one does not, and the bogus zone gives SERVFAIL.  ``delv``, which
validates by itself and asks the server directly, must say "fully validated",
"unsigned answer" or fail to resolve, the same way.

The same questions run against NSD and Knot serving the same files, so a
failure against authd is authd's and not the test's.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
import signkit
from signkit import BOGUS, HIERARCHY_STATUS, INSECURE, SECURE

from harness.peers import (
    HOST,
    Server,
    ServerSet,
    require_binary,
    start_authd,
    start_knot,
    start_nsd,
    start_unbound,
)

QUERY_TIMEOUT = 10.0  # seconds: unbound may walk the whole chain for one question
DELV_TIMEOUT = 30.0  # seconds for one delv run
SERVERS = ("nsd", "knot", "authd")
QUESTIONS = list(HIERARCHY_STATUS)


def serve(kind: str, files: dict[str, Path]) -> Server:
    if kind == "nsd":
        return start_nsd(files)
    if kind == "knot":
        return start_knot(files)
    return start_authd(files)


class Setup(ServerSet):
    """The authoritative server and the resolver of one server kind."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.hierarchy = signkit.hierarchy()
        self.auth = self.add(kind, serve(kind, self.hierarchy.files))
        stubs = {zone: f"{HOST}@{self.auth.port}" for zone in self.hierarchy.cuts}
        self.resolver = self.add(
            "unbound",
            start_unbound(self.auth.port, [self.hierarchy.trust_anchor], stubs=stubs),
        )


@pytest.fixture(scope="module", params=SERVERS)
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    lab = Setup(request.param)
    try:
        yield lab
    finally:
        lab.stop_all()


def resolve(port: int, qname: str, qtype: str) -> dns.message.Message:
    # DO and AD set: a resolver reports AD only to a client that asks for it
    # (RFC 6840 section 5.7).
    query = dns.message.make_query(qname, qtype, want_dnssec=True)
    query.flags |= dns.flags.AD
    return dns.query.udp(query, HOST, port=port, timeout=QUERY_TIMEOUT)


@pytest.mark.parametrize(("qname", "qtype"), QUESTIONS, ids=[f"{n}{t}" for n, t in QUESTIONS])
def test_unbound_status(setup: Setup, qname: str, qtype: str) -> None:
    status, rcode = HIERARCHY_STATUS[(qname, qtype)]
    reply = resolve(setup.resolver.port, qname, qtype)
    got_rcode = dns.rcode.to_text(reply.rcode())
    secure = bool(reply.flags & dns.flags.AD)
    setup.check(
        got_rcode == rcode and secure == (status == SECURE),
        f"{setup.kind}: {qname} {qtype} should be {status} {rcode}: unbound said {got_rcode}"
        f" with AD {'set' if secure else 'clear'}\n{reply}",
    )


def delv_anchor(path: Path, trust_anchor: str) -> Path:
    """A ``trust-anchors`` file for delv from the root's DS line."""
    owner, _ttl, _class, _ds, tag, algorithm, digest_type, *digest = trust_anchor.split()
    path.write_text(
        f'trust-anchors {{ "{owner}" static-ds {tag} {algorithm} {digest_type} '
        f'"{"".join(digest)}"; }};\n'
    )
    return path


DELV_VERDICT = {
    SECURE: "fully validated",
    INSECURE: "unsigned answer",
    BOGUS: "resolution failed",
}


# Where BIND's validator (delv) reaches another status than unbound, and why.
DELV_STATUS = {
    # No DS for insecure.test, shown by an opt-out NSEC3 covering its name:
    # delv calls the NODATA "negative response, fully validated" (the
    # covering NSEC3 is signed and proves no secure delegation exists there,
    # RFC 5155 section 8.6), unbound calls it insecure (an opt-out span says
    # nothing about unsigned delegations in it, RFC 5155 section 6).  The
    # delegation itself is insecure to both (www.insecure.test).
    ("insecure.test.", "DS"): SECURE,
}


@pytest.fixture(scope="module")
def anchor_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("delv")
    return delv_anchor(folder / "anchor.conf", signkit.hierarchy().trust_anchor)


@pytest.mark.parametrize(("qname", "qtype"), QUESTIONS, ids=[f"{n}{t}" for n, t in QUESTIONS])
def test_delv_status(setup: Setup, anchor_file: Path, qname: str, qtype: str) -> None:
    status = DELV_STATUS.get((qname, qtype), HIERARCHY_STATUS[(qname, qtype)][0])
    argv = [require_binary("delv"), f"@{HOST}", "-p", str(setup.auth.port)]
    argv += ["-a", str(anchor_file), "+root=.", qname, qtype]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=DELV_TIMEOUT, check=False)
    output = done.stdout + done.stderr
    setup.check(
        DELV_VERDICT[status] in output and (status == SECURE) == ("fully validated" in output),
        f"{setup.kind}: delv {qname} {qtype} should say {DELV_VERDICT[status]!r}:\n{output}",
    )
