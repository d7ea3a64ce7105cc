"""Which Redis a test's stack runs on: one server, or a Cluster holding both sides.

Every way a test builds settings or a process environment goes through `store_env`, so a
stack that needs more than REDIS_URL (say, read models elsewhere) is set up in one place.
"""

from __future__ import annotations


def store_env(redis_url: str) -> dict[str, str]:
    """REDIS_URL of a stack on this store (its read models on it too)."""
    return {"REDIS_URL": redis_url}
