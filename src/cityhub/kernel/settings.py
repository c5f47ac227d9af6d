"""One settings object for the whole platform, read from ``CITYHUB_*`` environment variables.

Nested sections use ``__``: ``CITYHUB_IDENTITY__ACCESS_TOKEN_MINUTES=15``.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cityhub.kernel.outbound import DEFAULT_BLOCKED_NETWORKS

DEFAULT_SECRET = "change-me-demo-secret-never-use-in-production"  # noqa: S105 - refused outside demo/dev, see _refuse_default_secret


class Environment(StrEnum):
    DEMO = "demo"
    DEV = "dev"
    TEST = "test"
    PRODUCTION = "production"


class JobSettings(BaseModel):
    embedded_worker: bool | None = Field(
        None,
        description="Run jobs and event deliveries inside the app process. "
        "Default: on for SQLite, off for PostgreSQL (run `cityhub worker`).",
    )
    poll_seconds: float = Field(1.0, gt=0, le=60, description="How often an idle worker looks for due jobs.")
    max_attempts: int = Field(8, ge=1, le=100, description="Attempts before a job is marked failed.")


class RateLimitSettings(BaseModel):
    storage_uri: str = Field(
        "memory://",
        description="Where rate-limit counters live: memory:// (per process) or redis://host:port "
        "(shared by all processes).",
    )
    login: str = Field("10/minute", description="Login attempts allowed per client address.")
    public: str = Field(
        "120/minute", description="Anonymous requests to public endpoints per client address."
    )


class PaymentSettings(BaseModel):
    sandbox: bool | None = Field(
        None,
        description="Take payments through the built-in sandbox provider (no money moves; its callbacks are "
        "signed with a key derived from the secret key). Default: on outside production.",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CITYHUB_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    env: Environment = Field(Environment.DEMO, description="demo, dev, test or production.")
    secret_key: str = Field(
        DEFAULT_SECRET,
        min_length=16,
        description="Signs sessions, CSRF tokens and JWTs. Must be set (>=32 chars) outside demo/dev/test.",
    )
    var_dir: Path = Field(Path("var"), description="Directory for the SQLite file, keys and uploads.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@127.0.0.1/cityhub. "
        "Default: SQLite file <var_dir>/cityhub.db.",
    )
    database_pool_size: int = Field(10, ge=1, le=200, description="Connections per app process (PostgreSQL).")
    database_pre_ping: bool = Field(
        False,
        description="Test each pooled connection before use (one more round trip per request). Turn on when "
        "connections die silently (firewalls, PgBouncer restarts); off, a dead connection fails one request.",
    )
    outbound_blocked_networks: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED_NETWORKS),
        description="Networks the platform never calls when a user names the address (notification "
        "endpoints, @context URLs), as a JSON list of CIDRs. Default: link-local (cloud metadata) and the "
        'unspecified address; add private ranges, e.g. ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", '
        '"127.0.0.0/8", "::1/128", "fc00::/7"], when receivers are never internal.',
    )
    opentelemetry: bool = Field(
        False,
        description="Let FastAPI report traces, metrics and logs to the OpenTelemetry providers configured "
        "in the process. Off by default: even with no provider configured, the check costs every request "
        "measurable CPU.",
    )
    default_locale: str = Field("zh_CN", description="Locale for visitors who chose none (zh_CN or en).")
    timezone: str = Field("Asia/Shanghai", description="Zone in which times are shown by default.")
    base_url: str = Field("http://127.0.0.1:8000", description="Public address of this deployment.")
    log_level: str = Field("info", description="Log level of the app and worker.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For is trusted (the "
        "client address drives rate limits and audit). '*' trusts everyone: only behind a proxy that "
        "overwrites it.",
    )
    session_hours: int = Field(12, ge=1, le=720, description="Lifetime of a signed-cookie page session.")
    use_postgis: bool = Field(
        True,
        description="On PostgreSQL with PostGIS installed, the market's nearby search uses its index; false "
        "keeps it on the portable H3 path.",
    )
    pdf_font: Path | None = Field(
        None,
        description="TrueType/OpenType font (or .ttc) with Chinese glyphs for PDF documents. Default: the "
        "first of Debian's fonts-wqy-microhei, fonts-noto-cjk, fonts-wqy-zenhei that is installed.",
    )
    jobs: JobSettings = Field(default_factory=JobSettings, description="Background jobs and event delivery.")
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings, description="Rate limits.")
    payments: PaymentSettings = Field(default_factory=PaymentSettings, description="Online payments.")

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        relaxed = {Environment.DEMO, Environment.DEV, Environment.TEST}
        if self.env not in relaxed and (self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32):
            raise ValueError(
                "CITYHUB_SECRET_KEY must be set to a random value of at least 32 characters "
                f"when CITYHUB_ENV={self.env.value}"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'cityhub.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def embedded_worker(self) -> bool:
        if self.jobs.embedded_worker is not None:
            return self.jobs.embedded_worker
        return self.is_sqlite

    @property
    def payments_sandbox_enabled(self) -> bool:
        return self.payments.sandbox if self.payments.sandbox is not None else self.relaxed

    @property
    def relaxed(self) -> bool:
        """Demo, dev and test may create missing keys on the fly; production must be configured."""
        return self.env is not Environment.PRODUCTION


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


class DomainSettings(BaseSettings):
    """Base of a domain's own settings section, read from ``CITYHUB_<DOMAIN>__*``.

    Subclasses set ``model_config = domain_config("identity")``.
    """

    def check_environment(self, settings: Settings) -> None:
        """Raise ValueError when a value is unacceptable here (e.g. a demo key in production)."""


def domain_config(domain: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=f"CITYHUB_{domain.upper()}__", env_file=".env", extra="ignore")


SectionT = TypeVar("SectionT", bound=DomainSettings)
_domain_settings_cache: dict[type[DomainSettings], DomainSettings] = {}


def domain_settings(section: type[SectionT]) -> SectionT:
    """The (cached) settings section of one domain."""
    if section not in _domain_settings_cache:
        _domain_settings_cache[section] = section()
    cached = _domain_settings_cache[section]
    assert isinstance(cached, section)
    return cached


def clear_settings_cache() -> None:
    """Forget cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
    _domain_settings_cache.clear()


def describe(model: type[BaseModel], prefix: str = "CITYHUB_") -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting of a settings model, nested included."""
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if (
            isinstance(annotation, type)
            and issubclass(annotation, BaseModel)
            and not issubclass(annotation, BaseSettings)
        ):
            rows += describe(annotation, f"{prefix}{name.upper()}__")
            continue
        default = field.get_default(call_default_factory=True)
        shown = "" if default is None else str(default.value if isinstance(default, StrEnum) else default)
        rows.append((f"{prefix}{name.upper()}", shown, field.description or ""))
    return rows
