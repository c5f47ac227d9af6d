"""Citizen voice: the 12345 ticket workflow (intake, dispatch, deadlines in working days, callbacks) and
participation (proposals, comments, surveys, project ratings and results)."""

from __future__ import annotations

from datetime import timedelta

from cityhub.domains.voice.settings import VoiceSettings
from cityhub.kernel.domain import Domain, PeriodicJob, Permission, Role, Tile
from cityhub.kernel.i18n import lazy_gettext as _l

MANIFEST = Domain(
    name="voice",
    title=_l("Citizen voice"),
    depends_on=("identity",),
    api="cityhub.domains.voice.api:router",
    pages="cityhub.domains.voice.views:router",
    cli=("cityhub.domains.voice.cli:voice_app",),
    models="cityhub.domains.voice.models",
    extra_routers=("cityhub.domains.voice.open311:router",),
    error_renderers={"/open311/": "cityhub.domains.voice.open311:render_error"},
    demo_seeder="cityhub.domains.voice.demo:seed",
    settings=VoiceSettings,
    permissions=(
        Permission(
            "voice.tickets.handle",
            _l("Sign, handle and answer the tickets dispatched to one's department"),
            ("department_staff", "department_head", "operator"),
        ),
        Permission(
            "voice.tickets.escalation",
            _l("Receive the department's overdue tickets and unacknowledged emergencies"),
            ("department_head", "operator"),
        ),
        Permission(
            "voice.open311.submit",
            _l("Submit service requests through Open311 (for API keys of partner apps)"),
            ("operator",),
        ),
        Permission(
            "voice.tickets.transfer",
            _l("Hand over tickets in batches from another platform (for API keys of upstream hotlines)"),
            ("operator",),
        ),
        Permission(
            "voice.assessment.view",
            _l("See the assessment figures of one's department (the operator: of all)"),
            ("department_staff", "department_head", "operator"),
        ),
        Permission(
            "voice.projects.manage",
            _l("List the city projects residents rate and track their milestones"),
            ("operator",),
        ),
        Permission(
            "voice.proposals.answer",
            _l("Give the city's official answer to residents' proposals"),
            ("department_head", "operator"),
        ),
        Permission(
            "voice.participation.moderate",
            _l("Review flagged proposals and comments, hide or keep them"),
            ("operator",),
        ),
        Permission(
            "voice.surveys.manage", _l("Publish surveys and read their free-text answers"), ("operator",)
        ),
        Permission("voice.knowledge.manage", _l("Write the hotline's knowledge base"), ("operator",)),
        Permission(
            "voice.tickets.dispatch",
            _l("Type in calls, dispatch, merge tickets and decide extensions (the hotline operator)"),
            ("operator",),
        ),
        Permission("voice.categories.manage", _l("Edit the ticket classification tree"), ("operator",)),
    ),
    tiles=(
        Tile("voice", _l("Report a problem"), "/voice", "message", order=5),
        Tile("voice-participate", _l("Have your say"), "/voice/participate", "users", order=6),
        Tile(
            "voice-console",
            _l("Ticket queue"),
            "/console/voice",
            "message",
            permission="voice.tickets.handle",
            console=True,
            order=40,
        ),
        Tile(
            "voice-emergencies",
            _l("Emergency board"),
            "/console/voice/emergencies",
            "bell",
            permission="voice.tickets.handle",
            console=True,
            order=41,
        ),
        Tile(
            "voice-assessment",
            _l("Assessment"),
            "/console/voice/assessment",
            "chart",
            permission="voice.assessment.view",
            console=True,
            order=42,
        ),
        Tile(
            "voice-moderation",
            _l("Moderation"),
            "/console/voice/moderation",
            "shield",
            permission="voice.participation.moderate",
            console=True,
            order=43,
        ),
    ),
    roles=(Role("department_head", _l("Department head")),),
    periodic_jobs=(
        PeriodicJob(
            "voice.deadlines.watch", timedelta(minutes=10), "cityhub.domains.voice.jobs:watch_deadlines_job"
        ),
        PeriodicJob(
            "voice.emergencies.watch", timedelta(minutes=1), "cityhub.domains.voice.jobs:watch_alarms_job"
        ),
    ),
)
