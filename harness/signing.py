"""Signing zone files for the tests and benches, with BIND's tools.

Owns: making a KSK and a ZSK (``dnssec-keygen``, algorithm 13, ECDSA P-256
with SHA-256) for a zone and signing a zone file with them
(``dnssec-signzone``) in one of three ways: NSEC, NSEC3 with no salt and
0 iterations (RFC 9276), or NSEC3 with opt-out (RFC 5155 section 6).  The
result is the signed file plus what a parent or a validator needs: the
DS records (from the KSK), the DNSKEY RRset and a trust anchor line for
unbound.

Invariants:
- everything happens in a fresh temporary folder; the source file is only read
  (``$INCLUDE`` is resolved relative to the source file's folder);
- signatures are valid from ``INCEPTION_SLACK`` before now until
  ``VALIDITY`` after it, so a test run and a clock a little off agree;
  ECDSA signatures are randomised, so two signings of the same zone differ
  byte for byte: sign once and serve that one file from every server;
- the SOA serial is kept (``-N keep``), so a signed zone's SOA equals the
  unsigned one's;
- a missing tool is an error (``PeerError``), never a skip;
- every run of a tool is bounded by ``TOOL_TIMEOUT``.
"""

from __future__ import annotations

import enum
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone

from harness.peers import PeerError, require_binary

ALGORITHM = 13  # ECDSAP256SHA256: what RFC 8624 recommends and every peer validates
TOOL_TIMEOUT = 60.0  # seconds for one dnssec-keygen or dnssec-signzone run
INCEPTION_SLACK = 3600  # seconds the signatures are valid before now
VALIDITY = 30 * 86400  # seconds the signatures are valid after now


class Denial(enum.Enum):
    """How a signed zone proves that names and types do not exist."""

    NSEC = "nsec"
    NSEC3 = "nsec3"  # no salt, 0 iterations (RFC 9276 section 3.1)
    NSEC3_OPTOUT = "nsec3-optout"  # and opt-out for insecure delegations


@dataclass(frozen=True, slots=True)
class SignedZone:
    """A signed copy of a zone and the key material around it.

    ``ds`` and ``dnskeys`` are presentation-format records with the owner
    name (``example.com. 3600 IN DS ...``); ``trust_anchor`` is the KSK's DS
    as unbound's ``trust-anchor:`` takes it.
    """

    origin: str
    denial: Denial
    path: Path
    ds: tuple[str, ...]
    dnskeys: tuple[str, ...]
    ksk_tag: int
    zsk_tag: int

    @property
    def trust_anchor(self) -> str:
        return self.ds[0]

    def zone(self) -> dns.zone.Zone:
        """The signed file read by dnspython (names absolute)."""
        return dns.zone.from_file(str(self.path), self.origin, relativize=False)


def _run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise PeerError(f"{' '.join(argv)}: exit {done.returncode}\n{done.stdout}{done.stderr}")
    return done.stdout


def _keygen(origin: str, keydir: Path, ksk: bool) -> int:
    argv = [require_binary("dnssec-keygen"), "-q", "-a", str(ALGORITHM), "-K", str(keydir)]
    if ksk:
        argv += ["-f", "KSK"]
    base = _run([*argv, origin], keydir).strip()  # Kexample.com.+013+12345
    return int(base.rsplit("+", 1)[1])


def _denial_args(denial: Denial) -> list[str]:
    if denial is Denial.NSEC:
        return []
    args = ["-3", "-", "-H", "0"]  # "-": no salt
    return [*args, "-A"] if denial is Denial.NSEC3_OPTOUT else args


def sign_zone(
    origin: str,
    source: str | os.PathLike[str],
    denial: Denial,
    outdir: str | os.PathLike[str] | None = None,
    *,
    extra: Sequence[str] = (),
) -> SignedZone:
    """Sign the zone file *source* for *origin* with new keys.

    *extra* records (presentation format, absolute owners) are appended to a
    copy before signing: the DS records of a child, for a parent.  The signed
    file, keys and dsset go to *outdir* (a new temporary folder by default),
    which the caller removes.
    """
    zone = dns.name.from_text(origin).to_text()
    source_path = Path(source).resolve()
    if not source_path.is_file():
        raise PeerError(f"zone {zone}: no file {source_path}")
    folder = Path(outdir) if outdir is not None else Path(tempfile.mkdtemp(prefix="authd-sign-"))
    folder.mkdir(parents=True, exist_ok=True)
    keydir = folder / "keys"
    keydir.mkdir(exist_ok=True)
    ksk_tag = _keygen(zone, keydir, ksk=True)
    zsk_tag = _keygen(zone, keydir, ksk=False)
    unsigned = source_path
    if extra:
        # Written beside the source so that its relative $INCLUDEs still resolve;
        # the copy goes in our folder, read from the source's folder as cwd.
        unsigned = folder / f"{zone if zone != '.' else 'root.'}unsigned"
        text = source_path.read_text()
        unsigned.write_text(f"$ORIGIN {zone}\n" + text + "\n$ORIGIN .\n" + "\n".join(extra) + "\n")
    slug = zone if zone != "." else "root."
    signed = folder / f"{slug}{denial.value}.signed"
    argv = [
        require_binary("dnssec-signzone"),
        "-q",
        "-S",  # smart signing: publish the keys found in -K in the DNSKEY RRset
        "-K",
        str(keydir),
        "-x",  # only the KSK signs the DNSKEY RRset, as Knot and BIND's policies do
        "-o",
        zone,
        "-N",
        "keep",
        "-O",
        "full",
        "-s",
        f"now-{INCEPTION_SLACK}",
        "-e",
        f"now+{VALIDITY}",
        "-d",
        str(folder),
        "-f",
        str(signed),
        *_denial_args(denial),
        str(unsigned),
    ]
    _run(argv, source_path.parent)
    ds = tuple(
        " ".join(line.split())
        for line in (folder / f"dsset-{zone}").read_text().splitlines()
        if line.strip()
    )
    dnskeys = _dnskeys(signed, zone)
    return SignedZone(zone, denial, signed, _with_ttl(ds), dnskeys, ksk_tag, zsk_tag)


def _with_ttl(ds: tuple[str, ...], ttl: int = 3600) -> tuple[str, ...]:
    """dsset lines are ``owner IN DS ...``; give them a TTL for a parent's zone file."""
    out = []
    for line in ds:
        owner, rest = line.split(None, 1)
        out.append(f"{owner} {ttl} {rest}" if rest.startswith("IN ") else line)
    return tuple(out)


def _dnskeys(signed: Path, origin: str) -> tuple[str, ...]:
    zone = dns.zone.from_file(str(signed), origin, relativize=False)
    rdataset = zone.get_rdataset(origin, dns.rdatatype.DNSKEY)
    if rdataset is None:
        raise PeerError(f"{signed}: no DNSKEY RRset at {origin}")
    return tuple(f"{origin} {rdataset.ttl} IN DNSKEY {rd.to_text()}" for rd in rdataset)


class SigningCache:
    """Sign each (origin, file, denial) once; files live until ``close()``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="authd-signed-"))
        self._signed: dict[tuple[str, str, Denial, tuple[str, ...]], SignedZone] = {}

    def sign(
        self,
        origin: str,
        source: str | os.PathLike[str],
        denial: Denial,
        *,
        extra: Sequence[str] = (),
    ) -> SignedZone:
        key = (
            dns.name.from_text(origin).to_text(),
            str(Path(source).resolve()),
            denial,
            tuple(extra),
        )
        if key not in self._signed:
            folder = self.root / f"{len(self._signed):03d}-{key[0]}{denial.value}"
            self._signed[key] = sign_zone(origin, source, denial, folder, extra=extra)
        return self._signed[key]

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
