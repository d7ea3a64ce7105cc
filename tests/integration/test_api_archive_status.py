"""The archiver as the Procfile runs it (its own process, beside every other worker kind):
the development seed's events are archived and trimmed, and the status page and
`GET /api/admin/status` show the streams, the archive and Redis memory."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api_client import ALL_WORKERS, Storefront, create_product, running_storefront
from tests.support.polling import eventually


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(
        tmp_path_factory.mktemp("archive-status"),
        workers=ALL_WORKERS,
        ARCHIVE_SEGMENT_SECONDS="0.2",
        EVENT_RETENTION_SECONDS="1",
    ) as made:
        yield made


async def test_the_status_shows_streams_archive_and_memory(storefront: Storefront) -> None:
    async with storefront.client("admin") as admin:
        await create_product(admin, stock=3)

        async def storage() -> dict[str, Any]:
            response = await admin.get("/api/admin/status")
            assert response.status_code == 200, response.text
            found: dict[str, Any] = response.json()["storage"]
            return found

        def trimmed(found: dict[str, Any]) -> bool:
            rows = found["partitions"]
            return sum(p["archived_entries"] for p in rows) > 0 and all(
                p["stream_length"] <= 1 and p["archive_lag_entries"] == 0 for p in rows
            )

        found = await eventually(storage, until=trimmed, timeout=60, message="archived, trimmed")
        assert [p["partition"] for p in found["partitions"]] == [0, 1, 2, 3]
        for row in found["partitions"]:
            assert row["archived_segments"] >= (1 if row["archived_entries"] else 0)
            assert row["archive_lag_seconds"] is None
        (master,) = found["redis_memory"]
        assert master["used"] > 0 and master["max"] >= 0
        page = await admin.get("/admin/status")
        assert page.status_code == 200
        assert "Event streams and archive" in page.text
        assert 'data-stream-partition="3"' in page.text
        assert "Redis memory" in page.text

        readiness = (await admin.get("/readyz")).json()
        assert readiness["checks"]["archiver"] == "ok"


def test_the_archive_the_worker_wrote_verifies(storefront: Storefront) -> None:
    archive = storefront.group.log_dir / "archive"
    verified = subprocess.run(
        [sys.executable, "-m", "app.cli", "archive", "verify"],
        env={"REDIS_URL": storefront.redis.url, "ARCHIVE_URL": str(archive), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verified: every segment intact and contiguous" in verified.stdout
    assert re.search(r"partition \d: [1-9][0-9]* segments", verified.stdout), verified.stdout
