"""The operator's command line, run as a real process against a running pipeline:
`storefront dead-letters list|retry|discard` submit the console's admin commands and wait for
their outcome; `storefront rebuild-projection NAME --yes` rebuilds a shadow and swaps it in."""

from __future__ import annotations

import asyncio
import os
import sys

from app.config import Settings
from app.domain.products import CreateProduct, RenameProduct
from app.kernel import keys
from app.kernel.dead_letters import DeadLetters
from app.kernel.partitions import partition_of
from app.kernel.projection import group_name
from app.queries import catalog
from app.services import Services
from tests.integration.conftest import ADMIN, running_workers
from tests.support.polling import eventually
from tests.support.processes import ROOT
from tests.support.stores import store_env

SKU = "CLI-POISON"
CARD = "4242424242424242"


async def storefront(settings: Settings, *args: str) -> tuple[int, str]:
    """Run `python -m app.cli ARGS` (not blocking this loop: the workers run in it)."""
    env = {**os.environ, **store_env(settings.redis_url), "PARTITIONS": str(settings.partitions)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_dead_letters_and_a_rebuild_from_the_command_line(
    services: Services, settings: Settings
) -> None:
    await services.intake.submit(CreateProduct(SKU, "Mug", 500, 5), ADMIN)
    await services.write.xadd(
        keys.events(partition_of(SKU, settings.partitions)),
        {"t": "ProductRenamed", "a": f"product:{SKU}", "v": "2", "e": f'{{"card": "{CARD}"'},
    )
    await services.intake.submit(RenameProduct(SKU, "Renamed mug"), ADMIN)
    letters = DeadLetters(services.write, group_name("catalog"))
    async with running_workers(settings, ["commands", "projector"]):
        found = await eventually(letters.all, until=lambda f: len(f) == 2, timeout=30)
        poison, waiting = (item.id for item in found)

        code, out = await storefront(settings, "dead-letters", "list", "--consumer", "catalog")
        assert code == 0, out
        assert poison in out and waiting in out and f"product:{SKU}" in out
        assert f"waiting behind {poison}" in out and "•••" in out and CARD not in out

        code, out = await storefront(
            settings, "dead-letters", "retry", poison, "--consumer", "catalog"
        )
        assert code == 1 and "RetryDeadLetter" in out and "failed again" in out, out
        poison = (await letters.all())[0].id  # written anew, with one more attempt

        code, out = await storefront(
            settings, "dead-letters", "discard", poison, "--consumer", "catalog"
        )
        assert code == 2 and "--reason" in out, out  # argparse: the reason is required
        code, out = await storefront(
            settings,
            "dead-letters",
            "discard",
            poison,
            "--consumer",
            "catalog",
            "--reason",
            "garbage, written by hand",
        )
        assert code == 0 and "DiscardDeadLetter" in out and "succeeded" in out, out
        await eventually(
            lambda: catalog.get_product(services.read_side, SKU),
            until=lambda v: v is not None and v.name == "Renamed mug",
            message="the waiting rename applied",
        )
        code, out = await storefront(settings, "dead-letters", "list")
        assert (code, out.strip()) == (0, "No dead letters."), out

        code, out = await storefront(
            settings, "dead-letters", "retry", "--all", "--consumer", "fulfilment"
        )
        assert code == 0 and "RetryAllDeadLetters" in out, out  # nothing to retry: fine
        code, out = await storefront(settings, "dead-letters", "list", "--consumer", "nobody")
        assert code == 2 and "no consumer nobody" in out, out

        code, out = await storefront(settings, "rebuild-projection", "catalog", "--yes")
        assert code == 0, out
        assert "no differences" in out and "catalog: swapped in" in out, out
        assert "100%" in out  # the progress line
