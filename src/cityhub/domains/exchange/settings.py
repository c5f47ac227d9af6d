"""Settings of the exchange domain (``CITYHUB_EXCHANGE__*``): the owners' answer deadline, load limits, the
open-data catalogue's publisher."""

from __future__ import annotations

from pydantic import Field

from cityhub.kernel.settings import DomainSettings, domain_config


class ExchangeSettings(DomainSettings):
    model_config = domain_config("exchange")

    answer_working_days: int = Field(
        5,
        ge=1,
        le=60,
        description="Working days an owner has to answer a request for a conditional resource.",
    )
    correction_working_days: int = Field(
        5, ge=1, le=60, description="Working days an owner has to accept or reject a correction of its data."
    )
    max_upload_mb: int = Field(200, ge=1, le=4096, description="Largest data file a load accepts (MiB).")
    max_report_errors: int = Field(
        200, ge=1, le=10_000, description="Errors a validation report lists (the count is always complete)."
    )
    catalogue_publisher: str = Field(
        "cityhub",
        min_length=1,
        max_length=200,
        description="Publisher of the open-data catalogue's DCAT-AP export (the platform operator's name).",
    )
    open_min_group: int = Field(
        5,
        ge=2,
        le=1_000_000,
        description="Fewest rows a group of an open-data aggregate must have to be shown (a resource's open "
        "rules may set its own).",
    )
    source_timeout_seconds: float = Field(
        30,
        ge=1,
        le=600,
        description="Longest a poll of an API-backed resource waits for the whole answer, in seconds "
        "(connecting: at most 5); the answer is limited to max_upload_mb.",
    )
