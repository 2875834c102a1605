"""Living under a service manager: readiness, the pidfile and the privilege drop.

Owns: ``sd_notify`` (the systemd notification protocol, written by hand: one
datagram of ``KEY=VALUE`` lines to the unix socket named by ``NOTIFY_SOCKET``,
a leading ``@`` naming an abstract socket), the pidfile (written atomically:
a temporary file beside it, then a rename, so a reader never sees half a pid;
removed at a clean exit only while it still holds our pid), and dropping root
to ``options.user`` once every socket is bound.  Invariants: without
``NOTIFY_SOCKET`` notifying does nothing; a failed notification is logged,
never fatal (the service manager's timeout reports it); after
``drop_privileges`` returns, the process cannot regain root (real, effective
and saved ids all changed, supplementary groups replaced).
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import stat

from twisted.logger import Logger

from authd.errors import AuthdError

log = Logger(namespace="authd")


class PrivilegeError(AuthdError):
    """``options.user`` cannot be switched to."""


def sd_notify(state: str, environ: dict[str, str] | None = None) -> bool:
    """Send *state* (``READY=1``, ``STOPPING=1``...) to the service manager; whether sent."""
    env = os.environ if environ is None else environ
    path = env.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(address)
            s.sendall(state.encode())
    except OSError as e:
        log.warn("sd_notify {state!r} to {path}: {error}", state=state, path=path, error=e)
        return False
    return True


def write_pidfile(path: str, owner: tuple[int, int] | None = None) -> None:
    """Write our pid to *path* atomically (and give it to *owner* (uid, gid) if set)."""
    folder = os.path.dirname(path) or "."
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if owner is not None:
            os.chown(tmp, *owner)
        os.rename(tmp, path)
    except OSError:
        os.unlink(tmp)
        raise


def remove_pidfile(path: str) -> None:
    """Remove *path* if it still holds our pid (another authd may have taken it over)."""
    try:
        with open(path) as f:
            if f.read().strip() != str(os.getpid()):
                return
        os.unlink(path)
    except OSError as e:
        log.warn("pidfile {path} not removed: {error}", path=path, error=e.strerror or e)


def lookup_user(name: str) -> tuple[int, int]:
    """(uid, gid) of the user *name* (a name or a number)."""
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, OverflowError):
        raise PrivilegeError(f"options.user: no such user: {name!r}") from None
    return entry.pw_uid, entry.pw_gid


def drop_privileges(name: str) -> tuple[int, int]:
    """Become the user *name* for good; (uid, gid).  Already being that user is fine."""
    uid, gid = lookup_user(name)
    if os.geteuid() == uid and os.getuid() == uid:
        return uid, gid
    if os.geteuid() != 0:
        raise PrivilegeError(
            f"options.user: cannot switch to {name!r} (uid {uid}): authd runs as uid "
            f"{os.geteuid()}, not root"
        )
    user = pwd.getpwuid(uid).pw_name
    try:
        os.initgroups(user, gid)
    except OSError:
        os.setgroups([gid])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    return uid, gid


def writable_by(path: str, uid: int, gid: int) -> bool:
    """Whether *uid* (primary group *gid* and its supplementary groups) may create files in *path*.

    Decided from the mode bits, as the kernel would for that user (root: always).
    """
    if uid == 0:
        return True
    try:
        st = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        return False
    want = stat.S_IWUSR | stat.S_IXUSR
    if st.st_uid == uid:
        return st.st_mode & want == want
    groups = {gid}
    try:
        user = pwd.getpwuid(uid).pw_name
        groups |= {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    except KeyError:
        pass
    if st.st_gid in groups:
        return st.st_mode & (want >> 3) == want >> 3
    return st.st_mode & (want >> 6) == want >> 6
