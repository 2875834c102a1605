"""The error hierarchy: one root, precise subclasses.

Config errors carry the key path (``zones[2].file``); zone errors carry the
file and line.  DNS outcomes (NXDOMAIN, REFUSED...) are never exceptions.
"""

from __future__ import annotations


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
