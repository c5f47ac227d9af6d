"""Group buying: residents join a deal by paying through the sandbox provider; at the deadline a deal with
enough paid joins gives each a voucher redeemable at the till, one short of its minimum refunds them all.
Callbacks are replayed safely, late and over-capacity payments are refunded, and joins settling while the
deal closes always agree with its outcome — on both databases."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from cityhub.domains import manifests
from cityhub.domains.identity.models import Notification
from cityhub.domains.identity.service.accounts import principal_for_account
from cityhub.domains.market import schemas
from cityhub.domains.market.models import Batch, Coupon, Deal, DealJoin
from cityhub.domains.market.service import deals
from cityhub.domains.market.service.coupons import Clock
from cityhub.kernel import jobs
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.models import AuditRecord, Job
from cityhub.kernel.payments import InvalidCallback, SandboxProvider, Settlement
from cityhub.kernel.settings import Settings
from cityhub.worker import build_registry
from tests.domains.market.world import API, Market, build_market
from tests.factories import make_user
from tests.kernel.kernel_testing import drain
from tests.web.factories import HTML, csrf_token, login, post_form

PRICE = 9_900
TZ = "Asia/Shanghai"


def deal_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "title": "双人火锅套餐",
        "deal_detail": "两位的火锅套餐：锅底一份、荤素菜六份",
        "price_cents": PRICE,
        "original_price_cents": 16_800,
        "min_participants": 3,
        "max_participants": 5,
        "deadline": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
        "valid_days": 30,
    }
    return {**body, **overrides}


def open_deal(client: TestClient, market: Market, **overrides: Any) -> dict[str, Any]:
    made = client.post(
        f"{API}/merchants/{market.merchant_id}/deals", json=deal_body(**overrides), headers=market.owner
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def provider(settings: Settings) -> SandboxProvider:
    return SandboxProvider(settings.secret_key)


def buyers(database: Database, market: Market, count: int) -> list[Any]:
    """Residents of community A, as the principals their logins would carry."""
    accounts = [
        make_user(database, f"buyer{n:03d}", [("resident", market.town.community_a)])[0].id
        for n in range(count)
    ]
    with database.reading() as session:
        return [principal_for_account(session, account) for account in accounts]


def join(database: Database, settings: Settings, principal: Any, deal_id: int) -> schemas.DealCheckoutOut:
    """Join as the API does."""
    with database.unit_of_work() as session:
        return deals.join(session, principal, provider(settings), deal_id, utcnow())


def answer(database: Database, settings: Settings, checkout_url: str, succeeded: bool = True) -> None:
    """The payer's answer on the sandbox checkout page: the provider queues its signed callback."""
    sandbox = provider(settings)
    with database.unit_of_work() as session:
        sandbox.answer(session, sandbox.open_checkout(checkout_url.rsplit("/", 1)[1]), succeeded)


def run_jobs(database: Database, settings: Settings) -> int:
    return drain(database, build_registry(manifests()), settings)


def reach_deadline(database: Database, deal_id: int) -> None:
    """The clock reaches the deal's deadline (moved to a moment ago instead of waiting for it)."""
    with database.unit_of_work() as session:
        session.execute(
            update(Deal).where(Deal.id == deal_id).values(deadline=utcnow() - timedelta(seconds=1))
        )


def close_by_job(database: Database, settings: Settings) -> None:
    """The periodic closing comes round, and the callbacks it causes are delivered."""
    with database.unit_of_work() as session:
        jobs.enqueue(session, "market.deals.close", {})
    run_jobs(database, settings)


def callbacks(database: Database, job: str) -> list[dict[str, str]]:
    with database.reading() as session:
        return list(session.scalars(select(Job.payload).where(Job.name == job).order_by(Job.id)))


def replay(database: Database, settings: Settings, job: str) -> None:
    """The provider sends every callback of ``job`` once more."""
    with database.unit_of_work() as session:
        for payload in callbacks(database, job):
            jobs.enqueue(session, job, payload)
    run_jobs(database, settings)


def notices(database: Database, topic: str) -> int:
    with database.reading() as session:
        return session.scalar(select(func.count()).where(Notification.topic == topic)) or 0


def audited(database: Database, action: str) -> int:
    with database.reading() as session:
        return session.scalar(select(func.count()).where(AuditRecord.action == action)) or 0


def joins_by_status(database: Database, deal_id: int) -> Counter[str]:
    with database.reading() as session:
        return Counter(session.scalars(select(DealJoin.status).where(DealJoin.deal_id == deal_id)))


def the_deal(database: Database, deal_id: int) -> Deal:
    with database.reading() as session:
        return session.get_one(Deal, deal_id)


def test_a_deal_that_reaches_its_minimum_gives_every_participant_a_voucher_for_the_till(
    client: TestClient, database: Database, settings: Settings
) -> None:
    market = build_market(client, database)
    deal = open_deal(client, market)
    assert deal["status"] == "open" and deal["joined"] == 0
    # the resident joins through the API and pays on the sandbox checkout page
    joined = client.post(f"{API}/deals/{deal['id']}/join", headers=market.resident)
    assert joined.status_code == 201, joined.text
    login(client, "resident")
    page = client.get(joined.json()["checkout_url"], headers=HTML)
    assert page.status_code == 200 and "¥99.00" in page.text
    paid = client.post(
        joined.json()["checkout_url"],
        data={"outcome": "pay", "csrf_token": csrf_token(page.text)},
        follow_redirects=False,
    )
    assert paid.headers["location"] == f"/market/deals/{deal['id']}"
    for principal in buyers(database, market, 3):
        answer(database, settings, join(database, settings, principal, deal["id"]).checkout_url)
    assert run_jobs(database, settings) == 4
    public = client.get(f"{API}/deals/{deal['id']}").json()
    assert public["joined"] == 4 and "person_id" not in json.dumps(public)
    assert [d["id"] for d in client.get(f"{API}/deals").json()] == [deal["id"]]
    again = client.post(f"{API}/deals/{deal['id']}/join", headers=market.resident)
    assert again.status_code == 409 and again.json()["type"].endswith("/already-joined")

    reach_deadline(database, deal["id"])
    close_by_job(database, settings)
    close_by_job(database, settings)  # a second closing changes nothing
    assert the_deal(database, deal["id"]).status == "succeeded"
    assert joins_by_status(database, deal["id"]) == {"issued": 4}
    assert notices(database, "market.deal.succeeded") == 4
    assert client.get(f"{API}/deals").json() == []
    closed = client.post(f"{API}/deals/{deal['id']}/join", headers=market.neighbour)
    assert closed.status_code == 409 and closed.json()["type"].endswith("/deal-closed")

    (mine,) = client.get(f"{API}/me/deal-joins", headers=market.resident).json()
    assert mine["status"] == "issued" and mine["deal_status"] == "succeeded"
    deal_page = client.get(f"/market/deals/{deal['id']}", headers=HTML).text  # logged in as the resident
    assert f'href="/market/me/coupons/{mine["voucher_code"]}"' in deal_page
    voucher = client.get(f"{API}/me/coupons/{mine['voucher_code']}", headers=market.resident).json()
    assert voucher["kind"] == "GROUPON" and voucher["status"] == "claimed"
    order = {
        "codes": [voucher["code"]],
        "store_id": market.stores[0],
        "amount_cents": 0,
        "client_key": "deal-0001",
    }
    redeemed = client.post(
        f"{API}/merchants/{market.merchant_id}/redemptions", json=order, headers=market.till
    )
    assert redeemed.status_code == 201, redeemed.text
    assert redeemed.json()["total_value_cents"] == PRICE
    batch = client.get(f"{API}/merchants/{market.merchant_id}/batches", headers=market.owner).json()[0]
    assert (batch["id"], batch["status"], batch["claimed"], batch["redeemed"]) == (
        deal["batch_id"],
        "ended",
        4,
        1,
    )
    assert client.get(f"{API}/me/deal-joins", headers=market.neighbour).json() == []


def test_a_deal_short_of_its_minimum_refunds_every_payment_once(
    client: TestClient, database: Database, settings: Settings
) -> None:
    market = build_market(client, database)
    deal = open_deal(client, market, min_participants=3)
    for principal in buyers(database, market, 2):
        answer(database, settings, join(database, settings, principal, deal["id"]).checkout_url)
    declined = client.post(f"{API}/deals/{deal['id']}/join", headers=market.neighbour).json()
    answer(database, settings, declined["checkout_url"], succeeded=False)
    client.post(f"{API}/deals/{deal['id']}/join", headers=market.resident)  # and never pays
    run_jobs(database, settings)
    assert joins_by_status(database, deal["id"]) == {"paid": 2, "failed": 1, "pending": 1}

    reach_deadline(database, deal["id"])
    close_by_job(database, settings)
    assert the_deal(database, deal["id"]).status == "failed"
    assert joins_by_status(database, deal["id"]) == {"refunded": 2, "failed": 1, "pending": 1}
    replay(database, settings, deals.REFUND_JOB)
    replay(database, settings, deals.PAYMENT_JOB)
    replay(database, settings, deals.REFUND_JOB)
    with database.reading() as session:
        refunded = session.scalars(select(DealJoin).where(DealJoin.status == "refunded")).all()
        assert sum(place.amount_cents for place in refunded) == 2 * PRICE
        assert all(
            place.refund_reference and place.refunded_at and place.coupon_id is None for place in refunded
        )
        assert session.scalar(select(func.count()).select_from(Coupon)) == 0
        assert session.scalar(select(Batch.status).where(Batch.id == deal["batch_id"])) == "ended"
    assert joins_by_status(database, deal["id"]) == {"refunded": 2, "failed": 1, "pending": 1}
    assert audited(database, "market.deal_join.refunded") == 2
    assert audited(database, "market.deal_join.counted") == 2
    assert (notices(database, "market.deal.failed"), notices(database, "market.deal.refunded")) == (2, 2)
    assert the_deal(database, deal["id"]).paid == 2


def test_a_replayed_payment_callback_counts_once_and_a_second_payment_is_kept_for_the_operator(
    client: TestClient, database: Database, settings: Settings
) -> None:
    market = build_market(client, database)
    deal = open_deal(client, market)
    checkout = client.post(f"{API}/deals/{deal['id']}/join", headers=market.resident).json()
    answer(database, settings, checkout["checkout_url"])
    run_jobs(database, settings)
    replay(database, settings, deals.PAYMENT_JOB)
    replay(database, settings, deals.PAYMENT_JOB)
    assert the_deal(database, deal["id"]).paid == 1
    assert audited(database, "market.deal_join.counted") == 1
    # the same checkout paid again in another tab: a second transaction, not a second place
    answer(database, settings, checkout["checkout_url"])
    run_jobs(database, settings)
    assert the_deal(database, deal["id"]).paid == 1
    assert audited(database, "market.deal_join.duplicate_payment") == 1
    cheaper = Settlement(
        reference=checkout["payment_reference"], transaction="SBX0", amount_cents=1, succeeded=True
    )
    with pytest.raises(InvalidCallback), database.unit_of_work() as session:
        deals.settle_payment(session, provider(settings), cheaper, utcnow())


def test_payments_over_capacity_or_after_the_close_are_refunded(
    client: TestClient, database: Database, settings: Settings
) -> None:
    market = build_market(client, database)
    deal = open_deal(client, market, min_participants=1, max_participants=2)
    first, second, third, fourth = buyers(database, market, 4)
    checkouts = [
        join(database, settings, principal, deal["id"]).checkout_url
        for principal in (first, second, third, fourth)
    ]
    for checkout in checkouts[:3]:  # all three joined while places were free; two fit
        answer(database, settings, checkout)
    run_jobs(database, settings)
    assert the_deal(database, deal["id"]).paid == 2
    assert joins_by_status(database, deal["id"]) == {"paid": 2, "refunded": 1, "pending": 1}
    full = client.post(f"{API}/deals/{deal['id']}/join", headers=market.resident)
    assert full.status_code == 409 and full.json()["type"].endswith("/deal-full")

    reach_deadline(database, deal["id"])
    close_by_job(database, settings)
    answer(database, settings, checkouts[3])  # the fourth pays after the close
    run_jobs(database, settings)
    assert the_deal(database, deal["id"]).paid == 2
    assert joins_by_status(database, deal["id"]) == {"issued": 2, "refunded": 2}
    assert notices(database, "market.deal.late") == 2 and notices(database, "market.deal.succeeded") == 2
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Coupon)) == 2


def test_the_merchant_opens_lists_and_cancels_deals_and_participants_are_refunded(
    client: TestClient, database: Database, settings: Settings
) -> None:
    market = build_market(client, database)
    base = f"{API}/merchants/{market.merchant_id}/deals"
    refused = {
        "past deadline": deal_body(deadline=(datetime.now(UTC) - timedelta(minutes=1)).isoformat()),
        "max below min": deal_body(min_participants=5, max_participants=2),
        "no zone": deal_body(deadline="2030-01-01T20:00:00"),
        "dearer than before": deal_body(original_price_cents=PRICE),
        "another's store": deal_body(store_ids=[999_999]),
    }
    for why, body in refused.items():
        answer_ = client.post(base, json=body, headers=market.owner)
        assert answer_.status_code == 422, why
    assert client.post(base, json=deal_body(), headers=market.clerk).status_code == 403
    deal = open_deal(client, market, store_ids=[market.stores[0]])
    assert deal["store_ids"] == [market.stores[0]] and deal["deal_detail"].startswith("两位")
    started = client.post(
        f"{API}/merchants/{market.merchant_id}/batches/{deal['batch_id']}/status",
        json={"status": "active"},
        headers=market.owner,
    )
    assert started.status_code == 409 and started.json()["type"].endswith("/deal-batch")
    assert client.post(f"{API}/batches/{deal['batch_id']}/claim", headers=market.resident).status_code == 404
    for principal in buyers(database, market, 2):
        answer(database, settings, join(database, settings, principal, deal["id"]).checkout_url)
    run_jobs(database, settings)

    cancelled = client.post(f"{base}/{deal['id']}/cancel", headers=market.owner)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"{base}/{deal['id']}/cancel", headers=market.owner)
    assert again.status_code == 409 and again.json()["type"].endswith("/not-open")
    run_jobs(database, settings)
    assert joins_by_status(database, deal["id"]) == {"refunded": 2}
    assert notices(database, "market.deal.cancelled") == 2
    assert [d["status"] for d in client.get(base, headers=market.owner).json()] == ["cancelled"]
    assert audited(database, "market.deal.created") == 1 and audited(database, "market.deal.cancelled") == 1
    assert client.get(f"{API}/deals/999999").status_code == 404


def test_residents_join_through_the_pages_and_merchants_run_deals_from_their_console(
    client: TestClient, database: Database, settings: Settings
) -> None:
    market = build_market(client, database)
    console = f"/market/merchant/{market.merchant_id}/deals"
    tomorrow = (datetime.now(ZoneInfo(TZ)) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    form = {
        "title": "周末亲子烘焙课",
        "deal_detail": "一大一小烘焙体验课一节",
        "price": "59",
        "original_price": "99.00",
        "min_participants": "2",
        "max_participants": "",
        "deadline": tomorrow,
        "valid_days": "14",
    }
    login(client, "owner1")
    refused = post_form(client, console, console, {**form, "price": "五十"})
    assert refused.status_code == 422 and "周末亲子烘焙课" in refused.text
    assert post_form(client, console, console, form).status_code == 303
    (deal,) = client.get(f"{API}/merchants/{market.merchant_id}/deals", headers=market.owner).json()
    assert (deal["price_cents"], deal["original_price_cents"], deal["max_participants"]) == (
        5_900,
        9_900,
        None,
    )
    assert "周末亲子烘焙课" in client.get(console, headers=HTML).text

    login(client, "resident")
    assert "周末亲子烘焙课" in client.get("/market/deals", headers=HTML).text
    page = f"/market/deals/{deal['id']}"
    joined = post_form(client, page, f"{page}/join", {})
    assert joined.status_code == 303 and joined.headers["location"].startswith("/payments/sandbox/")
    answer(database, settings, joined.headers["location"])
    run_jobs(database, settings)
    mine = client.get(page, headers=HTML)
    assert mine.status_code == 200 and f'hx-get="{page}/progress"' in mine.text
    assert '<progress max="2" value="1"' in client.get(f"{page}/progress", headers=HTML).text
    assert f'href="{page}"' in client.get("/market/deals", headers=HTML).text  # among my deals too
    assert client.get(console, headers=HTML).status_code == 403

    login(client, "owner1")
    cancelled = post_form(client, console, f"{console}/{deal['id']}/cancel", {})
    assert cancelled.status_code == 303
    run_jobs(database, settings)
    assert joins_by_status(database, deal["id"]) == {"refunded": 1}
    login(client, "resident")
    closed = post_form(client, page, f"{page}/join", {})
    assert closed.status_code == 409


# -- joins settling while the deal closes -------------------------------------------------------------------

PARTICIPANTS = 40
SETTLED_BEFORE = 5  # counted before the race, so the deal reaching 5 is sure to succeed


@pytest.mark.parametrize("minimum", [SETTLED_BEFORE, PARTICIPANTS + 1], ids=["succeeds", "fails"])
def test_joins_settling_while_the_deal_closes_agree_with_its_outcome(
    client: TestClient, database: Database, settings: Settings, minimum: int
) -> None:
    market = build_market(client, database)
    deal = open_deal(client, market, min_participants=minimum, max_participants=None)
    sandbox = provider(settings)
    references = [
        join(database, settings, principal, deal["id"]).payment_reference
        for principal in buyers(database, market, PARTICIPANTS)
    ]
    deadline = the_deal(database, deal["id"]).deadline

    def settle(n: int) -> str:
        # half pay a moment before the deadline (in time, unless the closing got there first), half after it
        now = deadline - timedelta(milliseconds=1) if n % 2 else deadline + timedelta(milliseconds=1)
        paid = Settlement(
            reference=references[n], transaction=f"SBX{n:04d}", amount_cents=PRICE, succeeded=True
        )
        with database.unit_of_work() as session:
            return deals.settle_payment(session, sandbox, paid, now)

    def close() -> int:
        with database.unit_of_work() as session:
            return deals.close_due(session, sandbox, Clock(deadline, TZ))

    early = [settle(n) for n in range(1, 2 * SETTLED_BEFORE, 2)]
    middle = (2 * SETTLED_BEFORE + PARTICIPANTS) // 2
    with ThreadPoolExecutor(max_workers=8) as pool:
        racing = [pool.submit(settle, n) for n in range(2 * SETTLED_BEFORE, middle)]
        closings = [pool.submit(close) for _ in range(2)]  # two workers closing at once
        racing += [pool.submit(settle, n) for n in range(middle, PARTICIPANTS)]
        racing += [pool.submit(settle, n) for n in range(0, 2 * SETTLED_BEFORE, 2)]
        outcomes = Counter(early + [future.result() for future in racing])
        assert sorted(future.result() for future in closings) == [0, 1]
    run_jobs(database, settings)  # the refund callbacks
    run_jobs(database, settings)

    counted = outcomes["paid"]
    assert counted + outcomes["refunding"] == PARTICIPANTS and counted >= SETTLED_BEFORE
    closed = the_deal(database, deal["id"])
    assert closed.paid == counted
    assert closed.status == ("succeeded" if counted >= minimum else "failed")
    with database.reading() as session:
        places = session.scalars(select(DealJoin).where(DealJoin.deal_id == deal["id"])).all()
        vouchers = Counter(
            session.scalars(select(Coupon.person_id).where(Coupon.batch_id == deal["batch_id"]))
        )
    issued = [place for place in places if place.status == "issued"]
    refunded = [place for place in places if place.status == "refunded"]
    assert len(issued) + len(refunded) == PARTICIPANTS
    if closed.status == "succeeded":
        assert len(issued) == counted and all(vouchers[place.person_id] == 1 for place in issued)
    else:
        assert not issued
    assert sum(vouchers.values()) == len(issued)
    assert all(place.coupon_id is None and vouchers[place.person_id] == 0 for place in refunded)
