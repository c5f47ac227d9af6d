"""Exchange jobs: objections past their deadline are escalated, requests and applications reminded and
escalated (periodic); resources whose data comes from an
API or the context hub are polled on their update cycle — the periodic job queues one fetch job per resource
due, so a slow source delays only itself and each load has its own transaction."""

from __future__ import annotations

from cityhub.domains.exchange.service import corrections, deadlines, sources
from cityhub.domains.exchange.settings import ExchangeSettings
from cityhub.kernel.db import utcnow
from cityhub.kernel.jobs import JobContext
from cityhub.kernel.settings import domain_settings


def escalate_objections(ctx: JobContext) -> None:
    corrections.escalate_overdue(ctx.session, utcnow(), ctx.settings.timezone)


def chase_answers(ctx: JobContext) -> None:
    deadlines.chase(ctx.session, utcnow(), ctx.settings.timezone)


def poll_sources(ctx: JobContext) -> None:
    sources.queue_due(ctx.session, utcnow())


def fetch_source(ctx: JobContext) -> None:
    sources.poll_queued(ctx.session, dict(ctx.payload), domain_settings(ExchangeSettings))
