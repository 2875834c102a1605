"""What ``authd check`` asks git: a repository's top folder, whether a
reference names a commit, a file's bytes at that commit, and the files it tracks.

Owns: every ``git`` subprocess of the command line, and the root that
annotation paths are relative to (``GITHUB_WORKSPACE``, else the repository's
top, else none).  Invariant: a repository with no commit yet is told apart
from a reference that does not exist (``NoCommitYet`` versus ``GitError``).
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Sequence


class GitError(Exception):
    """git could not give the reference version: exit 2."""


class NoCommitYet(GitError):
    """The repository has no commit yet: there is nothing to compare with."""


def _git(args: Sequence[str], cwd: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except OSError as e:
        raise GitError(f"cannot run git: {e.strerror or e}") from None


@functools.lru_cache(maxsize=256)
def _top_of(folder: str) -> str | None:
    try:
        out = _git(["rev-parse", "--show-toplevel"], folder)
    except GitError:
        return None
    if out.returncode != 0:
        return None
    return os.path.realpath(out.stdout.decode().strip())


def top_or_none(path: str) -> str | None:
    """The top folder of the git repository holding *path*, or None."""
    return _top_of(os.path.dirname(os.path.realpath(path)))


def toplevel(path: str) -> str:
    top = top_or_none(path)
    if top is None:
        raise GitError(f"{path}: not in a git repository, so --against cannot compare")
    return top


def verify_ref(ref: str, path: str) -> str:
    """The repository top of *path*, after checking *ref* names a commit there.

    Raises ``NoCommitYet`` when the repository has no commit at all (its first
    commit is being made: nothing to compare with), ``GitError`` otherwise."""
    top = toplevel(path)
    return _verified(ref, top)


@functools.lru_cache(maxsize=64)
def _verified(ref: str, top: str) -> str:
    out = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], top)
    if out.returncode == 0:
        return top
    # ``git rev-list --all`` prints nothing in a repository with no commit.
    any_commit = _git(["rev-list", "-n", "1", "--all"], top)
    if any_commit.returncode == 0 and not any_commit.stdout.strip():
        raise NoCommitYet(f"--against {ref}: no commit yet in {top}, nothing to compare with")
    raise GitError(f"--against {ref}: not a commit in {top}")


def file_at(top: str, ref: str, path: str) -> bytes | None:
    """The bytes of *path* at *ref*, or None when it did not exist there."""
    rel = os.path.relpath(os.path.realpath(path), top).replace(os.sep, "/")
    if rel.startswith("../"):
        return None
    out = _git(["show", f"{ref}:{rel}"], top)
    return out.stdout if out.returncode == 0 else None


def tracked_files(top: str) -> list[str]:
    """Absolute paths of the files git knows in *top*: tracked, plus untracked
    ones not ignored (a file about to be added)."""
    out = _git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], top)
    if out.returncode != 0:
        return []
    names = out.stdout.decode(errors="surrogateescape").split("\0")
    return sorted({os.path.join(top, n) for n in names if n})


def annotation_root(path: str) -> str | None:
    """The folder GitHub resolves annotation paths against, for *path*:
    ``GITHUB_WORKSPACE`` when *path* is inside it, else its repository's top;
    None outside both (the path is then shown as given)."""
    real = os.path.realpath(path)
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if workspace:
        root = os.path.realpath(workspace)
        if not os.path.relpath(real, root).startswith(".."):
            return root
    return top_or_none(path)


def clear_caches() -> None:
    """Forget what git said (a long-lived caller, e.g. tests, changes repositories)."""
    _top_of.cache_clear()
    _verified.cache_clear()
