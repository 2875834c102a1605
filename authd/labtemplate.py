"""The ``basic`` and ``signed`` lab templates: their servers and zone files, as text.

Owns what a new lab holds: a root, the TLDs ``com.``, ``net.``, ``org.`` and
``arpa.`` (with ``in-addr.arpa.``), a company zone with MX, SRV and CNAME
records, a reverse zone, a zone with a secondary on another server, and a
sub-delegation.  Invariant: every in-bailiwick name server has glue in the
parent; out-of-bailiwick ones (``ns.example.net.`` for ``example.com.``) have
none, so a tracer has to look them up separately, as a real resolver does.
The ``signed`` template is the same lab with every primary zone signed by
authd; ``with_ds`` puts each child's DS records into its parent's file.
"""

from __future__ import annotations

import dns.name
import dns.rdtypes.ANY.DS

from authd.lab import Lab, LabServer, LabZone, parent_zone

SERIAL = 2026010101

# (lab name, address, name server host)
_SERVERS = (
    ("root", "127.0.0.10", "a.root-servers.net."),
    ("gtld", "127.0.0.20", "a.gtld-servers.net."),
    ("org", "127.0.0.21", "a0.org-servers.org."),
    ("arpa", "127.0.0.30", "a.in-addr-servers.arpa."),
    ("ns1", "127.0.0.40", "ns1.example.com."),
    ("ns2", "127.0.0.41", "ns.example.net."),
    ("eng", "127.0.0.42", "ns1.eng.example.com."),
)
_ZONES: dict[str, tuple[tuple[str, str | None], ...]] = {
    # server -> (zone, file, or None for a secondary of ns1)
    "root": ((".", "zones/root.zone"), ("arpa.", "zones/arpa.zone")),
    "gtld": (("com.", "zones/com.zone"), ("net.", "zones/net.zone")),
    "org": (("org.", "zones/org.zone"),),
    "arpa": (("in-addr.arpa.", "zones/in-addr.arpa.zone"),),
    "ns1": (("example.com.", "zones/example.com.zone"), ("0.0.127.in-addr.arpa.", "zones/127.rev")),
    "ns2": (
        ("example.net.", "zones/example.net.zone"),
        ("example.org.", "zones/example.org.zone"),
        ("example.com.", None),
    ),
    "eng": (("eng.example.com.", "zones/eng.example.com.zone"),),
}
NAMES = (
    "www.example.com A",
    "example.com MX",
    "_sip._tcp.example.com SRV",
    "shop.example.com A",
    "ftp.example.com A",
    "build.eng.example.com A",
    "docs.eng.example.com A",
    "www.example.net A",
    "www.example.org A",
    "wiki.example.org A",
    "40.0.0.127.in-addr.arpa PTR",
    "nothing.example.com A",
    "www.example.com AAAA",
)


def _soa(primary: str) -> str:
    return f"$TTL 3600\n@ IN SOA {primary} hostmaster.example.com. {SERIAL} 3600 600 86400 300\n"


def _addr(name: str) -> str:
    return dict((h, a) for _, a, h in _SERVERS)[name]


ROOT = (
    _soa("a.root-servers.net.")
    + f"""\
@                   518400 NS a.root-servers.net.
; glue: the root's own server lives below net.
a.root-servers.net. 518400 A  {_addr("a.root-servers.net.")}
com.                172800 NS a.gtld-servers.net.
net.                172800 NS a.gtld-servers.net.
a.gtld-servers.net. 172800 A  {_addr("a.gtld-servers.net.")}
org.                172800 NS a0.org-servers.org.
a0.org-servers.org. 172800 A  {_addr("a0.org-servers.org.")}
arpa.               172800 NS a.root-servers.net.
"""
)

COM = (
    _soa("a.gtld-servers.net.")
    + f"""\
@                   172800 NS a.gtld-servers.net.
; example.com: one server in the zone (glue needed), one in example.net (no glue here)
example.com.        172800 NS ns1.example.com.
example.com.        172800 NS ns.example.net.
ns1.example.com.    172800 A  {_addr("ns1.example.com.")}
"""
)

NET = (
    _soa("a.gtld-servers.net.")
    + f"""\
@                   172800 NS a.gtld-servers.net.
a.root-servers.net. 172800 A  {_addr("a.root-servers.net.")}
a.gtld-servers.net. 172800 A  {_addr("a.gtld-servers.net.")}
example.net.        172800 NS ns.example.net.
ns.example.net.     172800 A  {_addr("ns.example.net.")}
"""
)

ORG = (
    _soa("a0.org-servers.org.")
    + f"""\
@                   172800 NS a0.org-servers.org.
a0.org-servers.org. 172800 A  {_addr("a0.org-servers.org.")}
; example.org's server is in example.net: no glue can be given here
example.org.        172800 NS ns.example.net.
"""
)

ARPA = (
    _soa("a.root-servers.net.")
    + f"""\
@                   172800 NS a.root-servers.net.
in-addr.arpa.       172800 NS a.in-addr-servers.arpa.
a.in-addr-servers.arpa. 172800 A {_addr("a.in-addr-servers.arpa.")}
"""
)

IN_ADDR = (
    _soa("a.in-addr-servers.arpa.")
    + """\
@                   172800 NS a.in-addr-servers.arpa.
; 127.0.0.0/24 is the company's: delegated straight to its server
0.0.127             86400  NS ns1.example.com.
"""
)

EXAMPLE_COM = (
    _soa("ns1.example.com.")
    + f"""\
@           NS    ns1.example.com.
@           NS    ns.example.net.
@           MX    10 mail.example.com.
@           MX    20 mail.example.net.
@           A     192.0.2.10
@           TXT   "v=spf1 mx -all"
ns1         A     {_addr("ns1.example.com.")}
www         A     192.0.2.10
www         AAAA  2001:db8::10
mail        A     192.0.2.25
shop        CNAME www
ftp         CNAME www.example.net.
_sip._tcp   SRV   10 60 5060 sip.example.com.
sip         A     192.0.2.50
; the engineering department runs its own zone
eng         NS    ns1.eng.example.com.
ns1.eng     A     {_addr("ns1.eng.example.com.")}
"""
)

ENG = (
    _soa("ns1.eng.example.com.")
    + f"""\
@           NS    ns1.eng.example.com.
ns1         A     {_addr("ns1.eng.example.com.")}
build       A     192.0.2.100
docs        CNAME build
"""
)

EXAMPLE_NET = (
    _soa("ns.example.net.")
    + f"""\
@           NS    ns.example.net.
ns          A     {_addr("ns.example.net.")}
www         A     198.51.100.80
mail        A     198.51.100.25
"""
)

EXAMPLE_ORG = (
    _soa("ns.example.net.")
    + """\
@           NS    ns.example.net.
www         A     203.0.113.80
wiki        CNAME www.example.com.
"""
)


def _reverse() -> str:
    lines = [_soa("ns1.example.com."), "@           NS    ns1.example.com.\n"]
    for _, address, host in _SERVERS:
        lines.append(f"{address.rsplit('.', 1)[1]:<11} PTR   {host}\n")
    return "".join(lines)


FILES = {
    "zones/root.zone": ROOT,
    "zones/com.zone": COM,
    "zones/net.zone": NET,
    "zones/org.zone": ORG,
    "zones/arpa.zone": ARPA,
    "zones/in-addr.arpa.zone": IN_ADDR,
    "zones/example.com.zone": EXAMPLE_COM,
    "zones/eng.example.com.zone": ENG,
    "zones/example.net.zone": EXAMPLE_NET,
    "zones/example.org.zone": EXAMPLE_ORG,
    "zones/127.rev": _reverse(),
}


def basic() -> tuple[Lab, dict[str, str]]:
    """The basic lab and its zone files (path relative to the lab folder -> text)."""
    servers = []
    for name, address, host in _SERVERS:
        zones = tuple(
            LabZone(dns.name.from_text(z), f, None if f else "ns1") for z, f in _ZONES[name]
        )
        servers.append(LabServer(name, address, dns.name.from_text(host), zones))
    names = tuple((n, t) for n, t in (x.split() for x in NAMES))
    return Lab("basic", tuple(servers), names), dict(FILES)


def signed() -> tuple[Lab, dict[str, str]]:
    """The signed lab: the basic one, every primary zone signed by authd."""
    lab, files = basic()
    return Lab("signed", lab.servers, lab.names), files


DS_TTL = 86400


def with_ds(
    lab: Lab, files: dict[str, str], ds: dict[dns.name.Name, list[dns.rdtypes.ANY.DS.DS]]
) -> dict[str, str]:
    """*files* with each child zone's *ds* records added to its parent's primary
    file (absolute owner names, so the place in the file does not matter)."""
    out = dict(files)
    zones = lab.zones()
    for child, records in sorted(ds.items()):
        parent = parent_zone(lab, child)
        if parent is None or not records:
            continue
        file = zones[parent][0].zone(parent).file
        if file is None:
            raise ValueError(f"{parent}: its first server is no primary")
        lines = "".join(f"{child.to_text()} {DS_TTL} IN DS {r.to_text()}\n" for r in records)
        out[file] = out[file] + f"; the DS of the signed child {child.to_text()}\n" + lines
    return out
