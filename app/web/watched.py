"""The consumer groups the status page watches (declared in app/consumers.py)."""

from __future__ import annotations

from app.consumers import watched_consumers

__all__ = ["watched_consumers"]
