"""Market input and output models. Nothing here carries a resident's identity to a merchant: merchants see
codes, counts and amounts, never who holds a coupon."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from cityhub.domains.market.models import BATCH_KINDS

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-4]):[0-5]\d$")

Category = Literal[
    "food",
    "grocery",
    "pharmacy",
    "beauty",
    "education",
    "housekeeping",
    "repair",
    "fitness",
    "entertainment",
    "other",
]
MERCHANT_CATEGORIES: tuple[str, ...] = get_args(Category)
BatchKind = Literal["CASH", "DISCOUNT", "GIFT", "GROUPON", "GENERAL"]
assert set(BATCH_KINDS) == set(get_args(BatchKind))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MerchantIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    name_en: str | None = Field(None, max_length=200)
    category: Category
    licence_number: str = Field(min_length=6, max_length=64, pattern=r"^[0-9A-Za-z-]+$")
    contact_phone: str = Field(min_length=5, max_length=32, pattern=r"^[0-9+\- ]+$")
    description: str = Field("", max_length=2000)
    community: str = Field(min_length=1, max_length=64, description="Code of the community it is at home in.")


class EnrolIn(MerchantIn):
    organization: str = Field(min_length=1, max_length=64, description="Code of the merchant organisation.")
    owner_username: str = Field(min_length=1, max_length=64)
    community: str = Field("", max_length=64, description="Ignored: the organisation's home unit is used.")


class DocumentOut(BaseModel):
    name: str
    sha256: str
    content_type: str


class MerchantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    name_en: str | None
    category: str
    licence_number: str
    contact_phone: str
    description: str
    status: str
    documents: list[DocumentOut]
    review_reason: str | None
    reviewed_at: datetime | None
    created_at: datetime


class ReviewIn(_Strict):
    decision: Literal["approve", "reject", "suspend"]
    reason: str | None = Field(None, max_length=1000)

    @model_validator(mode="after")
    def _reason_when_refusing(self) -> ReviewIn:
        if self.decision != "approve" and not self.reason:
            raise ValueError("give the merchant a reason when rejecting or suspending")
        return self


def check_opening_hours(hours: dict[str, list[list[str]]]) -> dict[str, list[list[str]]]:
    """Weekday → list of [open, close] "HH:MM" spans, each closing after it opens (24:00 allowed)."""
    for day, spans in hours.items():
        if day not in WEEKDAYS:
            raise ValueError(f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
        if len(spans) > 4:
            raise ValueError(f"{day}: at most 4 opening spans a day")
        for span in spans:
            if len(span) != 2 or not all(_HHMM.match(value) for value in span):
                raise ValueError(f'{day}: a span is ["HH:MM", "HH:MM"]')
            if span[0] >= span[1]:
                raise ValueError(f"{day}: {span[0]}-{span[1]} closes before it opens")
    return hours


class StoreIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    name_en: str | None = Field(None, max_length=200)
    category: Category
    address: str = Field(min_length=1, max_length=400)
    phone: str | None = Field(None, max_length=32)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    opening_hours: dict[str, list[list[str]]] = Field(default_factory=dict)
    active: bool = True

    _hours = field_validator("opening_hours")(check_opening_hours)


class StoreOut(BaseModel):
    id: int
    merchant_id: int
    merchant_name: str
    name: str
    name_en: str | None
    category: str
    address: str
    phone: str | None
    lon: float
    lat: float
    opening_hours: dict[str, list[list[str]]]
    active: bool
    open_now: bool
    distance_m: float | None = None


class BatchIn(_Strict):
    kind: BatchKind
    title: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=2000)
    least_cost_cents: int = Field(0, ge=0, le=100_000_000)
    reduce_cost_cents: int = Field(0, ge=0, le=100_000_000)
    discount_percent: int | None = Field(None, ge=1, le=99)
    gift: str | None = Field(None, max_length=200)
    deal_detail: str | None = Field(None, max_length=2000)
    face_value_cents: int = Field(0, ge=0, le=100_000_000)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int | None = Field(None, ge=1, le=366)
    claim_from: datetime | None = None
    claim_until: datetime
    stock: int = Field(ge=1, le=10_000_000)
    per_person_limit: int = Field(1, ge=1, le=100)
    per_day_limit: int | None = Field(None, ge=1, le=100)
    transferable: bool = False
    stackable: bool = False
    store_ids: list[int] = Field(default_factory=list, max_length=500, description="Empty: every store.")
    status: Literal["draft", "active"] = "active"

    @model_validator(mode="after")
    def _consistent(self) -> BatchIn:
        for moment in (self.valid_from, self.valid_until, self.claim_from, self.claim_until):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("give times with a zone offset, e.g. 2026-12-01T00:00:00+08:00")
        fixed = self.valid_from is not None and self.valid_until is not None
        if fixed == (self.valid_days is not None) or (self.valid_from is None) != (self.valid_until is None):
            raise ValueError("give either valid_from and valid_until, or valid_days")
        if fixed and self.valid_until <= self.valid_from:  # type: ignore[operator]
            raise ValueError("valid_until must come after valid_from")
        if self.claim_from is not None and self.claim_until <= self.claim_from:
            raise ValueError("claim_until must come after claim_from")
        if fixed and self.claim_until > self.valid_until:  # type: ignore[operator]
            raise ValueError("claiming must end by the end of the validity")
        if self.per_day_limit is not None and self.per_day_limit > self.per_person_limit:
            raise ValueError("per_day_limit cannot exceed per_person_limit")
        self._check_kind()
        return self

    def _check_kind(self) -> None:
        if self.kind == "CASH":
            if self.reduce_cost_cents <= 0:
                raise ValueError("a CASH coupon takes reduce_cost_cents > 0 off")
            if self.least_cost_cents and self.least_cost_cents < self.reduce_cost_cents:
                raise ValueError("least_cost_cents must be at least reduce_cost_cents")
        elif self.kind == "DISCOUNT" and self.discount_percent is None:
            raise ValueError("a DISCOUNT coupon needs discount_percent (1-99)")
        elif self.kind == "GIFT" and not self.gift:
            raise ValueError("a GIFT coupon names its gift")
        elif self.kind == "GROUPON" and not self.deal_detail:
            raise ValueError("a GROUPON voucher describes its deal (deal_detail)")


class BatchOut(BaseModel):
    id: int
    merchant_id: int
    merchant_name: str
    kind: str
    title: str
    description: str
    least_cost_cents: int
    reduce_cost_cents: int
    discount_percent: int | None
    gift: str | None
    deal_detail: str | None
    face_value_cents: int
    valid_from: datetime | None
    valid_until: datetime | None
    valid_days: int | None
    claim_from: datetime
    claim_until: datetime
    stock: int
    claimed: int
    remaining: int
    redeemed: int
    per_person_limit: int
    per_day_limit: int | None
    transferable: bool
    stackable: bool
    store_ids: list[int]
    status: str


class BatchStatusIn(_Strict):
    status: Literal["active", "paused", "ended"]


class StockIn(_Strict):
    add: int = Field(ge=1, le=10_000_000, description="Coupons added to the batch's stock.")


class CouponOut(BaseModel):
    code: str
    batch_id: int
    merchant_name: str
    kind: str
    title: str
    status: str
    claimed_at: datetime
    valid_from: datetime
    valid_until: datetime
    redeemed_at: datetime | None
    transferable: bool
    transferred: bool


class TransferIn(_Strict):
    to_username: str = Field(min_length=1, max_length=64)


class PosCouponOut(BaseModel):
    """What a counter sees of a scanned code: the coupon, never its holder."""

    code: str
    batch_id: int
    kind: str
    title: str
    status: str
    valid_from: datetime
    valid_until: datetime
    usable_now: bool
    reason: str | None


# The till's own key for one request: a retry with the same key answers the first request again.
ClientKey = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class RedemptionIn(_Strict):
    codes: list[str] = Field(min_length=1, max_length=10)
    store_id: int
    amount_cents: int = Field(0, ge=0, le=100_000_000, description="The order's amount before coupons.")
    client_key: ClientKey

    @field_validator("codes")
    @classmethod
    def _distinct(cls, codes: list[str]) -> list[str]:
        cleaned = [code.replace(" ", "") for code in codes]
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("a code appears twice")
        return cleaned


class RedeemedCoupon(BaseModel):
    code: str
    batch_id: int
    kind: str
    title: str
    value_cents: int


class RedemptionOut(BaseModel):
    client_key: str
    store_id: int
    redeemed_at: datetime
    coupons: list[RedeemedCoupon]
    total_value_cents: int
    replayed: bool


class StaffIn(_Strict):
    username: str = Field(min_length=1, max_length=64)
    role: Literal["merchant_clerk", "merchant_owner"] = "merchant_clerk"


class StaffOut(BaseModel):
    assignment_id: int
    username: str
    role: str


class PosKeyIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    expires_at: datetime | None = None


class PosKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    secret: str | None = Field(None, description="Shown once, when the key is made.")


class NearbyPageOut(BaseModel):
    items: list[StoreOut]
    limit: int
    offset: int
    has_more: bool
    radius_m: float


class StorePageOut(BaseModel):
    store: StoreOut
    batches: list[BatchOut]


class ReportRowOut(BaseModel):
    key: str = Field(description="The day (YYYY-MM-DD), batch id or store id.")
    label: str
    views: int
    view_people: int
    claims: int
    claim_people: int
    redemptions: int
    redemption_people: int
    expiries: int
    expiry_people: int
    transfers: int
    transfer_people: int
    redeemed_value_cents: int
    claim_rate: float | None = Field(description="People who claimed over people who viewed.")
    redemption_rate: float | None = Field(description="Redemptions over claims.")


class ReportOut(BaseModel):
    merchant_id: int
    first_day: str
    last_day: str
    group: str
    rows: list[ReportRowOut]


class PushIn(_Strict):
    """Who should be offered the batch: residents of these communities (codes; none: the merchant's own
    community) aged between the bounds, of those who agreed to offers from merchants."""

    communities: list[str] = Field(default_factory=list, max_length=20)
    age_min: int | None = Field(None, ge=0, le=120)
    age_max: int | None = Field(None, ge=0, le=120)

    @model_validator(mode="after")
    def _ages(self) -> PushIn:
        if self.age_min is not None and self.age_max is not None and self.age_max < self.age_min:
            raise ValueError("age_max must be at least age_min")
        return self


class PushOut(BaseModel):
    id: int
    batch_id: int
    segment: dict[str, object]
    matched: int = Field(description="Residents in the segment who agreed to offers.")
    reached: int = Field(description="Of them, those offered this batch for the first time now.")
    created_at: datetime


class CommissionRuleIn(_Strict):
    merchant_id: int | None = None
    category: Category | None = None
    rate_bp: int = Field(0, ge=0, le=10_000, description="Basis points of the value redeemed (150 = 1.5 %).")
    fixed_cents: int = Field(0, ge=0, le=100_000, description="Per coupon redeemed.")
    valid_from: datetime | None = Field(None, description="Default: now.")

    @model_validator(mode="after")
    def _one_target(self) -> CommissionRuleIn:
        if (self.merchant_id is None) == (self.category is None):
            raise ValueError("give either merchant_id or category")
        if self.valid_from is not None and self.valid_from.tzinfo is None:
            raise ValueError("give valid_from with a zone offset")
        return self


class CommissionRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    merchant_id: int | None
    category: str | None
    rate_bp: int
    fixed_cents: int
    valid_from: datetime
    created_by: str


class ChargeIn(_Strict):
    kind: Literal["listing_fee", "settlement"]
    amount_cents: int = Field(ge=1, le=1_000_000_000)
    reference: str = Field(
        min_length=1, max_length=100, description="Unique per merchant: an invoice or transfer."
    )
    memo: str = Field("", max_length=400)


class StatementLine(BaseModel):
    at: datetime
    kind: str
    memo: str
    basis_cents: int = Field(description="The value redeemed a commission was taken on.")
    charged_cents: int
    paid_cents: int


class StatementOut(BaseModel):
    merchant_id: int
    merchant_name: str
    month: str
    opening_balance_cents: int
    commission_cents: int
    listing_fee_cents: int
    paid_cents: int
    closing_balance_cents: int
    lines: list[StatementLine]


class RevenueRow(BaseModel):
    merchant_id: int
    merchant_name: str
    commission_cents: int
    listing_fee_cents: int
    paid_cents: int
    owed_cents: int = Field(description="What the merchant owes now, all months together.")


class SuspiciousDevice(BaseModel):
    device: str
    people: int = Field(description="Different people who claimed from it.")
    claims: int


class SuspiciousPerson(BaseModel):
    person_id: int
    name: str = Field(description="Masked.")
    claims: int


class SuspiciousOut(BaseModel):
    days: int
    median_claims_per_person: float
    devices: list[SuspiciousDevice]
    people: list[SuspiciousPerson]


# -- member cards ----------------------------------------------------------------------------------------


class LevelIn(_Strict):
    name: str = Field(min_length=1, max_length=40)
    name_en: str | None = Field(None, max_length=40)
    min_points: int = Field(ge=0, le=100_000_000, description="Lifetime points that reach the level.")
    discount_percent: int | None = Field(
        None,
        ge=1,
        le=99,
        description="The share the level takes off an order (八八折 = 12); the till applies it.",
    )


class ProgramIn(_Strict):
    title: str = Field(min_length=1, max_length=120)
    points_per_yuan: int = Field(
        1, ge=0, le=1000, description="Points per yuan spent, rounded down per purchase."
    )
    levels: list[LevelIn] = Field(default_factory=list, max_length=10)
    accepts_citizen_card: bool = Field(True, description="The till may know a member by the citizen card QR.")
    active: bool = Field(True, description="Paused: nobody joins, earns or spends; balances are kept.")

    @field_validator("levels")
    @classmethod
    def _ladder(cls, levels: list[LevelIn]) -> list[LevelIn]:
        if len({level.name for level in levels}) != len(levels):
            raise ValueError("two levels have the same name")
        if len({level.min_points for level in levels}) != len(levels):
            raise ValueError("two levels start at the same points")
        return sorted(levels, key=lambda level: level.min_points)


class LevelOut(BaseModel):
    name: str
    name_en: str | None = None
    min_points: int
    discount_percent: int | None = None


class RewardIn(_Strict):
    title: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=2000)
    points_cost: int = Field(ge=1, le=100_000_000)
    stock: int | None = Field(
        None, ge=0, le=10_000_000, description="How many there are in all; none: no limit."
    )
    active: bool = True


class RewardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str
    points_cost: int
    stock: int | None
    redeemed: int
    active: bool

    @computed_field  # type: ignore[prop-decorator]
    @property
    def remaining(self) -> int | None:
        return None if self.stock is None else self.stock - self.redeemed


class ProgramOut(BaseModel):
    """A merchant's member card as anyone sees it, with the rewards on offer."""

    merchant_id: int
    merchant_name: str
    title: str
    points_per_yuan: int
    levels: list[LevelOut]
    accepts_citizen_card: bool
    active: bool
    rewards: list[RewardOut]


class LevelCount(BaseModel):
    level: str | None = Field(description="None: below the first level.")
    members: int


class ProgramStatsOut(BaseModel):
    """What a merchant learns of its members: counts and points, never who they are."""

    members: int
    by_level: list[LevelCount]
    points_issued: int = Field(description="Earned on purchases, refunds not taken off.")
    points_reversed: int = Field(description="Taken back on refunds.")
    points_redeemed: int = Field(description="Spent on rewards.")
    points_outstanding: int = Field(description="Held by members now.")
    rewards_redeemed: int


class MemberRowOut(BaseModel):
    number_masked: str
    level: str | None
    points: int
    lifetime_points: int
    joined_at: datetime


class MemberStanding(BaseModel):
    number: str
    level: str | None
    discount_percent: int | None
    points: int
    lifetime_points: int
    next_level: str | None
    points_to_next_level: int | None
    joined_at: datetime


class TillMemberOut(MemberStanding):
    """What the till sees of a member: the card, never the holder."""

    enrolled: bool = Field(False, description="Made a member by this request (a citizen card with enrol).")


class CardOut(MemberStanding):
    merchant_id: int
    merchant_name: str
    title: str


class PointsEntryOut(BaseModel):
    id: int
    kind: str
    points: int
    balance_after: int
    amount_cents: int | None
    reward_id: int | None
    reward_title: str | None
    store_id: int | None
    occurred_at: datetime
    reversed: bool = Field(False, description="An earning whose purchase was refunded (reversed once).")


class CardDetailOut(BaseModel):
    card: CardOut
    qr_svg: str = Field(description="The card's number as a QR code (inline SVG) for the till to scan.")
    history: list[PointsEntryOut] = Field(description="The latest changes of the points, newest first.")
    rewards: list[RewardOut]


class TillCardOut(BaseModel):
    """A member as the till sees it: the card, its latest points entries and the rewards on offer."""

    member: TillMemberOut
    history: list[PointsEntryOut]
    rewards: list[RewardOut]


class MemberRef(_Strict):
    """Who the member is at the till: the member card's number, or a scanned citizen card code."""

    card_number: str | None = Field(None, max_length=40, description="Spaces are ignored.")
    citizen_card: str | None = Field(None, min_length=1, max_length=2000)

    @field_validator("card_number")
    @classmethod
    def _digits_only(cls, number: str | None) -> str | None:
        return None if number is None else number.replace(" ", "")

    @model_validator(mode="after")
    def _one_of(self) -> MemberRef:
        if (self.card_number is None) == (self.citizen_card is None):
            raise ValueError("give either card_number or citizen_card")
        return self


class MemberLookupIn(MemberRef):
    enrol: bool = Field(False, description="With a citizen card: make its holder a member if they are not.")


class PurchaseIn(MemberLookupIn):
    amount_cents: int = Field(ge=1, le=100_000_000, description="What the order cost.")
    store_id: int | None = None
    client_key: ClientKey


class RewardRedemptionIn(MemberRef):
    reward_id: int
    store_id: int | None = None
    client_key: ClientKey


class PointsOut(BaseModel):
    """The till's answer: the points entry written (replayed: the one a first attempt wrote) and the card."""

    entry: PointsEntryOut
    member: TillMemberOut
    replayed: bool


# -- group deals -----------------------------------------------------------------------------------------

# The most participants a deal may take; also the voucher stock of a deal without a cap of its own.
MAX_DEAL_PARTICIPANTS = 100_000


class DealIn(_Strict):
    title: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=2000)
    deal_detail: str = Field(min_length=1, max_length=2000, description="What the voucher buys.")
    price_cents: int = Field(ge=1, le=100_000_000, description="What one participant pays.")
    original_price_cents: int | None = Field(None, ge=1, le=100_000_000, description="Shown struck through.")
    min_participants: int = Field(ge=1, le=MAX_DEAL_PARTICIPANTS)
    max_participants: int | None = Field(None, ge=1, le=MAX_DEAL_PARTICIPANTS, description="None: no cap.")
    deadline: datetime = Field(description="When the deal closes; with a zone offset.")
    valid_days: int = Field(30, ge=1, le=366, description="Days a voucher is valid after it is issued.")
    store_ids: list[int] = Field(default_factory=list, max_length=500, description="Empty: every store.")

    @model_validator(mode="after")
    def _consistent(self) -> DealIn:
        if self.deadline.tzinfo is None:
            raise ValueError("give the deadline with a zone offset, e.g. 2026-12-01T20:00:00+08:00")
        if self.max_participants is not None and self.max_participants < self.min_participants:
            raise ValueError("max_participants cannot be below min_participants")
        if self.original_price_cents is not None and self.original_price_cents <= self.price_cents:
            raise ValueError("original_price_cents must be above price_cents")
        return self


class DealOut(BaseModel):
    """A deal as anyone sees it: how many joined, never who."""

    id: int
    merchant_id: int
    merchant_name: str
    batch_id: int = Field(description="The GROUPON batch whose coupons are the deal's vouchers.")
    title: str
    description: str
    deal_detail: str
    price_cents: int
    original_price_cents: int | None
    min_participants: int
    max_participants: int | None
    deadline: datetime
    valid_days: int
    store_ids: list[int]
    status: Literal["open", "succeeded", "failed", "cancelled"]
    joined: int = Field(description="Participants whose payment counted.")
    closed_at: datetime | None


class DealCheckoutOut(BaseModel):
    deal_id: int
    payment_reference: str
    checkout_url: str = Field(description="The payment provider's checkout; the deal's page comes after it.")


class DealJoinOut(BaseModel):
    """One of my joins: where its payment stands, and the voucher once the deal succeeded."""

    deal_id: int
    title: str
    merchant_name: str
    deal_status: str
    deadline: datetime
    status: Literal["pending", "paid", "issued", "refunding", "refunded", "failed"]
    amount_cents: int
    payment_reference: str
    joined_at: datetime
    paid_at: datetime | None
    refunded_at: datetime | None
    voucher_code: str | None
