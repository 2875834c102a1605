"""Non-ASCII owner names (RFC 5890/5891 IDNA) mean the same on every machine.

authd's zone parser hands non-ASCII names to ``dns.name.from_text`` with
dnspython's default codec, which is IDNA 2008 (UTS 46 "practical" mapping)
when the `idna` package is importable and IDNA 2003 otherwise.  `idna` used to
arrive undeclared through Twisted, so the owner `=é` loaded as `xn--=-bga` on
one machine and was refused on another.  `idna` is now a declared dependency;
these tests pin the codec and what it does.
"""

from __future__ import annotations

import dns.name
import pytest

from authd.errors import ZoneError
from authd.zonefile import parse_zone_text

ORIGIN = dns.name.from_text("example.com.")


def test_idna_codec_does_not_depend_on_what_else_is_installed() -> None:
    import idna  # noqa: F401  (declared in pyproject.toml: its absence is a broken install)

    assert dns.name.have_idna_2008
    assert dns.name.IDNA_DEFAULT is dns.name.IDNA_2008_Practical


def test_owner_equals_e_acute_is_refused_as_idna_2008_refuses_it() -> None:
    # Without `idna` this loaded as `xn--=-bga.example.com.` (IDNA 2003 allows '=').
    with pytest.raises(ZoneError, match=r"<text>:2: bad name '=é': IDNA .*U\+003D"):
        parse_zone_text("$TTL 60\n=é TXT x\n", ORIGIN)


@pytest.mark.parametrize(
    ("owner", "wire_label"),
    [
        ("bücher", "xn--bcher-kva"),
        ("BÜCHER", "xn--bcher-kva"),  # UTS 46 maps upper case first
        ("faß", "xn--fa-hia"),  # IDNA 2008 keeps sharp s; IDNA 2003 gave "fass"
    ],
)
def test_unicode_owner_loads_as_idna_2008_a_label(owner: str, wire_label: str) -> None:
    (record,) = parse_zone_text(f"$TTL 60\n{owner} TXT x\n", ORIGIN)
    assert record.name == dns.name.from_text(f"{wire_label}.example.com.")
