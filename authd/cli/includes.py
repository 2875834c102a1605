"""Which zone files ``$INCLUDE`` a given file, for ``authd check FILE``.

An included file is no zone on its own: it has no SOA and takes its origin
from the file that includes it.  So ``authd check hosts.inc`` (what the
pre-commit hook runs when a commit changes only ``hosts.inc``) checks the
zone files that include it, directly or through other includes.

Owns: finding the candidate zone files (the files git knows in the
repository, else the included file's folder and the one above) and reading
their ``$INCLUDE`` lines.  Invariant: only directive lines are read here (a
cheap text scan, no parse); the zones found are then parsed and checked as
any other.  Paths in ``$INCLUDE`` are relative to the including file's folder,
as ``authd.zonefile`` reads them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from authd.cli import repo
from authd.limits import MAX_INCLUDE_DEPTH  # deeper chains the parser refuses anyway


def included_paths(path: str) -> list[str]:
    """The files *path* names in its ``$INCLUDE`` lines, as real paths."""
    found: list[str] = []
    folder = os.path.dirname(os.path.realpath(path))
    if not os.path.isfile(path):
        return found  # a FIFO or device would block or never end (the parser refuses them)
    try:
        with open(path, "rb") as f:
            for raw in f:
                if not raw[:1] == b"$" or not raw[:8].upper() == b"$INCLUDE":
                    continue
                words = raw.decode("utf-8", "replace").split(";", 1)[0].split()
                if len(words) < 2 or words[0].upper() != "$INCLUDE":
                    continue
                name = words[1].strip('"')
                found.append(os.path.realpath(os.path.join(folder, name)))
    except OSError:
        pass
    return found


def candidates(
    path: str, is_zone_file: Callable[[str], bool], given: Iterable[str] = ()
) -> list[str]:
    """The zone files that could include *path*: those of its git repository,
    else those in its folder and the folder above; and the files *given* with
    it (a zone file named otherwise, changed in the same commit)."""
    top = repo.top_or_none(path)
    if top is not None:
        files: Iterable[str] = repo.tracked_files(top)
    else:
        here = os.path.dirname(os.path.realpath(path))
        folders = {here, os.path.dirname(here)}
        files = [
            os.path.join(d, n) for d in sorted(folders) if os.path.isdir(d) for n in os.listdir(d)
        ]
    found = [f for f in files if is_zone_file(os.path.basename(f)) and os.path.isfile(f)]
    return found + [f for f in given if f not in found and os.path.isfile(f)]


def closure(zone: str) -> set[str]:
    """Every file *zone* includes, directly or not (real paths; *zone* too)."""
    seen = {zone}
    frontier = [zone]
    for _ in range(MAX_INCLUDE_DEPTH):
        nxt = []
        for f in frontier:
            for inc in included_paths(f):
                if inc not in seen:
                    seen.add(inc)
                    nxt.append(inc)
        if not nxt:
            break
        frontier = nxt
    return seen


def includers(
    path: str, is_zone_file: Callable[[str], bool], given: Iterable[str] = ()
) -> list[str]:
    """The zone files that include *path*, directly or through other includes
    (real paths, sorted); empty when none does.  A candidate that another
    candidate includes is no zone of its own (``db.common`` included by every
    zone): the zones at the top of the chain are the ones checked."""
    target = os.path.realpath(path)
    zones = sorted({os.path.realpath(z) for z in candidates(path, is_zone_file, given)} - {target})
    reach = {z: closure(z) for z in zones}
    included = {f for z, files in reach.items() for f in files if f != z}
    return [z for z in zones if z not in included and target in reach[z]]
