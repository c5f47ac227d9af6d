"""Settings of the voice domain (``CITYHUB_VOICE__*``): the 12345 deadlines, in working days."""

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

    def days_for(self, ticket_type: str) -> int:
        return int(getattr(self, f"{ticket_type}_days"))
