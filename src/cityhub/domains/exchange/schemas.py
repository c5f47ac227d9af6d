"""Wire shapes of the exchange API: catalogue entries with their data items, versions with their validation
reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, model_validator

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


# Portal addresses beside /data/{code}: a resource so named would be hidden behind them
RESERVED_CODES = frozenset({"requests", "me"})


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
        if self.code.lower() in RESERVED_CODES:
            raise ValueError(f"{self.code} names a portal page; choose another code")
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
    open_rules: OpenRules = Field(
        description="De-identification before opening (the public sees it without the suppressed items)."
    )
    source: str = Field(
        "upload",
        description="Where the data comes from: upload, api or ngsi-ld (the owner sees the details).",
    )
    polled_at: datetime | None = Field(None, description="The last poll of an api or ngsi-ld source.")


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


# -- applications --
# A person's application to use a conditionally open resource (有条件开放), and the owner's answer.

APPLICATION_MAX_DAYS = 365


# Text a person writes: surrounding blanks dropped, then not empty.
Written200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Written2000 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Written4000 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class ApplicationIn(Strict):
    purpose: Written2000 = Field(description="What the data is for.")
    organisation: str = Field("", max_length=200, description="The applicant's organisation, if any.")
    days: int = Field(90, ge=1, le=APPLICATION_MAX_DAYS, description="For how long the data is needed.")


class ApplicationAnswerIn(Strict):
    decision: Literal["approve", "reject"]
    reason: str | None = Field(None, max_length=2000)
    days: int | None = Field(None, ge=1, le=APPLICATION_MAX_DAYS, description="Approve for fewer days.")

    @model_validator(mode="after")
    def _reason_for_refusal(self) -> ApplicationAnswerIn:
        self.reason = (self.reason or "").strip() or None
        if self.decision == "reject" and self.reason is None:
            raise ValueError("a rejection needs its reason")
        return self


class ApplicationOut(BaseModel):
    id: int
    resource: str
    resource_name: str
    applicant: str = Field(description="The applicant's user name.")
    organisation: str
    purpose: str
    days: int
    status: Literal["pending", "approved", "rejected"]
    state: Literal["pending", "approved", "rejected", "expired"] = Field(
        description="The status, and 'expired' for an approval whose time is over."
    )
    due_at: datetime
    valid_until: datetime | None
    reason: str | None
    answered_at: datetime | None
    created_at: datetime
    in_force: bool = Field(description="Whether the applicant may download the data now.")


# -- wishes --
# Citizens' requests for data the city does not open yet, with votes and the department's answer.

WishStatus = Literal["open", "planned", "fulfilled", "declined"]


class WishIn(Strict):
    title: Written200
    description: Written4000
    department: str | None = Field(None, max_length=64, description="The code of the department asked.")


class WishAnswerIn(Strict):
    decision: Literal["planned", "fulfilled", "declined"]
    answer: str | None = Field(None, max_length=4000, description="Required when planned or declined.")
    resource: ResourceCode | None = Field(None, description="The published resource that fulfils the wish.")

    @model_validator(mode="after")
    def _complete(self) -> WishAnswerIn:
        self.answer = (self.answer or "").strip() or None
        if self.decision in ("planned", "declined") and self.answer is None:
            raise ValueError("say what is planned, or why the wish is declined")
        if self.decision == "fulfilled" and self.resource is None:
            raise ValueError("name the resource that fulfils the wish")
        return self


class WishOut(BaseModel):
    id: int
    title: str
    description: str
    department: str | None
    department_name: str | None
    votes: int
    status: WishStatus
    answer: str | None
    resource: str | None = Field(description="The code of the resource that fulfils the wish.")
    resource_name: str | None
    answered_at: datetime | None
    created_at: datetime
    voted: bool = Field(description="Whether the caller voted for it.")
    mine: bool = Field(description="Whether the caller filed it.")


# -- insight -----------------------------------------------------------------------------------------------
# The decision-support figures (service/insight.py): use through grants, freshness, corrections, downloads.

FreshnessState = Literal["fresh", "due", "stale"]


class PeriodOut(BaseModel):
    first: date
    last: date
    days: int


class ResourceFiguresOut(BaseModel):
    resource: str = Field(description="The resource's code.")
    name: str
    name_en: str | None
    provider: str = Field(description="The providing department's code.")


class DepartmentFiguresOut(BaseModel):
    department: str = Field(description="The department's code.")
    name: str


class ResourceUseOut(ResourceFiguresOut):
    reads: int
    rows: int
    consumers: int = Field(description="Departments that read it.")


class ConsumerUseOut(DepartmentFiguresOut):
    reads: int
    rows: int
    resources: int = Field(description="Resources it read.")


class DayUseOut(BaseModel):
    day: date
    reads: int
    rows: int


class UseOut(BaseModel):
    reads: int
    rows: int
    resources: int = Field(description="Resources read at least once.")
    consumers: int = Field(description="Departments that read.")
    top_resources: list[ResourceUseOut]
    top_consumers: list[ConsumerUseOut]
    daily: list[DayUseOut] = Field(description="Every day of the period, oldest first.")


class FreshnessFigures(BaseModel):
    fresh: int = Field(description="Loaded within one update cycle (irregular ones: loaded at all).")
    due: int = Field(description="Last loaded one to two cycles ago.")
    stale: int = Field(description="Last loaded more than two cycles ago, or never.")


class FreshnessCountOut(FreshnessFigures, DepartmentFiguresOut):
    pass


class FreshnessResourceOut(ResourceFiguresOut):
    update_cycle: str
    last_loaded_at: datetime | None = Field(description="Its newest valid load (corrections left out).")
    state: FreshnessState


class FreshnessOut(FreshnessFigures):
    departments: list[FreshnessCountOut] = Field(description="Published resources per provider.")
    attention: list[FreshnessResourceOut] = Field(description="Due and stale resources, the oldest first.")


class CorrectionFigures(BaseModel):
    filed: int
    accepted: int
    rejected: int
    open: int
    late: int = Field(description="Answered after the deadline, or open past it.")


class CorrectionCountOut(CorrectionFigures, DepartmentFiguresOut):
    pass


class CorrectionsOut(CorrectionFigures):
    departments: list[CorrectionCountOut] = Field(description="Objections filed in the period, per owner.")


class ChannelOut(BaseModel):
    channel: str
    reads: int
    rows: int


class DownloadDayOut(BaseModel):
    day: date
    reads: int
    rows: int
    channels: dict[str, int] = Field(description="Reads per channel.")


class DownloadResourceOut(ResourceFiguresOut):
    reads: int
    rows: int


class DownloadsOut(BaseModel):
    reads: int
    rows: int
    channels: list[ChannelOut]
    daily: list[DownloadDayOut] = Field(description="Every day of the period, oldest first.")
    top_resources: list[DownloadResourceOut]


class InsightOut(BaseModel):
    period: PeriodOut
    scope: Literal["city", "departments"] = Field(
        description="The whole city (the operator), or what the caller's departments provide and read."
    )
    departments: list[str] = Field(description="The caller's departments (none for the city).")
    use: UseOut
    freshness: FreshnessOut
    corrections: CorrectionsOut
    downloads: DownloadsOut


# -- opening --
# What opening a resource's data removes or coarsens for the public (service/opening.py); the open query API.


class Truncate(Strict):
    """A date or a date and time cut to its year (``2025``) or month (``2025-11``)."""

    method: Literal["truncate"]
    to: Literal["year", "month"]


class Bucket(Strict):
    """A whole number or a number shown as the range of ``width`` it falls in: ``37`` -> ``"30-39"`` (whole
    numbers: both bounds in the range), ``0.21`` -> ``"0.2-0.3"`` (numbers: from the lower bound, below the
    upper)."""

    method: Literal["bucket"]
    width: Annotated[int | float, Field(gt=0, le=1e12)]


class Mask(Strict):
    """Text with every character after the first ``keep`` replaced by ``*``: ``张三丰`` -> ``张**``."""

    method: Literal["mask"]
    keep: int = Field(1, ge=0, le=100)


class Prefix(Strict):
    """Only the first ``keep`` characters of a text."""

    method: Literal["prefix"]
    keep: int = Field(ge=1, le=100)


Generalisation = Annotated[Truncate | Bucket | Mask | Prefix, Field(discriminator="method")]


class OpenRules(Strict):
    """De-identification before opening: items suppressed (in no public output), items generalised, and the
    smallest group an aggregate shows."""

    suppress: list[ItemName] = Field(default_factory=list, max_length=200)
    generalise: dict[ItemName, Generalisation] = Field(default_factory=dict)
    min_group: int | None = Field(
        None, ge=2, le=1_000_000, description="None: the platform's CITYHUB_EXCHANGE__OPEN_MIN_GROUP."
    )

    @model_validator(mode="after")
    def _disjoint(self) -> OpenRules:
        both = sorted(set(self.suppress) & self.generalise.keys())
        if both:
            raise ValueError(f"an item is suppressed or generalised, not both: {', '.join(both)}")
        return self


class OpenItemOut(BaseModel):
    """A data item as the public gets it: generalised ones are text (``type`` string) and say how."""

    name: str
    title: str
    type: ItemType
    generalised: Generalisation | None = None


class OpenRowsOut(BaseModel):
    resource: str
    version: int
    fields: list[OpenItemOut]
    items: list[dict[str, Any]]
    total: int = Field(description="Rows meeting the filters.")
    limit: int
    offset: int


class OpenGroupOut(BaseModel):
    key: dict[str, Any] = Field(description="The group's values, generalised ones as the public sees them.")
    count: int
    value: int | float | None = Field(description="The measure: the count, or the sum or average of an item.")


class OpenAggregateOut(BaseModel):
    resource: str
    version: int
    group_by: list[str]
    measure: str
    min_group: int = Field(description="Groups of fewer rows are not shown.")
    groups: list[OpenGroupOut]
    suppressed_groups: int = Field(description="Groups left out for having fewer than min_group rows.")
    suppressed_rows: int = Field(description="Rows in the groups left out.")


ResourceOut.model_rebuild()


# -- sources --
# Where a resource's data comes from: uploaded files, an API polled on the update cycle, or an entity type of
# the context hub.

DottedPath = Annotated[str, StringConstraints(pattern=r"^[^.\s]+(\.[^.\s]+)*$", max_length=200)]
NgsiName = Annotated[str, StringConstraints(pattern=r"^\S+$", max_length=512)]


class UploadSourceIn(Strict):
    source: Literal["upload"]


class ApiSourceIn(Strict):
    """An HTTP(S) address answering the rows as JSON or CSV, fetched without credentials."""

    source: Literal["api"]
    url: HttpUrl = Field(
        description="http(s) only; no user or password in it (sources carry no secrets: the answer must be "
        "readable by the platform as it is)."
    )
    format: Literal["json", "csv"] = "json"
    records: DottedPath | None = Field(
        None,
        description="The dotted path to the array of rows in a JSON answer (data.items); none: the answer "
        "is the array.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ApiSourceIn:
        if self.url.username or self.url.password:
            raise ValueError("a source address carries no user or password")
        if self.records and self.format != "json":
            raise ValueError("records is a path in a JSON answer")
        return self


class ContextSourceIn(Strict):
    """The entities of one type in the context hub, one row each."""

    source: Literal["ngsi-ld"]
    tenant: str | None = Field(None, max_length=128, description="The NGSI-LD tenant; none: the default.")
    entity_type: NgsiName = Field(description="A type name (core @context) or IRI: AirQualityObserved.")
    attributes: dict[ItemName, NgsiName] = Field(
        min_length=1,
        max_length=200,
        description='Data item -> attribute name (or "id", the entity\'s id); every required item mapped.',
    )


SourceIn = Annotated[UploadSourceIn | ApiSourceIn | ContextSourceIn, Field(discriminator="source")]


class SourceOut(BaseModel):
    resource: str
    source: Literal["upload", "api", "ngsi-ld"]
    config: dict[str, Any] = Field(description="The address or entity type and mapping; {} for uploads.")
    update_cycle: str
    polled_at: datetime | None
    next_poll_at: datetime | None = Field(description="When the poller fetches next; none: only by hand.")


class PollOut(BaseModel):
    resource: str
    outcome: Literal["loaded", "invalid", "unchanged", "skipped"] = Field(
        description="loaded: a valid new version, now current; invalid: a new version with its report (the "
        "source failed or its data did not validate); unchanged: the same data (or failure) as before, no "
        "version; skipped: the source changed meanwhile."
    )
    error: str | None = Field(description="Why the source could not be read, when it could not.")
    version: VersionOut | None
    polled_at: datetime | None


# -- keys bound to a grant ---------------------------------------------------------------------------------


class GrantKeyOut(BaseModel):
    """An API key issued for one grant (the secret is never shown again)."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class GrantKeyIssued(GrantKeyOut):
    key: str = Field(description="The secret, shown this once: give it to the consumer system.")
