"""Wire shapes of the identity API (rows never go to the wire directly)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cityhub.kernel.pagination import Page


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class RefreshIn(BaseModel):
    refresh_token: str


class PasswordChangeIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class GrantOut(BaseModel):
    role: str
    org_unit_id: int
    organization_id: int | None


class PersonOut(Out):
    id: int
    name: str
    gender: str
    birth_date: date | None
    phone: str | None
    email: str | None
    id_number_masked: str | None
    verification_level: int
    home_unit_id: int | None


class PersonIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    gender: str = Field("U", pattern="^[MFU]$")
    birth_date: date | None = None
    phone: str | None = Field(None, max_length=32)
    email: str | None = Field(None, max_length=200)
    id_number: str | None = Field(None, min_length=18, max_length=18)
    verification_level: int = Field(0, ge=0, le=3)
    household_id: int | None = None
    relation: str = "other"


class MeOut(BaseModel):
    account_id: int
    username: str
    person: PersonOut | None
    roles: list[GrantOut]
    permissions: list[str]


class OrgUnitOut(Out):
    id: int
    parent_id: int | None
    kind: str
    code: str
    name: str
    name_en: str | None
    path: str
    depth: int
    address: str | None
    lon: float | None
    lat: float | None


class OrgUnitDetailOut(OrgUnitOut):
    boundary: dict[str, Any] | None


class OrgUnitIn(BaseModel):
    kind: str
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    parent_code: str | None = None
    name_en: str | None = Field(None, max_length=200)
    address: str | None = Field(None, max_length=400)
    boundary: dict[str, Any] | None = None
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)


class RoleAssignmentIn(BaseModel):
    account_id: int
    role: str
    org_unit_id: int
    organization_id: int | None = None


class RoleAssignmentOut(Out):
    id: int
    account_id: int
    role: str
    org_unit_id: int
    organization_id: int | None
    created_at: datetime


class ApiKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    permissions: list[str] = Field(min_length=1)
    org_unit_id: int
    organization_id: int | None = None
    expires_at: AwareDatetime | None = None


class ApiKeyOut(Out):
    id: int
    prefix: str
    name: str
    permissions: list[str]
    org_unit_id: int
    organization_id: int | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The secret; shown only in this answer.")


class ConsentIn(BaseModel):
    purpose: str = Field(min_length=2, max_length=64)
    scope: str | None = Field(None, max_length=2000)


class ConsentOut(Out):
    id: int
    purpose: str
    scope: str | None
    channel: str
    granted_at: datetime
    withdrawn_at: datetime | None


class CardOut(BaseModel):
    token: str
    expires_at: datetime
    qr_svg: str


class CardVerifyIn(BaseModel):
    token: str = Field(min_length=1, max_length=4096)


class CardCheckOut(BaseModel):
    valid: bool
    reason: str
    message: str
    person_id: int | None = None
    name_masked: str | None = None
    verification_level: int | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    revocation_checked: bool = False


class HouseholdMemberOut(BaseModel):
    person_id: int
    name: str
    relation: str


class HouseholdOut(BaseModel):
    household: OrgUnitOut
    members: list[HouseholdMemberOut]


class FamilyLinkIn(BaseModel):
    guardian_id: int
    kind: str = Field(pattern="^(guardian|carer|emergency_contact)$")


class OrganizationIn(BaseModel):
    kind: str = Field(pattern="^(operator|department|merchant|clinic|care_provider)$")
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    name_en: str | None = Field(None, max_length=200)
    org_unit_id: int


class OrganizationOut(Out):
    id: int
    kind: str
    code: str
    name: str
    name_en: str | None
    org_unit_id: int


class NotificationOut(Out):
    id: int
    topic: str
    locale: str
    subject: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None


class NotificationPageOut(Page[NotificationOut]):
    unread: int = Field(description="Unread notifications in the whole inbox (whatever the filter).")


class ReadAllOut(BaseModel):
    marked: int = Field(description="How many notifications were unread until now.")


class NotificationPreferenceIn(BaseModel):
    email: bool = True
    webhook: bool = True


class NotificationPreferenceOut(Out):
    topic: str
    email: bool
    webhook: bool
    updated_at: datetime


class WebhookIn(BaseModel):
    url: str = Field(min_length=1, max_length=2000, description="http:// or https:// address to POST to.")


class WebhookOut(Out):
    url: str
    created_at: datetime


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(
        description="Signs every delivery (X-Cityhub-Signature); shown only in this answer. Setting the "
        "webhook again issues a new one."
    )
