"""``authd check`` on signed zones (``authd.lint_dnssec``), and the loader's RRSIG TTLs.

The zones are signed here, by BIND's ``dnssec-keygen``/``dnssec-signzone``
(NSEC, NSEC3 without salt or iterations, NSEC3 opt-out, NSEC3 with a salt and
iterations, and a ZSK-only zone), written one full record a line
(``-O full``) so that a test breaks one record by editing its line.  Every
DNSSEC id has a broken zone that triggers it; the unbroken zones give no
finding at all.  Then the same broken zones are given to ``dnssec-verify``
(BIND) and ``kzonecheck`` (Knot): for every zone either rejects, ``authd
check`` reports an error too.  Across zones: the parent's DS against the
child's keys.  And the RRSIG TTL bug of issue 11: RRSIGs covering types with
different TTLs are not a ``ttl-mismatch``.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.name
import pytest

from authd import lint
from authd.checks import Finding, LoaderCheck, Severity
from authd.cli import main
from authd.limits import (
    LINT_MAX_EXPIRY_DAYS,
    LINT_MAX_NSEC3_ITERATIONS,
    LINT_MAX_VERIFIED_SIGNATURES,
)
from authd.lint_dnssec import EXPIRY_WARN_DAYS, DnssecCheck, LintOptions, bitmap_types
from authd.zone import compile_zone
from authd.zonefile import parse_zone_text
from harness.peers import require_binary

ORIGIN = dns.name.from_text("s.test.")
INCEPTION, EXPIRATION = "20260101000000", "20360101000000"
NOW = int(dns.dnssec.to_timestamp("20300101000000"))  # well inside the validity
DS_TEXT = "ab" * 32
ZONE = f"""$ORIGIN s.test.
$TTL 300
@ SOA ns hm 1 7200 3600 1209600 300
@ NS ns
ns A 192.0.2.1
www A 192.0.2.2
www 600 TXT "hi"
a.b.c TXT "below an empty non-terminal"
*.w TXT "wild"
kid NS ns.kid
ns.kid A 192.0.2.9
sec NS ns.sec
sec DS 12345 13 2 {DS_TEXT}
ns.sec A 192.0.2.10
ins.y NS ns.example.
"""
# kid and ins.y are insecure delegations (y is an empty non-terminal above
# ins.y only: opt-out may leave both out); sec is secure.

Lines = list[str]


def _keygen(folder: Path, zone: str, *flags: str) -> str:
    out = subprocess.run(
        [require_binary("dnssec-keygen"), "-q", "-K", str(folder), "-a", "ECDSAP256SHA256",
         *flags, zone],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return out.stdout.strip()


def _sign(folder: Path, zone_text: str, origin: str, name: str, *flags: str) -> Lines:
    src = folder / f"{name}.src"
    src.write_text(zone_text)
    dest = folder / f"{name}.signed"
    subprocess.run(
        [require_binary("dnssec-signzone"), "-q", "-S", "-K", str(folder), "-O", "full",
         "-d", str(folder), "-s", INCEPTION, "-e", EXPIRATION, "-o", origin, "-f", str(dest),
         *flags, str(src)],
        check=True, capture_output=True, text=True, timeout=120, cwd=folder,
    )  # fmt: skip
    return [line for line in dest.read_text().splitlines() if line and not line.startswith(";")]


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Lines]:
    keys = tmp_path_factory.mktemp("keys")
    _keygen(keys, "s.test", "-f", "KSK")
    _keygen(keys, "s.test")
    zsk_only = tmp_path_factory.mktemp("zsk")
    _keygen(zsk_only, "s.test")
    return {
        "nsec": _sign(keys, ZONE, "s.test", "nsec"),
        "nsec3": _sign(keys, ZONE, "s.test", "nsec3", "-3", "-"),
        "optout": _sign(keys, ZONE, "s.test", "optout", "-3", "-", "-A"),
        "salted": _sign(keys, ZONE, "s.test", "salted", "-3", "abcd", "-H", "5"),
        "zsk": _sign(zsk_only, ZONE, "s.test", "zsk", "-z"),
    }


def fields(line: str) -> list[str]:
    return line.split()


def is_(owner: str, rdtype: str, covered: str | None = None) -> Callable[[str], bool]:
    """Whether a line is the record *owner* *rdtype* (an RRSIG: covering *covered*)."""

    def match(line: str) -> bool:
        f = fields(line)
        if f[0].lower() != owner.lower() or f[3] != rdtype:
            return False
        return covered is None or f[4] == covered

    return match


def drop(*matches: Callable[[str], bool]) -> Callable[[Lines], Lines]:
    return lambda lines: [line for line in lines if not any(m(line) for m in matches)]


def change(match: Callable[[str], bool], at: int, value: str) -> Callable[[Lines], Lines]:
    """Field *at* (0 the owner, 1 the TTL, 3 the type, 4 the first of the rdata)
    of every matching line becomes *value*."""

    def edit(lines: Lines) -> Lines:
        out = []
        for line in lines:
            if match(line):
                f = fields(line)
                f[at] = value
                line = " ".join(f)
            out.append(line)
        return out

    return edit


def add(*records: str) -> Callable[[Lines], Lines]:
    return lambda lines: [*lines, *records]


def copy_as(match: Callable[[str], bool], owner: str) -> Callable[[Lines], Lines]:
    """Add a copy of the first matching line, owned by *owner*."""

    def edit(lines: Lines) -> Lines:
        line = next(line for line in lines if match(line))
        f = fields(line)
        f[0] = owner
        return [*lines, " ".join(f)]

    return edit


def lint_text(text: str, now: int | None = NOW, **options: int) -> lint.ZoneLint:
    records = parse_zone_text(text, ORIGIN, "s.zone")
    return lint.lint_records(ORIGIN, records, "s.zone", LintOptions(now=now, **options))


def text_of(lines: Lines) -> str:
    return "\n".join(lines) + "\n"


def _line_of(lines: Lines, match: Callable[[str], bool]) -> int:
    return next(i for i, line in enumerate(lines, 1) if match(line))


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # which signed zone
    edit: Callable[[Lines], Lines]
    at: Callable[[str], bool] | None = None  # the line the finding names, in the edited zone
    now: int = NOW
    name: str = ""

    @property
    def label(self) -> str:
        return f"{self.id}-{self.kind}{'-' + self.name if self.name else ''}"


WWW = "www.s.test."
APEX = "s.test."
KID_GLUE = "ns.kid.s.test."


def _nsec3_owner_of(name: str, salt: str = "", iterations: int = 0) -> str:
    h = dns.dnssec.nsec3_hash(name, salt or None, iterations, 1).lower()
    return f"{h}.s.test."


def _is_nsec3_of(name: str) -> Callable[[str], bool]:
    return is_(_nsec3_owner_of(name), "NSEC3")


def _bitmap_without(match: Callable[[str], bool], rdtype: str) -> Callable[[Lines], Lines]:
    def edit(lines: Lines) -> Lines:
        return [
            " ".join(f for f in fields(line) if f != rdtype) if match(line) else line
            for line in lines
        ]

    return edit


def _first_nsec3(lines: Lines) -> str:
    return fields(next(line for line in lines if fields(line)[3] == "NSEC3"))[0]


def _flip_optout(lines: Lines) -> Lines:
    owner = _first_nsec3(lines)
    return change(is_(owner, "NSEC3"), 5, "0")(lines)


def _nsec3_next_wrong(lines: Lines) -> Lines:
    owner = _first_nsec3(lines)
    return change(is_(owner, "NSEC3"), 8, "0" * 32)(lines)


def _drop_all(rdtype: str) -> Callable[[Lines], Lines]:
    def edit(lines: Lines) -> Lines:
        return [
            line
            for line in lines
            if fields(line)[3] != rdtype
            and not (fields(line)[3] == "RRSIG" and fields(line)[4] == rdtype)
        ]

    return edit


def _nsec_into_nsec3(signed: dict[str, Lines]) -> Callable[[Lines], Lines]:
    nsecs = [line for line in signed["nsec"] if fields(line)[3] == "NSEC"]
    return lambda lines: [*lines, *nsecs]


def _ns_kid_rrsig(lines: Lines) -> Lines:
    sig = next(line for line in lines if is_(WWW, "RRSIG", "A")(line))
    f = fields(sig)
    f[0] = KID_GLUE
    return [*lines, " ".join(f)]


def cases(signed: dict[str, Lines]) -> list[Case]:
    return [
        Case("dnskey-missing", "nsec", drop(is_(APEX, "DNSKEY")), is_(APEX, "RRSIG", "SOA")),
        Case("rrsig-missing", "nsec", drop(is_(WWW, "RRSIG", "A")), is_(WWW, "A")),
        Case("rrsig-missing", "nsec3", drop(is_(WWW, "RRSIG", "TXT")), is_(WWW, "TXT")),
        Case("rrsig-not-authoritative", "nsec", _ns_kid_rrsig, None),
        Case("rrsig-without-rrset", "nsec", drop(is_(WWW, "TXT")), is_(WWW, "RRSIG", "TXT")),
        Case("rrsig-expired", "nsec", lambda lines: lines, None,
             now=int(dns.dnssec.to_timestamp("20360102000000"))),
        Case("rrsig-not-yet-valid", "nsec3", lambda lines: lines, None,
             now=int(dns.dnssec.to_timestamp("20251231000000"))),
        Case("rrsig-expiring", "optout", lambda lines: lines, None,
             now=int(dns.dnssec.to_timestamp("20351230000000"))),
        Case("rrsig-bogus", "nsec", change(is_(WWW, "A"), 4, "192.0.2.99"),
             is_(WWW, "RRSIG", "A")),
        Case("rrsig-bogus", "nsec3", change(is_(WWW, "TXT"), 4, '"changed"'),
             is_(WWW, "RRSIG", "TXT")),
        Case("rrsig-key-missing", "nsec", change(is_(WWW, "RRSIG", "A"), 10, "1"),
             is_(WWW, "RRSIG", "A")),
        Case("rrsig-algorithm-no-dnskey", "nsec", change(is_(WWW, "RRSIG", "A"), 5, "8"),
             is_(WWW, "RRSIG", "A")),
        Case("rrsig-original-ttl", "nsec", change(is_(WWW, "A"), 1, "900"),
             is_(WWW, "RRSIG", "A")),
        Case("rrsig-ttl-mismatch", "nsec", change(is_(WWW, "RRSIG", "A"), 1, "900"),
             is_(WWW, "RRSIG", "A")),
        Case("dnskey-not-self-signed", "nsec", drop(is_(APEX, "RRSIG", "DNSKEY")),
             is_(APEX, "DNSKEY")),
        Case("dnskey-not-self-signed", "nsec", change(is_(APEX, "RRSIG", "DNSKEY"), 10, "1"),
             is_(APEX, "DNSKEY"), name="unknown-keys"),
        Case("dnskey-no-sep-signature", "zsk", lambda lines: lines, is_(APEX, "DNSKEY")),
        Case("denial-missing", "nsec", _drop_all("NSEC"), is_(APEX, "SOA")),
        Case("nsec-and-nsec3", "nsec3", _nsec_into_nsec3(signed), None),
        Case("nsec-missing", "nsec", drop(is_(WWW, "NSEC"), is_(WWW, "RRSIG", "NSEC")),
             is_(WWW, "A")),
        Case("nsec-next-wrong", "nsec", change(is_(WWW, "NSEC"), 4, "nothere.s.test."),
             is_(WWW, "NSEC")),
        Case("nsec-bitmap-mismatch", "nsec", _bitmap_without(is_(WWW, "NSEC"), "TXT"),
             is_(WWW, "NSEC")),
        Case("nsec-not-authoritative", "nsec",
             copy_as(is_("ns.s.test.", "NSEC"), KID_GLUE), None),
        Case("nsec3param-mismatch", "nsec3", drop(is_(APEX, "NSEC3PARAM"),
                                                  is_(APEX, "RRSIG", "NSEC3PARAM")), None),
        Case("nsec3-missing", "nsec3", drop(_is_nsec3_of(WWW)), None),
        Case("nsec3-next-wrong", "nsec3", _nsec3_next_wrong, None),
        Case("nsec3-bitmap-mismatch", "nsec3", _bitmap_without(_is_nsec3_of(WWW), "TXT"),
             _is_nsec3_of(WWW)),
        Case("nsec3-orphan", "nsec3",
             drop(is_(WWW, "A"), is_(WWW, "TXT"), is_(WWW, "RRSIG")), _is_nsec3_of(WWW)),
        Case("nsec3-optout-mixed", "optout", _flip_optout, None),
        Case("nsec3-iterations", "salted", lambda lines: lines, is_(APEX, "NSEC3PARAM")),
        Case("nsec3-salt", "salted", lambda lines: lines, is_(APEX, "NSEC3PARAM")),
        Case("nsec3-missing", "optout", drop(_is_nsec3_of("sec.s.test.")), None,
             name="secure-delegation"),
        Case("nsec3-missing", "nsec3", drop(_is_nsec3_of("y.s.test.")), None, name="ent"),
    ]  # fmt: skip


CROSS_IDS = {"ds-no-matching-dnskey", "ds-unmatched", "ds-child-unsigned", "dnssec-island",
             "ds-parent-unsigned"}  # fmt: skip
UNSIGNED_IDS = {"dnssec-unsigned"}
DNSSEC_IDS = {c.value for c in DnssecCheck} | {"rrsig-ttl-mismatch"}


@pytest.fixture(scope="module")
def table(signed: dict[str, Lines]) -> list[tuple[Case, Lines]]:
    return [(c, c.edit(signed[c.kind])) for c in cases(signed)]


def test_every_dnssec_id_has_a_case(signed: dict[str, Lines]) -> None:
    tested = {c.id for c in cases(signed)} | CROSS_IDS | UNSIGNED_IDS
    assert tested == {c.value for c in DnssecCheck} | {"rrsig-ttl-mismatch"}


@pytest.mark.parametrize("kind", ["nsec", "nsec3", "optout"])
def test_signed_zones_are_clean(signed: dict[str, Lines], kind: str) -> None:
    assert [str(f) for f in lint_text(text_of(signed[kind])).findings] == []


def _ldns_signed(folder: Path, *flags: str) -> str:
    src = folder / "s.test.zone"
    src.write_text(ZONE)
    keys = []
    for ksk in (True, False):
        keys.append(
            subprocess.run(
                [require_binary("ldns-keygen"), "-a", "ECDSAP256SHA256", *(["-k"] * ksk),
                 "s.test"],
                check=True, capture_output=True, text=True, timeout=60, cwd=folder,
            ).stdout.strip()
        )  # fmt: skip
    dest = folder / "signed.zone"
    subprocess.run(
        [require_binary("ldns-signzone"), *flags, "-o", "s.test.", "-f", str(dest), str(src),
         *keys],
        check=True, capture_output=True, text=True, timeout=120, cwd=folder,
    )  # fmt: skip
    return dest.read_text()


@pytest.mark.parametrize(
    "flags", [(), ("-n", "-t", "0"), ("-n", "-p", "-t", "0")], ids=["nsec", "nsec3", "optout"]
)
def test_zones_signed_by_ldns_are_clean(flags: tuple[str, ...], tmp_path: Path) -> None:
    # Another signer's choices (record order, TTLs, NSEC3 of empty non-terminals).
    linted = lint_text(_ldns_signed(tmp_path, *flags), now=None)
    assert [str(f) for f in linted.findings] == []


def test_zone_signed_by_dnspython_is_clean() -> None:
    import dns.zone
    from cryptography.hazmat.primitives.asymmetric import ec

    zone = dns.zone.from_text(ZONE, ORIGIN, relativize=False)
    keys = []
    for flags in (257, 256):
        private = ec.generate_private_key(ec.SECP256R1())
        dnskey = dns.dnssec.make_dnskey(private.public_key(), "ECDSAP256SHA256", flags)
        keys.append((private, dnskey))
    dns.dnssec.sign_zone(zone, keys=keys, inception=INCEPTION, expiration=EXPIRATION)
    text = zone.to_text(relativize=False)
    assert [str(f) for f in lint_text(text).findings] == []
    # The same zone with one record changed after signing.
    broken = text.replace("192.0.2.2", "192.0.2.3")
    assert {f.id for f in lint_text(broken).findings} == {"rrsig-bogus"}


def test_salted_zone_warns_only_of_rfc_9276(signed: dict[str, Lines]) -> None:
    linted = lint_text(text_of(signed["salted"]))
    assert {f.id for f in linted.findings} == {"nsec3-iterations", "nsec3-salt"}
    assert all(f.severity is Severity.WARNING for f in linted.findings)


def test_each_broken_zone_is_reported(table: list[tuple[Case, Lines]]) -> None:
    problems = []
    for case, lines in table:
        linted = lint_text(text_of(lines), now=case.now)
        found = [f for f in linted.findings if f.id == case.id]
        if not found:
            problems.append(f"{case.label}: not reported; got {[str(f) for f in linted.findings]}")
            continue
        rule = lint.RULES[case.id]
        if any(f.severity is not rule.severity for f in found):
            problems.append(f"{case.label}: wrong severity")
        if case.at is not None:
            want = _line_of(lines, case.at)
            if want not in {f.line for f in found}:
                problems.append(f"{case.label}: line {[f.line for f in found]}, want {want}")
    assert problems == []


def test_time_checks_only_with_a_time(signed: dict[str, Lines]) -> None:
    late = int(dns.dnssec.to_timestamp("20360102000000"))
    assert [f for f in lint_text(text_of(signed["nsec"]), now=None).findings] == []
    expired = [f for f in lint_text(text_of(signed["nsec"]), now=late).findings]
    assert [f.id for f in expired] == ["rrsig-expired"]
    assert "2036-01-01 00:00:00 UTC" in expired[0].message
    assert "more signatures" in expired[0].message  # one finding, with the count


def test_expiry_horizon_is_configurable(signed: dict[str, Lines]) -> None:
    ten_days = int(dns.dnssec.to_timestamp("20351222000000"))
    text = text_of(signed["nsec"])
    assert EXPIRY_WARN_DAYS == 7
    assert lint_text(text, now=ten_days).findings == ()
    warned = lint_text(text, now=ten_days, expiry_days=11).findings
    assert [f.id for f in warned] == ["rrsig-expiring"]
    assert "within 11 days" in warned[0].message


# --- the cost bound -------------------------------------------------------------------------


def test_verification_is_bounded_and_says_so(signed: dict[str, Lines]) -> None:
    lines = change(is_(WWW, "A"), 4, "192.0.2.99")(signed["nsec"])
    sigs = sum(1 for line in lines if fields(line)[3] == "RRSIG")
    everything = lint_text(text_of(lines), verify_limit=0)
    assert [f.id for f in everything.findings] == ["rrsig-bogus"]
    assert everything.notes == ()
    bounded = lint_text(text_of(lines), verify_limit=3)
    assert len(bounded.notes) == 1
    note = bounded.notes[0]
    assert note.startswith("s.test.: verified ") and f"of {sigs} signatures" in note
    verified = int(note.split()[2])
    assert verified < sigs
    # The checks without cryptography still see every signature.
    lines = change(is_(WWW, "RRSIG", "A"), 10, "1")(signed["nsec"])
    bounded = lint_text(text_of(lines), verify_limit=3)
    assert [f.id for f in bounded.findings] == ["rrsig-key-missing"]
    assert LINT_MAX_VERIFIED_SIGNATURES >= 10_000  # a 10k-name zone is verified whole


# --- compared with dnssec-verify and kzonecheck ---------------------------------------------


def _references_reject(path: Path) -> dict[str, bool]:
    verify = subprocess.run(
        [require_binary("dnssec-verify"), "-q", "-o", "s.test", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    knot = subprocess.run(
        [require_binary("kzonecheck"), "-d", "on", "-o", "s.test", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return {"dnssec-verify": verify.returncode != 0, "kzonecheck": knot.returncode != 0}


def test_zones_the_references_reject_are_errors(
    table: list[tuple[Case, Lines]], signed: dict[str, Lines], tmp_path: Path
) -> None:
    rejected = 0
    problems = []
    clean = [(Case("clean", k, drop()), signed[k]) for k in ("nsec", "nsec3", "optout", "salted")]
    for case, lines in [*table, *clean]:
        if case.now != NOW:
            continue  # the references judge at the real time
        path = tmp_path / f"{case.label}.zone"
        path.write_text(text_of(lines))
        verdicts = _references_reject(path)
        # authd judges at the real time too, as the references do.
        code = main(["check", "--origin", "s.test", "--format", "json", str(path)])
        if any(verdicts.values()):
            rejected += 1
            if code != 1:
                problems.append(f"{case.label}: {verdicts} but authd check exits {code}")
        elif case.id == "clean" and code != 0:
            problems.append(f"{case.label}: the references accept it, authd check exits {code}")
    assert problems == []
    assert rejected >= 15  # the comparison compared something


# --- across zones: DS ------------------------------------------------------------------------

PARENT = """$ORIGIN p.test.
$TTL 300
@ SOA ns hm 1 7200 3600 1209600 300
@ NS ns
ns A 192.0.2.1
kid NS ns.kid
ns.kid A 192.0.2.9
"""
CHILD = """$ORIGIN kid.p.test.
$TTL 300
@ SOA ns hm 1 7200 3600 1209600 300
@ NS ns
ns A 192.0.2.9
www A 192.0.2.20
"""
KID = dns.name.from_text("kid.p.test.")
P = dns.name.from_text("p.test.")


@pytest.fixture(scope="module")
def kid(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The signed child zone and the DS of its KSK."""
    folder = tmp_path_factory.mktemp("kid")
    ksk = _keygen(folder, "kid.p.test", "-f", "KSK")
    _keygen(folder, "kid.p.test")
    child = text_of(_sign(folder, CHILD, "kid.p.test", "kid"))
    ds = subprocess.run(
        [require_binary("dnssec-dsfromkey"), "-2", str(folder / f"{ksk}.key")],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.split(None, 2)[2]  # fmt: skip
    return child, ds.strip()


def _dnspython_sign(text: str, origin: dns.name.Name) -> str:
    import dns.zone
    from cryptography.hazmat.primitives.asymmetric import ec

    zone = dns.zone.from_text(text, origin, relativize=False)
    keys = []
    for flags in (257, 256):
        private = ec.generate_private_key(ec.SECP256R1())
        dnskey = dns.dnssec.make_dnskey(private.public_key(), "ECDSAP256SHA256", flags)
        keys.append((private, dnskey))
    dns.dnssec.sign_zone(zone, keys=keys, inception=INCEPTION, expiration=EXPIRATION)
    return str(zone.to_text(relativize=False))


def _together(parent: str, child: str, sign_parent: bool = True) -> list[Finding]:
    if sign_parent:
        parent = _dnspython_sign(parent, P)
    zones = [
        lint.lint_records(P, parse_zone_text(parent, P, "p.zone"), "p.zone", LintOptions(NOW)),
        lint.lint_records(KID, parse_zone_text(child, KID, "kid.zone"), "kid.zone"),
    ]
    return [f for z in zones for f in z.findings] + lint.lint_together(zones)


def _ids(findings: list[Finding]) -> list[str]:
    return sorted(f.id for f in findings)


def test_ds_matching_the_childs_ksk_is_clean(kid: tuple[str, str]) -> None:
    child, ds = kid
    assert _ids(_together(PARENT + f"kid {ds}\n", child)) == []


def test_ds_matching_no_dnskey_breaks_the_chain(kid: tuple[str, str]) -> None:
    child, ds = kid
    bad = ds[:-4] + ("0000" if not ds.endswith("0000") else "1111")
    found = _together(PARENT + f"kid {bad}\n", child)
    assert _ids(found) == ["ds-no-matching-dnskey"]
    assert found[0].file == "p.zone" and "kid.p.test. DS" in found[0].message
    assert found[0].severity is Severity.ERROR


def test_ds_in_an_unsigned_parent_is_a_warning(kid: tuple[str, str]) -> None:
    # Never validated (the chain stops at the unsigned parent), never served
    # with DNSSEC: whatever it says, nothing breaks until the parent is signed.
    child, ds = kid
    bad = ds[:-4] + ("0000" if not ds.endswith("0000") else "1111")
    found = _together(PARENT + f"kid {bad}\n", child, sign_parent=False)
    assert _ids(found) == ["ds-parent-unsigned"]
    assert (found[0].file, found[0].line) == ("p.zone", 8)
    assert "no DS" in found[0].message and "once p.test. is signed" in found[0].message
    found = _together(PARENT + f"kid {ds}\n", CHILD, sign_parent=False)
    assert _ids(found) == ["ds-parent-unsigned"]
    assert "is not signed, once p.test. is signed" in found[0].message
    assert _ids(_together(PARENT + f"kid {ds}\n", child, sign_parent=False)) == []


def test_ds_matching_a_key_that_signs_nothing(kid: tuple[str, str]) -> None:
    child, ds = kid
    # The child's ZSK signs the DNSKEY RRset only beside the KSK; drop the KSK's signature.
    ksk_tag = ds.split()[1]
    lines = [
        line
        for line in child.splitlines()
        if not (fields(line)[3] == "RRSIG" and fields(line)[4] == "DNSKEY"
                and fields(line)[10] == ksk_tag)
    ]  # fmt: skip
    found = _together(PARENT + f"kid {ds}\n", text_of(lines))
    assert "ds-no-matching-dnskey" in _ids(found)


def test_a_stale_ds_beside_a_good_one_is_a_warning(kid: tuple[str, str]) -> None:
    child, ds = kid
    stale = "kid DS 1 13 2 " + "cd" * 32 + "\n"
    found = _together(PARENT + f"kid {ds}\n" + stale, child)
    assert _ids(found) == ["ds-unmatched"]
    assert found[0].severity is Severity.WARNING


@pytest.mark.parametrize("sign_parent", [True, False], ids=["signed", "unsigned"])
def test_signed_child_without_ds_is_an_island(kid: tuple[str, str], sign_parent: bool) -> None:
    child, _ = kid
    found = _together(PARENT, child, sign_parent)
    assert _ids(found) == ["dnssec-island"]
    assert found[0].file == "kid.zone"


def test_ds_for_an_unsigned_child_is_an_error(kid: tuple[str, str]) -> None:
    _, ds = kid
    found = _together(PARENT + f"kid {ds}\n", CHILD)
    assert _ids(found) == ["ds-child-unsigned"]


def test_dnskey_without_signatures_is_an_unsigned_zone(kid: tuple[str, str]) -> None:
    child, ds = kid
    dnskeys = [line for line in child.splitlines() if fields(line)[3] == "DNSKEY"]
    found = _together(PARENT + f"kid {ds}\n", CHILD + "\n".join(dnskeys) + "\n")
    assert _ids(found) == ["dnssec-unsigned", "ds-child-unsigned"]


def test_bundled_zones_unsigned_with_a_ds(capsys: pytest.CaptureFixture[str]) -> None:
    # zones/example.com.zone (unsigned) has a DS for child.example.com, whose
    # file has the DNSKEY but no signature: two warnings, nothing bogus yet.
    root = Path(__file__).resolve().parent.parent / "zones"
    code = main(["check", str(root / "example.com.zone"), str(root / "child.example.com.zone")])
    out = capsys.readouterr().out
    assert code == 0
    assert "[ds-parent-unsigned]" in out and "[dnssec-unsigned]" in out


# --- the command line ------------------------------------------------------------------------


def test_cli_options(signed: dict[str, Lines], tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.test.zone"
    path.write_text(text_of(signed["nsec"]))
    assert main(["check", str(path)]) == 0
    code = main(["check", "--dnssec-time", "20360102000000", str(path)])
    assert code == 1 and "[rrsig-expired]" in capsys.readouterr().out
    code = main(["check", "--dnssec-time", "20351230000000", str(path)])
    assert code == 0 and "[rrsig-expiring]" in capsys.readouterr().out
    code = main(["check", "--dnssec-time", "20351220000000", "--dnssec-expiry-days", "14",
                 str(path)])  # fmt: skip
    assert code == 0 and "within 14 days" in capsys.readouterr().out
    assert main(["check", "--dnssec-verify-limit", "2", str(path)]) == 0
    assert "note: s.test.: verified" in capsys.readouterr().err
    assert main(["check", "--dnssec-expiry-days", str(LINT_MAX_EXPIRY_DAYS), str(path)]) == 0
    capsys.readouterr()
    for bad in (["--dnssec-time", "yesterday"], ["--dnssec-expiry-days", "-1"],
                ["--dnssec-expiry-days", str(LINT_MAX_EXPIRY_DAYS + 1)],
                ["--dnssec-verify-limit", "x"], ["--dnssec-verify-limit", "-1"]):  # fmt: skip
        with pytest.raises(SystemExit) as e:
            main(["check", *bad, str(path)])
        assert e.value.code == 2


def test_dnssec_errors_can_be_disabled_refusals_cannot(
    signed: dict[str, Lines], tmp_path: Path, capsys
) -> None:
    path = tmp_path / "s.test.zone"
    path.write_text(text_of(change(is_(WWW, "A"), 4, "192.0.2.99")(signed["nsec"])))
    assert main(["check", str(path)]) == 1
    assert main(["check", "--disable", "rrsig-bogus", str(path)]) == 0
    capsys.readouterr()
    assert main(["check", "--disable", "soa-missing", str(path)]) == 2
    assert "refusal cannot be disabled" in capsys.readouterr().err


# --- the loader: RRSIGs per covered type (issue 11) -----------------------------------------


def test_rrsigs_of_different_ttls_are_no_ttl_mismatch(signed: dict[str, Lines]) -> None:
    """Regression: loading a signed zone logged ``ttl-mismatch`` for the RRSIGs
    at a name whose RRsets have different TTLs (www A 300, www TXT 600; the
    apex NSEC3PARAM TTL 0)."""
    for kind in ("nsec", "nsec3"):
        text = text_of(signed[kind])
        result = compile_zone(ORIGIN, parse_zone_text(text, ORIGIN, "s.zone"), "s.zone")
        assert result.version is not None
        assert [str(f) for f in result.findings] == []


def test_loader_flags_an_rrsig_ttl_unlike_its_rrset(signed: dict[str, Lines]) -> None:
    lines = change(is_(WWW, "RRSIG", "A"), 1, "900")(signed["nsec"])
    text = text_of(lines)
    result = compile_zone(ORIGIN, parse_zone_text(text, ORIGIN, "s.zone"), "s.zone")
    assert result.version is not None  # a warning: served
    found = [f for f in result.findings if f.id == LoaderCheck.RRSIG_TTL_MISMATCH]
    assert [f.line for f in found] == [_line_of(lines, is_(WWW, "RRSIG", "A"))]
    assert "TTL 900" in found[0].message and "has 300" in found[0].message


def test_two_rrsigs_of_one_covered_type_with_different_ttls(signed: dict[str, Lines]) -> None:
    lines = signed["nsec"]
    dnskey_sigs = [line for line in lines if is_(APEX, "RRSIG", "DNSKEY")(line)]
    assert len(dnskey_sigs) == 2
    edited = change(lambda line: line == dnskey_sigs[1], 1, "60")(lines)
    result = compile_zone(ORIGIN, parse_zone_text(text_of(edited), ORIGIN, "s.zone"), "s.zone")
    # Each RRSIG against its RRset: the one that differs is named (and only it;
    # a loader that also compares RRSIGs of one covered type says ttl-mismatch).
    line = edited.index(" ".join([fields(dnskey_sigs[1])[0], "60", *fields(dnskey_sigs[1])[2:]]))
    assert {f.line for f in result.findings} == {line + 1}
    assert "rrsig-ttl-mismatch" in {f.id for f in result.findings}
    assert {f.id for f in result.findings} <= {"rrsig-ttl-mismatch", "ttl-mismatch"}


def test_bitmap_types() -> None:
    import dns.rdata

    rd = dns.rdata.from_text("IN", "NSEC", "a.test. A NS SOA RRSIG NSEC DNSKEY TYPE1234")
    assert bitmap_types(rd.windows) == {1, 2, 6, 46, 47, 48, 1234}


# --- hostile input ----------------------------------------------------------------------------


def test_unreadable_keys_and_unknown_algorithms_never_crash(signed: dict[str, Lines]) -> None:
    lines = signed["nsec"]

    # A P-256 key of 3 octets, and a key and signature of an algorithm (12,
    # GOST) dnspython cannot verify: said in a note, not a crash.
    def short_key(lines: Lines) -> Lines:
        out = []
        for line in lines:
            f = fields(line)
            if is_(APEX, "DNSKEY")(line) and f[4] == "256":
                line = " ".join([*f[:7], "AAAA"])
            out.append(line)
        return out

    linted = lint_text(text_of(short_key(lines)))
    assert linted.findings  # the ZSK's tag changed: its signatures name no key
    import dns.rdata

    tag = dns.dnssec.key_id(dns.rdata.from_text("IN", "DNSKEY", "256 3 12 AAAA"))  # GOST
    private = add(
        "s.test. 300 IN DNSKEY 256 3 12 AAAA",
        f"www.s.test. 300 IN RRSIG A 12 3 300 {EXPIRATION} {INCEPTION} {tag} s.test. AAAA",
    )
    linted = lint_text(text_of(private(lines)))
    assert any("not verified (unsupported)" in n for n in linted.notes), linted.notes
    tag = dns.dnssec.key_id(dns.rdata.from_text("IN", "DNSKEY", "256 3 13 AAAA"))
    unreadable = add(
        "s.test. 300 IN DNSKEY 256 3 13 AAAA",
        f"www.s.test. 300 IN RRSIG A 13 3 300 {EXPIRATION} {INCEPTION} {tag} s.test. AAAA",
    )
    bogus = [f for f in lint_text(text_of(unreadable(lines))).findings if f.id == "rrsig-bogus"]
    # (The DNSKEY RRset changed, so its own signatures are bogus too.)
    assert len(lines) + 2 in [f.line for f in bogus]


def test_nsec3_iterations_beyond_the_limit_are_not_hashed(signed: dict[str, Lines]) -> None:
    many = str(LINT_MAX_NSEC3_ITERATIONS + 1)
    lines = change(is_(APEX, "NSEC3PARAM"), 6, many)(signed["nsec3"])
    lines = change(lambda line: fields(line)[3] == "NSEC3", 6, many)(lines)
    linted = lint_text(text_of(lines), verify_limit=1)
    # The records edited, their signatures are bogus; the chain is not judged.
    assert {f.id for f in linted.findings} == {"nsec3-iterations", "rrsig-bogus"}
    assert any("NSEC3 chain not followed" in n for n in linted.notes)


def test_canonical_order_key_is_dnspythons_order() -> None:
    from authd.lint_dnssec import _canonical

    texts = ["example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.",
             "z.example.", "\\001.z.example.", "*.z.example.", "\\200.z.example.", "ab.example.",
             "a-.example.", "a\\000.example."]  # fmt: skip
    names = [dns.name.from_text(t) for t in texts]
    assert sorted(names, key=_canonical) == sorted(names)


# --- random zones: signed, clean; broken, rejected ------------------------------------------

R = dns.name.from_text("r.test.")
RANDOM_ZONES = 12  # zones drawn from a fixed seed, each signed two ways


def _random_zone(rng: random.Random) -> str:
    """A small zone of random shape: names up to 4 labels deep (empty
    non-terminals between), a wildcard, insecure and secure delegations with
    glue, TTLs that differ by type."""
    lines = ["$ORIGIN r.test.", "$TTL 300", "@ SOA ns hm 1 7200 3600 1209600 300", "@ NS ns",
             "ns A 192.0.2.1"]  # fmt: skip
    labels = ["a", "b", "c", "d", "*", "x-y"]
    names = set()
    for _ in range(rng.randint(1, 12)):
        first = rng.choice(labels)
        rest = [rng.choice(labels[:4]) for _ in range(rng.randint(0, 3))]
        names.add(".".join([first, *rest]))
    cuts: set[str] = set()
    for n in sorted(names):
        if any(n == c or n.endswith("." + c) for c in cuts):
            continue
        kind = rng.choice(["A", "TXT", "MX", "cut", "secure", "ent"])
        below = any(m.endswith("." + n) for m in names)
        if kind in ("cut", "secure") and not below and not n.startswith("*"):
            cuts.add(n)
            lines += [f"{n} NS ns.{n}", f"ns.{n} A 192.0.2.9"]
            if kind == "secure":
                lines.append(f"{n} DS 1 13 2 {DS_TEXT}")
        elif kind == "TXT":
            lines.append(f'{n} {rng.choice([60, 300, 600])} TXT "t"')
        elif kind == "MX":
            lines.append(f"{n} MX 10 ns")
        elif kind == "ent" and not n.startswith("*"):
            lines.append(f"sub.{n} A 192.0.2.3")
        else:
            lines.append(f"{n} A 192.0.2.{rng.randint(2, 250)}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def random_signed(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Lines]]:
    folder = tmp_path_factory.mktemp("random")
    _keygen(folder, "r.test", "-f", "KSK")
    _keygen(folder, "r.test")
    rng = random.Random(20261203)
    out = []
    for i in range(RANDOM_ZONES):
        text = _random_zone(rng)
        flags = (["-3", "-"], ["-3", "-", "-A"], [])[i % 3]
        out.append(
            (f"{i}:{' '.join(flags) or 'nsec'}", _sign(folder, text, "r.test", f"r{i}", *flags))
        )
        dnspython = _dnspython_sign(text, R).splitlines()
        out.append((f"{i}:dnspython", [line for line in dnspython if line]))
    return out


def _lint_r(lines: Lines) -> lint.ZoneLint:
    records = parse_zone_text(text_of(lines), R, "r.zone")
    return lint.lint_records(R, records, "r.zone", LintOptions(now=NOW))


def test_random_signed_zones_are_clean(random_signed: list[tuple[str, Lines]]) -> None:
    dirty = {}
    for label, lines in random_signed:
        shown = [str(f) for f in _lint_r(lines).findings if f.id in DNSSEC_IDS]
        if shown:
            dirty[label] = shown
    assert dirty == {}


def test_random_breakage_is_an_error_where_the_references_say_so(
    random_signed: list[tuple[str, Lines]], tmp_path: Path
) -> None:
    """Each zone broken once, at random: a denial record dropped, or a record
    changed after signing; whenever dnssec-verify or kzonecheck rejects it,
    authd check has an error, and it always does for these."""
    rng = random.Random(4035)
    problems = []
    rejected = 0
    for label, lines in random_signed:
        denials = [i for i, line in enumerate(lines) if fields(line)[3] in ("NSEC", "NSEC3")]
        signed_sets = {
            (fields(line)[0].lower(), fields(line)[4])
            for line in lines
            if fields(line)[3] == "RRSIG"
        }
        data = [  # signed data (glue is not)
            i
            for i, line in enumerate(lines)
            if fields(line)[3] in ("A", "TXT", "MX")
            and (fields(line)[0].lower(), fields(line)[3]) in signed_sets
        ]
        if rng.random() < 0.5 and denials:
            gone = rng.choice(denials)
            broken = lines[:gone] + lines[gone + 1 :]
        else:
            at = rng.choice(data)
            broken = [*lines]
            f = fields(broken[at])
            # A: another address; TXT: another text; MX: another preference.
            f[4] = {"A": "198.51.100.1", "TXT": '"changed"', "MX": "20"}[f[3]]
            broken[at] = " ".join(f)
            assert broken[at] != lines[at]
        path = tmp_path / "r.zone"
        path.write_text(text_of(broken))
        verdicts = {
            tool: subprocess.run(
                [require_binary(tool), *args, str(path)],
                capture_output=True, text=True, timeout=120,
            ).returncode != 0
            for tool, args in (("dnssec-verify", ["-q", "-o", "r.test"]),
                               ("kzonecheck", ["-d", "on", "-o", "r.test"]))
        }  # fmt: skip
        errors = _lint_r(broken).errors
        rejected += verdicts["dnssec-verify"]
        if any(verdicts.values()) and not errors:
            problems.append(f"{label}: {verdicts}, but authd check has no error")
        if not errors:
            problems.append(f"{label}: no error for a broken zone: {set(lines) ^ set(broken)}")
    assert problems == []
    assert rejected >= len(random_signed) // 2  # the reference judged real breakage
