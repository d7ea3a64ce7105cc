from __future__ import annotations

from app.config import Settings
from app.domain.products import CreateProduct
from app.queries import catalog
from app.services import Services
from tests.integration.conftest import ADMIN, running_workers
from tests.support.polling import eventually


async def test_a_created_product_reaches_the_catalog(
    services: Services, settings: Settings
) -> None:
    async with running_workers(settings, ["projector"]):
        reply = await services.intake.submit(CreateProduct("MUG-1", "Mug", 1200, 5), ADMIN)
        assert reply.status_code == 200
        product = await eventually(
            lambda: catalog.get_product(services.read_side, "MUG-1"), message="projected"
        )
        assert product is not None and product.available == 5
