"""Wire shapes of the voice API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

TicketType = Literal["consultation", "help", "suggestion", "complaint", "report"]  # models.TICKET_TYPES
TicketStatus = Literal["received", "dispatched", "handling", "replied", "closed", "merged"]
CategoryCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{2}(\.[0-9]{2}){0,3}$")]
DueState = Literal["on_time", "warning", "overdue", "done"]
AttributeType = Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttributeValue(Strict):
    key: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)


class AttributeIn(Strict):
    """A question asked with a report of one category (an Open311 service attribute)."""

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    datatype: AttributeType
    description: str = Field(
        min_length=1, max_length=400, description="The question as the reporter reads it."
    )
    required: bool = False
    variable: bool = Field(True, description="False: information only, no answer expected.")
    datatype_description: str = Field("", max_length=400)
    order: int = Field(0, ge=0)
    values: list[AttributeValue] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _lists_have_values(self) -> AttributeIn:
        if self.datatype.endswith("valuelist") and not self.values:
            raise ValueError(f"{self.code}: a {self.datatype} needs values")
        if len({value.key for value in self.values}) != len(self.values):
            raise ValueError(f"{self.code}: value keys must be unique")
        return self


class CategoryIn(Strict):
    code: CategoryCode = Field(description="Two digits per level, dot-separated: 03, 03.02, 03.02.01.")
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    organization_code: str | None = Field(
        None, max_length=64, description="Identity organisation (department) that handles its tickets."
    )
    description: str = Field("", max_length=2000)
    emergency: bool = Field(False, description="Reports take the emergency fast path (on-duty alarm).")
    attributes: list[AttributeIn] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _codes_unique(self) -> CategoryIn:
        if len({attribute.code for attribute in self.attributes}) != len(self.attributes):
            raise ValueError(f"{self.code}: attribute codes must be unique")
        return self


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
    emergency: bool = False
    attributes: list[AttributeIn] = Field(default_factory=list)


class TicketIn(Strict):
    type: TicketType
    category: CategoryCode
    description: str = Field(min_length=5, max_length=4000)
    address: str = Field("", max_length=400)
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    attributes: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Answers to the category's questions, by attribute code."
    )
    answered_by_article: int | None = Field(
        None, description="A consultation the knowledge base answered: closed at intake with that article."
    )

    @model_validator(mode="after")
    def _somewhere(self) -> TicketIn:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("give both lon and lat, or neither")
        return self


class PhoneTicketIn(TicketIn):
    """A call typed in by an operator: who called, on which number."""

    reporter_name: str = Field(min_length=1, max_length=100)
    reporter_phone: str = Field(min_length=3, max_length=32)


class Open311TicketIn(TicketIn):
    """A service request posted to the Open311 server: who sent it, as far as the client says."""

    reporter_name: str = Field("", max_length=100)
    reporter_phone: str = Field("", max_length=200)
    media_url: str = Field("", max_length=1000, pattern=r"^(https?://\S+)?$")


class TransferTicketIn(TicketIn):
    """A ticket handed over by another platform (a provincial 12345 hub, a district system)."""

    external_ref: str = Field(
        min_length=1,
        max_length=100,
        description="The sender's id of the ticket; sending it again files nothing.",
    )
    reporter_name: str = Field("", max_length=100)
    reporter_phone: str = Field("", max_length=32)


class TransferBatchIn(Strict):
    tickets: list[TransferTicketIn] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _references_unique(self) -> TransferBatchIn:
        if len({ticket.external_ref for ticket in self.tickets}) != len(self.tickets):
            raise ValueError("external_ref must be unique within a batch")
        return self


class TransferredOut(BaseModel):
    external_ref: str
    number: str
    created: bool = Field(description="False: this reference was filed before; nothing new was filed.")


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
    emergency: bool = False
    acknowledged_at: datetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    photos: list[int] = Field(
        default_factory=list, description="Ids of the photos, for /tickets/{n}/photos/{id}."
    )
    followers: int = 0
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


class NearbyOut(BaseModel):
    """An open ticket of the same category close by: the reporter may follow it instead of reporting again."""

    number: str
    category_name: str
    description: str
    status: str
    distance_m: int
    created_at: datetime
    followers: int


class ArticleIn(Strict):
    title: str = Field(min_length=2, max_length=300)
    body: str = Field(min_length=2, max_length=20000)
    category: CategoryCode | None = None
    published: bool = True


class ArticleOut(BaseModel):
    id: int
    title: str
    body: str
    category: str | None
    published: bool
    updated_at: datetime


class SuggestionsOut(BaseModel):
    """What intake offers before a ticket is filed: answers from the knowledge base, and open reports of
    the same problem nearby."""

    articles: list[ArticleOut]
    nearby: list[NearbyOut]


class DutyIn(Strict):
    account: str = Field(min_length=1, max_length=100, description="Username of the staff member on duty.")
    department: str | None = Field(None, max_length=64, description="Organisation code; none: the hotline.")
    starts_at: datetime
    ends_at: datetime

    @model_validator(mode="after")
    def _ordered(self) -> DutyIn:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("give starts_at and ends_at with their time zone")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must come after starts_at")
        return self


class DutyOut(BaseModel):
    id: int
    account: str
    department: str | None
    starts_at: datetime
    ends_at: datetime


class AlarmOut(BaseModel):
    """An emergency on the live board."""

    number: str
    category_name: str
    description: str
    address: str
    lon: float | None
    lat: float | None
    department: str | None
    status: str
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    escalated: bool
    waiting_seconds: int = Field(description="Seconds since the report, or until it was acknowledged.")


class ProjectIn(Strict):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    department: str | None = Field(None, max_length=64, description="Organisation code of the department.")


class ProjectRatingIn(Strict):
    level: int = Field(ge=1, le=5, description="1 very dissatisfied … 5 very satisfied.")
    comment: str = Field("", max_length=2000)


class ProjectOut(BaseModel):
    code: str
    name_zh: str
    name_en: str
    description: str
    department: str | None
    ratings: int
    average: float | None
    distribution: dict[str, int] = Field(description="Ratings per level, '1' to '5'.")
    my_level: int | None = None


class MilestoneIn(Strict):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    due_on: date
    progress: int = Field(
        ge=0, le=100, description="The project's progress, in %, once this step is reached."
    )


class MilestoneOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str
    due_on: date
    progress: int
    reached_on: date | None


class MilestoneReachedIn(Strict):
    reached_on: date | None = Field(None, description="Default: today.")


class ProjectDetailOut(ProjectOut):
    progress: int = Field(description="How far the project is, 0-100 %.")
    milestones: list[MilestoneOut]
    proposals: list[int] = Field(description="Ids of the residents' proposals this project carries out.")


ProposalState = Literal["open", "evaluating", "accepted", "rejected", "withdrawn"]  # models.PROPOSAL_STATES
FlagReason = Literal["spam", "offensive", "off_topic", "other"]  # models.FLAG_REASONS


# Texts whose surrounding blanks do not count towards their length (a comment of spaces is empty).
ProposalTitle = Annotated[str, StringConstraints(strip_whitespace=True, min_length=4, max_length=200)]
ProposalBody = Annotated[str, StringConstraints(strip_whitespace=True, min_length=15, max_length=8000)]
AnswerText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=8000)]
CommentText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class ProposalIn(Strict):
    title: ProposalTitle
    body: ProposalBody
    community: str | None = Field(
        None, max_length=64, description="Org-unit code of the community it concerns."
    )


class ProposalAnswerIn(Strict):
    state: Literal["evaluating", "accepted", "rejected"]
    answer: AnswerText
    project: str | None = Field(
        None, max_length=64, description="Code of the project that carries an accepted proposal out."
    )


class ProposalOut(BaseModel):
    id: int
    title: str
    body: str
    author: str = Field(description="The author's masked name.")
    community: str | None
    state: ProposalState
    supports: int
    threshold: int
    threshold_reached: bool
    supports_close_at: datetime
    collecting: bool = Field(description="Whether supports are still taken.")
    answer: str
    answered_at: datetime | None
    project: str | None
    progress: int | None = Field(description="The carrying project's progress, once there is one.")
    comments: int
    hidden: bool
    created_at: datetime
    supported: bool | None = Field(None, description="Whether the caller supports it (signed-in callers).")
    mine: bool = False


class CommentIn(Strict):
    body: CommentText


class CommentOut(BaseModel):
    id: int
    author: str
    body: str = Field(description="Empty while the comment is hidden by moderation.")
    official: bool
    hidden: bool
    created_at: datetime


class FlagIn(Strict):
    target: Literal["proposal", "comment"]
    id: int = Field(ge=1)
    reason: FlagReason
    note: str = Field("", max_length=500)


class ModerationDecisionIn(Strict):
    hide: bool = Field(description="True hides the item; false keeps (or restores) it.")


class FlaggedOut(BaseModel):
    """An item in the moderators' queue."""

    target: Literal["proposal", "comment"]
    id: int
    proposal_id: int
    text: str
    author: str
    flags: int
    reasons: dict[str, int]
    hidden: bool
    created_at: datetime


class SupportsOut(BaseModel):
    supports: int
    threshold: int
    threshold_reached: bool
    supported: bool
    remaining: int = Field(description="Supports the caller may still give.")


QuestionKind = Literal["single", "multiple", "scale", "text"]  # models.QUESTION_KINDS


class OptionIn(Strict):
    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    label: str = Field(min_length=1, max_length=200)


class QuestionIn(Strict):
    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    kind: QuestionKind
    text: str = Field(min_length=1, max_length=500)
    required: bool = True
    options: list[OptionIn] = Field(default_factory=list, max_length=50)
    max_choices: int | None = Field(None, ge=1, le=50, description="multiple: most options one may pick.")
    scale_min: int = Field(1, ge=0, le=10)
    scale_max: int = Field(5, ge=1, le=10)

    @model_validator(mode="after")
    def _fits_kind(self) -> QuestionIn:
        choice = self.kind in ("single", "multiple")
        if choice and len(self.options) < 2:
            raise ValueError(f"question {self.key}: a choice needs at least two options")
        if not choice and self.options:
            raise ValueError(f"question {self.key}: only choices have options")
        if len({option.key for option in self.options}) != len(self.options):
            raise ValueError(f"question {self.key}: option keys must be unique")
        if self.kind == "scale" and self.scale_min >= self.scale_max:
            raise ValueError(f"question {self.key}: scale_min must be below scale_max")
        return self


class SurveyIn(Strict):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    questions: list[QuestionIn] = Field(min_length=1, max_length=100)
    opens_at: AwareDatetime = Field(description="With its zone, such as 2026-12-01T08:00:00+08:00.")
    closes_at: AwareDatetime
    community: str | None = Field(
        None, max_length=64, description="Org-unit code: only residents there answer."
    )
    results_public: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> SurveyIn:
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        if len({question.key for question in self.questions}) != len(self.questions):
            raise ValueError("question keys must be unique")
        return self


class SurveyOut(BaseModel):
    code: str
    title: str
    description: str
    questions: list[QuestionIn]
    opens_at: datetime
    closes_at: datetime
    community: str | None
    results_public: bool
    state: Literal["upcoming", "open", "closed"]
    responses: int
    answered: bool | None = Field(None, description="Whether the caller has answered (signed-in residents).")


class SurveyAnswersIn(Strict):
    """Answers by question key: an option key (single), a list of option keys (multiple), an integer
    (scale) or a string (text)."""

    answers: dict[str, str | int | list[str]] = Field(max_length=100)


class QuestionResult(BaseModel):
    key: str
    kind: QuestionKind
    text: str
    answered: int = Field(description="Responses that answered this question.")
    options: dict[str, int] | None = Field(None, description="Choices: how often each option was picked.")
    distribution: dict[str, int] | None = Field(None, description="Scales: answers per value.")
    average: float | None = None
    texts: list[str] | None = Field(None, description="Free text: the latest answers (organisers only).")


class SurveyResultsOut(BaseModel):
    code: str
    title: str
    responses: int
    questions: list[QuestionResult]
