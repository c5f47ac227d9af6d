"""Context hub: an NGSI-LD broker with temporal history, subscriptions and MQTT/bulk telemetry ingest."""

from __future__ import annotations

from datetime import timedelta

from cityhub.domains.context.settings import ContextSettings
from cityhub.kernel.domain import Domain, PeriodicJob, Permission, Role, Tile
from cityhub.kernel.i18n import lazy_gettext as _l

MANIFEST = Domain(
    name="context",
    title=_l("Context hub"),
    depends_on=("identity",),
    api="cityhub.domains.context.api:router",
    pages="cityhub.domains.context.views:router",
    extra_routers=("cityhub.domains.context.ngsi:router",),
    error_renderers={"/ngsi-ld/": "cityhub.domains.context.errors:render_ngsi_error"},
    asgi_middleware=("cityhub.domains.context.ngsi.fastpath:AttributePatchFastPath",),
    cli=("cityhub.domains.context.cli:context_app",),
    models="cityhub.domains.context.models",
    demo_seeder="cityhub.domains.context.demo:seed",
    settings=ContextSettings,
    roles=(Role("iot_gateway", _l("IoT gateway")),),
    job_handlers={"context.notifications.deliver": "cityhub.domains.context.subscriptions.delivery:deliver"},
    periodic_jobs=(
        PeriodicJob(
            "context.notifications.sweep",
            timedelta(seconds=15),
            "cityhub.domains.context.subscriptions.delivery:sweep",
        ),
        PeriodicJob(
            "context.ingest.prune_receipts",
            timedelta(hours=1),
            "cityhub.domains.context.ingest.telemetry:prune",
        ),
    ),
    permissions=(
        Permission(
            "context.entities.read",
            _l("Read context entities and their history"),
            ("operator", "department_staff", "iot_gateway"),
        ),
        Permission(
            "context.entities.write",
            _l("Create, change and delete context entities"),
            ("operator", "iot_gateway"),
        ),
        Permission(
            "context.subscriptions.manage", _l("Create and change context subscriptions"), ("operator",)
        ),
        Permission("context.contexts.manage", _l("Add and delete stored JSON-LD contexts"), ("operator",)),
        Permission("context.tenants.manage", _l("Tie context tenants to org units"), ("operator",)),
    ),
    tiles=(
        Tile(
            "context",
            _l("Context hub"),
            "/console/context",
            "map",
            permission="context.entities.read",
            console=True,
            order=20,
        ),
    ),
)
