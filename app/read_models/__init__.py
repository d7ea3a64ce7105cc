"""The storefront's live read models: one module each, declaring `DECLARED` (a LiveReadModel).

The package finds them itself — every module in it, in name order — so adding a read model
adds a module here and touches no list: the projector's registry, the hub's live views, the
topic grants, the fragment routes and the admin pages all derive from `DECLARED`
(app/web/live_models.py says how).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

from app.web.live_models import LiveReadModel

if TYPE_CHECKING:
    from app.services import Services


def _discovered() -> tuple[LiveReadModel[Services, Any], ...]:
    found: list[LiveReadModel[Services, Any]] = []
    for module in sorted(info.name for info in pkgutil.iter_modules(__path__)):
        declared = getattr(importlib.import_module(f"{__name__}.{module}"), "DECLARED", None)
        if not isinstance(declared, LiveReadModel):
            raise TypeError(f"{__name__}.{module} declares no DECLARED = LiveReadModel(...)")
        found.append(declared)
    return tuple(found)


DECLARED = _discovered()
"""Every live read model of the storefront."""
