"""Merchant reports: counts and distinct people per day, batch and store, today included; rates; CSV; range
limits; only the merchant's owners may read them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from cityhub.domains.market.jobs import roll_up_reports
from cityhub.domains.market.models import CouponEvent, ReportDay, RollupMark
from cityhub.domains.market.service import reports
from cityhub.kernel.jobs import JobContext
from tests.domains.market.world import API, build_market, make_batch


def _today() -> date:
    return datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()


def test_the_report_counts_today_per_day_batch_and_store(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    batch = make_batch(client, market, title="满30减5", transferable=True)
    other = make_batch(client, market, title="八折", kind="DISCOUNT", discount_percent=20, stackable=True)
    for who in (market.resident, market.resident, market.neighbour):
        client.get(f"{API}/batches/{batch}", headers=who)
    codes = [
        client.post(f"{API}/batches/{batch}/claim", headers=who).json()["code"]
        for who in (market.resident, market.resident, market.neighbour)
    ]
    discount = client.post(f"{API}/batches/{other}/claim", headers=market.neighbour).json()["code"]
    base = f"{API}/merchants/{market.merchant_id}"
    redeem = {"store_id": market.stores[0], "amount_cents": 5000}
    assert (
        client.post(
            f"{base}/redemptions",
            json={**redeem, "codes": [codes[0]], "client_key": "rep-0000001"},
            headers=market.till,
        ).status_code
        == 201
    )
    assert (
        client.post(
            f"{base}/redemptions",
            json={**redeem, "codes": [discount], "client_key": "rep-0000002", "store_id": market.stores[1]},
            headers=market.till,
        ).status_code
        == 201
    )
    assert (
        client.post(
            f"{API}/me/coupons/{codes[1]}/transfer", json={"to_username": "owner1"}, headers=market.resident
        ).status_code
        == 200
    )

    daily = client.get(f"{base}/reports", headers=market.owner)
    assert daily.status_code == 200, daily.text
    body = daily.json()
    assert len(body["rows"]) == 30 and body["last_day"] == _today().isoformat()
    today = body["rows"][-1]
    assert (today["views"], today["view_people"]) == (3, 2)
    assert (today["claims"], today["claim_people"]) == (4, 2)
    assert (today["redemptions"], today["redemption_people"], today["redeemed_value_cents"]) == (
        2,
        2,
        500 + 1000,
    )
    assert (today["transfers"], today["expiries"]) == (1, 0)
    assert today["claim_rate"] == 1.0 and today["redemption_rate"] == 0.5
    assert all(row["claims"] == 0 and row["claim_rate"] is None for row in body["rows"][:-1])

    per_batch = {
        row["label"]: row
        for row in client.get(f"{base}/reports", params={"group": "batch"}, headers=market.owner).json()[
            "rows"
        ]
    }
    assert (
        per_batch["满30减5"]["claims"],
        per_batch["满30减5"]["redemptions"],
        per_batch["满30减5"]["views"],
    ) == (3, 1, 3)
    assert (per_batch["八折"]["claims"], per_batch["八折"]["redeemed_value_cents"]) == (1, 1000)
    per_store = client.get(f"{base}/reports", params={"group": "store"}, headers=market.owner).json()["rows"]
    assert [(row["key"], row["redemptions"]) for row in per_store] == [
        (str(market.stores[0]), 1),
        (str(market.stores[1]), 1),
    ]
    one_batch = client.get(f"{base}/reports", params={"batch_id": other}, headers=market.owner).json()[
        "rows"
    ][-1]
    assert (one_batch["claims"], one_batch["views"]) == (1, 0)

    exported = client.get(f"{base}/reports", params={"format": "csv", "group": "batch"}, headers=market.owner)
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("batch,name,view_count,view_people,claim_count")
    assert f"{batch},满30减5,3,2,3,2,1,1,0,0,1,1,5.00,1.0000,0.3333" in lines


def test_report_range_and_permissions(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    base = f"{API}/merchants/{market.merchant_id}/reports"
    today = _today()
    too_long = client.get(
        base, params={"from": (today - timedelta(days=62)).isoformat()}, headers=market.owner
    )
    assert too_long.status_code == 422 and too_long.json()["field"] == "from"
    backwards = client.get(
        base,
        params={"from": today.isoformat(), "to": (today - timedelta(days=1)).isoformat()},
        headers=market.owner,
    )
    assert backwards.status_code == 422
    longest = client.get(
        base, params={"from": (today - timedelta(days=61)).isoformat()}, headers=market.owner
    )
    assert len(longest.json()["rows"]) == 62
    assert client.get(base, params={"group": "week"}, headers=market.owner).status_code == 422
    for who in (market.clerk, market.till, market.resident, market.operator):
        assert client.get(base, headers=who).status_code == 403
    assert client.get(base).status_code == 401


def test_closed_days_come_from_the_rollup_and_agree_with_the_events(client, database, settings) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    batch = make_batch(client, market, per_person_limit=10)
    for who in (market.resident, market.resident, market.neighbour, market.owner):
        client.get(f"{API}/batches/{batch}", headers=who)
        code = client.post(f"{API}/batches/{batch}/claim", headers=who).json()["code"]
        body = {
            "codes": [code],
            "store_id": market.stores[0],
            "amount_cents": 5000,
            "client_key": f"roll-{code}",
        }
        client.post(f"{API}/merchants/{market.merchant_id}/redemptions", json=body, headers=market.till)
    today = _today()
    with database.unit_of_work() as session:  # spread the events over the last four days
        ids = session.scalars(select(CouponEvent.id).order_by(CouponEvent.id)).all()
        for index, event_id in enumerate(ids):
            day = today - timedelta(days=index % 4)
            session.execute(update(CouponEvent).where(CouponEvent.id == event_id).values(day=day))
    url = f"{API}/merchants/{market.merchant_id}/reports"
    live = client.get(url, headers=market.owner).json()["rows"]
    with database.unit_of_work() as session:
        written = reports.roll_up(session, today - timedelta(days=1))
        assert written > 0 and reports.roll_up(session, today - timedelta(days=1)) == 0
    rolled = client.get(url, headers=market.owner).json()["rows"]
    assert rolled == live
    with database.reading() as session:
        assert session.scalar(select(func.max(ReportDay.day))) <= today - timedelta(days=1)
    # a claim today is counted live after the rollup
    client.post(f"{API}/batches/{batch}/claim", headers=market.neighbour)
    assert client.get(url, headers=market.owner).json()["rows"][-1]["claims"] == live[-1]["claims"] + 1
    by_batch = client.get(url, params={"group": "batch"}, headers=market.owner).json()["rows"]
    assert by_batch[0]["claims"] == 5  # per batch reads the events: distinct people over the whole range


def test_the_rollup_job_rolls_the_days_that_are_over(client, database, settings) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    batch = make_batch(client, market)
    client.post(f"{API}/batches/{batch}/claim", headers=market.resident)
    with database.unit_of_work() as session:
        session.execute(update(CouponEvent).values(day=_today() - timedelta(days=3)))
    with database.unit_of_work() as session:
        roll_up_reports(JobContext(session, settings, 0, "market.reports.rollup", 1, {}))
    with database.reading() as session:
        assert session.scalar(select(RollupMark.last_day)) in (
            _today() - timedelta(days=1),
            _today() - timedelta(days=2),
        )
        assert session.scalar(select(func.sum(ReportDay.events))) == 1
