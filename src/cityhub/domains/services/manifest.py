"""City services: the catalogue of departments and service items, browsable and searchable in zh and en, and
the transactions behind the items (department records, appointments, bills, ratings)."""

from __future__ import annotations

from datetime import timedelta

from cityhub.kernel.domain import Domain, PeriodicJob, Permission, Tile
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
        Permission(
            "services.desk.manage",
            _l("Act for one's department: load records, open slots, issue bills, follow up ratings"),
            ("department_staff", "operator"),
        ),
    ),
    job_handlers={"services.payment.settle": "cityhub.domains.services.jobs:settle_payment"},
    periodic_jobs=(
        PeriodicJob(
            "services.booking.reminders",
            timedelta(minutes=10),
            "cityhub.domains.services.jobs:remind_bookings",
        ),
    ),
    tiles=(
        Tile("services", _l("City services"), "/services", "grid", order=3),
        Tile(
            "services-desk",
            _l("Service desk"),
            "/console/services",
            "badge",
            permission="services.desk.manage",
            console=True,
            order=30,
        ),
    ),
)
