"""Celery's empty task, the same-run baseline of tests/bench/flash_sale.py.

The worker is started as `python -m celery -A tests.bench.celery_noop worker`, so the Celery
app is this module's `app` (Celery's convention); broker and result backend come from
CELERY_BROKER_URL (the Redis URL, results in the same database).
"""

from __future__ import annotations

import os

from celery import Celery

app = Celery("bench")
app.conf.update(
    broker_url=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
    result_backend=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop() -> None:
    """Nothing: the round trip alone (publish, deliver, run, store the result, fetch it)."""
