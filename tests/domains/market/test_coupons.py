"""Batches, claims, transfers, the till's look-up and redemption, expiry: the rules and clear refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from cityhub.domains.market.models import Batch, Coupon, CouponEvent
from cityhub.domains.market.service.coupons import expire_due
from cityhub.kernel.models import OutboxEvent
from tests.domains.market.world import API, Market, batch_body, build_market, make_batch, store_body


def _claim(client, market: Market, batch: int, who: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return client.post(f"{API}/batches/{batch}/claim", headers=who or market.resident)


def _redeem(client, market: Market, codes: list[str], key: str, amount: int = 5000, store: int | None = None):  # type: ignore[no-untyped-def]
    body = {"codes": codes, "store_id": store or market.stores[0], "amount_cents": amount, "client_key": key}
    return client.post(f"{API}/merchants/{market.merchant_id}/redemptions", json=body, headers=market.till)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"reduce_cost_cents": 0}, "reduce_cost_cents"),
        ({"least_cost_cents": 100}, "least_cost_cents"),
        ({"kind": "DISCOUNT"}, "discount_percent"),
        ({"kind": "GIFT"}, "gift"),
        ({"kind": "GROUPON"}, "deal_detail"),
        ({"valid_days": None}, "valid_from"),
        ({"valid_from": "2026-12-01T00:00:00+08:00", "valid_until": "2026-12-31T00:00:00+08:00"}, "either"),
        ({"per_day_limit": 5}, "per_day_limit"),
        ({"claim_until": "2030-01-01T00:00:00"}, "zone"),
        ({"stock": 0}, "stock"),
    ],
)
def test_batch_validation(client, database, overrides: dict[str, object], needle: str) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    answer = client.post(
        f"{API}/merchants/{market.merchant_id}/batches", json=batch_body(**overrides), headers=market.owner
    )
    assert answer.status_code == 422, answer.text
    assert needle in answer.text


def test_claims_respect_limits_stock_and_state(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    batch = make_batch(client, market, stock=3, per_person_limit=2, per_day_limit=1)
    first = _claim(client, market, batch)
    assert first.status_code == 201 and len(first.json()["code"]) == 12
    daily = _claim(client, market, batch)
    assert daily.status_code == 409 and daily.json()["type"].endswith("daily-claim-limit")
    assert _claim(client, market, batch, market.neighbour).status_code == 201
    assert _claim(client, market, batch, market.owner).status_code == 201
    sold_out = _claim(client, market, batch, market.clerk)
    assert sold_out.status_code == 409 and sold_out.json()["type"].endswith("sold-out")
    with database.reading() as session:
        assert session.scalar(select(Batch.claimed).where(Batch.id == batch)) == 3
        assert session.scalar(select(func.count()).select_from(Coupon)) == 3
        kinds = session.scalars(select(CouponEvent.kind).where(CouponEvent.batch_id == batch))
        assert sorted(kinds) == ["claim"] * 3
    more = client.post(
        f"{API}/merchants/{market.merchant_id}/batches/{batch}/stock", json={"add": 5}, headers=market.owner
    )
    assert more.json()["remaining"] == 5
    paused = client.post(
        f"{API}/merchants/{market.merchant_id}/batches/{batch}/status",
        json={"status": "paused"},
        headers=market.owner,
    )
    assert paused.json()["status"] == "paused"
    assert _claim(client, market, batch, market.clerk).json()["type"].endswith("not-active")
    ended = client.post(
        f"{API}/merchants/{market.merchant_id}/batches/{batch}/status",
        json={"status": "ended"},
        headers=market.owner,
    )
    assert ended.status_code == 200
    back = client.post(
        f"{API}/merchants/{market.merchant_id}/batches/{batch}/status",
        json={"status": "active"},
        headers=market.owner,
    )
    assert back.status_code == 409


def test_per_person_limit_over_days(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    batch = make_batch(client, market, per_person_limit=2)
    assert [_claim(client, market, batch).status_code for _ in range(3)] == [201, 201, 409]
    assert len(client.get(f"{API}/me/coupons", headers=market.resident).json()) == 2


def test_draft_batches_and_strangers_cannot_be_claimed(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    draft = make_batch(client, market, status="draft")
    assert _claim(client, market, draft).status_code == 404
    assert client.get(f"{API}/batches/{draft}").status_code == 404
    assert client.post(f"{API}/batches/999999/claim", headers=market.resident).status_code == 404
    batch = make_batch(client, market)
    assert client.post(f"{API}/batches/{batch}/claim", headers=market.till).status_code == 403  # a machine


def test_redemption_values_and_rules(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    cash = make_batch(client, market)  # 满30减5
    discount = make_batch(client, market, kind="DISCOUNT", title="八折", discount_percent=20, stackable=True)
    gift = make_batch(
        client, market, kind="GIFT", title="赠饮", gift="柠檬茶", face_value_cents=800, stackable=True
    )
    only_two = make_batch(client, market, store_ids=[market.stores[1]])
    codes = {
        name: _claim(client, market, b).json()["code"]
        for name, b in (("cash", cash), ("discount", discount), ("gift", gift), ("two", only_two))
    }
    below = _redeem(client, market, [codes["cash"]], "k-below-01", amount=2000)
    assert below.status_code == 409 and below.json()["type"].endswith("below-threshold")
    not_stackable = _redeem(client, market, [codes["cash"], codes["gift"]], "k-stack-001")
    assert not_stackable.status_code == 409 and not_stackable.json()["type"].endswith("not-stackable")
    wrong_store = _redeem(client, market, [codes["two"]], "k-store-001")
    assert wrong_store.status_code == 409 and wrong_store.json()["type"].endswith("wrong-store")
    unknown = _redeem(client, market, [codes["gift"], "123456789012"], "k-unknown-1")
    assert unknown.status_code == 404
    with database.reading() as session:  # nothing of a refused order was used
        assert (
            session.scalar(select(func.count()).select_from(Coupon).where(Coupon.status == "redeemed")) == 0
        )
    both = _redeem(client, market, [codes["discount"], codes["gift"]], "k-both-0001", amount=5000)
    assert both.status_code == 201, both.text
    assert [c["value_cents"] for c in both.json()["coupons"]] == [1000, 800]
    assert both.json()["total_value_cents"] == 1800
    at_two = _redeem(client, market, [codes["two"]], "k-two-00001", store=market.stores[1])
    assert at_two.status_code == 201
    mine = {c["code"]: c["status"] for c in client.get(f"{API}/me/coupons", headers=market.resident).json()}
    assert mine == {
        codes["cash"]: "claimed",
        codes["discount"]: "redeemed",
        codes["gift"]: "redeemed",
        codes["two"]: "redeemed",
    }
    with database.reading() as session:
        redeemed_events = session.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.type == "market.coupons_redeemed")
        ).all()
    assert [e["value_cents"] for e in redeemed_events] == [1800, 500]
    assert all(e["staff"].startswith("apikey:") for e in redeemed_events)


def test_a_retry_replays_and_a_second_redemption_conflicts(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    code = _claim(client, market, make_batch(client, market)).json()["code"]
    first = _redeem(client, market, [code], "till1-42")
    retry = _redeem(client, market, [code], "till1-42")
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["replayed"] is True and retry.json()["total_value_cents"] == 500
    other = _redeem(client, market, [code], "till2-43")
    assert other.status_code == 409 and other.json()["type"].endswith("not-usable")
    looked = client.get(f"{API}/merchants/{market.merchant_id}/coupons/{code}", headers=market.clerk).json()
    assert looked["status"] == "redeemed" and looked["usable_now"] is False
    assert "person" not in str(looked) and "holder" not in str(looked)
    with database.reading() as session:
        assert session.scalar(select(Batch.redeemed)) == 1


def test_transfer(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    fixed = make_batch(client, market)
    giftable = make_batch(client, market, transferable=True)
    kept = _claim(client, market, fixed).json()["code"]
    given = _claim(client, market, giftable).json()["code"]
    refused = client.post(
        f"{API}/me/coupons/{kept}/transfer", json={"to_username": "neighbour"}, headers=market.resident
    )
    assert refused.status_code == 409
    nobody = client.post(
        f"{API}/me/coupons/{given}/transfer", json={"to_username": "ghost"}, headers=market.resident
    )
    assert nobody.status_code == 422
    moved = client.post(
        f"{API}/me/coupons/{given}/transfer", json={"to_username": "neighbour"}, headers=market.resident
    )
    assert moved.status_code == 200, moved.text
    assert client.get(f"{API}/me/coupons/{given}", headers=market.resident).status_code == 404
    received = client.get(f"{API}/me/coupons/{given}", headers=market.neighbour).json()
    assert received["transferred"] is True and received["status"] == "claimed"
    twice = client.post(
        f"{API}/me/coupons/{given}/transfer", json={"to_username": "owner1"}, headers=market.resident
    )
    assert twice.status_code == 404


def test_expiry(client, database, settings) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    code = _claim(client, market, make_batch(client, market)).json()["code"]
    past = datetime.now(UTC) - timedelta(minutes=1)
    with database.unit_of_work() as session:
        session.execute(update(Coupon).values(valid_until=past))
    late = _redeem(client, market, [code], "k-late-0001")
    assert late.status_code == 409 and late.json()["type"].endswith("not-usable")
    with database.unit_of_work() as session:
        assert expire_due(session, settings.timezone, 100) == 1
        assert expire_due(session, settings.timezone, 100) == 0
    assert (
        client.get(f"{API}/me/coupons", params={"status": "expired"}, headers=market.resident).json()[0][
            "code"
        ]
        == code
    )


def test_nearby_search(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    far = client.post(
        f"{API}/merchants/{market.merchant_id}/stores",
        json=store_body("远店", 120.262, 30.25),
        headers=market.owner,
    )  # ~6 km east
    closed = {"mon": [["09:00", "09:01"]]}
    sleepy = client.post(
        f"{API}/merchants/{market.merchant_id}/stores",
        json=store_body("夜不开", 120.2005, 30.2505, category="grocery", opening_hours=closed),
        headers=market.owner,
    ).json()["id"]
    page = client.get(f"{API}/stores/nearby", params={"lon": 120.2, "lat": 30.25}).json()
    assert [s["id"] for s in page["items"]] == [sleepy, *market.stores]
    assert far.json()["id"] not in [s["id"] for s in page["items"]]
    distances = [s["distance_m"] for s in page["items"]]
    assert distances == sorted(distances) and 250 < distances[1] < 350
    paged = client.get(f"{API}/stores/nearby", params={"lon": 120.2, "lat": 30.25, "limit": 2}).json()
    assert len(paged["items"]) == 2 and paged["has_more"] is True
    rest = client.get(
        f"{API}/stores/nearby", params={"lon": 120.2, "lat": 30.25, "limit": 2, "offset": 2}
    ).json()
    assert [s["id"] for s in rest["items"]] == [market.stores[1]] and rest["has_more"] is False
    open_now = client.get(
        f"{API}/stores/nearby", params={"lon": 120.2, "lat": 30.25, "open_now": True}
    ).json()
    assert [s["id"] for s in open_now["items"]] == market.stores
    groceries = client.get(
        f"{API}/stores/nearby", params={"lon": 120.2, "lat": 30.25, "category": "grocery"}
    ).json()
    assert [s["id"] for s in groceries["items"]] == [sleepy]
    named = client.get(f"{API}/stores/nearby", params={"lon": 120.2, "lat": 30.25, "q": "二店"}).json()
    assert [s["id"] for s in named["items"]] == [market.stores[1]]
    by_merchant = client.get(f"{API}/stores/nearby", params={"lon": 120.2, "lat": 30.25, "q": "面馆"}).json()
    assert len(by_merchant["items"]) == 3
    wide = client.get(f"{API}/stores/nearby", params={"lon": 120.2, "lat": 30.25, "radius_km": 8}).json()
    assert len(wide["items"]) == 4
    assert (
        client.get(f"{API}/stores/nearby", params={"lon": 120.2, "lat": 30.25, "radius_km": 80}).status_code
        == 422
    )
    assert client.get(f"{API}/stores/nearby", params={"lon": 200, "lat": 30.25}).status_code == 422
    assert (
        client.get(
            f"{API}/stores/nearby", params={"lon": 120.2, "lat": 30.25, "category": "boats"}
        ).status_code
        == 422
    )


def test_store_page_lists_claimable_batches_and_counts_views(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    everywhere = make_batch(client, market)
    only_two = make_batch(client, market, store_ids=[market.stores[1]])
    make_batch(client, market, status="draft")
    one = client.get(f"{API}/stores/{market.stores[0]}").json()
    assert [b["id"] for b in one["batches"]] == [everywhere]
    two = client.get(f"{API}/stores/{market.stores[1]}").json()
    assert [b["id"] for b in two["batches"]] == [everywhere, only_two]
    client.get(f"{API}/batches/{everywhere}", headers=market.resident)
    client.get(f"{API}/batches/{everywhere}")
    with database.reading() as session:
        views = (
            session.execute(select(CouponEvent.person_id).where(CouponEvent.kind == "view")).scalars().all()
        )
    assert len(views) == 2 and None in views
    stranger = client.post(
        f"{API}/merchants/{market.merchant_id}/batches",
        json=batch_body(store_ids=[999999]),
        headers=market.owner,
    )
    assert stranger.status_code == 422 and stranger.json()["field"] == "store_ids"
