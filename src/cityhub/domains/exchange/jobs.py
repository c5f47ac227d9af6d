"""Exchange jobs: objections past their deadline are escalated (periodic)."""

from __future__ import annotations

from cityhub.domains.exchange.service import corrections
from cityhub.kernel.db import utcnow
from cityhub.kernel.jobs import JobContext


def escalate_objections(ctx: JobContext) -> None:
    corrections.escalate_overdue(ctx.session, utcnow(), ctx.settings.timezone)
