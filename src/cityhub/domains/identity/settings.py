"""Settings of the identity domain (``CITYHUB_IDENTITY__*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

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

    smtp_host: str | None = Field(
        None,
        description="SMTP server that sends notification emails. Unset: email is off (email jobs log and "
        "finish; the inbox and webhooks still work).",
    )
    smtp_port: int = Field(25, ge=1, le=65535, description="Port of the SMTP server (587 with STARTTLS).")
    smtp_from: str = Field(
        "cityhub@localhost",
        max_length=200,
        description="From address of notification emails; may carry a name: "
        "滨江市民服务 <noreply@example.cn>.",
    )
    smtp_starttls: bool = Field(
        False, description="Upgrade the SMTP connection with STARTTLS (the server's certificate is verified)."
    )
    smtp_username: str | None = Field(None, description="SMTP login user; unset: no login.")
    smtp_password: SecretStr | None = Field(
        None, description="SMTP login password, used with CITYHUB_IDENTITY__SMTP_USERNAME."
    )
    smtp_timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="Timeout of each SMTP network step; a slow server fails the attempt."
    )
    webhook_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Timeout of each notification webhook POST; a slow receiver fails the attempt, which is "
        "retried with backoff.",
    )

    def check_environment(self, settings: Settings) -> None:
        if not settings.relaxed and self.id_number_key == DEMO_ID_NUMBER_KEY:
            raise ValueError("CITYHUB_IDENTITY__ID_NUMBER_KEY must be set to a secret value in production")
