"""harness.signing makes zones a validator accepts: checked with dnspython's own DNSSEC code.

For each denial kind: the DS of the result matches its KSK (RFC 4034 section
5), every RRSIG in the file verifies against the zone's DNSKEY RRset, each
RRSIG's TTL is that of the RRset it covers (RFC 4034 section 3), the
signature window contains now, and the NSEC3 parameters are the ones RFC
9276 asks for.  A parent given its child's DS (``extra``) signs it.
"""

from __future__ import annotations

import time
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
import signkit

from harness.signing import ALGORITHM, Denial, sign_zone

REPO = Path(__file__).resolve().parent.parent
ZONE = REPO / "tests" / "zones" / "wild.test.zone"


@pytest.mark.parametrize("denial", list(Denial), ids=[d.value for d in Denial])
def test_signed_zone_validates(denial: Denial) -> None:
    signed = signkit.cache().sign("wild.test", ZONE, denial)
    zone = signed.zone()
    origin = dns.name.from_text("wild.test.")
    dnskeys = zone.get_rdataset(origin, dns.rdatatype.DNSKEY)
    assert dnskeys is not None and {rd.algorithm for rd in dnskeys} == {ALGORITHM}
    ksk = [rd for rd in dnskeys if rd.flags == 257]
    assert len(ksk) == 1 and len(dnskeys) == 2
    ds = dns.dnssec.make_ds(origin, ksk[0], "SHA256")
    fields = signed.ds[0].split()
    assert len(signed.ds) == 1 and fields[:4] == ["wild.test.", "3600", "IN", "DS"]
    assert fields[4:7] == ds.to_text().split()[:3]
    assert "".join(fields[7:]).lower() == ds.digest.hex()
    assert signed.ksk_tag == dns.dnssec.key_id(ksk[0])
    keys = {origin: dnskeys}
    now = time.time()
    checked = 0
    for name, node in zone.nodes.items():
        for rdataset in node.rdatasets:
            if rdataset.rdtype != dns.rdatatype.RRSIG:
                continue
            covered = node.get_rdataset(dns.rdataclass.IN, rdataset.covers)
            assert covered is not None, f"{name}: RRSIG({rdataset.covers}) without its RRset"
            # RFC 4034 section 3: the RRSIG TTL is the covered RRset's.
            assert rdataset.ttl == covered.ttl, f"{name} {rdataset.covers!r}"
            assert all(rd.inception < now < rd.expiration for rd in rdataset)
            rrset = dns.rrset.from_rdata_list(name, covered.ttl, list(covered))
            sigs = dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))
            dns.dnssec.validate(rrset, sigs, keys, now=now)
            checked += 1
    assert checked > 10
    params = zone.get_rdataset(origin, dns.rdatatype.NSEC3PARAM)
    if denial is Denial.NSEC:
        assert params is None
    else:
        assert params is not None and params[0].iterations == 0 and params[0].salt == b""


def test_parent_signs_the_child_ds() -> None:
    hierarchy = signkit.hierarchy()
    tld = hierarchy.signed["test."].zone()
    for leaf in ("secure.test.", "nsec.test."):
        ds = tld.get_rdataset(leaf, dns.rdatatype.DS)
        assert ds is not None
        assert {rd.to_text().replace(" ", "").upper() for rd in ds} == {
            "".join(line.split()[4:]).upper() for line in hierarchy.signed[leaf].ds
        }
        assert tld.get_rdataset(leaf, dns.rdatatype.RRSIG, dns.rdatatype.DS) is not None
    assert tld.get_rdataset("insecure.test.", dns.rdatatype.DS) is None


def test_sign_zone_writes_where_asked(tmp_path: Path) -> None:
    signed = sign_zone("wild.test", ZONE, Denial.NSEC3, tmp_path / "out")
    assert signed.path.parent == tmp_path / "out" and signed.path.is_file()
    assert (tmp_path / "out" / "keys").is_dir()
    assert signed.trust_anchor == signed.ds[0]
