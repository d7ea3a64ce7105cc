"""Operators act on dead letters through the command API: authorized, idempotent, logged.

A poison event parks its product in the catalog projection; later events of that product
wait behind it while the rest of the catalog flows. DiscardDeadLetter (an admin command)
drops the poison, journals why, and lets the waiting events through.
"""

from __future__ import annotations

import msgspec
import pytest

from app.config import Settings
from app.domain.products import CreateProduct, RenameProduct
from app.kernel import keys
from app.kernel.dead_letter_commands import DiscardDeadLetter, RetryDeadLetter
from app.kernel.dead_letters import DeadLetters, discarded
from app.kernel.errors import Forbidden
from app.kernel.partitions import partition_of
from app.kernel.projection import group_name
from app.queries import catalog
from app.services import Services
from tests.integration.conftest import ADMIN, ALICE, running_workers
from tests.support.kernel_catalog import final_status
from tests.support.polling import eventually

SKU = "MUG-POISON"
OTHER = "MUG-FINE"
GROUP = group_name("catalog")


async def _poison(services: Services) -> None:
    """An event the catalog cannot decode, claiming to be the product's second."""
    partition = partition_of(SKU, services.settings.partitions)
    await services.write.xadd(
        keys.events(partition),
        {"t": "ProductRenamed", "a": f"product:{SKU}", "v": "2", "e": "{not json"},
    )


async def test_a_poison_parks_its_product_and_a_discard_lets_the_rest_through(
    services: Services, settings: Settings
) -> None:
    for sku in (SKU, OTHER):
        assert (await services.intake.submit(CreateProduct(sku, "Mug", 500, 5), ADMIN)).status_code
    async with running_workers(settings, ["commands", "projector"]):
        await eventually(lambda: catalog.get_product(services.read_side, SKU), message="projected")
        await _poison(services)
        renamed = await services.intake.submit(RenameProduct(SKU, "Renamed mug"), ADMIN)
        other = await services.intake.submit(RenameProduct(OTHER, "Still flowing"), ADMIN)
        assert renamed.status_code == other.status_code == 200

        letters = DeadLetters(services.write, GROUP)
        found = await eventually(
            letters.all, until=lambda f: len(f) == 2, timeout=30, message="parked"
        )
        view = await eventually(
            lambda: catalog.get_product(services.read_side, OTHER),
            until=lambda v: v is not None and v.name == "Still flowing",
            message="other products flow on",
        )
        assert view is not None
        parked = await catalog.get_product(services.read_side, SKU)
        assert parked is not None and parked.name == "Mug"  # held back, never wrong
        poison, waiting = found
        assert poison.letter.key == f"product:{SKU}" and waiting.letter.behind == poison.id

        with pytest.raises(Forbidden):
            await services.intake.submit(RetryDeadLetter("catalog", poison.id), ALICE)
        retried = await services.intake.submit(RetryDeadLetter("catalog", poison.id), ADMIN)
        assert retried.status_code == 202
        status = await final_status(services, retried.command_id, within=30)
        assert status.status == "failed" and status.error is not None
        assert "failed again" in status.error.detail  # garbage stays garbage

        poison = (await letters.all())[0]
        discard = DiscardDeadLetter("catalog", poison.id, "corrupt event, written by hand")
        reply = await services.intake.submit(discard, ADMIN, idempotency_key="discard-1")
        again = await services.intake.submit(discard, ADMIN, idempotency_key="discard-1")
        assert again == reply
        status = await final_status(services, reply.command_id, within=30)
        assert status.status == "succeeded", status
        await eventually(
            lambda: catalog.get_product(services.read_side, SKU),
            until=lambda v: v is not None and v.name == "Renamed mug",
            message="the waiting rename applied",
        )
    assert await letters.all() == []
    journal = await services.write.xrange(discarded(GROUP))
    record = msgspec.json.decode(journal[0][1]["e"])
    assert (record["by"], record["reason"]) == ("admin", "corrupt event, written by hand")
