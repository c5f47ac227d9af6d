"""Coupon batches: a merchant creates one (what it gives, validity, stock, limits, the stores it applies at),
adds stock, pauses, resumes or ends it; residents see the batches a store offers."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal
from cityhub.domains.market import schemas
from cityhub.domains.market.models import Batch, BatchShard, BatchStore, Deal, Merchant, Store
from cityhub.domains.market.service.access import MANAGE, merchant_for
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Conflict, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _

FIELDS = (
    "kind",
    "title",
    "description",
    "least_cost_cents",
    "reduce_cost_cents",
    "discount_percent",
    "gift",
    "deal_detail",
    "face_value_cents",
    "valid_from",
    "valid_until",
    "valid_days",
    "claim_until",
    "stock",
    "per_person_limit",
    "per_day_limit",
    "transferable",
    "stackable",
    "status",
)
# A batch's stock is split into this many shards (fewer for a smaller stock): enough that two app processes
# claims rarely wait for the same row, few enough that finding one with stock left stays cheap.
MAX_SHARDS = 16
# draft → active ⇄ paused; active|paused → ended (final)
MOVES = {"active": ("draft", "paused"), "paused": ("active",), "ended": ("draft", "active", "paused")}


def create(
    session: Session, principal: Principal, merchant_id: int, data: schemas.BatchIn
) -> schemas.BatchOut:
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    now = utcnow()
    if data.claim_until <= now:
        raise ValidationProblem(_("Claiming must end in the future."), field="claim_until")
    stores = _own_stores(session, merchant, data.store_ids)
    batch = Batch(merchant_id=merchant.id, claim_from=data.claim_from or now, created_by=principal.actor)
    for field in FIELDS:
        setattr(batch, field, getattr(data, field))
    batch.all_stores = not stores
    batch.shards = min(MAX_SHARDS, data.stock)
    session.add(batch)
    session.flush()
    session.add_all(
        BatchShard(batch_id=batch.id, shard=shard, quota=quota, claimed=0, redeemed=0)
        for shard, quota in enumerate(split(data.stock, batch.shards))
    )
    session.add_all(BatchStore(batch_id=batch.id, store_id=store_id) for store_id in stores)
    return shape(session, [batch], merchant.name)[0]


def _own_stores(session: Session, merchant: Merchant, store_ids: Iterable[int]) -> list[int]:
    wanted = sorted(set(store_ids))
    if not wanted:
        return []
    own = set(session.scalars(select(Store.id).where(Store.merchant_id == merchant.id, Store.id.in_(wanted))))
    strangers = [store_id for store_id in wanted if store_id not in own]
    if strangers:
        raise ValidationProblem(
            _("Stores %(ids)s are not this merchant's.", ids=", ".join(map(str, strangers))),
            field="store_ids",
        )
    return wanted


def owned(session: Session, principal: Principal, merchant_id: int, batch_id: int) -> tuple[Merchant, Batch]:
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    batch = session.get(Batch, batch_id)
    if batch is None or batch.merchant_id != merchant.id:
        raise NotFound(_("Batch %(id)s does not exist.", id=batch_id))
    return merchant, batch


def set_status(
    session: Session, principal: Principal, merchant_id: int, batch_id: int, status: str
) -> schemas.BatchOut:
    merchant, batch = owned(session, principal, merchant_id, batch_id)
    if session.scalar(select(Deal.id).where(Deal.batch_id == batch.id)) is not None:
        # Started, the draft could be claimed for free; the deal ends it when it closes.
        raise Conflict(
            _("This batch holds a group deal's vouchers; the deal gives them out."), slug="deal-batch"
        )
    moved = session.execute(
        update(Batch).where(Batch.id == batch.id, Batch.status.in_(MOVES[status])).values(status=status)
    )
    if moved.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(
            _("A %(from)s batch cannot become %(to)s.", **{"from": batch.status, "to": status}),
            slug="wrong-state",
        )
    session.refresh(batch)
    return shape(session, [batch], merchant.name)[0]


def add_stock(
    session: Session, principal: Principal, merchant_id: int, batch_id: int, add: int
) -> schemas.BatchOut:
    merchant, batch = owned(session, principal, merchant_id, batch_id)
    if batch.status == "ended":
        raise Conflict(_("An ended batch gets no more stock."), slug="wrong-state")
    for shard, more in enumerate(split(add, batch.shards)):
        session.execute(
            update(BatchShard)
            .where(BatchShard.batch_id == batch.id, BatchShard.shard == shard)
            .values(quota=BatchShard.quota + more)
        )
    session.execute(update(Batch).where(Batch.id == batch.id).values(stock=Batch.stock + add))
    session.refresh(batch)
    return shape(session, [batch], merchant.name)[0]


def merchant_batches(session: Session, principal: Principal, merchant_id: int) -> list[schemas.BatchOut]:
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    batches = list(
        session.scalars(select(Batch).where(Batch.merchant_id == merchant.id).order_by(Batch.id.desc()))
    )
    return shape(session, batches, merchant.name)


def offered_at(session: Session, store: Store, merchant_name: str) -> list[schemas.BatchOut]:
    """The batches a resident can claim at a store now."""
    now = utcnow()
    at_store = select(BatchStore.batch_id).where(BatchStore.store_id == store.id)
    batches = list(
        session.scalars(
            select(Batch)
            .where(
                Batch.merchant_id == store.merchant_id,
                Batch.status == "active",
                Batch.claim_from <= now,
                Batch.claim_until > now,
                Batch.all_stores.is_(True) | Batch.id.in_(at_store),
            )
            .order_by(Batch.id)
        )
    )
    return shape(session, batches, merchant_name)


def public_batch(session: Session, batch_id: int) -> tuple[Batch, str]:
    row = session.execute(
        select(Batch, Merchant.name)
        .join(Merchant, Merchant.id == Batch.merchant_id)
        .where(Batch.id == batch_id, Batch.status != "draft", Merchant.status == "approved")
    ).one_or_none()
    if row is None:
        raise NotFound(_("Batch %(id)s does not exist.", id=batch_id))
    return row[0], row[1]


def split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` near-equal whole shares (the first ones one larger)."""
    share, rest = divmod(total, parts)
    return [share + (1 if part < rest else 0) for part in range(parts)]


def totals(session: Session, batch_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Claimed and redeemed coupons of each batch (summed over its shards, in one statement)."""
    rows = session.execute(
        select(BatchShard.batch_id, func.sum(BatchShard.claimed), func.sum(BatchShard.redeemed))
        .where(BatchShard.batch_id.in_(batch_ids))
        .group_by(BatchShard.batch_id)
    )
    return {batch_id: (int(claimed), int(redeemed)) for batch_id, claimed, redeemed in rows}


def store_offering(session: Session, batch_id: int) -> int:
    """A listed store where a public batch can be used (the first by id): where an offer's link leads."""
    batch, _name = public_batch(session, batch_id)
    statement = select(Store.id).where(Store.merchant_id == batch.merchant_id, Store.listed.is_(True))
    if not batch.all_stores:
        statement = statement.where(
            Store.id.in_(select(BatchStore.store_id).where(BatchStore.batch_id == batch.id))
        )
    store_id = session.scalar(statement.order_by(Store.id).limit(1))
    if store_id is None:
        raise NotFound(_("Batch %(id)s does not exist.", id=batch_id))
    return store_id


def stores_of_batches(session: Session, batch_ids: list[int]) -> dict[int, list[int]]:
    """The stores each batch applies at, by batch id (an empty list: all the merchant's stores)."""
    stores: dict[int, list[int]] = {batch_id: [] for batch_id in batch_ids}
    if batch_ids:
        for batch_id, store_id in session.execute(
            select(BatchStore.batch_id, BatchStore.store_id)
            .where(BatchStore.batch_id.in_(batch_ids))
            .order_by(BatchStore.store_id)
        ):
            stores[batch_id].append(store_id)
    return stores


def shape(session: Session, batches: list[Batch], merchant_name: str) -> list[schemas.BatchOut]:
    stores = stores_of_batches(session, [batch.id for batch in batches])
    counted = totals(session, list(stores)) if batches else {}
    return [
        schemas.BatchOut(
            id=batch.id,
            merchant_id=batch.merchant_id,
            merchant_name=merchant_name,
            kind=batch.kind,
            title=batch.title,
            description=batch.description,
            least_cost_cents=batch.least_cost_cents,
            reduce_cost_cents=batch.reduce_cost_cents,
            discount_percent=batch.discount_percent,
            gift=batch.gift,
            deal_detail=batch.deal_detail,
            face_value_cents=batch.face_value_cents,
            valid_from=batch.valid_from,
            valid_until=batch.valid_until,
            valid_days=batch.valid_days,
            claim_from=batch.claim_from,
            claim_until=batch.claim_until,
            stock=batch.stock,
            claimed=counted.get(batch.id, (0, 0))[0],
            remaining=batch.stock - counted.get(batch.id, (0, 0))[0],
            redeemed=counted.get(batch.id, (0, 0))[1],
            per_person_limit=batch.per_person_limit,
            per_day_limit=batch.per_day_limit,
            transferable=batch.transferable,
            stackable=batch.stackable,
            store_ids=stores[batch.id],
            status=batch.status,
        )
        for batch in batches
    ]
