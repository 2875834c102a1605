"""A zone Knot signs on its own reaches a secondary and validates there (issue 11, fleet).

Knot DNS is the primary with automatic signing (``dnssec-signing: on``, its
default policy: ECDSA P-256, KSK and ZSK, NSEC).  The secondary transfers the
signed zone by AXFR, then by IXFR after an edit (Knot re-signs what changed and
raises the serial) and again after ``knotc zone-sign`` (every signature is
replaced: an IXFR that touches most records).  After each step the secondary
must answer DO=1 questions exactly as Knot does, and a validating unbound
(trust anchor: the zone's KSK from Knot) asking through the secondary gets AD.

The secondary is authd; the same test runs with a Knot secondary so that a
failure is authd's, not the test's.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import yaml
from dnsdiff import Question, ask, differences

from harness.peers import (
    HOST,
    Server,
    ServerSet,
    free_port,
    require_binary,
    start_authd,
    start_knot,
    start_unbound,
)

ZONE = "signed.example"
SERVED_WITHIN = 30.0  # seconds from a change at the primary to its serial at the secondary
IO_TIMEOUT = 5.0
TOOL_TIMEOUT = 30.0

# Knot signs at load; zonefile-load difference-no-serial lets it apply a file
# edit as a change and pick the serial itself (serial-policy increment), and
# journal-content all (which that mode needs) lets it serve the change as IXFR.
KNOT_SIGNING_TEMPLATE = (
    "    zonefile-sync: -1\n    zonefile-load: difference-no-serial\n    journal-content: all\n"
)


def zone_text(www: str, extra: str = "") -> str:
    return (
        f"$ORIGIN {ZONE}.\n"
        "$TTL 300\n"
        "@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n"
        "@ NS ns1\n"
        "ns1 A 192.0.2.53\n"
        f"www A {www}\n"
        "mail A 192.0.2.25\n"
        "@ MX 10 mail\n"
        "a.b A 192.0.2.90\n"
        '*.wild TXT "wildcard"\n'
        "alias CNAME www\n" + extra
    )


QUESTIONS = [
    Question(f"{name}{ZONE}.", qtype, tcp=tcp, dnssec_ok=True, why=why)
    for name, qtype, why in (
        ("", "SOA", "apex"),
        ("", "DNSKEY", "DNSKEY"),
        ("", "NS", "apex NS"),
        ("", "MX", "MX with additional"),
        ("www.", "A", "positive"),
        ("www.", "TXT", "NODATA"),
        ("nothing.", "A", "NXDOMAIN"),
        ("b.", "A", "empty non-terminal"),
        ("x.wild.", "TXT", "wildcard"),
        ("x.wild.", "A", "wildcard NODATA"),
        ("alias.", "A", "CNAME"),
        ("new.", "A", "added by the edit"),
    )
    for tcp in (False, True)
]


class Fleet(ServerSet):
    """Knot primary, the secondary under test and unbound, with their logs on failure."""

    def __init__(self, tmp_path: Path, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.tmp_path = tmp_path
        self.port = free_port()
        self.primary = self.add("knot primary (signing)", self._primary())
        self.secondary = self.add(f"{kind} secondary", self._secondary())

    def _primary(self) -> Server:
        source = self.tmp_path / f"{ZONE}.zone"
        source.write_text(zone_text("192.0.2.80"))
        sections = (
            "remote:\n"
            f"  - id: secondary\n    address: {HOST}@{self.port}\n"
            "acl:\n"
            f"  - id: transfer\n    address: {HOST}\n    action: transfer\n"
        )
        return start_knot(
            {ZONE: source},
            sections=sections,
            template=KNOT_SIGNING_TEMPLATE,
            zone_options={
                ZONE: "    dnssec-signing: on\n    notify: secondary\n    acl: transfer\n"
            },
        )

    def _secondary(self) -> Server:
        if self.kind == "knot":
            sections = (
                "remote:\n"
                f"  - id: primary\n    address: {HOST}@{self.primary.port}\n"
                "acl:\n"
                f"  - id: notify\n    address: {HOST}\n    action: notify\n"
            )
            return start_knot(
                {},
                self.port,
                sections=sections,
                secondaries=[ZONE],
                zone_options={ZONE: "    master: primary\n    acl: notify\n"},
            )
        config = {
            "listen": [{"address": HOST, "port": self.port}],
            "options": {
                "state_dir": str(self.tmp_path / "state"),
                "min_refresh": 5,
                "min_retry": 2,
                "watch": False,
            },
            "zones": [
                {
                    "name": ZONE,
                    "type": "secondary",
                    "primaries": [{"address": HOST, "port": self.primary.port}],
                }
            ],
        }
        return start_authd(yaml.safe_dump(config, sort_keys=False), port=self.port)

    def serial(self, server: Server) -> int | None:
        query = dns.message.make_query(f"{ZONE}.", dns.rdatatype.SOA)
        try:
            reply = dns.query.udp(query, HOST, port=server.port, timeout=IO_TIMEOUT)
        except Exception:  # noqa: BLE001 - not answering yet is a None, the wait retries
            return None
        for rrset in reply.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return int(rrset[0].serial)
        return None

    def in_step(self, what: str) -> int:
        """Wait until the secondary serves the primary's serial; return it."""
        serial = self.serial(self.primary)
        self.check(serial is not None, f"{what}: the primary does not answer its SOA")
        self.wait(
            f"{what}: the {self.kind} secondary to serve serial {serial}",
            lambda: self.serial(self.secondary) == serial,
            SERVED_WITHIN,
        )
        assert serial is not None
        return serial

    def answers_equal(self, what: str) -> None:
        """Every DO=1 question: the secondary's reply equals Knot's."""
        report = []
        for question in QUESTIONS:
            want = ask(question, HOST, self.primary.port)
            got = ask(question, HOST, self.secondary.port)
            if (lines := differences(want, got)) != []:
                report.append(f"* {question.label()}\n" + "\n".join(lines))
        self.check(
            not report, f"{what}: {self.kind} (+) differs from Knot (-):\n" + "\n".join(report)
        )

    def trust_anchor(self) -> str:
        query = dns.message.make_query(f"{ZONE}.", dns.rdatatype.DNSKEY)
        reply = dns.query.tcp(query, HOST, port=self.primary.port, timeout=IO_TIMEOUT)
        keys = [
            rd for rrset in reply.answer if rrset.rdtype == dns.rdatatype.DNSKEY for rd in rrset
        ]
        ksks = [rd for rd in keys if rd.flags & 1]  # SEP bit: the KSK
        self.check(ksks, f"Knot published no KSK: {reply}")
        return f"{ZONE}. 300 IN DNSKEY {ksks[0].to_text()}"

    def validated(self, resolver: Server, qname: str, qtype: str, rcode: str) -> None:
        query = dns.message.make_query(qname, qtype, want_dnssec=True)
        query.flags |= dns.flags.AD
        reply = dns.query.udp(query, HOST, port=resolver.port, timeout=IO_TIMEOUT * 2)
        self.check(
            dns.rcode.to_text(reply.rcode()) == rcode and bool(reply.flags & dns.flags.AD),
            f"unbound through the {self.kind} secondary: {qname} {qtype} should be secure"
            f" {rcode}:\n{reply}",
        )

    def resign(self) -> None:
        socket = self.primary.workdir / "run" / "knot.sock"
        argv = [require_binary("knotc"), "-s", str(socket), "zone-sign", f"{ZONE}."]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
        self.check(done.returncode == 0, f"knotc zone-sign: {done.stdout}{done.stderr}")


@pytest.fixture(params=["knot", "authd"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    lab = Fleet(tmp_path, request.param)
    try:
        yield lab
    finally:
        lab.stop_all()
        print(lab.logs(tail=200))


def _signatures(server: Server, qname: str, qtype: str) -> set[str]:
    reply = dns.query.tcp(
        dns.message.make_query(qname, qtype, want_dnssec=True),
        HOST,
        port=server.port,
        timeout=IO_TIMEOUT,
    )
    return {
        rd.to_text()
        for rrset in reply.answer
        if rrset.rdtype == dns.rdatatype.RRSIG
        for rd in rrset
    }


def test_knot_signs_secondary_serves_and_unbound_validates(fleet: Fleet) -> None:
    first = fleet.in_step("AXFR of the signed zone")
    fleet.check(_signatures(fleet.primary, f"www.{ZONE}.", "A"), "Knot did not sign the zone")
    fleet.answers_equal("after the AXFR")

    stubs = {ZONE: f"{HOST}@{fleet.secondary.port}"}
    resolver = fleet.add(
        "unbound",
        # No aggressive use of cached NSEC (RFC 8198): the earlier NXDOMAIN's
        # proof covers the name the edit adds.
        start_unbound(
            fleet.secondary.port,
            [fleet.trust_anchor()],
            stubs=stubs,
            extra="    aggressive-nsec: no\n",
        ),
    )
    fleet.validated(resolver, f"www.{ZONE}.", "A", "NOERROR")
    fleet.validated(resolver, f"nothing.{ZONE}.", "A", "NXDOMAIN")
    fleet.validated(resolver, f"x.wild.{ZONE}.", "TXT", "NOERROR")
    fleet.validated(resolver, f"{ZONE}.", "DNSKEY", "NOERROR")

    # An edit: Knot applies the difference, signs it and raises the serial.
    (fleet.primary.workdir / "zones" / f"{ZONE}.zone").write_text(
        zone_text("192.0.2.81", "new A 192.0.2.7\n")
    )
    fleet.primary.reload()
    fleet.wait(
        "Knot to sign the edit",
        lambda: (fleet.serial(fleet.primary) or 0) > first,
        SERVED_WITHIN,
    )
    edited = fleet.in_step("IXFR of the edit")
    fleet.answers_equal("after the edit")
    fleet.validated(resolver, f"new.{ZONE}.", "A", "NOERROR")

    # A re-signing: every signature replaced, one IXFR touching most records.
    before = _signatures(fleet.secondary, f"mail.{ZONE}.", "A")
    fleet.resign()
    fleet.wait(
        "Knot to re-sign",
        lambda: (fleet.serial(fleet.primary) or 0) > edited,
        SERVED_WITHIN,
    )
    resigned = fleet.in_step("IXFR of the re-signing")
    fleet.check(
        _signatures(fleet.secondary, f"mail.{ZONE}.", "A") != before,
        "the secondary still serves the old signatures",
    )
    fleet.answers_equal("after the re-signing")
    fleet.validated(resolver, f"mail.{ZONE}.", "A", "NOERROR")

    # Both changes came as IXFR, not as whole zones.
    primary_log = fleet.primary.read_log()
    for serial_from, serial_to in ((first, edited), (edited, resigned)):
        fleet.check(
            re.search(rf"IXFR, outgoing, .* serial {serial_from} -> {serial_to}", primary_log),
            f"Knot sent no IXFR {serial_from} -> {serial_to}",
        )
