"""``authd views``: inspect view selection (registered by ``authd.cli``)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``views`` subcommand to *sub* (nothing yet)."""
