"""Logging: one line per record, with the process kind. Never log a command's body."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str, kind: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s {kind} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
