"""Market tables: merchants (from the onboarding application to approval), their stores with an H3 cell for
nearby search, coupon batches (WeChat 卡券 kinds) and the stores they apply at, the claimed coupons, the
per-person claim tallies that enforce limits under concurrency, and the coupon event log reports read."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column

from cityhub.kernel.db import Base, UTCDateTime, utcnow
from cityhub.kernel.models import BigId

MERCHANT_STATES = ("pending", "approved", "rejected", "suspended")
BATCH_KINDS = ("CASH", "DISCOUNT", "GIFT", "GROUPON", "GENERAL")
BATCH_STATES = ("draft", "active", "paused", "ended")
COUPON_STATES = ("claimed", "redeemed", "expired", "voided")
EVENT_KINDS = ("view", "claim", "redeem", "expire", "transfer", "void")
# H3 resolution of the store index: cells of ~5 km² (edge ~1.2 km), so a 3 km circle needs a few dozen.
STORE_CELL_RES = 7


class Merchant(Base):
    """A business on the platform. It starts as an onboarding application of a signed-in person; approval
    creates the identity organisation its owner and clerks act for."""

    __tablename__ = "market_merchant"
    __table_args__ = (CheckConstraint(f"status IN {MERCHANT_STATES!r}", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32), index=True)
    licence_number: Mapped[str] = mapped_column(String(64))
    contact_phone: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    # [{"name", "sha256", "content_type"}]: licence scans and permits, stored under the uploads folder
    documents: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    applicant_account_id: Mapped[int] = mapped_column(Integer, index=True)
    home_unit_id: Mapped[int] = mapped_column(Integer)  # identity org unit (community) it is at home in
    organization_id: Mapped[int | None] = mapped_column(Integer, unique=True)  # set on approval
    review_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Store(Base):
    """A place where a merchant serves customers; ``cell`` is its H3 cell at STORE_CELL_RES."""

    __tablename__ = "market_store"
    # The nearby search reads (cell, listed) → (id, lon, lat) from the index alone.
    __table_args__ = (Index("ix_market_store_cell", "cell", "listed", "id", "lon", "lat"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("market_merchant.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(400))
    phone: Mapped[str | None] = mapped_column(String(32))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    cell: Mapped[str] = mapped_column(String(16))
    # {"mon": [["09:00", "21:00"]], ...} in the platform's time zone; a missing day is closed
    opening_hours: Mapped[dict[str, list[list[str]]]] = mapped_column(JSON, default=dict)
    photos: Mapped[list[str]] = mapped_column(JSON, default=list)  # sha256 names of uploaded images
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # the owner's choice
    listed: Mapped[bool] = mapped_column(Boolean, default=True)  # active and the merchant approved
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BatchShard(Base):
    """One part of a batch's stock. Every claim takes one coupon from one shard by a conditional update
    (``claimed < quota``), so the batch never oversells; with several shards simultaneous claims, and the
    redemptions counted here too, mostly touch different rows instead of queueing for one."""

    __tablename__ = "market_batch_shard"
    __table_args__ = (CheckConstraint("claimed <= quota", name="quota"),)

    batch_id: Mapped[int] = mapped_column(ForeignKey("market_batch.id"), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    quota: Mapped[int] = mapped_column(Integer)
    claimed: Mapped[int] = mapped_column(Integer, default=0)
    redeemed: Mapped[int] = mapped_column(Integer, default=0)


def _shard_total(column: Any, batch_id: Any) -> Any:
    total = select(func.coalesce(func.sum(column), 0)).where(BatchShard.batch_id == batch_id)
    return column_property(total.correlate_except(BatchShard).scalar_subquery(), deferred=True)


class Batch(Base):
    """A coupon batch (a WeChat card_id): what a coupon gives, when it is valid, how many exist and how many
    one person may claim. ``claimed`` counts towards ``stock`` by a conditional update."""

    __tablename__ = "market_batch"
    __table_args__ = (
        CheckConstraint(f"kind IN {BATCH_KINDS!r}", name="kind"),
        CheckConstraint(f"status IN {BATCH_STATES!r}", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("market_merchant.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    least_cost_cents: Mapped[int] = mapped_column(Integer, default=0)  # CASH: spend at least this
    reduce_cost_cents: Mapped[int] = mapped_column(Integer, default=0)  # CASH: to take this off
    discount_percent: Mapped[int | None] = mapped_column(Integer)  # DISCOUNT: 20 = 20 % off
    gift: Mapped[str | None] = mapped_column(String(200))  # GIFT: what the holder receives
    deal_detail: Mapped[str | None] = mapped_column(Text)  # GROUPON: what the voucher buys
    face_value_cents: Mapped[int] = mapped_column(Integer, default=0)  # GIFT/GROUPON/GENERAL value counted
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)  # fixed range
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_days: Mapped[int | None] = mapped_column(Integer)  # or: valid for N days after the claim
    claim_from: Mapped[datetime] = mapped_column(UTCDateTime)
    claim_until: Mapped[datetime] = mapped_column(UTCDateTime)
    stock: Mapped[int] = mapped_column(Integer)  # the sum of the shards' quotas
    shards: Mapped[int] = mapped_column(Integer, default=1)
    # Read-only totals over the shards, loaded when asked for (never on the claim path).
    claimed: Mapped[int] = _shard_total(BatchShard.claimed, id)
    redeemed: Mapped[int] = _shard_total(BatchShard.redeemed, id)
    per_person_limit: Mapped[int] = mapped_column(Integer, default=1)
    per_day_limit: Mapped[int | None] = mapped_column(Integer)
    transferable: Mapped[bool] = mapped_column(Boolean, default=False)
    stackable: Mapped[bool] = mapped_column(Boolean, default=False)
    all_stores: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BatchStore(Base):
    """A store a batch applies at (when the batch is not for all the merchant's stores)."""

    __tablename__ = "market_batch_store"

    batch_id: Mapped[int] = mapped_column(ForeignKey("market_batch.id"), primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("market_store.id"), primary_key=True)


class Coupon(Base):
    """One claimed code of a batch: claimed → redeemed | expired | voided. Redeeming is a conditional update
    from "claimed", so it happens once; ``redemption_key`` makes a POS retry answer the same."""

    __tablename__ = "market_coupon"
    __table_args__ = (
        CheckConstraint(f"status IN {COUPON_STATES!r}", name="status"),
        Index("ix_market_coupon_holder", "person_id", "status"),
        Index("ix_market_coupon_batch", "batch_id", "status"),
        Index("ix_market_coupon_due", "status", "valid_until"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("market_batch.id"))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    person_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="claimed")
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_store_id: Mapped[int | None] = mapped_column(ForeignKey("market_store.id"))
    redeemed_by: Mapped[str | None] = mapped_column(String(200))
    redemption_key: Mapped[str | None] = mapped_column(String(64))
    redeemed_value_cents: Mapped[int | None] = mapped_column(Integer)
    transferred_from: Mapped[int | None] = mapped_column(Integer)  # the person who gave it on


class ClaimTally(Base):
    """Coupons one person has claimed of one batch (the per-person limit is a conditional update here)."""

    __tablename__ = "market_claim_tally"

    batch_id: Mapped[int] = mapped_column(ForeignKey("market_batch.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claims: Mapped[int] = mapped_column(Integer, default=0)


class DailyClaimTally(Base):
    """Coupons one person has claimed of one batch on one local day (the per-day limit)."""

    __tablename__ = "market_daily_claim_tally"

    batch_id: Mapped[int] = mapped_column(ForeignKey("market_batch.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    claims: Mapped[int] = mapped_column(Integer, default=0)


class CouponEvent(Base):
    """What happened to a batch's coupons, one row each, written in the change's transaction: the source of
    the merchant reports (views, claims, redemptions, expiries, transfers)."""

    __tablename__ = "market_coupon_event"
    __table_args__ = (
        CheckConstraint(f"kind IN {EVENT_KINDS!r}", name="kind"),
        # Covering the reports: a merchant's range of days is read from the index alone.
        Index(
            "ix_market_coupon_event_merchant_day",
            "merchant_id",
            "day",
            "kind",
            "person_id",
            "value_cents",
            "batch_id",
            "store_id",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(Integer)
    batch_id: Mapped[int] = mapped_column(Integer)
    coupon_id: Mapped[int | None] = mapped_column(BigId)
    store_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[int | None] = mapped_column(Integer)
    value_cents: Mapped[int] = mapped_column(Integer, default=0)
    device: Mapped[str | None] = mapped_column(String(100))  # of a claim: the X-Device-Id, else the address
    day: Mapped[date] = mapped_column(Date)  # local day in the platform's time zone
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Push(Base):
    """A merchant's offer of a batch to a segment of residents who agreed to marketing; the merchant learns
    how many it reached, never who."""

    __tablename__ = "market_push"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("market_merchant.id"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("market_batch.id"), index=True)
    segment: Mapped[dict[str, Any]] = mapped_column(JSON)
    matched: Mapped[int] = mapped_column(Integer)  # consenting residents in the segment
    reached: Mapped[int] = mapped_column(Integer)  # of them, those not offered this batch before
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PushRecipient(Base):
    """Who was offered a batch (kept inside the platform): nobody gets the same batch twice."""

    __tablename__ = "market_push_recipient"

    batch_id: Mapped[int] = mapped_column(ForeignKey("market_batch.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    push_id: Mapped[int] = mapped_column(ForeignKey("market_push.id"), index=True)


LEDGER_KINDS = ("commission", "listing_fee", "settlement")
ACCOUNTS = ("merchant_receivable", "commission_revenue", "listing_revenue", "operator_cash")


class CommissionRule(Base):
    """What the operator earns on a merchant's redemptions: a share of the value redeemed (basis points) or a
    fixed amount per coupon, for one merchant or for a merchant category, from a moment on. The most
    specific rule in force at the redemption applies (the merchant's own before its category's)."""

    __tablename__ = "market_commission_rule"
    __table_args__ = (
        CheckConstraint("(merchant_id IS NULL) <> (category IS NULL)", name="one_target"),
        CheckConstraint("rate_bp >= 0 AND rate_bp <= 10000 AND fixed_cents >= 0", name="amounts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("market_merchant.id"), index=True)
    category: Mapped[str | None] = mapped_column(String(32), index=True)
    rate_bp: Mapped[int] = mapped_column(Integer, default=0)  # 150 = 1.5 % of the value redeemed
    fixed_cents: Mapped[int] = mapped_column(Integer, default=0)  # per coupon redeemed
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerTransaction(Base):
    """One business fact in money: a commission on a redemption, a listing fee, a merchant's payment. Its
    entries balance; ``source`` makes posting the same fact twice impossible (event handlers run at least
    once)."""

    __tablename__ = "market_ledger_txn"
    __table_args__ = (
        CheckConstraint(f"kind IN {LEDGER_KINDS!r}", name="kind"),
        Index("ix_market_ledger_txn_merchant_month", "merchant_id", "month"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("market_merchant.id"))
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(200), unique=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM in the platform's zone
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("market_commission_rule.id"))
    basis_cents: Mapped[int] = mapped_column(Integer, default=0)  # the value the commission was taken on
    memo: Mapped[str] = mapped_column(String(400), default="")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerEntry(Base):
    """One side of a transaction: an amount debited or credited to an account (for a merchant)."""

    __tablename__ = "market_ledger_entry"
    __table_args__ = (
        CheckConstraint(f"account IN {ACCOUNTS!r}", name="account"),
        CheckConstraint("debit_cents >= 0 AND credit_cents >= 0", name="amounts"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    txn_id: Mapped[int] = mapped_column(ForeignKey("market_ledger_txn.id"), index=True)
    account: Mapped[str] = mapped_column(String(32))
    merchant_id: Mapped[int] = mapped_column(Integer, index=True)
    debit_cents: Mapped[int] = mapped_column(Integer, default=0)
    credit_cents: Mapped[int] = mapped_column(Integer, default=0)


class ReportDay(Base):
    """A closed day of a merchant's coupon events, counted once (the datacube's daily row): daily reports
    read these for past days and the events only for the days not rolled up yet (today)."""

    __tablename__ = "market_report_day"

    merchant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    events: Mapped[int] = mapped_column(Integer)
    people: Mapped[int] = mapped_column(Integer)
    value_cents: Mapped[int] = mapped_column(BigInteger, default=0)


class RollupMark(Base):
    """The last day whose events are all in ``market_report_day`` (one row)."""

    __tablename__ = "market_rollup_mark"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_day: Mapped[date] = mapped_column(Date)


DEAL_STATES = ("open", "succeeded", "failed", "cancelled")
JOIN_STATES = ("pending", "paid", "issued", "refunding", "refunded", "failed")


class Deal(Base):
    """A group-buying deal: residents pay to join before the deadline; with at least ``min_participants``
    paid joins at closing each gets a voucher of the deal's GROUPON batch, otherwise every payment is
    refunded. ``paid`` counts joins by a conditional update that only an open deal before its deadline
    takes, so the closing and late joins agree on who is in."""

    __tablename__ = "market_deal"
    __table_args__ = (
        CheckConstraint(f"status IN {DEAL_STATES!r}", name="status"),
        CheckConstraint("min_participants >= 1 AND price_cents >= 0", name="terms"),
        CheckConstraint("max_participants IS NULL OR paid <= max_participants", name="capacity"),
        Index("ix_market_deal_due", "status", "deadline"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("market_merchant.id"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("market_batch.id"), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    price_cents: Mapped[int] = mapped_column(Integer)  # what one participant pays
    original_price_cents: Mapped[int | None] = mapped_column(Integer)  # shown struck through
    min_participants: Mapped[int] = mapped_column(Integer)
    max_participants: Mapped[int | None] = mapped_column(Integer)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")
    paid: Mapped[int] = mapped_column(Integer, default=0)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DealJoin(Base):
    """One person's place in a deal and its payment: pending → paid → issued (voucher) | refunding →
    refunded; a declined payment is ``failed`` and may be tried again."""

    __tablename__ = "market_deal_join"
    __table_args__ = (
        CheckConstraint(f"status IN {JOIN_STATES!r}", name="status"),
        UniqueConstraint("deal_id", "person_id"),
        Index("ix_market_deal_join_deal", "deal_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("market_deal.id"))
    person_id: Mapped[int] = mapped_column(Integer)
    account_id: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    amount_cents: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(16))
    payment_reference: Mapped[str] = mapped_column(String(40), unique=True)
    provider_transaction: Mapped[str | None] = mapped_column(String(64))
    refund_reference: Mapped[str | None] = mapped_column(String(40), unique=True)
    coupon_id: Mapped[int | None] = mapped_column(BigId)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


POINTS_KINDS = ("earn", "redeem", "reverse", "adjust")


class MemberProgram(Base):
    """A merchant's member card: points earned per yuan spent, levels reached by lifetime points, rewards
    bought with points; with ``accepts_citizen_card`` the till may know a member by the citizen card QR."""

    __tablename__ = "market_member_program"
    __table_args__ = (CheckConstraint("points_per_yuan >= 0", name="rate"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("market_merchant.id"), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    points_per_yuan: Mapped[int] = mapped_column(Integer, default=1)
    # [{"name": "银卡", "name_en": "Silver", "min_points": 1000, "discount_percent": 5}], by min_points
    levels: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    accepts_citizen_card: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Membership(Base):
    """One person's member card of one program; ``points`` is spent by a conditional update
    (``points >= cost``), ``lifetime_points`` only grows and sets the level."""

    __tablename__ = "market_membership"
    __table_args__ = (
        UniqueConstraint("program_id", "person_id"),
        CheckConstraint("points >= 0 AND lifetime_points >= 0", name="points"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("market_member_program.id"))
    person_id: Mapped[int] = mapped_column(Integer, index=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # shown as the card's QR
    points: Mapped[int] = mapped_column(Integer, default=0)
    lifetime_points: Mapped[int] = mapped_column(Integer, default=0)
    level: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reward(Base):
    """What members buy with points; ``redeemed`` counts against ``stock`` by a conditional update."""

    __tablename__ = "market_reward"
    __table_args__ = (
        CheckConstraint("points_cost > 0", name="cost"),
        CheckConstraint("stock IS NULL OR redeemed <= stock", name="stock"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("market_member_program.id"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    points_cost: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int | None] = mapped_column(Integer)
    redeemed: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PointsEntry(Base):
    """One change of a member's points (a purchase, a reward, a reversal), with the balance after it; the
    till's ``client_key`` makes a retried request answer the same instead of counting twice."""

    __tablename__ = "market_points_entry"
    __table_args__ = (
        CheckConstraint(f"kind IN {POINTS_KINDS!r}", name="kind"),
        UniqueConstraint("program_id", "client_key"),
        Index("ix_market_points_entry_member", "membership_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("market_member_program.id"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("market_membership.id"))
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(Integer)  # signed: + earned, − spent
    balance_after: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int | None] = mapped_column(Integer)  # of an earning purchase
    reward_id: Mapped[int | None] = mapped_column(ForeignKey("market_reward.id"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("market_store.id"))
    client_key: Mapped[str | None] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
