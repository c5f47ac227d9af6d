"""Wire shapes of the voice API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

TicketType = Literal["consultation", "help", "suggestion", "complaint", "report"]  # models.TICKET_TYPES
TicketStatus = Literal["received", "dispatched", "handling", "replied", "closed", "merged"]
CategoryCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{2}(\.[0-9]{2}){0,3}$")]
DueState = Literal["on_time", "warning", "overdue", "done"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CategoryIn(Strict):
    code: CategoryCode = Field(description="Two digits per level, dot-separated: 03, 03.02, 03.02.01.")
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    organization_code: str | None = Field(
        None, max_length=64, description="Identity organisation (department) that handles its tickets."
    )


class CategoriesIn(Strict):
    categories: list[CategoryIn] = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _parents_first(self) -> CategoriesIn:
        seen: set[str] = set()
        for category in self.categories:
            parent = category.code.rpartition(".")[0]
            if parent and parent not in seen:
                raise ValueError(f"{category.code}: its parent {parent} must come earlier in the list")
            if category.code in seen:
                raise ValueError(f"{category.code}: given twice")
            seen.add(category.code)
        return self


class CategoryOut(BaseModel):
    code: str
    name_zh: str
    name_en: str
    organization: str | None


class TicketIn(Strict):
    type: TicketType
    category: CategoryCode
    description: str = Field(min_length=5, max_length=4000)
    address: str = Field("", max_length=400)
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)

    @model_validator(mode="after")
    def _somewhere(self) -> TicketIn:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("give both lon and lat, or neither")
        return self


class PhoneTicketIn(TicketIn):
    """A call typed in by an operator: who called, on which number."""

    reporter_name: str = Field(min_length=1, max_length=100)
    reporter_phone: str = Field(min_length=3, max_length=32)


class EventOut(BaseModel):
    at: datetime
    action: str
    from_status: str | None
    to_status: str
    note: str
    actor: str | None = Field(description="Who acted; hidden from the reporter.")


class TicketOut(BaseModel):
    number: str
    type: str
    category: str
    category_name: str
    channel: str
    description: str
    address: str
    lon: float | None
    lat: float | None
    community: str | None
    department: str | None
    status: str
    due: DueState
    deadline_at: datetime
    sign_due_at: datetime | None
    reply: str
    satisfaction: int | None
    reopened: int
    merged_into: str | None
    created_at: datetime
    reporter: str | None = Field(description="Name and phone, for the department and operator only.")
    timeline: list[EventOut] | None = None


class DispatchIn(Strict):
    department: str = Field(min_length=1, max_length=64, description="Identity organisation code.")
    note: str = Field("", max_length=2000)


class ReplyIn(Strict):
    text: str = Field(min_length=2, max_length=4000)


class ExtensionIn(Strict):
    days: int = Field(ge=1, le=60)
    reason: str = Field(min_length=2, max_length=2000)


class ExtensionDecisionIn(Strict):
    approve: bool
    note: str = Field("", max_length=2000)


class CallbackIn(Strict):
    level: int = Field(
        ge=1, le=5, description="1 very dissatisfied … 5 very satisfied; 1-2 reopen the ticket."
    )
    comment: str = Field("", max_length=2000)


class MergeIn(Strict):
    into: str = Field(min_length=1, max_length=20, description="Number of the ticket this one duplicates.")
