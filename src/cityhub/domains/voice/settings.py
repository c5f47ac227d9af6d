"""Settings of the voice domain (``CITYHUB_VOICE__*``): the 12345 deadlines in working days, duplicate
suggestions, the emergency alarm, the Open311 server and participation (supports, moderation)."""

from __future__ import annotations

from pydantic import Field

from cityhub.kernel.settings import DomainSettings, domain_config


class VoiceSettings(DomainSettings):
    model_config = domain_config("voice")

    consultation_days: int = Field(2, ge=1, le=60, description="Working days to answer a consultation.")
    help_days: int = Field(10, ge=1, le=60, description="Working days to handle a request for help.")
    suggestion_days: int = Field(10, ge=1, le=60, description="Working days to answer a suggestion.")
    complaint_days: int = Field(15, ge=1, le=60, description="Working days to handle a complaint.")
    report_days: int = Field(15, ge=1, le=60, description="Working days to handle a report (举报).")
    sign_days: int = Field(1, ge=1, le=10, description="Working days a department has to sign for a ticket.")
    warn_days: int = Field(
        1, ge=1, le=10, description="Working days before a deadline when the department is warned."
    )
    reopen_days: int = Field(
        5, ge=1, le=60, description="Working days to handle a ticket reopened after a callback."
    )
    max_extension_days: int = Field(
        15, ge=1, le=60, description="Most working days one extension request may add to a deadline."
    )

    duplicate_radius_m: int = Field(
        200, ge=10, le=5000, description="Open reports of the same category this close are offered at intake."
    )
    duplicate_window_days: int = Field(
        14, ge=1, le=365, description="How far back intake looks for reports of the same problem."
    )
    emergency_ack_minutes: int = Field(
        5,
        ge=1,
        le=120,
        description="Minutes for the on-duty staff to acknowledge an emergency before escalation.",
    )
    open311_jurisdiction: str = Field(
        "", max_length=200, description="Open311 jurisdiction_id; other ids answer 404 (empty: accept any)."
    )
    open311_ticket_type: str = Field(
        "help",
        pattern="^(consultation|help|suggestion|complaint|report)$",
        description="Ticket type of Open311 service requests (Open311 has no types).",
    )
    open311_published_types: list[str] = Field(
        ["help", "suggestion", "complaint"],
        description="Ticket types the public Open311 GET requests lists (reports 举报 stay confidential).",
    )

    proposal_support_threshold: int = Field(
        100, ge=1, le=1_000_000, description="Supports a proposal needs before the city must answer it."
    )
    proposal_support_days: int = Field(
        90, ge=1, le=365, description="Days a proposal collects supports after it is made."
    )
    supports_per_person: int = Field(
        10, ge=1, le=1000, description="Most proposals one person may support (withdrawing one frees it)."
    )
    flags_to_hide: int = Field(
        3,
        ge=1,
        le=100,
        description="Residents' flags that hide a comment or proposal until a moderator looks.",
    )

    def days_for(self, ticket_type: str) -> int:
        return int(getattr(self, f"{ticket_type}_days"))
