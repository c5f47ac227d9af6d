"""Government data sharing and open data: departments register their data resources in a catalogue, load
their data as versions, and others read it through grants; open resources are published to everyone."""

from __future__ import annotations

from datetime import timedelta

from cityhub.domains.exchange.settings import ExchangeSettings
from cityhub.kernel.domain import Domain, PeriodicJob, Permission, Tile
from cityhub.kernel.i18n import lazy_gettext as _l

MANIFEST = Domain(
    name="exchange",
    title=_l("Data exchange"),
    depends_on=("identity", "context"),  # context: NGSI-LD entity types as resources' sources
    api="cityhub.domains.exchange.api:router",
    pages="cityhub.domains.exchange.views:router",
    extra_routers=(
        "cityhub.domains.exchange.dcat_routes:router",  # DCAT-AP at /catalog.* and /data/*
        "cityhub.domains.exchange.ckan:router",  # the CKAN Action API at /api/3/action/* and /api/action/*
    ),
    error_renderers={
        "/api/3/action/": "cityhub.domains.exchange.ckan:render_error",
        "/api/action/": "cityhub.domains.exchange.ckan:render_error",
    },
    cli=("cityhub.domains.exchange.cli:exchange_app",),
    models="cityhub.domains.exchange.models",
    demo_seeder="cityhub.domains.exchange.demo:seed",
    settings=ExchangeSettings,
    job_handlers={"exchange.sources.fetch": "cityhub.domains.exchange.jobs:fetch_source"},
    periodic_jobs=(
        PeriodicJob(
            "exchange.objections.escalate",
            timedelta(minutes=15),
            "cityhub.domains.exchange.jobs:escalate_objections",
        ),
        PeriodicJob(
            "exchange.answers.chase",  # requests and applications: a reminder a day before, then escalation
            timedelta(minutes=15),
            "cityhub.domains.exchange.jobs:chase_answers",
        ),
        PeriodicJob(
            "exchange.sources.poll",  # queues an exchange.sources.fetch for each resource due for a poll
            timedelta(minutes=1),
            "cityhub.domains.exchange.jobs:poll_sources",
        ),
    ),
    permissions=(
        Permission(
            "exchange.resources.manage",
            _l("Register one's department's data resources, load their data, answer requests, revoke grants"),
            ("department_staff", "department_head"),
        ),
        Permission(
            "exchange.catalogue.administer",
            _l("Act for every department in the data exchange (the operator, over the whole city)"),
            ("operator",),
        ),
        Permission(
            "exchange.data.request",
            _l("Ask for another department's data on behalf of one's department"),
            ("department_staff", "department_head"),
        ),
        Permission(
            "exchange.data.read",
            _l("Read shared data through one's department's grants (for consumer systems' API keys)"),
            ("department_staff", "department_head"),
        ),
    ),
    tiles=(
        Tile("exchange-open-data", _l("Open data"), "/data", "chart", order=30),
        # Both exchange roles ask for data; the console shows its owner's part to those who manage resources.
        Tile(
            "exchange-console",
            _l("Data exchange"),
            "/console/exchange",
            "refresh",
            permission="exchange.data.request",
            console=True,
            order=45,
        ),
        # The operator's way to the city's figures (department staff reach theirs from the console).
        Tile(
            "exchange-insight",
            _l("Data exchange figures"),
            "/console/exchange/insight",
            "chart",
            permission="exchange.catalogue.administer",
            console=True,
            order=46,
        ),
    ),
)
