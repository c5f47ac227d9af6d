"""Identity tables: the org-unit tree, people, households, organisations, accounts, roles, keys, consent."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityhub.kernel.db import Base, UTCDateTime, utcnow

ORG_UNIT_KINDS = ("city", "district", "subdistrict", "community", "building", "household")
ORGANIZATION_KINDS = ("operator", "department", "merchant", "clinic", "care_provider")


class OrgUnit(Base):
    """A node of the territorial tree; ``path`` ("/1/4/9/") makes subtree checks a prefix match."""

    __tablename__ = "identity_org_unit"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("identity_org_unit.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(400), index=True)
    depth: Mapped[int] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(400))
    boundary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    h3_cell: Mapped[str | None] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Person(Base):
    """A natural person. The national id is kept only as a salted hash plus a masked form."""

    __tablename__ = "identity_person"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    gender: Mapped[str] = mapped_column(String(1), default="U")
    birth_date: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    id_number_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    id_number_masked: Mapped[str | None] = mapped_column(String(32))
    verification_level: Mapped[int] = mapped_column(Integer, default=0)
    home_unit_id: Mapped[int | None] = mapped_column(ForeignKey("identity_org_unit.id"), index=True)
    card_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HouseholdMember(Base):
    __tablename__ = "identity_household_member"
    __table_args__ = (UniqueConstraint("household_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("identity_org_unit.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("identity_person.id"), index=True)
    relation: Mapped[str] = mapped_column(
        String(16)
    )  # head, spouse, child, parent, grandparent, tenant, other


class FamilyLink(Base):
    """Who may act for whom: a guardian for a child or an elder, a carer, an emergency contact."""

    __tablename__ = "identity_family_link"
    __table_args__ = (UniqueConstraint("guardian_id", "dependant_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    guardian_id: Mapped[int] = mapped_column(ForeignKey("identity_person.id"), index=True)
    dependant_id: Mapped[int] = mapped_column(ForeignKey("identity_person.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # guardian, carer, emergency_contact
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Organization(Base):
    """A department, merchant, clinic, care provider or the operator, with its home territory."""

    __tablename__ = "identity_organization"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("identity_org_unit.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Account(Base):
    __tablename__ = "identity_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("identity_person.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RoleAssignment(Base):
    """A role held over an org subtree, optionally on behalf of an organisation."""

    __tablename__ = "identity_role_assignment"
    __table_args__ = (UniqueConstraint("account_id", "role", "org_unit_id", "organization_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_account.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("identity_org_unit.id"))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("identity_organization.id"))
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("identity_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """A machine credential: only the SHA-256 of the key is stored; scoped, expirable, revocable."""

    __tablename__ = "identity_api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    permissions: Mapped[list[str]] = mapped_column(JSON)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("identity_org_unit.id"))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("identity_organization.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("identity_account.id"))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Consent(Base):
    """One grant of consent for a purpose; withdrawing stamps ``withdrawn_at`` (history is never deleted)."""

    __tablename__ = "identity_consent"
    __table_args__ = (Index("ix_identity_consent_person_purpose", "person_id", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("identity_person.id"))
    purpose: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16), default="app")
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RefreshToken(Base):
    """Issued refresh tokens, so that logout and rotation can revoke them."""

    __tablename__ = "identity_refresh_token"

    jti: Mapped[str] = mapped_column(String(32), primary_key=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_account.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PageSession(Base):
    """A signed-in browser. The cookie carries the token; only its SHA-256 is stored, so logging out (or a
    password change) ends the session on the server even if someone kept a copy of the cookie."""

    __tablename__ = "identity_page_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Notification(Base):
    """One message in an account's inbox, rendered in the recipient's language when it was sent.

    The text is stored rendered (not as a message id) so the inbox shows what the email and webhook carried.
    """

    __tablename__ = "identity_notification"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_account.id", ondelete="CASCADE"), index=True)
    topic: Mapped[str] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotificationPreference(Base):
    """Which channels besides the inbox carry a topic to an account; ``topic`` is a code, a ``prefix.*``
    or ``*`` (the account's default). Without a matching row every channel is on."""

    __tablename__ = "identity_notification_preference"
    __table_args__ = (UniqueConstraint("account_id", "topic"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_account.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(100))
    email: Mapped[bool] = mapped_column(Boolean, default=True)
    webhook: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotificationWebhook(Base):
    """The one URL an account receives its notifications at, and the secret that signs them.

    The secret is stored as generated, not hashed like API keys: the platform needs it to sign every delivery.
    The owner sees it once, when the webhook is set; setting it again issues a new one.
    """

    __tablename__ = "identity_notification_webhook"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("identity_account.id", ondelete="CASCADE"), unique=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
