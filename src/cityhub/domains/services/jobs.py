"""Queued jobs of the services domain."""

from __future__ import annotations

from cityhub.domains.services.service import appointments, bills
from cityhub.kernel.jobs import JobContext
from cityhub.kernel.payments import payment_provider


def settle_payment(ctx: JobContext) -> None:
    """A signed callback of the sandbox payment provider, delivered through the queue (bills.SETTLE_JOB)."""
    provider = payment_provider(ctx.settings)
    bills.settle_sandbox_callback(
        ctx.session, provider, ctx.payload["body"].encode(), ctx.payload["signature"]
    )


def remind_bookings(ctx: JobContext) -> None:
    """Periodic: remind residents of tomorrow's appointments (``appointments.REMIND_AHEAD``)."""
    appointments.send_reminders(ctx.session, ctx.settings.timezone)
