"""Wire shapes of the exchange API: catalogue entries with their data items, versions with their validation
reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

ResourceCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
ItemName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
ItemType = Literal["string", "integer", "number", "boolean", "date", "datetime"]  # models.ITEM_TYPES
SharingClass = Literal["unconditional", "conditional", "none"]
OpenClass = Literal["open", "conditional", "closed"]
UpdateCycle = Literal["realtime", "daily", "weekly", "monthly", "quarterly", "yearly", "irregular"]
Format = Literal["csv", "json", "api", "ngsi-ld"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataItem(Strict):
    """One column of a resource: its name in the data, its title for people, its type."""

    name: ItemName
    title: str = Field(min_length=1, max_length=100)
    type: ItemType = "string"
    required: bool = False


class ResourceIn(Strict):
    code: ResourceCode
    name: str = Field(min_length=1, max_length=200)
    name_en: str | None = Field(None, max_length=200)
    provider: str = Field(min_length=1, max_length=64, description="The code of the providing department.")
    classification: list[Annotated[str, StringConstraints(min_length=1, max_length=60)]] = Field(
        default_factory=list, max_length=4, description="类/项/目/细目, top first."
    )
    summary: str = Field("", max_length=4000)
    format: Format = "csv"
    data_items: list[DataItem] = Field(min_length=1, max_length=200)
    sharing_class: SharingClass
    sharing_condition: str | None = Field(None, max_length=2000)
    legal_basis: str | None = Field(None, max_length=2000)
    open_class: OpenClass = "closed"
    update_cycle: UpdateCycle = "irregular"
    publish_date: date | None = None
    related: list[ResourceCode] = Field(default_factory=list, max_length=50)
    keywords: list[Annotated[str, StringConstraints(min_length=1, max_length=40)]] = Field(
        default_factory=list, max_length=20
    )
    licence: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _consistent(self) -> ResourceIn:
        names = [item.name for item in self.data_items]
        if len(set(names)) != len(names):
            raise ValueError("data item names must be unique")
        if self.sharing_class == "none" and not self.legal_basis:
            raise ValueError("a resource that is not shared needs its legal basis")
        if self.sharing_class == "conditional" and not self.sharing_condition:
            raise ValueError("a conditionally shared resource needs its condition")
        return self


class ResourceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    name_en: str | None
    provider: str
    provider_name: str
    classification: list[str]
    summary: str
    format: str
    data_items: list[DataItem]
    sharing_class: str
    sharing_condition: str | None
    legal_basis: str | None
    open_class: str
    update_cycle: str
    publish_date: date | None
    related: list[str]
    keywords: list[str]
    licence: str | None
    status: str
    current_version: int | None = Field(description="The number of the version consumers read.")
    rows: int = Field(description="Rows of the current version (0 before the first load).")
    created_at: datetime
    modified_at: datetime


class ValidationError_(BaseModel):  # noqa: N801 - pydantic's ValidationError is another thing
    row: int | None = Field(description="1 for the first data row; None for the file or its header.")
    field: str | None
    message: str


class VersionOut(BaseModel):
    number: int
    source: str
    file_name: str | None
    sha256: str | None
    rows: int
    valid: bool
    current: bool
    errors: list[ValidationError_]
    error_count: int
    note: str
    loaded_by: str
    loaded_at: datetime


class RowsPageOut(BaseModel):
    resource: str
    version: int
    fields: list[str]
    rows: list[dict[str, Any]]
    next_after: int | None = Field(description="Pass as ?after= for the next page; None at the end.")


FilterOp = Literal["eq", "ne", "in", "lt", "le", "gt", "ge"]


class Condition(Strict):
    """One condition a row must meet: ``field op value`` (``in``: the value is a list)."""

    field: ItemName
    op: FilterOp = "eq"
    value: Any


class RequestIn(Strict):
    consumer: str = Field(min_length=1, max_length=64, description="The code of the requesting department.")
    purpose: str = Field(min_length=1, max_length=2000)
    fields: list[ItemName] = Field(min_length=1, max_length=200)
    row_filter: list[Condition] = Field(default_factory=list, max_length=20)
    days: int = Field(90, ge=1, le=3660, description="For how long the data is needed.")


class AnswerIn(Strict):
    decision: Literal["approve", "reject"]
    reason: str | None = Field(None, max_length=2000)
    fields: list[ItemName] | None = Field(None, description="Approve fewer fields than asked for.")
    row_filter: list[Condition] = Field(
        default_factory=list, max_length=20, description="More conditions on top of those asked for."
    )
    days: int | None = Field(None, ge=1, le=3660, description="Approve for fewer days than asked for.")

    @model_validator(mode="after")
    def _reason_for_refusal(self) -> AnswerIn:
        if self.decision == "reject" and not (self.reason or "").strip():
            raise ValueError("a rejection needs its reason")
        return self


class RevokeIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class GrantOut(BaseModel):
    id: int
    resource: str
    consumer: str
    fields: list[str]
    row_filter: list[Condition]
    valid_from: datetime
    valid_until: datetime
    revoked_at: datetime | None
    revoke_reason: str | None
    state: Literal["active", "expired", "revoked"]


class RequestOut(BaseModel):
    id: int
    resource: str
    consumer: str
    purpose: str
    fields: list[str]
    row_filter: list[Condition]
    days: int
    status: str
    due_at: datetime
    reason: str | None
    answered_at: datetime | None
    grant: GrantOut | None


class UsageOut(BaseModel):
    day: date
    reads: int
    rows: int


class ObjectionIn(Strict):
    filer: str | None = Field(
        None, max_length=64, description="The code of the reporting department; none: a resident (open data)."
    )
    rows: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, max_length=1000)
    claim: str = Field(min_length=1, max_length=4000)
    evidence: str = Field("", max_length=4000)
    proposed: dict[str, dict[ItemName, Any]] = Field(
        default_factory=dict, description='Values believed right, by row number: {"2": {"population": 1}}.'
    )


class ObjectionAnswerIn(Strict):
    decision: Literal["accept", "reject"]
    reason: str = Field(min_length=1, max_length=4000)
    corrections: dict[str, dict[ItemName, Any]] | None = Field(
        None, description="Accepted values by row number (default: those proposed)."
    )


class ObjectionOut(BaseModel):
    id: int
    resource: str
    version: int
    filer: str | None = Field(description="The reporting department's code; none for a resident.")
    rows: list[int]
    claim: str
    evidence: str
    proposed: dict[str, dict[str, Any]]
    status: str
    due_at: datetime
    escalated_at: datetime | None
    answer: str | None
    answered_at: datetime | None
    corrected_version: int | None


class QualityOut(BaseModel):
    resource: str
    score: int = Field(description="100, less 5 per correction accepted in a year and 10 per late answer.")
    objections: int
    accepted: int
    rejected: int
    open: int
    late: int
    history: list[ObjectionOut]
