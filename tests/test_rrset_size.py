"""Bytes per RRset (issue 16): an RRset no DNS message can carry is refused.

Regression ``rrset_over_a_message_was_answered_empty_with_tc_over_tcp``: 65,535
A records at one owner loaded, and every answer for them (even over TCP, where
the limit is the 65,535 of RFC 1035 section 4.2.2) was empty with TC set.
``max_records_per_rrset`` bounds the count; the loader check ``rrset-too-large``
bounds the bytes: an RRset whose answer alone (header, question, an OPT
record, the RRset with its names compressed) is over 65,535 bytes is refused
with ``file:line`` by the server at start and on a hot reload (the old
version keeps serving), by ``authd check``, and in AXFR and IXFR alike.

dnspython is the oracle for what fits: ``Message.to_wire`` (max 65,535) says
where the boundary is, and the largest RRset accepted is answered whole over TCP.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
import yaml
from reloadkit import Lab, running_lab, soa_serial, zone_text

from authd import changeset
from authd.adapters.fleet import _apply_received
from authd.checks import LoaderCheck
from authd.config import config_from_dict
from authd.limits import MAX_MESSAGE
from authd.xfr_in import Received
from authd.zone import compile_zone
from authd.zonefile import Record, _Parser
from harness.peers import HOST

pytestmark = pytest.mark.timeout(120)

ORIGIN = dns.name.from_text("r.test.")
HEAD_LINES = 7  # zone_text's lines: comment, $ORIGIN, $TTL, SOA, NS, ns, www
BIG = dns.name.from_text("big.r.test.")


def _a(count: int, owner: str = "big") -> str:
    return "".join(f"{owner} A 10.{i >> 16}.{i >> 8 & 255}.{i & 255}\n" for i in range(count))


def _fits(qname: dns.name.Name, rrset: dns.rrset.RRset) -> bool:
    """Whether dnspython can write an answer with just *rrset* for *qname*, with EDNS."""
    query = dns.message.make_query(qname, rrset.rdtype, use_edns=0)
    response = dns.message.make_response(query)
    response.answer.append(rrset)
    try:
        response.to_wire(max_size=MAX_MESSAGE)
    except dns.exception.TooBig:
        return False
    return True


def _a_rrset(owner: dns.name.Name, count: int) -> dns.rrset.RRset:
    text = _a(count).split("\n")[:-1]
    return dns.rrset.from_text_list(owner, 300, "IN", "A", [t.split()[-1] for t in text])


def _largest_a_count() -> int:
    """The most A records at big.r.test. an answer can carry (dnspython's say)."""
    n = (MAX_MESSAGE - 40) // 16
    while _fits(BIG, _a_rrset(BIG, n + 1)):
        n += 1
    while not _fits(BIG, _a_rrset(BIG, n)):
        n -= 1
    return n


LARGEST = _largest_a_count()


def _parse(text: str, filename: str = "r.zone") -> list[Record]:
    """*text*'s records, with room for more than the default records per RRset."""
    return _Parser(max_records_per_rrset=10_000).parse(text.split("\n"), ORIGIN, filename)


def _compile(text: str):  # type: ignore[no-untyped-def]
    return compile_zone(ORIGIN, _parse(text), "r.zone")


def _too_large(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(f) for f in result.findings if f.id == LoaderCheck.RRSET_TOO_LARGE]


def test_rrset_over_a_message_was_answered_empty_with_tc_over_tcp() -> None:
    assert 4000 < LARGEST < 4100
    fits = _compile(zone_text("r.test", 1, extra=_a(LARGEST)))
    assert fits.version is not None and not _too_large(fits)
    over = _compile(zone_text("r.test", 1, extra=_a(LARGEST + 1)))
    assert over.version is None
    size = 12 + len(BIG.to_wire() or b"") + 4 + 16 * (LARGEST + 1) + 11
    assert _too_large(over) == [
        f"r.zone:{HEAD_LINES + 1}: error: the RRset big.r.test. A ({LARGEST + 1} records) "
        f"needs {size} bytes in an answer, over the 65535 a DNS message holds [rrset-too-large]"
    ]


@pytest.mark.parametrize("owner", ["x", "*.w"])
def test_one_long_txt_is_judged_by_the_longest_question_a_wildcard_answers(owner: str) -> None:
    """One TXT of 65,242 bytes fits an answer for x.r.test.; a wildcard owner
    may answer a 255-byte name, and then it does not."""
    length = MAX_MESSAGE - (12 + 255 + 4 + 12 + 11) + 1  # one byte over for a 255-byte qname
    count, rest = divmod(length, 256)  # each string: a length byte and up to 255 bytes
    strings = [255] * count + ([rest - 1] if rest else [])
    rdata = " ".join('"' + "t" * n + '"' for n in strings)
    rd = dns.rdata.from_text("IN", "TXT", rdata)
    assert len(rd.to_wire() or b"") == length
    assert _fits(dns.name.from_text(f"{owner}.r.test."), dns.rrset.from_rdata_list(BIG, 300, [rd]))
    result = _compile(zone_text("r.test", 1, extra=f"{owner} TXT {rdata}\n"))
    if owner == "x":
        assert result.version is not None and not _too_large(result)
    else:
        assert result.version is None
        assert (
            len(_too_large(result)) == 1 and "*.w.r.test. TXT (1 records)" in _too_large(result)[0]
        )


def _config(tmp_path: Path, zone: Path) -> Path:
    path = tmp_path / "authd.yaml"
    path.write_text(
        yaml.safe_dump(
            {"zones": [{"name": "r.test", "file": str(zone)}], "options": {"state_dir": "s"}}
        )
    )
    return path


def test_startup_and_authd_check_refuse_the_file_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """300 TXT records of 255 bytes: within max_records_per_rrset, over a message."""
    from authd.cli import main

    zone = tmp_path / "r.zone"
    zone.write_text(
        zone_text("r.test", 1, extra="".join(f'big TXT "{i:03d}{"t" * 252}"\n' for i in range(300)))
    )
    at = f"{zone}:{HEAD_LINES + 1}: "
    why = "the RRset big.r.test. TXT (300 records) needs"
    config = _config(tmp_path, zone)
    assert main(["serve", "-c", str(config), "--check-config"]) == 1
    err = capsys.readouterr().err
    assert at in err and why in err, err
    done = subprocess.run(
        [sys.executable, "-m", "authd", "check", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{at}error: {why}" in done.stdout and "[rrset-too-large]" in done.stdout, done.stdout


def _zone_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    zone = {"name": "r.test", "type": "secondary", "primaries": [{"address": HOST}]}
    zone["max_records_per_rrset"] = 10_000
    config = config_from_dict({"zones": [zone], "options": {"state_dir": "s"}}, None, str(tmp_path))
    return config.views[0].zones[0]


def _rrs(text: str) -> list[changeset.RR]:
    return [changeset.RR(r[0], r[1], r[2]) for r in _parse(text)]


def test_an_axfr_with_an_rrset_over_a_message_is_refused(tmp_path: Path) -> None:
    zc = _zone_config(tmp_path)
    fits, _ = _apply_received(zc, None, Received(_rrs(zone_text("r.test", 1, extra=_a(LARGEST)))))
    assert len(fits.nodes[BIG][dns.rdatatype.A]) == LARGEST
    with pytest.raises(ValueError, match=r"transferred zone refused: .*big\.r\.test\. A "):
        _apply_received(zc, None, Received(_rrs(zone_text("r.test", 1, extra=_a(LARGEST + 1)))))


def test_an_ixfr_that_grows_an_rrset_over_a_message_is_refused(tmp_path: Path) -> None:
    zc = _zone_config(tmp_path)
    old, _ = _apply_received(zc, None, Received(_rrs(zone_text("r.test", 1, extra=_a(LARGEST)))))
    old_soa, new_soa = (_rrs(zone_text("r.test", s))[0] for s in (1, 2))
    more = dns.rdata.from_text("IN", "A", "10.255.255.255")
    step = changeset.Changeset(old_soa, new_soa, (), (changeset.RR(BIG, 300, more),))
    with pytest.raises(
        ValueError, match=r"transferred zone refused: .*big\.r\.test\. A .* needs \d+ bytes"
    ):
        _apply_received(zc, old, Received(None, (step,)))


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


def test_the_largest_rrset_is_answered_whole_over_tcp_and_one_more_is_refused(lab: Lab) -> None:
    path = lab.write("r.zone", zone_text("r.test", 1, extra=_a(LARGEST)))
    zone = {"name": "r.test", "file": str(path), "max_records_per_rrset": 10_000}
    server = lab.start("authd", [zone])
    query = dns.message.make_query(BIG, "A", use_edns=0, payload=1232)
    reply = dns.query.tcp(query, HOST, port=server.port, timeout=10)
    lab.check(not reply.flags & dns.flags.TC, "not truncated over TCP")
    lab.check(sum(len(r) for r in reply.answer) == LARGEST, f"{LARGEST} records over TCP")
    path.write_text(zone_text("r.test", 2, extra=_a(LARGEST + 1)))
    line = lab.wait_log(server, r"the RRset big\.r\.test\. A .* needs \d+ bytes", 20)
    lab.check(f"{path}:{HEAD_LINES + 1}" in line, f"file:line in {line!r}")
    lab.check(soa_serial(server.port, "r.test") == 1, "the old version keeps serving")
    reply = dns.query.tcp(query, HOST, port=server.port, timeout=10)
    lab.check(sum(len(r) for r in reply.answer) == LARGEST, "the old RRset keeps serving")
