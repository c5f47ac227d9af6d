"""Periodic jobs of the voice domain."""

from __future__ import annotations

from cityhub.domains.voice.service.emergencies import watch_alarms
from cityhub.domains.voice.service.tickets import Clock, watch_deadlines
from cityhub.domains.voice.settings import VoiceSettings
from cityhub.kernel.jobs import JobContext
from cityhub.kernel.settings import domain_settings


def watch_deadlines_job(ctx: JobContext) -> None:
    """Every 10 minutes: warnings before a deadline, escalation after it."""
    watch_deadlines(ctx.session, Clock(domain_settings(VoiceSettings), ctx.settings.timezone))


def watch_alarms_job(ctx: JobContext) -> None:
    """Every minute: escalate emergencies nobody on duty acknowledged in time."""
    watch_alarms(ctx.session, Clock(domain_settings(VoiceSettings), ctx.settings.timezone))
