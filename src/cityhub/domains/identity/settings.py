"""Settings of the identity domain (``CITYHUB_IDENTITY__*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from cityhub.kernel.settings import DomainSettings, Settings, domain_config

DEMO_ID_NUMBER_KEY = "cityhub-demo-id-number-key"


class IdentitySettings(DomainSettings):
    model_config = domain_config("identity")

    access_token_minutes: int = Field(15, ge=1, le=1440, description="Lifetime of an API access token (JWT).")
    refresh_token_days: int = Field(14, ge=1, le=365, description="Lifetime of a refresh token.")
    max_failed_logins: int = Field(
        5, ge=1, le=100, description="Failed logins in a row before the account locks."
    )
    lockout_minutes: int = Field(15, ge=1, le=1440, description="How long a locked account stays locked.")
    principal_cache_seconds: float = Field(
        2.0,
        ge=0,
        le=60,
        description="How long a process may reuse who a caller is and which roles they hold without asking "
        "the database. Changes made in the same process apply at once, others after at most this long; "
        "0 turns the cache off.",
    )
    card_token_seconds: int = Field(
        120,
        ge=10,
        le=3600,
        description="Lifetime of a citizen-card QR token; short, so a photo of it soon expires.",
    )
    card_key_file: Path | None = Field(
        None,
        description="PEM file with the Ed25519 private key that signs citizen cards. Default: "
        "<var_dir>/keys/card-ed25519.pem, created on first use outside production.",
    )
    id_number_key: str = Field(
        DEMO_ID_NUMBER_KEY,
        description="Secret key of the HMAC that stores national id numbers (one real-name identity = one "
        "hash). Required outside demo/dev/test; never change it once people are registered.",
    )

    def check_environment(self, settings: Settings) -> None:
        if not settings.relaxed and self.id_number_key == DEMO_ID_NUMBER_KEY:
            raise ValueError("CITYHUB_IDENTITY__ID_NUMBER_KEY must be set to a secret value in production")
