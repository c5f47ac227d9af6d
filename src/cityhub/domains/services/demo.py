"""The demo city's service catalogue: departments, categories, life events and items from
``demo_catalogue.json``, loaded through the same import as `cityhub services import`."""

from __future__ import annotations

import json
from pathlib import Path

from cityhub.domains.services.schemas import CatalogueIn
from cityhub.domains.services.service import catalogue
from cityhub.kernel.demo import DemoContext

CATALOGUE_FILE = Path(__file__).with_name("demo_catalogue.json")


def demo_catalogue() -> CatalogueIn:
    return CatalogueIn.model_validate(json.loads(CATALOGUE_FILE.read_text(encoding="utf-8")))


def seed(ctx: DemoContext) -> None:
    """Seed the catalogue (``Domain.demo_seeder``); the same at every size."""
    catalogue.import_catalogue(ctx.session, "system:demo", demo_catalogue())
