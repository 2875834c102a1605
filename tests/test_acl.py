"""Address match lists: parsing, BIND first-match semantics, the compiled matcher.

The property tests compare the compiled matcher with ``reference_match``, a
direct transcription of BIND's ``dns_acl_match`` that scans every element.
"""

from __future__ import annotations

import ipaddress
import os
import random
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import dns.name
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authd.acl import (
    MAX_ACL_DEPTH,
    AclDef,
    AclElement,
    CompiledAcl,
    ElementKind,
    HostInfo,
    compile_acl,
    compile_acls,
    parse_acl_config,
    parse_acl_elements,
    parse_acl_list,
)
from authd.errors import ConfigError

HOST = HostInfo(
    local_addresses=(ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("2001:db8::53")),
    local_networks=(ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8:5::/64")),
)


def acl(elements: list[object], acls: dict[str, object] | None = None) -> CompiledAcl:
    named = parse_acl_config(acls or {})
    return parse_acl_elements(elements, "test", named, host=HOST)


# ------------------------------------------------------------------ parsing

PARSE_CASES = [
    # (element, kind, canonical text, negated)
    ("10.0.0.0/8", ElementKind.PREFIX, "10.0.0.0/8", False),
    ("!10.0.0.0/8", ElementKind.PREFIX, "!10.0.0.0/8", True),
    ("! 10.0.0.0/8", ElementKind.PREFIX, "!10.0.0.0/8", True),
    ("10.1.2.3", ElementKind.PREFIX, "10.1.2.3", False),
    ("10.1.2.3/32", ElementKind.PREFIX, "10.1.2.3/32", False),
    ("10/8", ElementKind.PREFIX, "10.0.0.0/8", False),  # BIND's abbreviated form
    ("172.16/12", ElementKind.PREFIX, "172.16.0.0/12", False),
    ("192.168.1/24", ElementKind.PREFIX, "192.168.1.0/24", False),
    ("2001:DB8::/32", ElementKind.PREFIX, "2001:db8::/32", False),
    ("2001:db8::1", ElementKind.PREFIX, "2001:db8::1", False),
    ("::ffff:10.0.0.0/104", ElementKind.PREFIX, "10.0.0.0/8", False),  # mapped -> IPv4
    ("::ffff:10.1.2.3", ElementKind.PREFIX, "10.1.2.3", False),
    ("any", ElementKind.ANY, "any", False),
    ("ANY", ElementKind.ANY, "any", False),
    ("!any", ElementKind.ANY, "!any", True),
    ("none", ElementKind.NONE, "none", False),
    ("localhost", ElementKind.LOCALHOST, "localhost", False),
    ("!localnets", ElementKind.LOCALNETS, "!localnets", True),
    ("key xfr", ElementKind.KEY, "key xfr", False),
    ('key "xfr.example."', ElementKind.KEY, "key xfr.example", False),
    ("!key XFR", ElementKind.KEY, "!key XFR", True),
    ("key\txfr", ElementKind.KEY, "key xfr", False),
    ("internal", ElementKind.ACL, "internal", False),
    ("!internal", ElementKind.ACL, "!internal", True),
    (["10.0.0.0/8", "!key a"], ElementKind.NESTED, "{ 10.0.0.0/8; !key a; }", False),
]


@pytest.mark.parametrize(("element", "kind", "text", "negated"), PARSE_CASES)
def test_element_kinds(element: object, kind: ElementKind, text: str, negated: bool) -> None:
    named = parse_acl_config({"internal": ["10.0.0.0/8"]})
    (el,) = parse_acl_list([element], "l", named).elements
    assert (el.kind, el.text, el.negated, el.path) == (kind, text, negated, "l[0]")


ERROR_CASES = [
    # (acls config, error text)
    (
        {"internal": ["10.0.0.0/8", "10.1.0.0/16", "10.0.0.0/33"]},
        "acls.internal[2]: not an address or prefix: '10.0.0.0/33'",
    ),
    ({"a": ["1.2.3.4.5"]}, "acls.a[0]: not an address or prefix: '1.2.3.4.5'"),
    ({"a": ["10.0.0.256"]}, "acls.a[0]: not an address or prefix: '10.0.0.256'"),
    ({"a": ["010.0.0.1"]}, "acls.a[0]: not an address or prefix: '010.0.0.1'"),
    ({"a": ["10.0.0.0/8/8"]}, "acls.a[0]: not an address or prefix: '10.0.0.0/8/8'"),
    ({"a": ["10.0.0.0/255.0.0.0"]}, "acls.a[0]: not an address or prefix"),
    ({"a": ["10.0.0.0/"]}, "acls.a[0]: not an address or prefix"),
    ({"a": ["2001:db8::/129"]}, "acls.a[0]: not an address or prefix"),
    ({"a": ["fe80::1%eth0"]}, "acls.a[0]: not an address or prefix"),
    ({"a": ["2001:db8:::1"]}, "acls.a[0]: not an address or prefix"),
    ({"a": ["10"]}, "acls.a[0]: not an address or prefix: '10'"),
    ({"a": ["ok", "two words"]}, "acls.a[0]: unknown ACL 'ok'"),
    ({"a": ["two words"]}, "acls.a[0]: not an address, prefix, key or ACL name"),
    ({"a": ["nosuch"]}, "acls.a[0]: unknown ACL 'nosuch' (known: a)"),
    ({"a": [10]}, "acls.a[0]: expected an address match element (a string or a list), got int"),
    ({"a": [{"key": "x"}]}, "acls.a[0]: expected an address match element"),
    ({"a": ["!"]}, "acls.a[0]: empty element"),
    ({"a": [""]}, "acls.a[0]: empty element"),
    ({"a": ["!!10.0.0.0/8"]}, "acls.a[0]: double negation"),
    ({"a": ["key"]}, "acls.a[0]: 'key' needs a key name"),
    ({"a": ["key bad!name"]}, "acls.a[0]: not a key name: 'bad!name'"),
    ({"a": "10.0.0.0/8"}, "acls.a: expected a list of address match elements, got str"),
    ({"a": [["10.0.0.0/8", ["!bogus/1"]]]}, "acls.a[0][1][0]: not an address or prefix"),
    # names
    ({"any": ["10.0.0.0/8"]}, "acls.any: 'any' is built in and cannot be redefined"),
    ({"None": []}, "acls.None: 'None' is built in and cannot be redefined"),
    ({"localhost": []}, "acls.localhost: 'localhost' is built in"),
    ({"localnets": []}, "acls.localnets: 'localnets' is built in"),
    ({"key": []}, "acls.key: 'key' is reserved"),
    ({"corp.net": []}, "acls.corp.net: not an ACL name: 'corp.net'"),
    ({"10net": []}, "acls.10net: not an ACL name"),
    ({"bad!": []}, "acls.bad!: not an ACL name"),
    ({5: []}, "acls.5: not an ACL name: 5"),
    # cycles, reported at the element that closes the cycle
    ({"a": ["a"]}, "acls.a[0]: ACL cycle: a -> a"),
    ({"a": ["10.0.0.0/8", "b"], "b": ["!a"]}, "acls.b[0]: ACL cycle: a -> b -> a"),
    ({"a": ["b"], "b": ["c"], "c": [["10/8", "a"]]}, "acls.c[0][1]: ACL cycle: a -> b -> c -> a"),
]


@pytest.mark.parametrize(("acls", "message"), ERROR_CASES)
def test_config_errors(acls: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_acl_config(acls)
    assert str(info.value).startswith(message)
    assert info.value.path == message.split(": ")[0]


def test_acls_section_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^acls: expected a mapping"):
        parse_acl_config(["10.0.0.0/8"])
    assert parse_acl_config(None) == {}


def test_forward_references_and_definition_order() -> None:
    defs = parse_acl_config({"outer": ["inner"], "inner": ["10.0.0.0/8"]})
    assert list(defs) == ["outer", "inner"]
    assert defs["outer"].depth == 2 and defs["inner"].depth == 1
    assert defs["inner"].path == "acls.inner"


def test_unknown_reference_outside_acls_section() -> None:
    named = parse_acl_config({"internal": ["10.0.0.0/8"]})
    with pytest.raises(ConfigError) as info:
        parse_acl_list(["internal", "!intenral"], "views[1].match_clients", named)
    assert info.value.path == "views[1].match_clients[1]"
    assert "unknown ACL 'intenral' (known: internal)" in str(info.value)


def test_depth_limit_by_references() -> None:
    # a0 -> a1 -> ... : MAX_ACL_DEPTH levels are fine, one more is refused.
    ok = {f"a{i}": [f"a{i + 1}"] for i in range(MAX_ACL_DEPTH - 1)}
    ok[f"a{MAX_ACL_DEPTH - 1}"] = ["10.0.0.0/8"]
    assert parse_acl_config(ok)["a0"].depth == MAX_ACL_DEPTH
    too_deep = {f"a{i}": [f"a{i + 1}"] for i in range(MAX_ACL_DEPTH)}
    too_deep[f"a{MAX_ACL_DEPTH}"] = ["10.0.0.0/8"]
    with pytest.raises(ConfigError, match=f"the limit is {MAX_ACL_DEPTH}"):
        parse_acl_config(too_deep)
    # A long chain is refused without exhausting the stack.
    chain = {f"a{i}": [f"a{i + 1}"] for i in range(5000)}
    chain["a5000"] = []
    with pytest.raises(ConfigError, match="the limit is"):
        parse_acl_config(chain)


def test_depth_limit_by_inline_lists() -> None:
    value: list[object] = ["10.0.0.0/8"]
    for _ in range(MAX_ACL_DEPTH - 1):
        value = [value]
    assert parse_acl_list(value, "l", {}).depth == MAX_ACL_DEPTH
    with pytest.raises(ConfigError, match="the limit is"):
        parse_acl_list([value], "l", {})
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ConfigError, match="the limit is"):
        parse_acl_list(deep, "l", {})


def test_depth_limit_across_named_and_list() -> None:
    named = {f"a{i}": [f"a{i + 1}"] for i in range(MAX_ACL_DEPTH - 1)}
    named[f"a{MAX_ACL_DEPTH - 1}"] = []
    defs = parse_acl_config(named)
    with pytest.raises(ConfigError, match="the limit is"):
        parse_acl_list(["a0"], "views[0].match_clients", defs)


def test_key_elements_checked_against_known_keys() -> None:
    keys = {dns.name.from_text("xfr")}
    parse_acl_config({"a": ["key XFR."]}, known_keys=keys)
    with pytest.raises(ConfigError) as info:
        parse_acl_config({"a": ["10/8", "key other"]}, known_keys=keys)
    assert str(info.value) == "acls.a[1]: unknown key 'other'"


# ---------------------------------------------------------------- warnings


def test_host_bits_are_masked_with_a_warning() -> None:
    defs = parse_acl_config({"internal": ["10.0.0.0/8", "192.168.1.77/24"]})
    (el,) = defs["internal"].elements[1:]
    assert el.text == "192.168.1.0/24"
    assert defs["internal"].warnings == (
        "acls.internal[1]: '192.168.1.77/24' has host bits set; using 192.168.1.0/24",
    )
    assert acl(["192.168.1.77/24"]).allows("192.168.1.200")


def test_shadowed_elements_warn() -> None:
    compiled = compile_acls(
        parse_acl_config(
            {"classic": ["10.0.0.0/8", "!10.1.0.0/16"], "after_any": ["any", "key x", "10/8"]}
        )
    )
    assert compiled["classic"].warnings == (
        "acls.classic[1]: '!10.1.0.0/16' never decides: "
        "earlier elements match every address it covers",
    )
    assert compiled["after_any"].warnings == (
        "acls.after_any[1]: 'key x' is never reached: earlier elements decide for every address",
        "acls.after_any[2]: '10.0.0.0/8' never decides: "
        "earlier elements match every address it covers",
    )
    # The right order is quiet; a key before addresses is always reachable.
    assert acl(["!10.1.0.0/16", "10.0.0.0/8", "key x", "any"]).warnings == ()


def test_compiled_list_carries_parse_warnings() -> None:
    assert acl([["10.0.0.1/8"]]).warnings == (
        "test[0][0]: '10.0.0.1/8' has host bits set; using 10.0.0.0/8",
    )


# ---------------------------------------------------------------- semantics

# (elements, named ACLs, client, key, allowed, deciding element path chain)
MATCH_CASES = [
    # plain and negated prefixes, first match wins
    (["10.0.0.0/8"], {}, "10.9.9.9", None, True, ["test[0]"]),
    (["10.0.0.0/8"], {}, "11.0.0.1", None, False, []),
    (["!10.0.0.0/8"], {}, "10.9.9.9", None, False, ["test[0]"]),
    (["!10.0.0.0/8"], {}, "11.0.0.1", None, False, []),  # no match is deny
    (["!10.0.0.0/8", "any"], {}, "11.0.0.1", None, True, ["test[1]"]),
    (["10.0.0.0/8", "!10.1.0.0/16"], {}, "10.1.2.3", None, True, ["test[0]"]),
    (["!10.1.0.0/16", "10.0.0.0/8"], {}, "10.1.2.3", None, False, ["test[0]"]),
    (["!10.1.0.0/16", "10.0.0.0/8"], {}, "10.2.2.3", None, True, ["test[1]"]),
    (["10.1.2.3"], {}, "10.1.2.3", None, True, ["test[0]"]),
    (["10.1.2.3"], {}, "10.1.2.4", None, False, []),
    # the lowest index wins even when a longer prefix matches later
    (["10.0.0.0/8", "!10.1.2.3"], {}, "10.1.2.3", None, True, ["test[0]"]),
    # v4 vs v6
    (["10.0.0.0/8"], {}, "2001:db8::1", None, False, []),
    (["2001:db8::/32"], {}, "2001:db8:ffff::1", None, True, ["test[0]"]),
    (["2001:db8::/32"], {}, "10.0.0.1", None, False, []),
    (["::/0"], {}, "10.0.0.1", None, False, []),
    (["0.0.0.0/0"], {}, "::1", None, False, []),
    # IPv4-mapped clients match IPv4 prefixes, as BIND does
    (["10.0.0.0/8"], {}, "::ffff:10.1.2.3", None, True, ["test[0]"]),
    (["!10.0.0.0/8", "any"], {}, "::ffff:10.1.2.3", None, False, ["test[0]"]),
    (["::ffff:10.0.0.0/104"], {}, "10.1.2.3", None, True, ["test[0]"]),
    (["::ffff:10.0.0.0/104"], {}, "::ffff:10.1.2.3", None, True, ["test[0]"]),
    (["::/0"], {}, "::ffff:10.1.2.3", None, False, []),  # mapped clients are IPv4
    (["::ffff:0:0/96"], {}, "::ffff:10.1.2.3", None, True, ["test[0]"]),  # = 0.0.0.0/0
    # any, none
    (["any"], {}, "10.0.0.1", None, True, ["test[0]"]),
    (["any"], {}, "2001:db8::1", None, True, ["test[0]"]),
    (["!any", "10/8"], {}, "10.0.0.1", None, False, ["test[0]"]),
    (["none", "10/8"], {}, "10.0.0.1", None, False, ["test[0]"]),  # none == !any
    (["none"], {}, "::1", "k", False, ["test[0]"]),
    (["!none"], {}, "10.0.0.1", None, True, ["test[0]"]),
    ([], {}, "10.0.0.1", None, False, []),
    # localhost: loopback and the host's own addresses; localnets: its networks
    (["localhost"], {}, "127.0.0.1", None, True, ["test[0]"]),
    (["localhost"], {}, "127.5.5.5", None, True, ["test[0]"]),
    (["localhost"], {}, "::1", None, True, ["test[0]"]),
    (["localhost"], {}, "192.0.2.1", None, True, ["test[0]"]),
    (["localhost"], {}, "192.0.2.2", None, False, []),
    (["localhost"], {}, "2001:db8::53", None, True, ["test[0]"]),
    (["localhost"], {}, "::ffff:127.0.0.1", None, True, ["test[0]"]),
    (["localnets"], {}, "192.0.2.2", None, True, ["test[0]"]),
    (["localnets"], {}, "2001:db8:5::99", None, True, ["test[0]"]),
    (["localnets"], {}, "127.0.0.1", None, True, ["test[0]"]),
    (["localnets"], {}, "198.51.100.1", None, False, []),
    (["!localhost", "any"], {}, "::1", None, False, ["test[0]"]),
    (["!localhost", "any"], {}, "192.0.2.2", None, True, ["test[1]"]),
    # key elements
    (["key xfr"], {}, "10.0.0.1", "xfr", True, ["test[0]"]),
    (["key xfr"], {}, "10.0.0.1", "XFR.", True, ["test[0]"]),
    (["key xfr"], {}, "10.0.0.1", dns.name.from_text("Xfr"), True, ["test[0]"]),
    (["key xfr"], {}, "10.0.0.1", "other", False, []),
    (["key xfr"], {}, "10.0.0.1", None, False, []),
    (["!key xfr", "any"], {}, "10.0.0.1", "xfr", False, ["test[0]"]),
    (["!key xfr", "any"], {}, "10.0.0.1", None, True, ["test[1]"]),
    (["!10.0.0.0/8", "key xfr"], {}, "10.0.0.1", "xfr", False, ["test[0]"]),
    (["key xfr", "!10.0.0.0/8"], {}, "10.0.0.1", "xfr", True, ["test[0]"]),
    (["10.0.0.0/8", "key xfr"], {}, "11.0.0.1", "xfr", True, ["test[1]"]),
    # named ACLs: a nested list matches only when it would allow
    (["internal"], {"internal": ["10/8"]}, "10.0.0.1", None, True, ["test[0]", "acls.internal[0]"]),
    (["internal", "any"], {"internal": ["!10.1/16", "10/8"]}, "10.1.0.1", None, True, ["test[1]"]),
    (["internal"], {"internal": ["!10.1/16", "10/8"]}, "10.1.0.1", None, False, []),
    (
        ["!internal", "any"],
        {"internal": ["10/8"]},
        "10.0.0.1",
        None,
        False,
        ["test[0]", "acls.internal[0]"],
    ),
    (["!internal", "any"], {"internal": ["10/8"]}, "11.0.0.1", None, True, ["test[1]"]),
    # no double negation: a deny inside a negated list is "no match"
    (["!internal"], {"internal": ["!10/8"]}, "10.0.0.1", None, False, []),
    (["!internal", "any"], {"internal": ["!10/8"]}, "10.0.0.1", None, True, ["test[1]"]),
    # nesting through two levels, keys inside named lists
    (
        ["trusted"],
        {
            "trusted": ["!blocked", "internal", "key xfr"],
            "internal": ["10/8"],
            "blocked": ["10.6.6.6"],
        },
        "10.6.6.6",
        None,
        False,
        [],
    ),
    (
        ["trusted"],
        {
            "trusted": ["!blocked", "internal", "key xfr"],
            "internal": ["10/8"],
            "blocked": ["10.6.6.6"],
        },
        "10.6.6.7",
        None,
        True,
        ["test[0]", "acls.trusted[1]", "acls.internal[0]"],
    ),
    (
        ["trusted"],
        {
            "trusted": ["!blocked", "internal", "key xfr"],
            "internal": ["10/8"],
            "blocked": ["10.6.6.6"],
        },
        "192.0.2.9",
        "xfr",
        True,
        ["test[0]", "acls.trusted[2]"],
    ),
    (
        ["trusted", "any"],
        {"trusted": ["!blocked", "key xfr"], "blocked": ["10.6.6.6"]},
        "10.6.6.6",
        "xfr",
        True,
        ["test[1]"],
    ),
    # order between a nested list and the address winner
    (["10/8", "internal"], {"internal": ["!10.1/16"]}, "10.1.1.1", None, True, ["test[0]"]),
    (
        ["blocked", "!10/8"],
        {"blocked": ["10.1/16"]},
        "10.1.1.1",
        None,
        True,
        ["test[0]", "acls.blocked[0]"],
    ),
    # inline nested lists behave like named ones
    ([["!10.1/16", "10/8"], "any"], {}, "10.1.0.1", None, True, ["test[1]"]),
    ([["!10.1/16", "10/8"], "any"], {}, "10.2.0.1", None, True, ["test[0]", "test[0][1]"]),
]


@pytest.mark.parametrize(("elements", "named", "client", "key", "allowed", "chain"), MATCH_CASES)
def test_match(
    elements: list[object],
    named: dict[str, object],
    client: str,
    key: str | dns.name.Name | None,
    allowed: bool,
    chain: list[str],
) -> None:
    m = acl(elements, named).match(client, key)
    assert m.allowed is allowed, m.explain()
    assert [e.path for e in m.chain()] == chain, m.explain()
    assert (m.element is None) == (chain == [])
    # The result does not depend on how the client is given.
    assert acl(elements, named).match(ipaddress.ip_address(client), key) == m


def test_prefix_len_and_explain() -> None:
    compiled = compile_acls(
        parse_acl_config({"trusted": ["!10.6.6.6", "internal"], "internal": ["10/8"]})
    )
    m = compiled["trusted"].match("10.1.2.3")
    assert m.prefix_len == 8
    assert m.explain() == (
        "allow by acls.trusted[1] 'internal' -> acls.internal[0] '10.0.0.0/8', prefix /8, scope /14"
    )
    m = compiled["trusted"].match("10.6.6.6")
    assert (m.allowed, m.prefix_len) == (False, 32)
    assert acl(["key k"]).match("::1", "k").prefix_len is None
    assert acl(["any"]).match("::1").prefix_len == 0
    assert acl(["localhost"]).match("127.0.0.1").prefix_len == 8
    assert acl(["10/8"]).match("11.0.0.1").explain() == "deny: no element matched (scope /8)"


def test_bad_client_address() -> None:
    with pytest.raises(ValueError):
        acl(["any"]).match("10.0.0.256")
    with pytest.raises(ValueError):
        acl(["any"]).match("not-an-address")


def test_client_with_zone_index() -> None:
    assert acl(["fe80::/10"]).allows("fe80::1%eth0")


def test_named_acl_compiled_once_and_shared() -> None:
    defs = parse_acl_config({"big": ["10/8"], "a": ["big"], "b": ["!big", "any"]})
    compiled = compile_acls(defs, HOST)
    view = compile_acl(parse_acl_list(["a", "b"], "views[0].match_clients", defs), compiled)
    assert view.match("10.0.0.1").inner is not None
    assert compiled["a"]._others[0].acl is compiled["big"]
    assert compiled["b"]._others[0].acl is compiled["big"]


def test_compile_acl_requires_compiled_references() -> None:
    defs = parse_acl_config({"a": ["10/8"]})
    with pytest.raises(ConfigError, match=r"^v\[0\]: unknown ACL 'a'"):
        compile_acl(parse_acl_list(["a"], "v", defs), {})
    # Definitions built by hand, not by parse_acl_config, may still hold a cycle.
    self_ref = AclElement("acls.x[0]", "x", False, ElementKind.ACL, name="x")
    with pytest.raises(ConfigError, match=r"^acls.x\[0\]: unknown or cyclic ACL 'x'"):
        compile_acls({"x": AclDef("x", "acls.x", (self_ref,))})


# ---------------------------------------------------------- EDNS client subnet


SCOPE_CASES = [
    # (elements, client, scope): all of client/scope gets the same verdict
    (["10.1.0.0/16", "10.0.0.0/8"], "10.1.2.3", 8),  # both allow: one run
    (["!10.1.0.0/16", "10.0.0.0/8"], "10.2.3.4", 15),  # 10.2/15 avoids 10.1/16
    (["!10.1.0.0/16", "10.0.0.0/8"], "10.1.3.4", 16),
    (["!10.1.0.0/16", "10.0.0.0/8"], "10.128.0.1", 9),
    (["!10.1.0.0/16", "10.0.0.0/8"], "11.0.0.1", 8),
    (["!10.1.0.0/16", "10.0.0.0/8"], "192.0.2.1", 1),
    (["10.0.0.0/8"], "2001:db8::1", 0),  # no IPv6 element at all
    (["any"], "10.0.0.1", 0),
    (["10.0.0.1"], "10.0.0.1", 32),
    (["10.0.0.1"], "10.0.0.0", 32),
    (["10.0.0.1"], "10.0.0.2", 31),
    (["2001:db8::/32"], "2001:db8::1", 32),
    (["!2001:db8:1::/48", "2001:db8::/32"], "2001:db8:2::1", 47),
]


@pytest.mark.parametrize(("elements", "client", "scope"), SCOPE_CASES)
def test_scope(elements: list[object], client: str, scope: int) -> None:
    assert acl(elements).match(client).scope == scope


def test_scope_covers_nested_lists() -> None:
    # The view list itself has no address elements; the nested ones decide.
    m = acl(["!blocked", "internal"], {"blocked": ["10.6.6.6"], "internal": ["10/8"]}).match(
        "10.1.0.1"
    )
    assert (m.allowed, m.scope) == (True, 14)  # 10.0/14 would include 10.6.6.6


# ----------------------------------------------------- reference and properties


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    net = ipaddress.ip_network(text, strict=False)
    if (
        isinstance(net, ipaddress.IPv6Network)
        and net.prefixlen >= 96
        and net.subnet_of(ipaddress.IPv6Network("::ffff:0:0/96"))
    ):
        return ipaddress.IPv4Network((int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96))
    return net


def _client(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    a = ipaddress.ip_address(text)
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return a.ipv4_mapped
    return a


def reference_match(
    elements: list[object],
    path: str,
    named: dict[str, list[object]],
    client: ipaddress.IPv4Address | ipaddress.IPv6Address,
    key: str | None,
    host: HostInfo = HOST,
) -> tuple[int, list[str]]:
    """BIND's dns_acl_match, scanning: (+1 allow / -1 deny / 0 no match, chain)."""
    for i, raw in enumerate(elements):
        p = f"{path}[{i}]"
        chain: list[str] = []
        negated = isinstance(raw, str) and raw.startswith("!")
        body = raw[1:] if isinstance(raw, str) and negated else raw
        if isinstance(body, list):
            result, chain = reference_match(body, p, named, client, key, host)
            matched = result > 0
        elif not isinstance(body, str):
            raise AssertionError(body)
        elif body == "any":
            matched = True
        elif body == "none":
            matched, negated = True, not negated
        elif body in ("localhost", "localnets"):
            nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = [
                ipaddress.ip_network("127.0.0.0/8"),
                ipaddress.ip_network("::1/128"),
            ]
            if body == "localhost":
                nets += [ipaddress.ip_network(a) for a in host.local_addresses]
            else:
                nets += list(host.local_networks)
            matched = any(n.version == client.version and client in n for n in nets)
        elif body.startswith("key "):
            want = body[4:].lower().rstrip(".")
            matched = key is not None and key.lower().rstrip(".") == want
        elif body in named:
            result, chain = reference_match(named[body], f"acls.{body}", named, client, key, host)
            matched = result > 0
        else:
            net = _network(body)
            matched = net.version == client.version and client in net
        if matched:
            return (-1 if negated else 1), [p, *chain]
    return 0, []


PREFIX_POOL = [
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.1.2.3",
    "10.1.2.128/25",
    "10.255.0.0/16",
    "192.168.0.0/16",
    "192.0.2.0/24",
    "127.0.0.0/8",
    "0.0.0.0/0",
    "0.0.0.0/1",
    "128.0.0.0/1",
    "2001:db8::/32",
    "2001:db8:1::/48",
    "2001:db8::1",
    "2001:db8::53",
    "::/0",
    "::1",
    "::ffff:10.1.0.0/112",
    "::ffff:0:0/96",
    "2001:db8:5::/64",
]
CLIENT_POOL = [
    "10.0.0.0",
    "10.1.2.3",
    "10.1.2.4",
    "10.1.2.200",
    "10.1.3.1",
    "10.255.255.255",
    "11.0.0.1",
    "192.168.1.1",
    "192.0.2.1",
    "192.0.2.77",
    "127.0.0.1",
    "255.255.255.255",
    "0.0.0.0",
    "::ffff:10.1.2.3",
    "::ffff:192.0.2.1",
    "2001:db8::1",
    "2001:db8:1::5",
    "2001:db8::53",
    "2001:db8:5::1",
    "::1",
    "::",
    "fe80::1",
]
KEYS = ["k1", "k2"]
NAMES = ["a0", "a1", "a2"]


def _elements(refs: list[str]) -> st.SearchStrategy[list[object]]:
    leaf = st.one_of(
        st.sampled_from(PREFIX_POOL),
        st.sampled_from(["any", "none", "localhost", "localnets"]),
        st.sampled_from([f"key {k}" for k in KEYS]),
        *([st.sampled_from(refs)] if refs else []),
    )
    negated = st.tuples(st.booleans(), leaf).map(lambda t: ("!" if t[0] else "") + t[1])
    element: st.SearchStrategy[object] = st.recursive(
        negated, lambda inner: st.lists(inner, max_size=4), max_leaves=8
    )
    return st.lists(element, max_size=8)


@st.composite
def _configs(draw: st.DrawFn) -> tuple[dict[str, list[object]], list[object]]:
    # a_i may refer to a_j only for j > i, so the graph has no cycles.
    named = {name: draw(_elements(NAMES[i + 1 :])) for i, name in enumerate(NAMES)}
    return named, draw(_elements(NAMES))


def _client_strategy() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(CLIENT_POOL),
        st.integers(0x0A000000, 0x0AFFFFFF).map(lambda n: str(ipaddress.IPv4Address(n))),
        st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
        st.integers(0x20010DB8 << 96, (0x20010DB9 << 96) - 1).map(
            lambda n: str(ipaddress.IPv6Address(n))
        ),
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(config=_configs(), client=_client_strategy(), key=st.sampled_from([None, *KEYS, "k3"]))
def test_matches_reference(
    config: tuple[dict[str, list[object]], list[object]], client: str, key: str | None
) -> None:
    named, elements = config
    compiled = acl(elements, dict(named))
    m = compiled.match(client, key)
    result, chain = reference_match(elements, "test", named, _client(client), key)
    assert m.allowed == (result > 0), m.explain()
    assert [e.path for e in m.chain()] == chain, m.explain()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=_configs(),
    client=_client_strategy(),
    key=st.sampled_from([None, *KEYS]),
    low_bits=st.integers(0, 2**128 - 1),
)
def test_scope_is_safe(
    config: tuple[dict[str, list[object]], list[object]],
    client: str,
    key: str | None,
    low_bits: int,
) -> None:
    """Any other client sharing the first ``scope`` bits gets the same verdict."""
    named, elements = config
    m = acl(elements, dict(named)).match(client, key)
    a = _client(client)
    bits = a.max_prefixlen
    host_mask = (1 << (bits - m.scope)) - 1
    other_n = (int(a) & ~host_mask) | (low_bits & host_mask)
    # Not ip_address(int): that would read a small IPv6 integer as IPv4.
    other = ipaddress.IPv6Address(other_n) if bits == 128 else ipaddress.IPv4Address(other_n)
    result, _ = reference_match(elements, "test", named, other, key)
    assert (result > 0) == m.allowed, (m.explain(), str(other))


# ------------------------------------------------------- 10,000 prefixes


@lru_cache(maxsize=1)
def _big() -> tuple[list[str], list[tuple[int, int, int, bool]], CompiledAcl]:
    """10,000 random v4 and v6 prefixes, 10% negated, many overlapping."""
    rng = random.Random(7)
    texts: list[str] = []
    linear: list[tuple[int, int, int, bool]] = []  # (version, network, mask, allow)
    for _ in range(10_000):
        if rng.random() < 0.7:
            version, bits, plen = 4, 32, rng.choice((8, 12, 16, 20, 24, 24, 28, 32))
            base_net = 0x0A000000 if rng.random() < 0.5 else rng.getrandbits(32)
        else:
            version, bits, plen = 6, 128, rng.choice((32, 40, 48, 56, 64, 128))
            base_net = (0x20010DB8 << 96) | rng.getrandbits(96)
        mask = ((1 << plen) - 1) << (bits - plen)
        n = (base_net | rng.getrandbits(bits - 8 if version == 4 else 96)) & mask
        if version == 4 and rng.random() < 0.5:
            n = (0x0A000000 | (n & 0x00FFFFFF)) & mask  # crowd 10/8 to get overlaps
        allow = rng.random() >= 0.1
        address = ipaddress.IPv4Address(n) if version == 4 else ipaddress.IPv6Address(n)
        texts.append(("" if allow else "!") + f"{address}/{plen}")
        linear.append((version, n, mask, allow))
    return texts, linear, acl(list(texts))


def _linear_match(linear: list[tuple[int, int, int, bool]], client: str) -> tuple[bool, int]:
    a = _client(client)
    n = int(a)
    for i, (version, net, mask, allow) in enumerate(linear):
        if version == a.version and n & mask == net:
            return allow, i
    return False, -1


@st.composite
def _big_clients(draw: st.DrawFn) -> str:
    _, linear, _ = _big()
    how = draw(st.integers(0, 2))
    if how == 0:  # inside a listed prefix
        version, net, mask, _ = linear[draw(st.integers(0, len(linear) - 1))]
        bits = 32 if version == 4 else 128
        n = net | (draw(st.integers(0, 2**bits - 1)) & ~mask & ((1 << bits) - 1))
        text = str(ipaddress.IPv6Address(n) if version == 6 else ipaddress.IPv4Address(n))
        if version == 4 and draw(st.booleans()):
            text = f"::ffff:{text}"
        return text
    if how == 1:
        return str(ipaddress.IPv4Address(draw(st.integers(0x0A000000, 0x0AFFFFFF))))
    return str(ipaddress.IPv6Address((0x20010DB8 << 96) | draw(st.integers(0, 2**96 - 1))))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(client=_big_clients())
def test_ten_thousand_prefixes_match_linear_scan(client: str) -> None:
    texts, linear, compiled = _big()
    allow, index = _linear_match(linear, client)
    m = compiled.match(client)
    assert m.allowed == allow
    assert (m.element.path if m.element else None) == (f"test[{index}]" if index >= 0 else None)


@pytest.mark.timeout(120)
def test_benchmark_runs() -> None:
    # The benchmark lives in bench/acl.py (the core reads no clock): run it as a script.
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    out = subprocess.run(
        [sys.executable, str(repo / "bench" / "acl.py"), "300"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    ).stdout
    assert out.startswith("300 prefixes: compile ") and "per lookup" in out
