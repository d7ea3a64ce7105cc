"""Which Redis a test's stack runs on: one server, or a Cluster (the read models on it too,
or on a server beside it).

The integration fixtures record here which read server, if any, goes with a cluster, so
every way a test builds settings or a process environment gets both.
"""

from __future__ import annotations

_READ_SERVER_OF: dict[str, str] = {}


def pair(cluster_url: str, read_url: str | None) -> None:
    """The read models of the cluster's stacks on `read_url` (None: on the cluster)."""
    if read_url is None:
        _READ_SERVER_OF.pop(cluster_url, None)
    else:
        _READ_SERVER_OF[cluster_url] = read_url


def store_env(redis_url: str) -> dict[str, str]:
    """REDIS_URL (and READ_REDIS_URL, for a cluster) of a stack on this store."""
    env = {"REDIS_URL": redis_url}
    if redis_url in _READ_SERVER_OF:
        env["READ_REDIS_URL"] = _READ_SERVER_OF[redis_url]
    return env
