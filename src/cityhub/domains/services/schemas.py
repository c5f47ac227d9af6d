"""Wire shapes of the services API. The catalogue travels in one bilingual format, in and out: names and
summaries are ``{"zh_CN": ..., "en": ...}`` objects, other records are referenced by code."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,59}$")]
ItemKind = Literal["information", "query", "form", "appointment", "bill"]  # models.ITEM_KINDS
Icon = Literal[
    "city", "grid", "card", "qr", "home", "user", "users", "shield", "settings", "tree", "key", "badge",
    "globe", "message", "calendar", "heart", "bolt", "store", "bell", "search", "chart", "map",
]  # fmt: skip


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Text(Strict):
    """A text in both catalogue languages."""

    zh_CN: str = Field(min_length=1, max_length=2000)  # noqa: N815 - the locale's name on the wire
    en: str = Field(min_length=1, max_length=2000)


class Name(Text):
    zh_CN: str = Field(min_length=1, max_length=200)  # noqa: N815
    en: str = Field(min_length=1, max_length=200)


Keyword = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class Keywords(Strict):
    zh_CN: list[Keyword] = Field(default_factory=list, max_length=20)  # noqa: N815
    en: list[Keyword] = Field(default_factory=list, max_length=20)


class DepartmentIn(Strict):
    code: Code
    name: Name
    summary: Text | None = None
    phone: str | None = Field(None, max_length=32)
    icon: Icon = "city"
    org_unit_code: str | None = Field(None, max_length=64, description="Identity org unit it belongs to.")
    organization_code: str | None = Field(
        None,
        max_length=64,
        description="Identity organisation whose staff and systems act for the department (records, "
        "appointment slots, bills, follow-ups).",
    )


class CategoryIn(Strict):
    code: Code
    name: Name
    icon: Icon = "grid"


class LifeEventIn(Strict):
    code: Code
    name: Name
    summary: Text | None = None
    icon: Icon = "heart"


FieldKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
FieldType = Literal["text", "textarea", "number", "money", "date", "choice", "boolean", "file"]
Prefill = Literal["name", "phone", "email", "address"]


class Choice(Strict):
    value: Annotated[str, StringConstraints(min_length=1, max_length=60)]
    label: Name


class FieldIn(Strict):
    """One field of a query item's department records or of a form item's application.

    Records hold ``money`` in cents; a form asks for yuan and stores cents. ``choice`` needs ``options``;
    ``file`` takes a PDF, PNG or JPEG; ``prefill`` names the resident's identity data that fills the field
    when they agree to it (consent purpose ``services.prefill``)."""

    key: FieldKey
    label: Name
    type: FieldType = "text"
    required: bool = False
    options: list[Choice] = Field(default_factory=list, max_length=50)
    prefill: Prefill | None = None

    @model_validator(mode="after")
    def _options_fit_the_type(self) -> FieldIn:
        if (self.type == "choice") != bool(self.options):
            raise ValueError(f"field {self.key}: options are given exactly for choice fields")
        return self


class ItemIn(Strict):
    code: Code
    department: Code
    category: Code
    life_events: list[Code] = Field(default_factory=list, max_length=20)
    kind: ItemKind
    name: Name
    summary: Text | None = None
    keywords: Keywords = Field(default_factory=Keywords)
    online: bool = True
    published: bool = True
    fields: list[FieldIn] = Field(default_factory=list, max_length=40)

    @model_validator(mode="after")
    def _field_keys_unique(self) -> ItemIn:
        keys = [field.key for field in self.fields]
        if len(keys) != len(set(keys)):
            raise ValueError("fields: a key is given twice")
        return self


class CatalogueIn(Strict):
    """Records to create or update, matched by code; what is not named is left as it is."""

    departments: list[DepartmentIn] = Field(default_factory=list, max_length=1000)
    categories: list[CategoryIn] = Field(default_factory=list, max_length=1000)
    life_events: list[LifeEventIn] = Field(default_factory=list, max_length=1000)
    items: list[ItemIn] = Field(default_factory=list, max_length=20_000)

    @model_validator(mode="after")
    def _codes_unique(self) -> CatalogueIn:
        for kind in ("departments", "categories", "life_events", "items"):
            codes = [record.code for record in getattr(self, kind)]
            duplicates = sorted({code for code in codes if codes.count(code) > 1})
            if duplicates:
                raise ValueError(f"{kind}: codes given twice: {', '.join(duplicates[:10])}")
        return self


class ImportOut(BaseModel):
    created: dict[str, int]
    updated: dict[str, int]


class DepartmentOut(BaseModel):
    code: str
    name: Name
    summary: Text | None
    phone: str | None
    icon: str
    items: int


class CategoryOut(BaseModel):
    code: str
    name: Name
    icon: str
    items: int


class LifeEventOut(BaseModel):
    code: str
    name: Name
    summary: Text | None
    icon: str
    items: int


class ItemOut(BaseModel):
    code: str
    department: str
    category: str
    life_events: list[str]
    kind: str
    name: Name
    summary: Text | None
    keywords: Keywords
    online: bool
    published: bool
    fields: list[FieldIn]


class MarkedItemOut(BaseModel):
    """A favourite or recently used item, with when it was marked."""

    item: ItemOut
    at: datetime


# -- department records behind query items ---------------------------------------------------------------

FieldValue = Annotated[str, StringConstraints(max_length=500)] | int | float | date | None


class RecordIn(Strict):
    """A department record about one person, who is named by their national id number (only its keyed hash
    is stored)."""

    key: str = Field(min_length=1, max_length=100, description="The department system's id of the record.")
    id_number: str = Field(min_length=18, max_length=18, description="The person's resident id number.")
    title: str = Field(min_length=1, max_length=200)
    occurred_on: date | None = None
    data: dict[FieldKey, FieldValue] = Field(default_factory=dict, max_length=40)
    delete: bool = Field(False, description="Remove the record with this key instead.")


class RecordsIn(Strict):
    records: list[RecordIn] = Field(min_length=1, max_length=5000)

    @model_validator(mode="after")
    def _keys_unique(self) -> RecordsIn:
        keys = [record.key for record in self.records]
        if len(keys) != len(set(keys)):
            raise ValueError("records: a key is given twice")
        return self


class RecordsImportOut(BaseModel):
    stored: int
    deleted: int


class RecordOut(BaseModel):
    key: str
    title: str
    occurred_on: date | None
    data: dict[str, str | int | float | None]
    updated_at: datetime


class MyRecordsOut(BaseModel):
    item: str
    fields: list[FieldIn]
    records: list[RecordOut]


# -- appointments --------------------------------------------------------------------------------------------


class ScheduleIn(Strict):
    """Slots to open on every working day (Chinese holiday calendar) from ``first_day`` to ``last_day``."""

    first_day: date
    last_day: date
    times: list[Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]] = Field(
        min_length=1, max_length=48, description="Local start times, e.g. ['09:00', '09:30']."
    )
    minutes: int = Field(30, ge=5, le=480, description="Length of each slot.")
    capacity: int = Field(ge=1, le=10_000, description="People per slot.")
    place: str = Field("", max_length=200)

    @model_validator(mode="after")
    def _sane_range(self) -> ScheduleIn:
        if self.last_day < self.first_day:
            raise ValueError("last_day is before first_day")
        if (self.last_day - self.first_day).days > 366:
            raise ValueError("a schedule covers at most a year")
        return self


class ScheduleOut(BaseModel):
    created: int
    existing: int


class SlotOut(BaseModel):
    id: int
    item: str
    starts_at: datetime
    ends_at: datetime
    place: str
    capacity: int
    free: int


class BookingIn(Strict):
    slot: int = Field(ge=1)


class BookingOut(BaseModel):
    reference: str
    item: str
    item_name: Name
    slot: SlotOut
    status: str
    created_at: datetime
    rating: int | None = None


# -- bills and payments ------------------------------------------------------------------------------------


class BillIn(Strict):
    number: str = Field(
        min_length=1, max_length=40, description="The issuer's bill number (unique per issuer)."
    )
    id_number: str = Field(min_length=18, max_length=18, description="The payer's resident id number.")
    title: str = Field(min_length=1, max_length=200)
    amount_cents: int = Field(ge=1, le=100_000_000)
    due_on: date | None = None
    item: Code | None = Field(None, description="The bill-payment item it belongs to.")
    cancel: bool = Field(False, description="Cancel the unpaid bill with this number instead.")


class BillsIn(Strict):
    bills: list[BillIn] = Field(min_length=1, max_length=5000)

    @model_validator(mode="after")
    def _numbers_unique(self) -> BillsIn:
        numbers = [bill.number for bill in self.bills]
        if len(numbers) != len(set(numbers)):
            raise ValueError("bills: a number is given twice")
        return self


class BillsImportOut(BaseModel):
    issued: int
    updated: int
    cancelled: int
    refused: list[str] = Field(description="Numbers of bills left as they were because they are paid.")


class BillOut(BaseModel):
    id: int
    number: str
    department: str
    department_name: Name
    title: str
    amount_cents: int
    due_on: date | None
    status: str
    issued_at: datetime
    paid_at: datetime | None
    receipt_number: str | None = None
    payment_reference: str | None = None
    rating: int | None = None


class CheckoutOut(BaseModel):
    payment_reference: str
    checkout_url: str


class ReceiptOut(BaseModel):
    receipt_number: str
    payment_reference: str
    provider: str
    provider_transaction: str
    bill: BillOut
    paid_at: datetime


# -- ratings (好差评) ----------------------------------------------------------------------------------------

RatedKind = Literal["booking", "payment", "application"]  # models.RATED_KINDS
Level = Annotated[int, Field(ge=1, le=5)]


class RatingIn(Strict):
    kind: RatedKind
    reference: str = Field(
        min_length=1, max_length=40, description="Booking, payment or application reference."
    )
    level: Level = Field(
        description="1 very dissatisfied, 2 dissatisfied, 3 fair, 4 satisfied, 5 very satisfied."
    )
    comment: str = Field("", max_length=2000)


class RatingOut(BaseModel):
    id: int
    kind: str
    item: str
    department: str
    level: int
    comment: str
    created_at: datetime
    follow_up: int | None


class FollowUpOut(BaseModel):
    id: int
    rating: RatingOut
    status: str
    note: str
    created_at: datetime
    closed_at: datetime | None


class FollowUpClose(Strict):
    note: str = Field(min_length=1, max_length=2000, description="What the department did.")


class SatisfactionOut(BaseModel):
    days: int
    ratings: int
    mean_level: float | None
    satisfied_share: float | None = Field(description="Share of ratings of 4 or 5.")
    open_follow_ups: int


# -- online forms and applications -------------------------------------------------------------------------

ApplicationStatus = Literal["submitted", "accepted", "needs_more", "approved", "rejected", "withdrawn"]
Decision = Literal["accepted", "needs_more", "approved", "rejected"]


class AttachmentOut(BaseModel):
    id: int
    field: str
    filename: str
    content_type: str
    size: int


class ApplicationEventOut(BaseModel):
    at: datetime
    status: str
    note: str
    by_department: bool


class ApplicationOut(BaseModel):
    reference: str
    item: str
    item_name: Name
    department: str
    status: str
    answers: dict[str, str | int | float | bool | None]
    attachments: list[AttachmentOut]
    history: list[ApplicationEventOut]
    created_at: datetime
    changed_at: datetime
    rating: int | None = None


class FormOut(BaseModel):
    fields: list[FieldIn]
    prefilled: dict[str, str] = Field(
        description="Values from my identity data (with consent services.prefill)."
    )


class DecisionIn(Strict):
    status: Decision
    note: str = Field(
        "", max_length=2000, description="What the applicant should know (required unless accepted)."
    )
