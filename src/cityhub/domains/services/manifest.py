"""City services: the catalogue of departments and service items, browsable and searchable in zh and en."""

from __future__ import annotations

from cityhub.kernel.domain import Domain, Permission, Tile
from cityhub.kernel.i18n import lazy_gettext as _l

MANIFEST = Domain(
    name="services",
    title=_l("City services"),
    depends_on=("identity",),
    api="cityhub.domains.services.api:router",
    pages="cityhub.domains.services.views:router",
    cli=("cityhub.domains.services.cli:services_app",),
    models="cityhub.domains.services.models",
    demo_seeder="cityhub.domains.services.demo:seed",
    permissions=(
        Permission(
            "services.catalogue.manage",
            _l("Edit and import the service catalogue (over the whole city)"),
            ("operator",),
        ),
    ),
    tiles=(Tile("services", _l("City services"), "/services", "grid", order=3),),
)
