"""Claiming, holding, giving on and redeeming coupons.

Claims never oversell and never pass a person's limits, with any number of processes: in one transaction
the person's tallies move by a conditional upsert (``claims < limit``), the coupon row is written, and the
batch's ``claimed`` moves last by a conditional update (``claimed < stock``) — the batch row is the one every
claimant contends for, so it is held for the shortest time. Any refusal rolls the whole claim back.

Redemption is a conditional update from "claimed" to "redeemed": of any number of simultaneous attempts on
one code exactly one succeeds. The till's ``client_key`` makes a retry of the same redemption answer the
same (``replayed``) instead of a conflict. A merchant sees codes and amounts, never the holder.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from cityhub.domains.identity import Principal, account_id_of, person_of_account
from cityhub.domains.market import schemas
from cityhub.domains.market.events import CouponsRedeemed
from cityhub.domains.market.models import (
    Batch,
    BatchShard,
    BatchStore,
    ClaimTally,
    Coupon,
    CouponEvent,
    DailyClaimTally,
    Merchant,
)
from cityhub.domains.market.service.access import REDEEM, merchant_for, person_of, till_store
from cityhub.kernel import events
from cityhub.kernel.db import is_postgres, upsert_into, utcnow
from cityhub.kernel.errors import Conflict, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _

CODE_DIGITS = 12


@dataclass(frozen=True)
class Clock:
    now: datetime
    tz: str

    @property
    def day(self) -> date:
        return self.now.astimezone(ZoneInfo(self.tz)).date()


def new_code() -> str:
    """12 random digits (10^12 codes: guessing one of a million live codes takes a million tries, and claims
    and look-ups are rate limited)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def record(session: Session, clock: Clock, batch: Batch, kind: str, **fields: object) -> None:
    session.execute(
        insert(CouponEvent).values(
            merchant_id=batch.merchant_id,
            batch_id=batch.id,
            kind=kind,
            day=clock.day,
            occurred_at=clock.now,
            **fields,
        )
    )


def claim(
    session: Session, principal: Principal, batch_id: int, tz: str, device: str | None = None
) -> schemas.CouponOut:
    person_id = person_of(principal)
    clock = Clock(utcnow(), tz)
    row = session.execute(
        select(Batch, Merchant.name, Merchant.status)
        .join(Merchant, Merchant.id == Batch.merchant_id)
        .where(Batch.id == batch_id)
    ).one_or_none()
    if row is None or row[0].status == "draft" or row[2] != "approved":
        raise NotFound(_("Batch %(id)s does not exist.", id=batch_id))
    batch, merchant_name = row[0], row[1]
    _check_claimable(batch, clock.now)
    _take(
        session,
        ClaimTally,
        {"batch_id": batch.id, "person_id": person_id},
        batch.per_person_limit,
        _("You have claimed this coupon %(n)s time(s), the most one person may.", n=batch.per_person_limit),
        "claim-limit",
    )
    if batch.per_day_limit is not None:
        _take(
            session,
            DailyClaimTally,
            {"batch_id": batch.id, "person_id": person_id, "day": clock.day},
            batch.per_day_limit,
            _("You have claimed this coupon %(n)s time(s) today; come back tomorrow.", n=batch.per_day_limit),
            "daily-claim-limit",
        )
    coupon = issue(session, clock, batch, person_id, device)
    return _shape(coupon, batch, merchant_name)


def issue(session: Session, clock: Clock, batch: Batch, person_id: int, device: str | None = None) -> Coupon:
    """A new coupon of the batch for the person, off its stock, with its ``claim`` event: the end of a
    claim, and how a group deal gives out its vouchers (so reports and the till treat both alike)."""
    valid_from, valid_until = _validity(batch, clock.now)
    coupon = _insert_coupon(session, batch.id, person_id, clock.now, valid_from, valid_until)
    _take_from_stock(session, batch)
    record(session, clock, batch, "claim", coupon_id=coupon.id, person_id=person_id, device=device)
    return coupon


def _check_claimable(batch: Batch, now: datetime) -> None:
    if batch.status != "active":
        raise Conflict(_("This batch is not being given out now."), slug="not-active")
    if not batch.claim_from <= now < batch.claim_until:
        raise Conflict(_("This coupon cannot be claimed at this time."), slug="outside-claim-period")


def _take_from_stock(session: Session, batch: Batch) -> None:
    """One coupon off the batch's stock, from any shard that has some left, starting at a random one, while
    the batch is still in the state its giver checked (a claim: active; a group deal's vouchers: its draft).

    PostgreSQL first looks for a shard no other claim holds (``SKIP LOCKED``); failing that it waits for one
    with stock, whose count the update checks again once the holder has committed. Only when no shard has
    stock left is the batch sold out.
    """
    start = random.randrange(batch.shards)
    pick = (
        select(BatchShard.shard)
        .where(BatchShard.batch_id == batch.id, BatchShard.claimed < BatchShard.quota)
        .order_by((BatchShard.shard + (batch.shards - start)) % batch.shards)
        .limit(1)
    )
    unchanged = select(Batch.id).where(Batch.id == batch.id, Batch.status == batch.status).exists()
    attempts = [pick.with_for_update(skip_locked=True)] if is_postgres(session) else []
    attempts += [pick] * (batch.shards + 1)
    for chosen in attempts:
        shard = session.execute(
            update(BatchShard)
            .where(
                BatchShard.batch_id == batch.id,
                BatchShard.shard == chosen.scalar_subquery(),
                BatchShard.claimed < BatchShard.quota,
                unchanged,
            )
            .values(claimed=BatchShard.claimed + 1)
            .returning(BatchShard.shard)
        ).scalar_one_or_none()
        if shard is not None:
            return
        if session.execute(pick).scalar_one_or_none() is None:
            break
    raise Conflict(_("All coupons of this batch have been claimed."), slug="sold-out")


def _take(
    session: Session,
    table: type[ClaimTally] | type[DailyClaimTally],
    key: dict[str, object],
    limit: int,
    refusal: str,
    slug: str,
) -> None:
    """One more claim in a tally, unless it is at the limit (insert the first, add to it otherwise)."""
    statement = (
        upsert_into(session, table)
        .values(**key, claims=1)
        .on_conflict_do_update(
            index_elements=list(key), set_={"claims": table.claims + 1}, where=table.claims < limit
        )
        .returning(table.claims)
    )
    if session.execute(statement).scalar_one_or_none() is None:
        raise Conflict(refusal, slug=slug, limit=limit)


def _validity(batch: Batch, now: datetime) -> tuple[datetime, datetime]:
    if batch.valid_days is not None:
        return now, now + timedelta(days=batch.valid_days)
    assert batch.valid_from is not None and batch.valid_until is not None
    return batch.valid_from, batch.valid_until


def _insert_coupon(
    session: Session,
    batch_id: int,
    person_id: int,
    now: datetime,
    valid_from: datetime,
    valid_until: datetime,
) -> Coupon:
    """The new coupon row, under a fresh code (a clash of 12 random digits is rare; ``ON CONFLICT DO
    NOTHING`` answers it without a savepoint, which would cost two more round trips on every claim)."""
    values = {
        "batch_id": batch_id,
        "person_id": person_id,
        "status": "claimed",
        "claimed_at": now,
        "valid_from": valid_from,
        "valid_until": valid_until,
    }
    for _attempt in range(3):
        code = new_code()
        inserted = session.execute(
            upsert_into(session, Coupon)
            .values(code=code, **values)
            .on_conflict_do_nothing(index_elements=["code"])
            .returning(Coupon.id)
        ).scalar_one_or_none()
        if inserted is not None:
            return Coupon(id=inserted, code=code, **values)  # a detached copy for the answer
    raise Conflict(_("Could not issue a code; try again."), slug="code-clash")


def _shape(coupon: Coupon, batch: Batch, merchant_name: str) -> schemas.CouponOut:
    return schemas.CouponOut(
        code=coupon.code,
        batch_id=batch.id,
        merchant_name=merchant_name,
        kind=batch.kind,
        title=batch.title,
        status=coupon.status,
        claimed_at=coupon.claimed_at,
        valid_from=coupon.valid_from,
        valid_until=coupon.valid_until,
        redeemed_at=coupon.redeemed_at,
        transferable=batch.transferable and coupon.status == "claimed",
        transferred=coupon.transferred_from is not None,
    )


def my_coupons(session: Session, principal: Principal, status: str | None) -> list[schemas.CouponOut]:
    person_id = person_of(principal)
    statement = (
        select(Coupon, Batch, Merchant.name)
        .join(Batch, Batch.id == Coupon.batch_id)
        .join(Merchant, Merchant.id == Batch.merchant_id)
        .where(Coupon.person_id == person_id)
        .order_by(Coupon.valid_until, Coupon.id)
    )
    if status:
        statement = statement.where(Coupon.status == status)
    return [_shape(coupon, batch, name) for coupon, batch, name in session.execute(statement)]


def my_coupon(session: Session, principal: Principal, code: str) -> schemas.CouponOut:
    person_id = person_of(principal)
    row = session.execute(
        select(Coupon, Batch, Merchant.name)
        .join(Batch, Batch.id == Coupon.batch_id)
        .join(Merchant, Merchant.id == Batch.merchant_id)
        .where(Coupon.code == code, Coupon.person_id == person_id)
    ).one_or_none()
    if row is None:
        raise NotFound(_("You hold no coupon %(code)s.", code=code))
    return _shape(*row)


def transfer(
    session: Session, principal: Principal, code: str, to_username: str, tz: str
) -> schemas.CouponOut:
    """Give an unused coupon of a transferable batch to another resident (the code stays the same)."""
    person_id = person_of(principal)
    try:
        receiver = person_of_account(session, account_id_of(session, to_username))
    except NotFound as exc:
        raise ValidationProblem(
            _("No resident is called %(name)s.", name=to_username), field="to_username"
        ) from exc
    if receiver == person_id:
        raise ValidationProblem(_("You already hold this coupon."), field="to_username")
    row = session.execute(
        select(Coupon, Batch)
        .join(Batch, Batch.id == Coupon.batch_id)
        .where(Coupon.code == code, Coupon.person_id == person_id)
    ).one_or_none()
    if row is None:
        raise NotFound(_("You hold no coupon %(code)s.", code=code))
    coupon, batch = row
    if not batch.transferable:
        raise Conflict(_("This coupon cannot be given to someone else."), slug="not-transferable")
    moved = session.execute(
        update(Coupon)
        .where(Coupon.id == coupon.id, Coupon.person_id == person_id, Coupon.status == "claimed")
        .values(person_id=receiver, transferred_from=person_id)
    )
    if moved.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(_("Only an unused coupon can be given on."), slug="not-claimed")
    record(session, Clock(utcnow(), tz), batch, "transfer", coupon_id=coupon.id, person_id=person_id)
    session.refresh(coupon)
    merchant_name = session.scalar(select(Merchant.name).where(Merchant.id == batch.merchant_id)) or ""
    return _shape(coupon, batch, merchant_name)


def _usable_reason(coupon: Coupon, now: datetime) -> str | None:
    if coupon.status != "claimed":
        return {"redeemed": _("already redeemed"), "expired": _("expired"), "voided": _("voided")}[
            coupon.status
        ]
    if now < coupon.valid_from:
        return _("not valid yet")
    if now >= coupon.valid_until:
        return _("expired")
    return None


def _merchant_coupon(session: Session, merchant: Merchant, code: str) -> tuple[Coupon, Batch]:
    row = session.execute(
        select(Coupon, Batch)
        .join(Batch, Batch.id == Coupon.batch_id)
        .where(Coupon.code == code.replace(" ", ""), Batch.merchant_id == merchant.id)
    ).one_or_none()
    if row is None:
        raise NotFound(_("No coupon of this merchant has the code %(code)s.", code=code))
    return row[0], row[1]


def look_up(session: Session, principal: Principal, merchant_id: int, code: str) -> schemas.PosCouponOut:
    """What the till shows after scanning, before it redeems."""
    merchant = merchant_for(session, principal, merchant_id, REDEEM)
    coupon, batch = _merchant_coupon(session, merchant, code)
    reason = _usable_reason(coupon, utcnow())
    return schemas.PosCouponOut(
        code=coupon.code,
        batch_id=batch.id,
        kind=batch.kind,
        title=batch.title,
        status=coupon.status,
        valid_from=coupon.valid_from,
        valid_until=coupon.valid_until,
        usable_now=reason is None,
        reason=reason,
    )


def redeem(
    session: Session, principal: Principal, merchant_id: int, data: schemas.RedemptionIn, tz: str
) -> schemas.RedemptionOut:
    """Redeem one order's coupons at a store, all or none."""
    merchant = merchant_for(session, principal, merchant_id, REDEEM)
    store = till_store(session, merchant, data.store_id)
    held = [_merchant_coupon(session, merchant, code) for code in data.codes]
    if all(coupon.status == "redeemed" and coupon.redemption_key == data.client_key for coupon, _b in held):
        if any(coupon.redeemed_store_id != data.store_id for coupon, _b in held):
            raise Conflict(_("This client key was used for another store's order."), slug="key-reused")
        return _answer(data, held, replayed=True)
    clock = Clock(utcnow(), tz)
    values = _values(session, held, data, clock.now)
    # Rows are locked in one order (batch, then coupon) whatever order the till listed the codes in, so two
    # orders sharing coupons of the same batches cannot deadlock.
    consuming = sorted(zip(held, values, strict=True), key=lambda item: (item[0][1].id, item[0][0].id))
    for (coupon, batch), value in consuming:
        _consume(session, coupon, batch, data, principal.actor, value, clock)
    events.publish(
        session,
        CouponsRedeemed(
            merchant_id=merchant.id,
            store_id=store.id,
            staff=principal.actor,
            codes=[coupon.code for coupon, _b in held],
            value_cents=sum(values),
            redemption_key=data.client_key,
            redeemed_at=clock.now,
        ),
    )
    return _answer(data, held, replayed=False)


def _values(
    session: Session, held: list[tuple[Coupon, Batch]], data: schemas.RedemptionIn, now: datetime
) -> list[int]:
    """What each coupon takes off the order, after every rule is checked (nothing is written before)."""
    for coupon, batch in held:
        reason = _usable_reason(coupon, now)
        if reason is not None:
            raise Conflict(
                _("Coupon %(code)s cannot be used: %(reason)s.", code=coupon.code, reason=reason),
                slug="not-usable",
                code=coupon.code,
            )
        if not batch.all_stores and session.get(BatchStore, (batch.id, data.store_id)) is None:
            raise Conflict(
                _("Coupon %(code)s is not valid at this store.", code=coupon.code),
                slug="wrong-store",
                code=coupon.code,
            )
    if len(held) > 1 and not all(batch.stackable for _c, batch in held):
        raise Conflict(_("One of these coupons cannot be combined with others."), slug="not-stackable")
    values = []
    for coupon, batch in held:
        if batch.kind == "CASH":
            if data.amount_cents < batch.least_cost_cents:
                raise Conflict(
                    _(
                        "Coupon %(code)s needs an order of at least %(amount)s.",
                        code=coupon.code,
                        amount=f"{batch.least_cost_cents / 100:.2f}",
                    ),
                    slug="below-threshold",
                    code=coupon.code,
                )
            values.append(batch.reduce_cost_cents)
        elif batch.kind == "DISCOUNT":
            values.append(data.amount_cents * (batch.discount_percent or 0) // 100)
        else:
            values.append(batch.face_value_cents)
    reductions = sum(v for v, (_c, b) in zip(values, held, strict=True) if b.kind in ("CASH", "DISCOUNT"))
    if reductions > data.amount_cents:
        raise Conflict(_("These coupons take off more than the order costs."), slug="exceeds-amount")
    return values


def _consume(
    session: Session,
    coupon: Coupon,
    batch: Batch,
    data: schemas.RedemptionIn,
    actor: str,
    value: int,
    clock: Clock,
) -> None:
    consumed = session.execute(
        update(Coupon)
        .where(Coupon.id == coupon.id, Coupon.status == "claimed")
        .values(
            status="redeemed",
            redeemed_at=clock.now,
            redeemed_store_id=data.store_id,
            redeemed_by=actor,
            redemption_key=data.client_key,
            redeemed_value_cents=value,
        )
    )
    if consumed.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(
            _("Coupon %(code)s was redeemed a moment ago.", code=coupon.code),
            slug="already-redeemed",
            code=coupon.code,
        )
    any_shard = random.randrange(batch.shards)  # spread the count: a till's redemptions need not queue
    session.execute(
        update(BatchShard)
        .where(BatchShard.batch_id == batch.id, BatchShard.shard == any_shard)
        .values(redeemed=BatchShard.redeemed + 1)
    )
    record(
        session,
        clock,
        batch,
        "redeem",
        coupon_id=coupon.id,
        person_id=coupon.person_id,
        store_id=data.store_id,
        value_cents=value,
    )
    # What the update wrote, told to the loaded row without a re-read (and without marking it changed).
    for field, written in (
        ("status", "redeemed"),
        ("redeemed_at", clock.now),
        ("redeemed_value_cents", value),
    ):
        set_committed_value(coupon, field, written)


def _answer(
    data: schemas.RedemptionIn, held: list[tuple[Coupon, Batch]], replayed: bool
) -> schemas.RedemptionOut:
    redeemed = [
        schemas.RedeemedCoupon(
            code=c.code, batch_id=b.id, kind=b.kind, title=b.title, value_cents=c.redeemed_value_cents or 0
        )
        for c, b in held
    ]
    return schemas.RedemptionOut(
        client_key=data.client_key,
        store_id=data.store_id,
        redeemed_at=held[0][0].redeemed_at or utcnow(),
        coupons=redeemed,
        total_value_cents=sum(item.value_cents for item in redeemed),
        replayed=replayed,
    )


def expire_due(session: Session, tz: str, limit: int) -> int:
    """Mark claimed coupons past their validity expired (one event each); how many."""
    clock = Clock(utcnow(), tz)
    due = session.execute(
        select(Coupon.id, Coupon.person_id, Batch)
        .join(Batch, Batch.id == Coupon.batch_id)
        .where(Coupon.status == "claimed", Coupon.valid_until <= clock.now)
        .order_by(Coupon.valid_until)
        .limit(limit)
    ).all()
    expired = 0
    for coupon_id, person_id, batch in due:
        moved = session.execute(
            update(Coupon).where(Coupon.id == coupon_id, Coupon.status == "claimed").values(status="expired")
        )
        if moved.rowcount:  # type: ignore[attr-defined]
            record(session, clock, batch, "expire", coupon_id=coupon_id, person_id=person_id)
            expired += 1
    return expired
