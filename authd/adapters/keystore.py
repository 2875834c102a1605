"""The DNSSEC key store on disk: ``<state_dir>/keys/<zone>/``.

Owns every read and write of key files: each key pair in BIND's own formats
(``K<zone>+<alg>+<tag>.key`` and ``.private``, so BIND's tools read the folder
and a migration from BIND is a copy) and the index ``keys.json`` (role and
times; ``authd.keyfiles`` has the formats).  Fresh private keys come from
``cryptography`` here, the only randomness of the key side.

Invariants:
- folders are mode 0700, files 0600, created so (never briefly wider);
- every file is replaced atomically (temp file, fsync, rename, fsync of the
  folder), and a key's files are on disk before the ``keys.json`` that names
  them, so a reader never finds an entry without its files;
- writers (``generate_key``, ``import_bind_keys``, ``save_metadata``) hold an
  exclusive ``flock`` on ``<folder>/.lock``, so two of them do not interleave;
- only keys listed in ``keys.json`` are keys of the zone: a stray file in the
  folder is ignored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

import dns.dnssec
import dns.name
import dns.rdtypes.ANY.DNSKEY
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from authd.keyfiles import (
    ALGORITHMS,
    FLAGS_KSK,
    FLAGS_ZSK,
    ROLES,
    BindTiming,
    KeyFileError,
    PrivateKey,
    ZoneKey,
    check_pair,
    key_file_base,
    key_from_files,
    make_zone_key,
    parse_bind_timing,
    parse_key_file,
    parse_metadata,
    parse_private_file,
    render_key_file,
    render_metadata,
    render_private_file,
    zone_folder_name,
)
from authd.limits import MAX_KEY_FILE_BYTES, MAX_KEY_TAG_TRIES, MAX_ZONE_KEYS

METADATA = "keys.json"
_LOCK = ".lock"
_DIR_MODE = 0o700
_FILE_MODE = 0o600


def key_dir(state_dir: str, zone: dns.name.Name) -> str:
    """``<state_dir>/keys/<zone>``: the folder of *zone*'s keys."""
    return os.path.join(state_dir, "keys", zone_folder_name(zone))


def load_keys(state_dir: str, zone: dns.name.Name) -> tuple[ZoneKey, ...]:
    """*zone*'s keys, as ``keys.json`` lists them (none when there is no index).
    Raises ``KeyFileError`` naming the file for anything unreadable or inconsistent."""
    folder = key_dir(state_dir, zone)
    index = os.path.join(folder, METADATA)
    text = _read_text(index, missing_ok=True)
    if text is None:
        return ()
    keys = []
    for entry in parse_metadata(text, index):
        base = os.path.join(folder, entry.file)
        key_text = _read_text(base + ".key")
        private_text = _read_text(base + ".private")
        assert key_text is not None and private_text is not None
        keys.append(key_from_files(zone, entry, key_text, private_text, base))
    return tuple(keys)


def list_zones(state_dir: str) -> list[dns.name.Name]:
    """The zones with a key index under *state_dir*, sorted (folder ``root``: the root)."""
    top = os.path.join(state_dir, "keys")
    try:
        names = sorted(os.listdir(top))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise KeyFileError(top, f"cannot list: {e.strerror}") from None
    zones = []
    for name in names:
        if os.path.isfile(os.path.join(top, name, METADATA)):
            zones.append(dns.name.root if name == "root" else dns.name.from_text(name))
    return sorted(zones)


def new_private_key(algorithm: int) -> PrivateKey:
    """A fresh private key for *algorithm* (13 or 15), from ``cryptography``."""
    if algorithm == 13:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == 15:
        return ed25519.Ed25519PrivateKey.generate()
    raise KeyFileError("", f"algorithm {algorithm}: only 13 (ECDSAP256SHA256) and 15 (ED25519)")


def generate_key(
    state_dir: str,
    zone: dns.name.Name,
    algorithm: int,
    role: str,
    now: int,
    *,
    publish: int | None = None,
    activate: int | None = None,
) -> ZoneKey:
    """Make a key pair for *zone*, write its files and add it to ``keys.json``.
    Its tag differs from every key already there (RFC 4034 Appendix B: tags are
    not unique, but one zone's should be, so ``authd keys`` can name a key by it)."""
    if algorithm not in ALGORITHMS:
        raise KeyFileError("", f"algorithm {algorithm}: only 13 (ECDSAP256SHA256) and 15 (ED25519)")
    if role not in ROLES:
        raise KeyFileError("", f"unknown key role {role!r} (one of {', '.join(ROLES)})")
    with _locked(state_dir, zone) as folder:
        keys = load_keys(state_dir, zone)
        _check_room(keys, 1)
        taken = {k.tag for k in keys}
        for _ in range(MAX_KEY_TAG_TRIES):
            key = make_zone_key(
                zone, role, new_private_key(algorithm), now, publish=publish, activate=activate
            )
            if key.tag not in taken:
                break
        else:
            raise KeyFileError(folder, f"no free key tag after {MAX_KEY_TAG_TRIES} keys")
        _write_pair(folder, key)
        _write(os.path.join(folder, METADATA), render_metadata((*keys, key)))
    return key


def update_keys(
    state_dir: str,
    zone: dns.name.Name,
    change: Callable[[tuple[ZoneKey, ...]], Sequence[ZoneKey]],
) -> tuple[ZoneKey, ...]:
    """Read, change and write *zone*'s keys under the folder's lock, so two
    updaters (a rollover step in a reload, an ``authd ctl keys`` command) never
    lose each other's change.  *change* gets the keys and returns them as they
    are to be: new keys (from ``fresh_key``) get their files written first,
    and keys it leaves out leave the index (their files stay).  Nothing is
    written when nothing changed."""
    with _locked(state_dir, zone) as folder:
        keys = load_keys(state_dir, zone)
        after = tuple(change(keys))
        _check_room((), len(after))
        if after == keys:  # the same keys (a key's equality leaves out its private half)
            return keys
        have = {k.tag for k in keys}
        for key in after:
            if key.zone != zone:
                raise KeyFileError(key.file, f"a key of {key.zone}, not of {zone}")
            if key.tag in have:
                _refresh_pair(folder, key)
            else:
                _write_pair(folder, key)
        _write(os.path.join(folder, METADATA), render_metadata(after))
    return after


def fresh_key(
    zone: dns.name.Name, algorithm: int, role: str, now: int, taken: Iterable[int]
) -> ZoneKey:
    """A new key pair (in memory, no times but its creation) whose tag is none
    of *taken*; ``update_keys`` writes it."""
    used = set(taken)
    for _ in range(MAX_KEY_TAG_TRIES):
        key = make_zone_key(zone, role, new_private_key(algorithm), now)
        if key.tag not in used:
            return key
    raise KeyFileError(str(zone), f"no free key tag after {MAX_KEY_TAG_TRIES} keys")


def save_metadata(state_dir: str, zone: dns.name.Name, keys: Iterable[ZoneKey]) -> None:
    """Replace ``keys.json`` with *keys* (their roles and times): how timing
    changes are kept.  The key files must be there already (generated or imported)."""
    keys = tuple(keys)
    _check_room((), len(keys))
    with _locked(state_dir, zone) as folder:
        for key in keys:
            if key.zone != zone:
                raise KeyFileError(key.file, f"a key of {key.zone}, not of {zone}")
            for suffix in (".key", ".private"):
                if not os.path.exists(os.path.join(folder, key.file + suffix)):
                    raise KeyFileError(key.file + suffix, "no such file in the key store")
        for key in keys:
            _refresh_pair(folder, key)
        _write(os.path.join(folder, METADATA), render_metadata(keys))


def import_bind_keys(
    state_dir: str,
    zone: dns.name.Name,
    paths: list[str],
    now: int,
    *,
    ds_seen: bool = False,
) -> tuple[ZoneKey, ...]:
    """Copy BIND key pairs (each ``.key`` path with its ``.private``, and a
    ``.state`` if there is one, beside it) into *zone*'s store, keeping the
    times their files give (``now`` for those they do not).  All or nothing:
    every pair is checked before anything is written.  *ds_seen* marks the
    imported KSKs/CSKs as having their DS at the parent already (a migration)."""
    read = [_read_bind_pair(zone, path) for path in paths]
    with _locked(state_dir, zone) as folder:
        keys = load_keys(state_dir, zone)
        _check_room(keys, len(read))
        have = {(k.algorithm, k.tag) for k in keys}
        # Without a .state, a 257 key is a KSK if a ZSK comes with it, else a CSK.
        zsk_present = any(k.role == "zsk" for k in keys) or any(
            pair.dnskey.flags == FLAGS_ZSK for pair in read
        )
        imported: list[ZoneKey] = []
        for pair in read:
            path, dnskey, timing = pair.path, pair.dnskey, pair.timing
            ident = (dnskey.algorithm, dns.dnssec.key_id(dnskey))
            if ident in have:
                raise KeyFileError(path, f"key {ident[1]} is already in {zone}'s key store")
            have.add(ident)
            role = timing.role or (
                "zsk" if dnskey.flags == FLAGS_ZSK else "ksk" if zsk_present else "csk"
            )
            if (role == "zsk") != (dnskey.flags == FLAGS_ZSK):
                raise KeyFileError(path, f"DNSKEY flags {dnskey.flags} do not fit role {role}")
            key = make_zone_key(
                zone,
                role,
                pair.private,
                timing.created if timing.created is not None else now,
                publish=timing.publish if timing.publish is not None else now,
                activate=timing.activate if timing.activate is not None else now,
                retire=timing.retire,
                remove=timing.remove,
                ds_seen=now if ds_seen and role != "zsk" else timing.ds_seen,
            )
            imported.append(key)
        for key in imported:
            _write_pair(folder, key)
        _write(os.path.join(folder, METADATA), render_metadata((*keys, *imported)))
    return tuple(imported)


@dataclasses.dataclass(frozen=True, slots=True)
class _BindPair:
    path: str
    dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY
    private: PrivateKey = dataclasses.field(repr=False)
    timing: BindTiming


def _read_bind_pair(zone: dns.name.Name, path: str) -> _BindPair:
    """One BIND pair read and checked: the files belong to *zone* and to each other."""
    if not path.endswith(".key"):
        raise KeyFileError(path, "expected a BIND .key file (K<zone>+<alg>+<tag>.key)")
    stem = path[: -len(".key")]
    key_text = _read_text(path)
    private_path = stem + ".private"
    try:
        private_text = _read_text(private_path)
    except KeyFileError as e:
        raise KeyFileError(private_path, f"the private key beside {path}: {e.reason}") from None
    state_text = _read_text(stem + ".state", missing_ok=True)
    assert key_text is not None and private_text is not None
    try:
        owner, dnskey = parse_key_file(key_text)
    except KeyFileError as e:
        raise KeyFileError(path, e.reason) from None
    if owner != zone:
        raise KeyFileError(path, f"a key of {owner}, not of {zone}")
    if dnskey.flags not in (FLAGS_KSK, FLAGS_ZSK):
        raise KeyFileError(path, f"DNSKEY flags {dnskey.flags}: expected 256 or 257 (revoked?)")
    if dnskey.algorithm not in ALGORITHMS:
        raise KeyFileError(path, f"algorithm {dnskey.algorithm}: only 13 and 15 are supported")
    try:
        private = parse_private_file(private_text)
    except KeyFileError as e:
        raise KeyFileError(private_path, e.reason) from None
    try:
        check_pair(owner, dnskey, private)
    except KeyFileError as e:
        raise KeyFileError(path, e.reason) from None
    return _BindPair(path, dnskey, private, parse_bind_timing(key_text, private_text, state_text))


def _check_room(keys: tuple[ZoneKey, ...], more: int) -> None:
    if len(keys) + more > MAX_ZONE_KEYS:
        raise KeyFileError("", f"a zone holds at most MAX_ZONE_KEYS ({MAX_ZONE_KEYS}) keys")


# -- files -----------------------------------------------------------------------------------


def _read_text(path: str, missing_ok: bool = False) -> str | None:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise KeyFileError(path, "no such file") from None
    except OSError as e:
        raise KeyFileError(path, f"cannot read: {e.strerror}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(path, f"larger than MAX_KEY_FILE_BYTES ({MAX_KEY_FILE_BYTES})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFileError(path, "not UTF-8 text") from None


def _ensure_folder(path: str) -> None:
    parent = os.path.dirname(path)
    for folder in (parent, path):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, _DIR_MODE)
        # An existing folder (or a umask) may say otherwise: keys are ours alone.
        os.chmod(folder, _DIR_MODE)


@contextlib.contextmanager
def _locked(state_dir: str, zone: dns.name.Name) -> Iterator[str]:
    folder = key_dir(state_dir, zone)
    try:
        os.makedirs(state_dir, exist_ok=True)
        _ensure_folder(folder)
        fd = os.open(os.path.join(folder, _LOCK), os.O_RDWR | os.O_CREAT, _FILE_MODE)
    except OSError as e:
        raise KeyFileError(folder, f"cannot open the key folder: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
    finally:
        os.close(fd)  # releases the lock


def _write_pair(folder: str, key: ZoneKey) -> None:
    base = os.path.join(folder, key.file)
    _write(base + ".private", render_private_file(key))
    _write(base + ".key", render_key_file(key))


def _refresh_pair(folder: str, key: ZoneKey) -> None:
    """Rewrite *key*'s files if the times in them are no longer *key*'s."""
    base = os.path.join(folder, key.file)
    for suffix, text in ((".private", render_private_file(key)), (".key", render_key_file(key))):
        if _read_text(base + suffix) != text:
            _write(base + suffix, text)


def _write(path: str, text: str) -> None:
    """Replace *path* with *text* atomically, mode 0600 from the first byte."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, _FILE_MODE)
        try:
            os.fchmod(fd, _FILE_MODE)
            view = memoryview(text.encode("utf-8"))
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise KeyFileError(path, f"cannot write: {e.strerror}") from None
    dir_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def with_times(key: ZoneKey, **times: int | None) -> ZoneKey:
    """*key* with some of its times changed (save with ``save_metadata``)."""
    return dataclasses.replace(key, **times)  # type: ignore[arg-type]


__all__ = [
    "METADATA",
    "fresh_key",
    "generate_key",
    "import_bind_keys",
    "key_dir",
    "key_file_base",
    "list_zones",
    "load_keys",
    "new_private_key",
    "save_metadata",
    "update_keys",
    "with_times",
]
