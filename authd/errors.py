"""The error hierarchy: one root, precise subclasses.

Config errors carry the key path (``zones[2].file``); zone errors carry the
file and line.  DNS outcomes (NXDOMAIN, REFUSED...) are never exceptions.
"""

from __future__ import annotations

import reprlib

from authd.limits import MAX_ECHO_CHARS

_SHOWN = reprlib.Repr()
_SHOWN.maxlevel = 2
_SHOWN.maxdict = _SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxset = 4
_SHOWN.maxstring = _SHOWN.maxother = MAX_ECHO_CHARS


def echo(value: object) -> str:
    """*value* (a config value, a bad token) for an error message, bounded:
    a YAML alias bomb or a 10 MB string shows its first items or characters."""
    text = _SHOWN.repr(value)
    return text if len(text) <= 4 * MAX_ECHO_CHARS else text[: 4 * MAX_ECHO_CHARS] + "..."


def echo_key(key: object) -> str:
    """A mapping key as it goes into a key path, cut at MAX_ECHO_CHARS."""
    text = str(key)
    return text if len(text) <= MAX_ECHO_CHARS else text[:MAX_ECHO_CHARS] + "..."


class AuthdError(Exception):
    """Root of every error authd raises on bad input."""


class ConfigError(AuthdError):
    """A configuration value is wrong; ``path`` names the key (``options.nsid``)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


class ZoneError(AuthdError):
    """A zone file cannot be loaded; ``file:line: reason``."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason
