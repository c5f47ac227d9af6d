"""The demo city's market: `cityhub demo` enrols identity's demo merchant organisations through the real
services (no second organisation, no second role for the merchant logins), keeps one application pending
and one rejected, suspends one merchant when at least three trade, opens stores that the nearby search finds
around the demo logins' community, batches of every kind (one paused, one sold out), and coupons claimed,
redeemed and given on, with the counters, the coupon rows and the event log agreeing."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from rich.progress import Progress
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityhub.cli.demo import seed_city
from cityhub.domains.identity import account_id_of, person_of_account, units_in_scope
from cityhub.domains.identity import demo as identity_demo
from cityhub.domains.identity.models import Organization, RoleAssignment
from cityhub.domains.identity.service.accounts import principal_for_account
from cityhub.domains.market import demo as market_demo
from cityhub.domains.market.models import (
    Batch,
    BatchStore,
    Coupon,
    CouponEvent,
    MemberProgram,
    Membership,
    Merchant,
    PointsEntry,
    Store,
)
from cityhub.domains.market.service import batches, coupons, merchants, stores
from cityhub.domains.market.service.access import REDEEM
from cityhub.kernel.db import Database
from cityhub.kernel.demo import DemoSize
from cityhub.kernel.models import AuditRecord
from cityhub.kernel.settings import Settings


def _seed(
    database: Database, settings: Settings, size: DemoSize = DemoSize.TINY, *, reset: bool = False
) -> None:
    seed_city(
        database,
        settings,
        size,
        7,
        reset=reset,
        progress=Progress(disable=True),
        today=date(2026, 1, 1),
    )


def _count(session: Session, model: type, *conditions: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)


def _identity_merchants(size: DemoSize) -> int:
    profile = identity_demo.PROFILES[size]
    return profile.communities * profile.merchants_per_community


def test_cityhub_demo_seeds_the_market(database: Database, settings: Settings) -> None:
    _seed(database, settings)
    with database.reading() as session:
        _identity_merchants_are_enrolled(session, DemoSize.TINY)
        assert Counter(session.scalars(select(Merchant.status))) == {
            "approved": 2,  # the tiny city's two organisations: none suspended, so two keep trading
            "pending": 1,
            "rejected": 1,
        }
        _the_first_merchant_belongs_to_the_merchant_login(session)
        _stores_are_found_nearby(session, settings.timezone)
        _batches_of_every_kind(session)
        _coupons_agree_with_counters_and_events(session)
        _the_resident_holds_coupons(session)
        _the_resident_holds_member_cards(session)


def _the_resident_holds_member_cards(session: Session) -> None:
    """Two member cards, the first taking the citizen card; the "resident" login took a reward of each."""
    resident = person_of_account(session, account_id_of(session, "resident"))
    programs = session.scalars(select(MemberProgram).order_by(MemberProgram.id)).all()
    assert [program.accepts_citizen_card for program in programs] == [True, False]
    cards = session.scalars(select(Membership).where(Membership.person_id == resident)).all()
    assert len(cards) == 2 and all(card.lifetime_points >= 180 for card in cards)
    for card in cards:  # every balance is the sum of its entries
        entries = session.scalars(select(PointsEntry).where(PointsEntry.membership_id == card.id)).all()
        assert sum(entry.points for entry in entries) == card.points
        assert [entry.kind for entry in entries].count("redeem") == 1


def test_the_small_city_suspends_one_merchant(database: Database, settings: Settings) -> None:
    _seed(database, settings, DemoSize.SMALL)
    with database.reading() as session:
        _identity_merchants_are_enrolled(session, DemoSize.SMALL)
        enrolled = _identity_merchants(DemoSize.SMALL)
        assert Counter(session.scalars(select(Merchant.status))) == {
            "approved": enrolled - 1,
            "suspended": 1,
            "pending": 1,
            "rejected": 1,
        }
        suspended = session.scalars(select(Merchant).where(Merchant.status == "suspended")).one()
        assert suspended.review_reason == market_demo.SUSPENDED_REASON
        assert suspended.applicant_account_id != account_id_of(session, "merchant_owner")
        assert not any(session.scalars(select(Store.listed).where(Store.merchant_id == suspended.id)))
        of_suspended = select(Batch.id).where(Batch.merchant_id == suspended.id)
        assert _count(session, Coupon, Coupon.batch_id.in_(of_suspended)) > 0  # claimed before, kept
        assert _count(session, Coupon, Coupon.batch_id.in_(of_suspended), Coupon.status == "redeemed") == 0
        assert _count(session, Store, Store.listed.is_(True)) == _count(session, Store) - _count(
            session, Store, Store.merchant_id == suspended.id
        )
        _coupons_agree_with_counters_and_events(session)


def _identity_merchants_are_enrolled(session: Session, size: DemoSize) -> None:
    """Every merchant organisation of identity's demo is a market merchant under its own code, and none
    was opened beyond identity's: the organisation count is identity's own formula."""
    profile = identity_demo.PROFILES[size]
    care_providers, clinics = profile.districts, profile.subdistricts
    departments = len(identity_demo.DEPARTMENTS)
    assert _count(session, Organization) == 1 + departments + care_providers + clinics + _identity_merchants(
        size
    )
    organizations = {
        organization.id: organization
        for organization in session.scalars(select(Organization).where(Organization.kind == "merchant"))
    }
    assert len(organizations) == _identity_merchants(size)
    enrolled = list(session.scalars(select(Merchant).where(Merchant.organization_id.is_not(None))))
    assert {merchant.organization_id for merchant in enrolled} == set(organizations)
    for merchant in enrolled:
        assert merchant.organization_id is not None
        organization = organizations[merchant.organization_id]
        assert (merchant.code, merchant.name, merchant.name_en) == (
            organization.code,
            organization.name,
            organization.name_en,
        )
        assert merchant.home_unit_id == organization.org_unit_id
        brand = market_demo.BRANDS[merchant.name.split("（")[0]]
        assert (merchant.category, merchant.description) == (brand.category, brand.description)
        assert merchant.status in ("approved", "suspended") and merchant.reviewed_at is not None
        assert bool(merchant.review_reason) == (merchant.status == "suspended")
        assert len(merchant.licence_number) == 18
    assert (
        _count(session, AuditRecord, AuditRecord.action == "market.merchant.enrolled")
        == len(enrolled)
        == len(organizations)
    )
    for merchant in session.scalars(select(Merchant).where(Merchant.organization_id.is_(None))):
        assert merchant.status in ("pending", "rejected") and merchant.code.startswith("M")
        assert bool(merchant.review_reason) == (merchant.status == "rejected")
        assert (merchant.reviewed_at is None) == (merchant.status == "pending")
        assert _count(session, Store, Store.merchant_id == merchant.id) == 0
    # The merchant logins keep the one grant identity gave them: nothing granted a second.
    for username in ("merchant_owner", "merchant_clerk"):
        account_id = account_id_of(session, username)
        assert _count(session, RoleAssignment, RoleAssignment.account_id == account_id) == 1


def _the_first_merchant_belongs_to_the_merchant_login(session: Session) -> None:
    owner = principal_for_account(session, account_id_of(session, "merchant_owner"))
    assert len(owner.grants) == 1 and owner.grants[0].role == "merchant_owner"
    [first] = merchants.my_merchants(session, owner)
    assert first.organization_id == owner.grants[0].organization_id and first.status == "approved"
    assert first.applicant_account_id == owner.id
    staff = {(member.username, member.role) for member in merchants.staff(session, owner, first.id)}
    assert staff == {("merchant_owner", "merchant_owner"), ("merchant_clerk", "merchant_clerk")}
    keys = merchants.pos_keys(session, owner, first.id)
    assert len(keys) == 1 and keys[0].revoked_at is None
    clerk = principal_for_account(session, account_id_of(session, "merchant_clerk"))
    assert clerk.organizations(REDEEM) == {first.organization_id}
    own_stores = stores.merchant_stores(session, owner, first.id)
    assert len(own_stores) == 2 and own_stores[0].name == first.name
    assert [batch.kind for batch in reversed(batches.merchant_batches(session, owner, first.id))] == [
        "CASH",
        "GROUPON",
        "GENERAL",
    ]
    # The others' owner of record is the operator (identity's demo gives them no staff).
    operator = account_id_of(session, "operator")
    others = select(Merchant.applicant_account_id).where(
        Merchant.organization_id.is_not(None), Merchant.id != first.id
    )
    assert set(session.scalars(others)) == {operator}


def _first_community(session: Session) -> Any:
    statement = units_in_scope(["/"])
    statement = statement.where(statement.selected_columns.kind == "community")
    return session.scalars(statement.order_by(statement.selected_columns.id)).first()


def _stores_are_found_nearby(session: Session, tz: str) -> None:
    community = _first_community(session)
    query = stores.NearbyQuery(community.lon, community.lat, 3000.0, limit=100)
    page = stores.nearby(session, query, tz)
    listed = set(session.scalars(select(Store.id).where(Store.listed.is_(True))))
    assert len(listed) == _count(session, Store) == 3 and not page.has_more  # 2 + 1 stores
    assert {item.id for item in page.items} == listed  # the tiny city lies within 3 km of its first community
    distances = [item.distance_m for item in page.items]
    assert all(distance is not None and distance <= 3000 for distance in distances)
    assert distances == sorted(distances)  # type: ignore[type-var]
    assert any(item.distance_m is not None and item.distance_m < 500 for item in page.items)
    # Pages of the nearest: no overlap, has_more until the end, no total.
    first = stores.nearby(session, stores.NearbyQuery(community.lon, community.lat, 3000.0, limit=2), tz)
    second = stores.nearby(
        session, stores.NearbyQuery(community.lon, community.lat, 3000.0, limit=2, offset=2), tz
    )
    assert first.has_more and not second.has_more
    assert [item.id for item in first.items + second.items] == [item.id for item in page.items]
    category = page.items[0].category
    same = stores.nearby(
        session, stores.NearbyQuery(community.lon, community.lat, 3000.0, category=category), tz
    )
    assert same.items and {item.category for item in same.items} == {category}
    assert {item.id for item in same.items} == {item.id for item in page.items if item.category == category}
    assert all(item.opening_hours for item in page.items)
    assert all(item.address.startswith("滨江市") and item.phone for item in page.items)


def _batches_of_every_kind(session: Session) -> None:
    every = list(session.scalars(select(Batch).order_by(Batch.id)))
    assert [batch.kind for batch in every] == ["CASH", "GROUPON", "GENERAL", "GIFT", "DISCOUNT", "CASH"]
    first, second = every[0].merchant_id, every[3].merchant_id
    assert [(batch.kind, batch.merchant_id) for batch in every if batch.status == "paused"] == [
        ("DISCOUNT", second)
    ]
    sold_out = [batch for batch in every if batch.claimed == batch.stock]
    assert [(batch.kind, batch.merchant_id) for batch in sold_out] == [("GIFT", second)]
    assert any(batch.valid_days is not None for batch in every)
    fixed = [batch for batch in every if batch.valid_from is not None]
    assert fixed and all(batch.valid_until is not None and batch.valid_days is None for batch in fixed)
    assert [(batch.kind, batch.merchant_id) for batch in every if not batch.all_stores] == [
        ("GROUPON", first)
    ]
    assert _count(session, BatchStore) == 1
    cash = every[0]
    assert (cash.transferable, cash.per_person_limit, cash.per_day_limit) == (True, 2, 1)
    assert [batch for batch in every if batch.transferable] == [cash]
    for batch in every:  # each fits its brand
        merchant = session.get(Merchant, batch.merchant_id)
        assert merchant is not None
        offer = market_demo.BRANDS[merchant.name.split("（")[0]].offer(batch.kind)
        assert (batch.title, batch.description) == (offer["title"], offer["description"])


def _coupons_agree_with_counters_and_events(session: Session) -> None:
    total_claimed = total_redeemed = 0
    for batch in session.scalars(select(Batch)):
        assert 0 <= batch.redeemed <= batch.claimed <= batch.stock
        assert batch.claimed == _count(session, Coupon, Coupon.batch_id == batch.id)
        assert batch.claimed == _count(
            session, CouponEvent, CouponEvent.batch_id == batch.id, CouponEvent.kind == "claim"
        )
        redeemed = _count(session, Coupon, Coupon.batch_id == batch.id, Coupon.status == "redeemed")
        assert (
            batch.redeemed
            == redeemed
            == _count(session, CouponEvent, CouponEvent.batch_id == batch.id, CouponEvent.kind == "redeem")
        )
        total_claimed += batch.claimed
        total_redeemed += batch.redeemed
    assert total_claimed >= 20 and 0 < total_redeemed < total_claimed
    assert Counter(session.scalars(select(Coupon.status))) == {
        "claimed": total_claimed - total_redeemed,
        "redeemed": total_redeemed,
    }
    for coupon, batch in session.execute(
        select(Coupon, Batch).join(Batch, Batch.id == Coupon.batch_id).where(Coupon.status == "redeemed")
    ):
        store = session.get(Store, coupon.redeemed_store_id)
        assert store is not None and store.merchant_id == batch.merchant_id
        assert coupon.redeemed_by is not None and coupon.redemption_key is not None
        if not batch.all_stores:
            assert session.get(BatchStore, (batch.id, store.id)) is not None
        expected = batch.reduce_cost_cents if batch.kind == "CASH" else None
        if expected is not None:
            assert coupon.redeemed_value_cents == expected
    # Nothing of a suspended merchant was redeemed; every redemption event names its store and value.
    suspended = select(Merchant.id).where(Merchant.status == "suspended")
    assert (
        _count(session, CouponEvent, CouponEvent.kind == "redeem", CouponEvent.merchant_id.in_(suspended))
        == 0
    )
    assert _count(session, CouponEvent, CouponEvent.kind == "redeem", CouponEvent.store_id.is_(None)) == 0
    # The owners of record redeemed at their counters, and the first merchant's clerk.
    redeemers = set(session.scalars(select(Coupon.redeemed_by).where(Coupon.redeemed_by.is_not(None))))
    clerk = f"account:{account_id_of(session, 'merchant_clerk')}"
    owners = {
        f"account:{account_id}"
        for account_id in session.scalars(
            select(Merchant.applicant_account_id).where(Merchant.status == "approved")
        )
    }
    assert clerk in redeemers and redeemers <= owners | {clerk}


def _the_resident_holds_coupons(session: Session) -> None:
    resident = principal_for_account(session, account_id_of(session, "resident"))
    assert resident.person_id == person_of_account(session, resident.id)
    held = coupons.my_coupons(session, resident, None)
    assert len({coupon.merchant_name for coupon in held}) == 2  # both of the tiny city's merchants
    assert {"claimed", "redeemed"} <= {coupon.status for coupon in held}
    given = [coupon for coupon in held if coupon.transferred]
    first_cash = session.scalars(select(Batch).order_by(Batch.id)).first()
    assert first_cash is not None and first_cash.transferable
    assert len(given) == 1 and given[0].status == "claimed" and given[0].batch_id == first_cash.id
    transferred = session.scalars(select(Coupon).where(Coupon.transferred_from.is_not(None))).one()
    assert transferred.person_id == resident.person_id and transferred.transferred_from != resident.person_id
    assert _count(session, CouponEvent, CouponEvent.kind == "transfer") == 1


def _snapshot(database: Database) -> dict[str, Any]:
    with database.reading() as session:
        return {
            "merchants": session.execute(
                select(Merchant.code, Merchant.name, Merchant.status, Merchant.licence_number).order_by(
                    Merchant.id
                )
            ).all(),
            "stores": session.execute(
                select(Store.name, Store.address, Store.lon, Store.lat).order_by(Store.id)
            ).all(),
            "batches": session.execute(
                select(Batch.title, Batch.stock, Batch.claimed, Batch.redeemed, Batch.status).order_by(
                    Batch.id
                )
            ).all(),
            "holders": session.execute(
                select(Coupon.batch_id, Coupon.person_id, Coupon.status).order_by(Coupon.id)
            ).all(),
        }


def test_the_same_seed_gives_the_same_market(database: Database, settings: Settings) -> None:
    _seed(database, settings)
    before = _snapshot(database)
    _seed(database, settings, reset=True)
    assert _snapshot(database) == before
