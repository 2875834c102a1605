"""Master-file (RFC 1035 section 5) parsing into records with their source lines.

Owns: turning zone-file text into ``Record`` tuples with absolute owner names,
dnspython rdata, and the ``file:line`` each came from.  Invariant: a file either
parses completely or raises ``ZoneError`` naming the first bad line; nothing
partial is ever returned.

Supported syntax: ``$ORIGIN``, ``$TTL`` (RFC 2308), ``$INCLUDE file [origin]``
(path relative to the including file's folder), BIND's ``$GENERATE``, ``@``,
relative and absolute names, a blank owner meaning the previous one,
parentheses spanning lines, quoted strings, ``\\.``/``\\DDD`` escapes, comments,
TTL units (``1h30m``), TTL and class in either order, and RFC 3597 unknown
types (``TYPE65534 \\# 2 abcd``).  Only class IN is accepted.

Why it is fast: most lines of a real zone have no quotes, parentheses, escapes
or non-ASCII text, so they are split with ``str.split`` instead of running a
character-level tokenizer; names are split into labels directly, and names in
rdata are cached by their text; the common types (A, AAAA, NS, CNAME, PTR,
DNAME, MX, SRV, TXT, SPF) are built straight from their tokens, and repeated
rdata text is parsed once; the cyclic GC is paused during a load.  Everything
else goes through ``dns.rdata.from_text``, so the rdata is always what
``dns.zone.from_file`` would have produced.

Semantics where readers differ: a record without a TTL takes ``$TTL``, else
the last TTL written on a record (RFC 1035 section 5.1, as dnspython; BIND would
take the SOA MINIMUM), else, for want of anything better, the SOA's MINIMUM
once the SOA is read.  ``$INCLUDE`` and ``$GENERATE`` behave as in BIND: after
an include the origin and the previous owner are restored but a ``$TTL`` set
inside stays; ``$GENERATE`` does not change the previous owner, and its rdata
is one token (quote it to hold spaces) read like the rest of a record line.
"""

from __future__ import annotations

import os
import re
import socket
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from io import TextIOBase
from typing import NamedTuple, TextIO, cast

import dns.exception
import dns.ipv4
import dns.ipv6
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.DNAME
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.SPF
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.ttl

from authd.errors import ZoneError
from authd.limits import (
    DEFAULT_MAX_RECORDS_PER_RRSET,
    DEFAULT_MAX_ZONE_RECORDS,
    MAX_ECHO_CHARS,
    MAX_GENERATE_RECORDS,
    MAX_GENERATE_WIDTH,
    MAX_INCLUDE_DEPTH,
    MAX_LINE_CHARS,
    MAX_RDATA_BYTES,
    MAX_RECORD_CHARS,
    MAX_TOKEN_CHARS,
    MAX_ZONE_SOURCE_BYTES,
)
from authd.namedict import shard_count

#: Bytes of zone-file text one zone may read, its includes counted: this bounds
#: the memory of a load, and of any one line in it.
#: How deeply ``$INCLUDE`` may nest (the top file is depth 0).
#: Most records one ``$GENERATE`` line may produce (a reverse /12 of IPv4 is 2**20).
#: Widest ``${offset,width,base}`` field; BIND formats into a 128-byte buffer.


class Record(NamedTuple):
    """One resource record as read from a zone file."""

    name: dns.name.Name  # absolute owner name
    ttl: int
    rdata: dns.rdata.Rdata  # class IN; ``rdata.rdtype`` gives the type
    file: str
    line: int
    # No TTL written and no $TTL in effect: the TTL was inferred from the last
    # one written or the SOA MINIMUM, where readers differ (RFC 2308 section 4).
    ttl_inferred: bool = False


def parse_zone_file(
    path: str,
    origin: dns.name.Name,
    max_records: int = DEFAULT_MAX_ZONE_RECORDS,
    include_root: str | None = None,
    max_records_per_rrset: int = DEFAULT_MAX_RECORDS_PER_RRSET,
) -> list[Record]:
    """Parse the zone file at *path* whose initial ``$ORIGIN`` is *origin*;
    more than *max_records* records (its includes counted) is an error, and so
    are more than *max_records_per_rrset* in one RRset and an ``$INCLUDE``
    that leads outside the folder *include_root* (if given)."""
    parser = _Parser(max_records, include_root, max_records_per_rrset)
    try:
        f = parser.open_source(path)
    except _Bad as e:
        raise ZoneError(path, 0, str(e)) from None
    return parser.parse(f, origin, path)


def parse_zone_text(text: str, origin: dns.name.Name, filename: str = "<text>") -> list[Record]:
    """Parse zone-file *text*; ``$INCLUDE`` paths are relative to *filename*'s folder."""
    # Universal newlines, as when a file is read in text mode.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _Parser().parse(text.split("\n"), origin, filename)


def first_over_rrset_limit(records: Sequence[tuple[object, ...]], limit: int) -> int | None:
    """The index of the first of *records* (owner first, rdata third: a
    ``Record`` or an ``RR``) that puts its RRset over *limit* records, or None.
    An RRSIG counts towards the signatures of the type it covers (RFC 4034
    section 3), as the zone stores them.

    A first pass counts (owner, type) on the owner's labels joined and
    lowercased (a tenth of the cost of hashing names); its keys can only
    merge RRsets (``a\\.b`` and ``a.b``; RRSIGs of every covered type), never
    split one, so when no count is over, none is.  Otherwise an exact pass.

    The first pass is a Python loop over tables split by key, not one
    ``Counter`` call: that call ran a million records in C holding the GIL
    (a reload stalled every query for 170 ms at 300,000 records), and one
    table of a million keys grows in long steps.
    """
    shards: list[dict[tuple[bytes, int], int]] = [{} for _ in range(shard_count(len(records)))]
    mask = len(shards) - 1
    join, lower = _DOT.join, bytes.lower
    over = False
    for rec in records:
        coarse = (lower(join(rec[0].labels)), rec[2].rdtype)  # type: ignore[attr-defined]
        shard = shards[hash(coarse) & mask]
        seen = shard.get(coarse, 0) + 1
        if seen > limit:
            over = True
            break
        shard[coarse] = seen
    while shards:
        shards.pop()  # a shard at a time: all at once is one long deallocation again
    if not over:
        return None
    counts: dict[tuple[dns.name.Name, int], int] = {}
    for i, rec in enumerate(records):
        name, rd = cast(dns.name.Name, rec[0]), cast(dns.rdata.Rdata, rec[2])
        rdtype = rd.rdtype
        key = (name, rdtype if rdtype != _RRSIG else 0x10000 + rd.type_covered)  # type: ignore[attr-defined]
        n = counts.get(key, 0) + 1
        if n > limit:
            return i
        counts[key] = n
    return None


_DOT = b"."


def rrset_limit_message(name: dns.name.Name, rd: dns.rdata.Rdata, limit: int) -> str:
    """The refusal of an RRset over the limit, the same for files and transfers."""
    rdtype = dns.rdatatype.to_text(rd.rdtype)
    if rd.rdtype == _RRSIG:
        rdtype += f" covering {dns.rdatatype.to_text(rd.type_covered)}"  # type: ignore[attr-defined]
    return f"more than {limit} records in the RRset {name} {rdtype} (max_records_per_rrset)"


class _Bad(Exception):
    """A bad line; the per-file loop adds the file and, unless *line* names
    a later line of a multi-line record, the line the record starts on."""

    def __init__(self, reason: str, line: int = 0) -> None:
        super().__init__(reason)
        self.line = line


class _Unreadable(Exception):
    """A file failed while being read (EIO...): the ``$INCLUDE`` line that
    named it is where the error is reported; the top file has no line."""


_IN = dns.rdataclass.IN
_SOA = dns.rdatatype.SOA
_RRSIG = dns.rdatatype.RdataType.RRSIG

# Record types by mnemonic.  Meta-types (ANY, AXFR, OPT...) are not zone data,
# and leaving ANY out lets "ANY" be read as the class it also names, as dnspython does.
_TYPES: dict[str, dns.rdatatype.RdataType] = {
    t.name: t
    for t in dns.rdatatype.RdataType
    if t != dns.rdatatype.NONE and not dns.rdatatype.is_metatype(t)
}
_TYPES.update({name.lower(): t for name, t in list(_TYPES.items())})

# A line goes to the slow path if it holds anything but printable ASCII other
# than '"', '(', ')' and '\\', or whitespace other than space and tab: only those
# two separate tokens in dnspython's tokenizer, while str.split knows more.
_COMPLEX = re.compile(r"[^\t\n !#-'*-\[\]-~]")

# One token of a complex line: whitespace, a quoted string, a word (escapes
# allowed), a parenthesis, the start of a comment, or anything left over
# (an unterminated quote or a trailing backslash).
_TOKEN = re.compile(
    r"""(?P<s>[ \t]+)
      | (?P<q>"(?:[^"\\]|\\.)*")
      | (?P<w>(?:[^ \t;()"\\]|\\.)+)
      | (?P<p>[()])
      | (?P<c>;)
      | (?P<bad>.)""",
    re.VERBOSE | re.DOTALL,
)

_GENERATE_MODIFIER = re.compile(r"\{([+-]?\d+)(?:,(\d+)(?:,([doxXnN]))?)?\}")
_GENERATE_RANGE = re.compile(r"(\d+)-(\d+)(?:/(\d+))?")


def _open(path: str) -> tuple[TextIO, int]:
    """The UTF-8 file at *path*, opened for reading lines, and its size; raises
    ``_Bad`` saying why not.  Lines are read as parsed: a large zone is never
    all in memory.  Only regular files: a FIFO would block the load forever and
    a device (``/dev/zero``) would never end."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise _Bad("no such file") from None
    except OSError as e:
        raise _Bad(f"cannot read: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Bad("not a regular file")
        return open(fd, encoding="utf-8-sig"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def _bounded_lines(f: TextIOBase) -> Iterator[str]:
    """The lines of *f*, none read past MAX_LINE_CHARS: a file that is one huge
    line (no newline in a gigabyte) is refused at that line, not held in memory."""
    read = f.readline
    lineno = 0
    while True:
        line = read(MAX_LINE_CHARS + 1)
        if not line:
            return
        lineno += 1
        if len(line) > MAX_LINE_CHARS and line[-1] != "\n":
            raise _Bad(f"line longer than {MAX_LINE_CHARS} characters", lineno)
        yield line


def _utf8_error(path: str, error: UnicodeDecodeError) -> tuple[int, str]:
    """The line and reason for a file that is not UTF-8.  The decoder reads
    ahead in blocks, so find the line from the bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return data.count(b"\n", 0, e.start) + 1, f"not UTF-8 text ({e.reason})"
    except OSError:
        pass
    return 0, f"not UTF-8 text ({error.reason})"


def _tokenize(line: str, more: Iterator[str], lineno: int) -> tuple[list[str], list[int], int]:
    """Tokens of the record starting with *line* (line *lineno*), the indexes of
    those glued to the token before them (``a"b"``), and how many lines of
    *more* the record went on to take.

    Tokens keep their source text (quotes and escapes included), so joining them
    with a space, or nothing where glued, is the same input for
    ``dns.rdata.from_text`` (SVCB tells ``key="v"`` from ``key= "v"``).
    Parentheses and comments are dropped; like dnspython, a quoted string ends
    on its line unless the newline is escaped (``"a\\`` then ``b"``), which
    BIND and dnspython read as a newline inside the string.
    """
    tokens: list[str] = []
    glued: list[int] = []
    depth = 0
    taken = 0
    chars = 0  # of the record so far: parentheses must not make it unbounded
    while True:
        last_end = -1
        at_line = len(tokens), len(glued), depth  # to read this line again, joined
        text = line.rstrip("\n")
        chars += len(text)
        if chars > MAX_RECORD_CHARS:
            raise _Bad(f"record longer than {MAX_RECORD_CHARS} characters", lineno + taken)
        rejoined = False
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup
            if kind == "w" or kind == "q":
                if m.start() == last_end:
                    glued.append(len(tokens))
                if m.end() - m.start() > MAX_TOKEN_CHARS:
                    raise _Bad(f"token longer than {MAX_TOKEN_CHARS} characters", lineno + taken)
                tokens.append(m.group())
                last_end = m.end()
            elif kind == "p":
                last_end = -1
                depth += 1 if m.group() == "(" else -1
                if depth < 0:
                    raise _Bad("unbalanced parentheses: ')' without '('", lineno + taken)
            elif kind == "c":
                break
            elif kind == "bad":
                tail = text[m.start() :]
                escaped_newline = (len(tail) - len(tail.rstrip("\\"))) % 2 == 1
                if m.group() == '"' and escaped_newline:
                    following = next(more, None)
                    if following is None:
                        raise _Bad("unterminated quoted string", lineno + taken)
                    del tokens[at_line[0] :], glued[at_line[1] :]
                    depth = at_line[2]
                    line = text + "\n" + following
                    taken += 1
                    rejoined = True
                    break
                if m.group() == '"':
                    raise _Bad("unterminated quoted string", lineno + taken)
                raise _Bad("backslash at end of line", lineno + taken)
        if rejoined:
            continue
        if depth == 0:
            return tokens, glued, taken
        following = next(more, None)
        if following is None:
            raise _Bad("unbalanced parentheses: '(' never closed")
        line = following
        taken += 1


def _join(tokens: list[str], start: int, glued: list[int]) -> str:
    """The source text of ``tokens[start:]``, for ``dns.rdata.from_text``."""
    parts = [tokens[start]]
    for j in range(start + 1, len(tokens)):
        if j not in glued:
            parts.append(" ")
        parts.append(tokens[j])
    return "".join(parts)


# Names and paths are shown longer than other tokens: a name's text is up to
# 4 characters per octet (\\DDD escapes), and the tail of a path matters.
_LONG_ECHO = 4 * 255


def _bounded(reason: str) -> str:
    """A refusal as it is reported: whatever a library's message repeats of
    the input (a token inside an exception's text) stays a few lines long."""
    most = 2 * _LONG_ECHO
    return reason if len(reason) <= most else reason[:most] + "..."


def _echo(text: str, most: int = MAX_ECHO_CHARS) -> str:
    """*text* for an error message: at most *most* characters, marked when cut."""
    return text if len(text) <= most else text[:most] + "..."


def _ttl(text: str) -> int:
    if text.isdigit() and text.isascii() and len(text) < 10:
        return int(text)
    try:
        return dns.ttl.from_text(text)
    except dns.exception.DNSException:
        raise _Bad(f"bad TTL '{_echo(text)}'") from None


_IN_WORDS = frozenset(("IN", "in", "In", "iN"))


def _class(text: str) -> dns.rdataclass.RdataClass | None:
    """The class *text* names, or None if it names none."""
    if text in _IN_WORDS:
        return _IN
    try:
        return dns.rdataclass.from_text(text)
    except dns.exception.DNSException:
        return None


def _rdtype(text: str) -> dns.rdatatype.RdataType:
    t = _TYPES.get(text) or _TYPES.get(text.upper())
    if t is not None:
        return t
    cls = _class(text)
    if cls is not None:
        raise _Bad(
            f"class {text} where the type belongs"
            if cls == _IN
            else f"class {text} is not supported (only IN)"
        )
    try:
        t = dns.rdatatype.from_text(text)
    except dns.exception.DNSException:
        if text[:1] in "-+" and text[1:2].isdigit():
            # Read where the TTL may stand: a signed number is a bad TTL, not a type.
            raise _Bad(f"bad TTL '{_echo(text)}': a TTL is 0 to 2147483647") from None
        raise _Bad(f"unknown type {_echo(text)}") from None
    if t == dns.rdatatype.NONE or dns.rdatatype.is_metatype(t):
        raise _Bad(f"type {_echo(text)} is not allowed in zone data")
    return t


def _arity(word: str, args: list[str], least: int, most: int) -> None:
    if len(args) < least:
        raise _Bad(f"{_echo(word)} needs an argument")
    if len(args) > most:
        raise _Bad(f"unexpected '{_echo(args[most])}' after {_echo(word)}")


def _unquote(text: str) -> str:
    return text[1:-1] if text[:1] == '"' else text


# --- building dnspython objects fast ------------------------------------------
#
# The constructors of dnspython's immutable types cost about 4 us each (a
# context variable guards every attribute store, and class and type are
# re-validated as enums), which is most of the time of a large load.  For the
# common types we validate the fields ourselves, exactly as the constructor
# would, and store them with object.__setattr__ -- what dnspython's own
# __setstate__ does.  _store_matches_constructors() proves at import time
# that this yields objects equal, field for field, to the constructors'; if a
# dnspython release ever lays them out differently we use the constructors.

_new = object.__new__
_set = object.__setattr__

_A_CLS = dns.rdtypes.IN.A.A
_AAAA_CLS = dns.rdtypes.IN.AAAA.AAAA
_MX_CLS = dns.rdtypes.ANY.MX.MX
_SRV_CLS = dns.rdtypes.IN.SRV.SRV
_NAME_CLS: dict[int, type[dns.rdata.Rdata]] = {
    dns.rdatatype.NS: dns.rdtypes.ANY.NS.NS,
    dns.rdatatype.CNAME: dns.rdtypes.ANY.CNAME.CNAME,
    dns.rdatatype.PTR: dns.rdtypes.ANY.PTR.PTR,
    dns.rdatatype.DNAME: dns.rdtypes.ANY.DNAME.DNAME,
}
_TXT_CLS: dict[int, type[dns.rdata.Rdata]] = {
    dns.rdatatype.TXT: dns.rdtypes.ANY.TXT.TXT,
    dns.rdatatype.SPF: dns.rdtypes.ANY.SPF.SPF,
}
# Each class's own fields, in the order its constructor takes them.
_FIELDS: dict[type[dns.rdata.Rdata], tuple[str, ...]] = {
    _A_CLS: ("address",),
    _AAAA_CLS: ("address",),
    _MX_CLS: ("preference", "exchange"),
    _SRV_CLS: ("priority", "weight", "port", "target"),
    **{cls: ("target",) for cls in _NAME_CLS.values()},
    **{cls: ("strings",) for cls in _TXT_CLS.values()},
}

_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\Z"
).match


_Maker = Callable[
    [type[dns.rdata.Rdata], dns.rdatatype.RdataType, tuple[object, ...]], dns.rdata.Rdata
]


def _store(
    cls: type[dns.rdata.Rdata], rdtype: dns.rdatatype.RdataType, values: tuple[object, ...]
) -> dns.rdata.Rdata:
    """An rdata of *cls* holding already-validated *values* in ``_FIELDS`` order."""
    rd = _new(cls)
    _set(rd, "rdclass", _IN)
    _set(rd, "rdtype", rdtype)
    _set(rd, "rdcomment", None)
    for field, value in zip(_FIELDS[cls], values, strict=True):
        _set(rd, field, value)
    return rd


def _construct(
    cls: type[dns.rdata.Rdata], rdtype: dns.rdatatype.RdataType, values: tuple[object, ...]
) -> dns.rdata.Rdata:
    return cls(_IN, rdtype, *values)


def _store_name(labels: tuple[bytes, ...]) -> dns.name.Name:
    name = _new(dns.name.Name)
    _set(name, "labels", labels)
    return name


def _slots(obj: object) -> dict[str, object]:
    return {
        slot: getattr(obj, slot, None)
        for klass in type(obj).__mro__
        for slot in getattr(klass, "__slots__", ())
    }


def _store_matches_constructors() -> bool:
    target = _store_name((b"a", b"example", b""))
    samples: list[tuple[type[dns.rdata.Rdata], dns.rdatatype.RdataType, tuple[object, ...]]] = [
        (_A_CLS, dns.rdatatype.A, ("192.0.2.1",)),
        (_AAAA_CLS, dns.rdatatype.AAAA, ("2001:db8::1",)),
        (_MX_CLS, dns.rdatatype.MX, (10, target)),
        (_SRV_CLS, dns.rdatatype.SRV, (1, 2, 3, target)),
        *((cls, dns.rdatatype.RdataType(t), (target,)) for t, cls in _NAME_CLS.items()),
        *((cls, dns.rdatatype.RdataType(t), ((b"x", b""),)) for t, cls in _TXT_CLS.items()),
    ]
    for cls, rdtype, values in samples:
        fast, slow = _store(cls, rdtype, values), _construct(cls, rdtype, values)
        if type(fast) is not type(slow) or _slots(fast) != _slots(slow):
            return False
        if fast != slow or hash(fast) != hash(slow) or fast.to_text() != slow.to_text():
            return False
    name = dns.name.from_text("a.example.")
    return _slots(_store_name(name.labels)) == _slots(name) and _store_name(name.labels) == name


_direct: _Maker
_direct_name: Callable[[tuple[bytes, ...]], dns.name.Name]
if _store_matches_constructors():
    _direct, _direct_name = _store, _store_name
else:  # pragma: no cover - a dnspython that lays its objects out differently
    _direct, _direct_name = _construct, dns.name.Name


# Entries per cache: the first ones seen stay, which catches the targets a
# zone repeats (name servers, mail hosts); a bound keeps growing or freeing a
# cache a short step for the GIL (a million-entry dict takes 50-130 ms to
# grow, stalling every thread).
_CACHE_LIMIT = 1 << 13


class _Origin:
    """Names and rdata read under one origin, cached by their text (relative
    text means something else under another origin)."""

    __slots__ = ("origin", "suffix", "suffix_len", "names", "rdata")

    def __init__(self, origin: dns.name.Name) -> None:
        self.origin = origin
        self.suffix = origin.labels
        self.suffix_len = sum(len(label) + 1 for label in origin.labels)  # wire length
        self.names: dict[str, dns.name.Name] = {}
        # rdata by (type, text of its tokens); rdata objects are immutable, so
        # records with the same data share one.
        self.rdata: dict[tuple[int, str], dns.rdata.Rdata] = {}

    def name(self, text: str) -> dns.name.Name:
        name = self.names.get(text)
        if name is None:
            name = self.make_name(text)
            if len(self.names) < _CACHE_LIMIT:
                self.names[text] = name
        return name

    def make_name(self, text: str) -> dns.name.Name:
        """The name *text* (relative to this origin), built without the cache."""
        if text == "@":
            return self.origin
        if text[0] == '"':
            raise _Bad(f"a name cannot be quoted: {_echo(text)}")
        if "\\" not in text and text.isascii() and ".." not in text and text[0] != ".":
            # Plain ASCII labels: split them ourselves and check what
            # dns.name._validate_labels checks (RFC 1035 section 2.3.4 limits).
            absolute = text[-1] == "."
            raw = text[:-1] if absolute else text
            labels = tuple(raw.encode().split(b"."))
            if len(raw) <= 63 or max(map(len, labels)) <= 63:
                if absolute:
                    if len(text) + 1 <= 255:
                        return _direct_name((*labels, b""))
                elif len(text) + 1 + self.suffix_len <= 255:
                    return _direct_name(labels + self.suffix)
        # Escapes, IDNA, the root, and every error: let dnspython do it.
        try:
            return dns.name.from_text(text, self.origin)
        except dns.name.EmptyLabel:
            raise _Bad(f"bad name '{_echo(text, _LONG_ECHO)}': empty label") from None
        except dns.name.LabelTooLong:
            raise _Bad(
                f"bad name '{_echo(text, _LONG_ECHO)}': label longer than 63 octets"
            ) from None
        except dns.name.NameTooLong:
            raise _Bad(f"bad name '{_echo(text, _LONG_ECHO)}': longer than 255 octets") from None
        except dns.exception.DNSException as e:
            raise _Bad(f"bad name '{_echo(text, _LONG_ECHO)}': {e}") from None


# --- rdata from tokens ----------------------------------------------------------
#
# A builder takes the rdata tokens (never with escapes: those go to from_text)
# and returns the rdata, or None when the tokens have an unusual shape; then
# dns.rdata.from_text parses them and reports any error in its own words.

_Builder = Callable[[_Origin, dns.rdatatype.RdataType, list[str]], "dns.rdata.Rdata | None"]


def _a(t: dns.rdatatype.RdataType, text: str) -> dns.rdata.Rdata:
    # dnspython accepts only the canonical dotted quad, so the text is its own
    # canonical form.
    if _IPV4(text) is None:
        raise _Bad(f"bad IPv4 address '{_echo(text)}'")
    return _direct(_A_CLS, t, (text,))


def _build_a(o: _Origin, t: dns.rdatatype.RdataType, rest: list[str]) -> dns.rdata.Rdata | None:
    return _a(t, rest[0]) if len(rest) == 1 else None


def _aaaa_text_dnspython(text: str) -> str:
    try:
        return dns.ipv6.canonicalize(text)
    except dns.exception.DNSException:
        raise _Bad(f"bad IPv6 address '{_echo(text)}'") from None


def _aaaa_text_libc(text: str) -> str:
    # The C library's inet_pton/inet_ntop are ~10x faster than dnspython's
    # pure-Python pair, and both descend from BIND's: same addresses accepted,
    # same RFC 5952 text with the same embedded-IPv4 forms (checked below).
    try:
        return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, text))
    except (OSError, ValueError):
        return _aaaa_text_dnspython(text)  # dnspython has the last word on errors


def _libc_matches_dnspython() -> bool:
    samples = (
        "::", "::1", "1::", "::ffff:192.0.2.1", "::192.0.2.1", "::ffff:0:192.0.2.1",
        "1:0:0:1::", "2001:DB8:0:0:1:0:0:1", "0:0:1::", "1:0:1:0:1:0:1:0", "fe80::1:2",
    )  # fmt: skip
    try:
        return all(_aaaa_text_libc(t) == dns.ipv6.canonicalize(t) for t in samples)
    except (_Bad, OSError):  # pragma: no cover - a C library without IPv6 text forms
        return False


_aaaa_text = _aaaa_text_libc if _libc_matches_dnspython() else _aaaa_text_dnspython


def _build_aaaa(o: _Origin, t: dns.rdatatype.RdataType, rest: list[str]) -> dns.rdata.Rdata | None:
    if len(rest) != 1:
        return None
    return _direct(_AAAA_CLS, t, (_aaaa_text(rest[0]),))


def _build_name(o: _Origin, t: dns.rdatatype.RdataType, rest: list[str]) -> dns.rdata.Rdata | None:
    if len(rest) != 1:
        return None
    return _direct(_NAME_CLS[t], t, (o.name(rest[0]),))


def _uint16(text: str, what: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 0xFFFF:
        raise _Bad(f"bad {what} '{_echo(text)}': not an integer 0..65535")
    return int(text)


def _build_mx(o: _Origin, t: dns.rdatatype.RdataType, rest: list[str]) -> dns.rdata.Rdata | None:
    if len(rest) != 2:
        return None
    return _direct(_MX_CLS, t, (_uint16(rest[0], "MX preference"), o.name(rest[1])))


def _build_srv(o: _Origin, t: dns.rdatatype.RdataType, rest: list[str]) -> dns.rdata.Rdata | None:
    if len(rest) != 4:
        return None
    priority = _uint16(rest[0], "SRV priority")
    weight = _uint16(rest[1], "SRV weight")
    port = _uint16(rest[2], "SRV port")
    return _direct(_SRV_CLS, t, (priority, weight, port, o.name(rest[3])))


def _build_txt(o: _Origin, t: dns.rdatatype.RdataType, rest: list[str]) -> dns.rdata.Rdata | None:
    if not rest:
        return None
    strings = []
    for token in rest:
        # Quoted or not, a string is its UTF-8 bytes (no escapes reach here).
        data = (token[1:-1] if token[0] == '"' else token).encode()
        if len(data) > 255:
            raise _Bad(f"{t.name} string longer than 255 octets")
        strings.append(data)
    return _direct(_TXT_CLS[t], t, (tuple(strings),))


_BUILDERS: dict[int, _Builder] = {
    dns.rdatatype.A: _build_a,
    dns.rdatatype.AAAA: _build_aaaa,
    dns.rdatatype.NS: _build_name,
    dns.rdatatype.CNAME: _build_name,
    dns.rdatatype.PTR: _build_name,
    dns.rdatatype.DNAME: _build_name,
    dns.rdatatype.MX: _build_mx,
    dns.rdatatype.SRV: _build_srv,
    dns.rdatatype.TXT: _build_txt,
    dns.rdatatype.SPF: _build_txt,
}
_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA


def _rdata(
    o: _Origin, t: dns.rdatatype.RdataType, rest: list[str], escaped: bool, text: str | None
) -> dns.rdata.Rdata:
    """The rdata of type *t* from its tokens; *escaped* if any token holds a
    backslash; *text* is their source text if it is not ``" ".join(rest)``."""
    if len(rest) == 1 and not escaped:
        # Addresses mostly differ, and are cheap to build: skip the cache.
        if t is _A:
            return _a(t, rest[0])
        if t is _AAAA:
            return _direct(_AAAA_CLS, t, (_aaaa_text(rest[0]),))
    key = (t, " ".join(rest) if text is None else text)
    rd = o.rdata.get(key)
    if rd is not None:
        return rd
    builder = None if escaped else _BUILDERS.get(t)
    if builder is not None:
        rd = builder(o, t, rest)
    if rd is None:
        try:
            rd = dns.rdata.from_text(_IN, t, key[1], origin=o.origin, relativize=False)
        except (dns.exception.DNSException, ValueError) as e:
            raise _Bad(f"bad {t.name} rdata '{_echo(key[1])}': {e}") from None
    # A field of text never makes more than four wire bytes per character (a
    # one-digit 32-bit number), so only long rdata can overflow RDLENGTH.
    if len(key[1]) * 4 > MAX_RDATA_BYTES:
        size = len(rd.to_wire() or b"")
        if size > MAX_RDATA_BYTES:
            raise _Bad(f"{t.name} rdata of {size} bytes is over {MAX_RDATA_BYTES} (RDLENGTH)")
    if len(o.rdata) < _CACHE_LIMIT:
        o.rdata[key] = rd
    return rd


# --- $GENERATE --------------------------------------------------------------

_Template = list[str | tuple[int, int, str]]


def _compile_template(text: str) -> _Template:
    """Split a $GENERATE lhs/rhs into literal text and ``(offset, width, base)`` fields.

    ``$`` is the counter, ``${offset[,width[,base]]}`` a modified counter,
    ``$$`` a literal ``$``; a backslash escape is copied through unchanged for
    the name or rdata parser to interpret, as BIND does.
    """
    parts: _Template = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            literal.append(text[i : i + 2])
            i += 2
        elif c != "$":
            literal.append(c)
            i += 1
        elif text.startswith("$", i + 1):
            literal.append("$")
            i += 2
        else:
            i += 1
            offset, width, base = 0, 0, "d"
            if text.startswith("{", i):
                m = _GENERATE_MODIFIER.match(text, i)
                if m is None:
                    raise _Bad(f"bad $GENERATE modifier in '{_echo(text)}'")
                offset = int(m.group(1))
                width = int(m.group(2) or 0)
                base = m.group(3) or "d"
                if width > MAX_GENERATE_WIDTH:
                    raise _Bad(f"$GENERATE width {width} is over {MAX_GENERATE_WIDTH}")
                i = m.end()
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append((offset, width, base))
    if literal:
        parts.append("".join(literal))
    return parts


def _nibbles(value: int, width: int, upper: bool) -> str:
    """BIND's nibble format: hex digits least significant first, dot separated,
    continued with zeros until *width* characters (dots included) are written."""
    digits = "0123456789ABCDEF" if upper else "0123456789abcdef"
    out: list[str] = []
    while True:
        out.append(digits[value & 0xF])
        value >>= 4
        width = max(width - 1, 0)
        if width > 0 or value:
            out.append(".")
            width = max(width - 1, 0)
        if not value and not width:
            return "".join(out)


def _expand(template: _Template, counter: int) -> str:
    out: list[str] = []
    for part in template:
        if isinstance(part, str):
            out.append(part)
            continue
        offset, width, base = part
        value = counter + offset
        if base in "nN":
            if value < 0:
                raise _Bad("negative $GENERATE value in nibble mode")
            out.append(_nibbles(value, width, base == "N"))
        else:
            out.append(format(value, base).zfill(width))
    return "".join(out)


# --- the parser ---------------------------------------------------------------


class _State:
    """What the lines of a file change.  An ``$INCLUDE`` reads with a copy, and
    only the TTLs are taken back from it (see ``_Parser._include``)."""

    __slots__ = ("origin", "last_name", "last_ttl", "default_ttl", "default_from_soa")

    def __init__(self, origin: _Origin) -> None:
        self.origin = origin
        self.last_name = origin.origin
        self.last_ttl: int | None = None  # the last TTL written on a record
        self.default_ttl: int | None = None  # $TTL, or the SOA MINIMUM without one
        self.default_from_soa = False

    def copy(self) -> _State:
        other = _State(self.origin)
        other.last_name = self.last_name
        other.last_ttl = self.last_ttl
        other.default_ttl = self.default_ttl
        other.default_from_soa = self.default_from_soa
        return other

    def implicit_ttl(self) -> int | None:
        # RFC 2308: $TTL wins; a default taken from the SOA yields to the last
        # explicit TTL (RFC 1035 section 5.1), as in dnspython.
        if self.last_ttl is not None and (self.default_ttl is None or self.default_from_soa):
            return self.last_ttl
        return self.default_ttl


class _Parser:
    """Parses one zone: a top file and what it includes."""

    def __init__(
        self,
        max_records: int = DEFAULT_MAX_ZONE_RECORDS,
        include_root: str | None = None,
        max_records_per_rrset: int = DEFAULT_MAX_RECORDS_PER_RRSET,
    ) -> None:
        self.max_records = max_records
        self.max_records_per_rrset = max_records_per_rrset
        self.include_root = include_root  # resolved (realpath) folder, or None
        self.records: list[Record] = []
        self.origins: dict[dns.name.Name, _Origin] = {}
        self.open_files: list[str] = []  # real paths of the files being read, for loops
        self.source_bytes = 0  # sizes of the files opened so far, includes too

    def open_source(self, path: str) -> TextIO:
        """Open a file of this zone, within MAX_ZONE_SOURCE_BYTES for all of them."""
        f, size = _open(path)
        self.source_bytes += size
        if self.source_bytes > MAX_ZONE_SOURCE_BYTES:
            f.close()
            raise _Bad(f"the zone's files hold more than {MAX_ZONE_SOURCE_BYTES} bytes")
        return f

    def _origin(self, origin: dns.name.Name) -> _Origin:
        o = self.origins.get(origin)
        if o is None:
            o = self.origins[origin] = _Origin(origin)
        return o

    def parse(
        self, lines: Iterable[str] | TextIO, origin: dns.name.Name, filename: str
    ) -> list[Record]:
        """All records of the zone whose top file is *lines*, in file order."""
        if not origin.is_absolute():
            raise ZoneError(filename, 0, f"origin {origin} is not absolute")
        # No GC toggling here: a load allocates millions of objects and frees
        # almost none, so callers that load big zones (the service, the fleet,
        # ``authd check``) pause the cyclic GC around it (authd.adapters.gcpause).
        try:
            self._source(lines, filename, _State(self._origin(origin)))
        except _Unreadable as e:
            raise ZoneError(filename, 0, str(e)) from None
        # After the whole zone: one RRset's records may be spread over its files.
        over = first_over_rrset_limit(self.records, self.max_records_per_rrset)
        if over is not None:
            r = self.records[over]
            raise ZoneError(
                r.file, r.line, rrset_limit_message(r[0], r[2], self.max_records_per_rrset)
            )
        return self.records

    def _source(self, lines: Iterable[str] | TextIO, filename: str, st: _State) -> None:
        """Read the records of *lines*, closing them if they are a file."""
        if not isinstance(lines, TextIOBase):
            self._file(lines, filename, st)
            return
        with lines:
            try:
                self._file(_bounded_lines(lines), filename, st)
            except UnicodeDecodeError as e:
                line, reason = _utf8_error(filename, e)
                raise ZoneError(filename, line, reason) from None
            except OSError as e:
                raise _Unreadable(f"cannot read: {e.strerror or e}") from None

    def _file(self, lines: Iterable[str], filename: str, st: _State) -> None:
        """Append the records of one file's *lines* to ``self.records``.

        *lines* may end in a newline (a file) or not (split text)."""
        self.open_files.append(os.path.realpath(filename))
        append = self.records.append
        new_tuple = tuple.__new__
        no_glue: list[int] = []
        owner_text = ""  # the text st.last_name was read from
        complex_line = _COMPLEX.search
        types = _TYPES
        o = st.origin
        names = o.names
        more = iter(lines)
        lineno = 0  # of the line being read
        start = 0  # the line the current record starts on
        try:
            for line in more:
                lineno += 1
                if not lineno & 0xFFF:
                    self._check_count()  # every 4096 lines: cheap, and memory stays bounded
                if not line or line[0] == ";":
                    continue
                start = lineno
                if complex_line(line) is None:
                    escaped = False
                    glued = no_glue
                    semi = line.find(";")
                    tokens = (line[:semi] if semi >= 0 else line).split()
                    if len(line) > MAX_TOKEN_CHARS and max(map(len, tokens), default=0) > (
                        MAX_TOKEN_CHARS
                    ):
                        raise _Bad(f"token longer than {MAX_TOKEN_CHARS} characters")
                else:
                    tokens, glued, taken = _tokenize(line, more, lineno)
                    lineno += taken
                    escaped = any("\\" in t for t in tokens)
                if not tokens:
                    continue

                # Owner: blank means the previous one (RFC 1035 section 5.1).
                if line[0] == " " or line[0] == "\t":
                    owner = st.last_name
                    k = 0
                else:
                    text = tokens[0]
                    if text[0] == "$":
                        self._directive(tokens, filename, start, st)
                        o = st.origin
                        names = o.names
                        owner_text = ""  # the same text may name another owner now
                        continue
                    if text == owner_text:
                        owner = st.last_name
                    else:
                        # Owners mostly differ, so only names read in rdata
                        # are cached: caching owners too cost 11% more memory.
                        found = names.get(text)
                        owner = o.make_name(text) if found is None else found
                        st.last_name = owner
                        owner_text = text
                    k = 1

                # [TTL] [class] type, or [class] [TTL] type.
                ntok = len(tokens)
                if k >= ntok:
                    raise _Bad("no type")
                text = tokens[k]
                ttl = None
                if "0" <= text[0] <= "9":
                    ttl = _ttl(text)
                    k += 1
                    if k >= ntok:
                        raise _Bad("no type")
                    text = tokens[k]
                rdtype = types.get(text)
                if rdtype is None:
                    cls = _IN if text in _IN_WORDS else _class(text)
                    if cls is not None:
                        if cls != _IN:
                            raise _Bad(f"class {_echo(text)} is not supported (only IN)")
                        k += 1
                        if k >= ntok:
                            raise _Bad("no type")
                        text = tokens[k]
                        if ttl is None and "0" <= text[0] <= "9":
                            ttl = _ttl(text)
                            k += 1
                            if k >= ntok:
                                raise _Bad("no type")
                            text = tokens[k]
                    rdtype = types.get(text)
                    if rdtype is None:
                        rdtype = _rdtype(text)

                k += 1
                rd = _rdata(
                    o, rdtype, tokens[k:], escaped, _join(tokens, k, glued) if glued else None
                )
                if ttl is None:
                    if rdtype == _SOA and st.default_ttl is None:
                        self._soa_default(st, rd)
                    ttl = st.implicit_ttl()
                    if ttl is None:
                        raise _Bad("no TTL and no $TTL")
                    inferred = st.default_from_soa or st.default_ttl is None
                else:
                    st.last_ttl = ttl
                    if rdtype == _SOA and st.default_ttl is None:
                        self._soa_default(st, rd)
                    inferred = False
                # tuple.__new__ skips NamedTuple's Python-level __new__.
                append(new_tuple(Record, (owner, ttl, rd, filename, start, inferred)))
            self._check_count()
        except _Bad as e:
            raise ZoneError(filename, e.line or start, _bounded(str(e))) from None
        finally:
            self.open_files.pop()

    def _check_count(self) -> None:
        if len(self.records) > self.max_records:
            raise _Bad(f"more than {self.max_records} records in the zone (max_records)")

    @staticmethod
    def _soa_default(st: _State, rd: dns.rdata.Rdata) -> None:
        # Pre-RFC 2308 zones without $TTL take their default from the SOA MINIMUM.
        assert isinstance(rd, dns.rdtypes.ANY.SOA.SOA)
        st.default_ttl = rd.minimum
        st.default_from_soa = True

    # --- directives -----------------------------------------------------------

    def _directive(self, tokens: list[str], filename: str, lineno: int, st: _State) -> None:
        word = tokens[0].upper()
        args = tokens[1:]
        if word == "$ORIGIN":
            _arity(word, args, 1, 1)
            # A relative $ORIGIN is relative to the current one (RFC 1035 section 5.1).
            st.origin = self._origin(st.origin.name(args[0]))
        elif word == "$TTL":
            _arity(word, args, 1, 1)
            st.default_ttl = _ttl(args[0])
            st.default_from_soa = False
        elif word == "$INCLUDE":
            _arity(word, args, 1, 2)
            self._include(args, filename, st)
        elif word == "$GENERATE":
            self._generate(args, filename, lineno, st)
        else:
            raise _Bad(f"unknown directive {_echo(tokens[0])}")

    def _include(self, args: list[str], filename: str, st: _State) -> None:
        given = _unquote(args[0])
        path = os.path.join(os.path.dirname(filename), given)
        if len(self.open_files) > MAX_INCLUDE_DEPTH:
            raise _Bad(f"$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH}")
        real = os.path.realpath(path)
        if real in self.open_files:
            raise _Bad(f"$INCLUDE loop: {_echo(given, _LONG_ECHO)} is already being read")
        # Symlinks resolved first, so a link cannot lead out of the folder.
        root = self.include_root
        if root is not None and os.path.commonpath([root, real]) != root:
            raise _Bad(f"$INCLUDE outside include_root {root}: {_echo(given, _LONG_ECHO)}")
        child = st.copy()
        if len(args) == 2:
            child.origin = self._origin(st.origin.name(args[1]))
        try:
            f = self.open_source(path)
        except _Bad as e:
            raise _Bad(f"{e}: {_echo(given, _LONG_ECHO)}") from None
        try:
            self._source(f, path, child)
        except _Unreadable as e:
            raise _Bad(f"{e}: {_echo(given, _LONG_ECHO)}") from None
        # RFC 1035 section 5.1: the includer's origin is unchanged by the
        # include; BIND also restores the previous owner.  TTLs set inside
        # carry on after it, as in BIND and NSD.
        st.last_ttl = child.last_ttl
        st.default_ttl = child.default_ttl
        st.default_from_soa = child.default_from_soa

    def _generate(self, args: list[str], filename: str, lineno: int, st: _State) -> None:
        # $GENERATE range lhs [ttl] [class] type rhs  (BIND)
        if len(args) < 4:
            raise _Bad("$GENERATE needs a range, an owner, a type and rdata")
        m = _GENERATE_RANGE.fullmatch(args[0])
        if m is None:
            raise _Bad(f"bad $GENERATE range '{_echo(args[0])}'")
        start, stop, step = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
        if start > stop or step < 1:
            raise _Bad(f"bad $GENERATE range '{_echo(args[0])}'")
        if (stop - start) // step + 1 > MAX_GENERATE_RECORDS:
            raise _Bad(f"$GENERATE makes more than {MAX_GENERATE_RECORDS} records")
        lhs = _compile_template(args[1])

        k = 2
        ttl = None
        cls = None
        while k < len(args) - 1:
            text = args[k]
            if ttl is None and "0" <= text[0] <= "9":
                ttl = _ttl(text)
            elif cls is None and (cls := _class(text)) is not None:
                if cls != _IN:
                    raise _Bad(f"class {_echo(text)} is not supported (only IN)")
            else:
                break
            k += 1
        rdtype = _rdtype(args[k])
        rest = args[k + 1 :]
        if not rest:
            raise _Bad("$GENERATE needs rdata")
        if len(rest) > 1:
            # As in BIND: rdata with spaces must be quoted ("10 mail$").
            raise _Bad(f"unexpected '{_echo(rest[1])}' after the $GENERATE rdata (quote it)")
        rhs = _compile_template(_unquote(rest[0]))

        if ttl is None:
            ttl = st.implicit_ttl()
            if ttl is None:
                raise _Bad("no TTL and no $TTL")
            inferred = st.default_from_soa or st.default_ttl is None
        else:
            st.last_ttl = ttl
            inferred = False
        o = st.origin
        # The expanded rhs is read like the rest of a record line, comments
        # included; as in BIND, $GENERATE leaves the previous owner as it was.
        for counter in range(start, stop + 1, step):
            owner = o.name(_expand(lhs, counter))
            text = _expand(rhs, counter)
            if _COMPLEX.search(text) is None:
                semi = text.find(";")
                rd = _rdata(o, rdtype, (text[:semi] if semi >= 0 else text).split(), False, None)
            else:
                try:
                    tokens, glued, _ = _tokenize(text, iter(()), 1)
                except _Bad as e:  # its line is the $GENERATE line, not line 1
                    raise _Bad(str(e)) from None
                exact = _join(tokens, 0, glued) if glued and tokens else None
                rd = _rdata(o, rdtype, tokens, "\\" in text, exact)
            self.records.append(Record(owner, ttl, rd, filename, lineno, inferred))
        self._check_count()
