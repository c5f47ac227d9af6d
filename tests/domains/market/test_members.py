"""Member cards and points: the owner's program and rewards, residents joining, the till earning and spending
points by card number or citizen card QR, refunds reversed once, retries answered the same, nothing
overdrawn or oversold with tills at once; and the pages of residents, owners and the counter."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from cityhub.domains.identity import Principal, account_id_of, person_of_account
from cityhub.domains.identity.dependencies import identity_settings
from cityhub.domains.identity.models import Person
from cityhub.domains.identity.service import card, people
from cityhub.domains.identity.service.accounts import principal_for_account
from cityhub.domains.market import schemas
from cityhub.domains.market.models import Membership, PointsEntry, Reward
from cityhub.domains.market.service import members
from cityhub.kernel.db import Database
from cityhub.kernel.errors import Conflict
from cityhub.kernel.models import AuditRecord
from cityhub.kernel.settings import Settings
from tests.domains.market.world import API, Market, apply_and_approve, build_market, store_body
from tests.factories import bearer, make_user
from tests.web.factories import HTML, csrf_token, login

LEVELS = [
    {"name": "银卡", "name_en": "Silver", "min_points": 100, "discount_percent": 5},
    {"name": "普通会员", "min_points": 0},
    {"name": "金卡", "name_en": "Gold", "min_points": 500, "discount_percent": 12},
]
CARD_NUMBER = re.compile(r"^\d{16}$")


def _program(client: TestClient, market: Market, **overrides: Any) -> dict[str, Any]:
    body = {"title": "面馆会员卡", "points_per_yuan": 2, "levels": LEVELS, **overrides}
    url = f"{API}/merchants/{market.merchant_id}/member-program"
    saved = client.put(url, json=body, headers=market.owner)
    assert saved.status_code == 200, saved.text
    return dict(saved.json())


def _reward(client: TestClient, market: Market, **overrides: Any) -> int:
    body = {"title": "酸梅汤一杯", "points_cost": 50, **overrides}
    made = client.post(f"{API}/merchants/{market.merchant_id}/rewards", json=body, headers=market.owner)
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def _join(client: TestClient, market: Market, who: dict[str, str] | None = None) -> str:
    joined = client.post(f"{API}/merchants/{market.merchant_id}/membership", headers=who or market.resident)
    assert joined.status_code in (200, 201), joined.text
    return str(joined.json()["number"])


def _buy(client: TestClient, market: Market, cents: int, key: str, **member: Any) -> Response:
    body = {"amount_cents": cents, "store_id": market.stores[0], "client_key": key, **member}
    return client.post(
        f"{API}/merchants/{market.merchant_id}/points/purchases", json=body, headers=market.till
    )


def _spend(client: TestClient, market: Market, reward: int, key: str, **member: Any) -> Response:
    body = {"reward_id": reward, "client_key": key, **member}
    url = f"{API}/merchants/{market.merchant_id}/points/redemptions"
    return client.post(url, json=body, headers=market.till)


def _reverse(client: TestClient, market: Market, entry: int) -> Response:
    return client.post(f"{API}/merchants/{market.merchant_id}/points/{entry}/reversal", headers=market.till)


def _look_up(client: TestClient, market: Market, **body: Any) -> Response:
    url = f"{API}/merchants/{market.merchant_id}/members/lookup"
    return client.post(url, json=body, headers=market.till)


def _refused(response: Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = dict(response.json())
    assert problem["type"].endswith(f"/{slug}") and problem["status"] == status
    return problem


def _has(found: dict[str, Any], **expected: Any) -> bool:
    """Whether ``found`` holds these fields with these values (and maybe others)."""
    return found | expected == found


def _card_refused(response: Response) -> str:
    """Why identity refused a citizen card code (a 422 ``invalid-citizen-card`` problem)."""
    return str(_refused(response, 422, "invalid-citizen-card")["reason"])


def _citizen_card(client: TestClient, who: dict[str, str]) -> str:
    issued = client.get("/api/v1/identity/card", headers=who)
    assert issued.status_code == 200, issued.text
    return str(issued.json()["token"])


def _points(database: Database, number: str) -> int:
    with database.reading() as session:
        return int(session.scalar(select(Membership.points).where(Membership.number == number)) or 0)


def _audited(database: Database, action: str) -> int:
    with database.reading() as session:
        return int(
            session.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.action == action))
            or 0
        )


def test_the_owner_sets_up_a_card_and_residents_join(client: TestClient, database: Database) -> None:
    market = build_market(client, database)
    public = f"{API}/merchants/{market.merchant_id}/member-program"
    _refused(client.get(public), 404, "no-member-card")
    _refused(
        client.post(f"{API}/merchants/{market.merchant_id}/membership", headers=market.resident),
        404,
        "no-member-card",
    )
    twice = [{"name": "银卡", "min_points": 1}, {"name": "银卡", "min_points": 2}]
    bad = client.put(public, json={"title": "卡", "levels": twice}, headers=market.owner)
    assert bad.status_code == 422 and "same name" in bad.text
    assert client.put(public, json={"title": "卡"}, headers=market.clerk).status_code == 403

    saved = _program(client, market)
    assert [level["name"] for level in saved["levels"]] == ["普通会员", "银卡", "金卡"]  # by points
    assert saved["accepts_citizen_card"] is True and saved["rewards"] == []
    assert client.get(public).json()["title"] == "面馆会员卡"  # anyone may read it
    assert _audited(database, "market.member_program.created") == 1

    joined = client.post(f"{API}/merchants/{market.merchant_id}/membership", headers=market.resident)
    assert joined.status_code == 201, joined.text
    card_out = joined.json()
    assert CARD_NUMBER.match(card_out["number"]) and card_out["merchant_name"] == "邻里面馆"
    assert card_out["level"] == "普通会员" and card_out["points"] == 0
    assert (card_out["next_level"], card_out["points_to_next_level"]) == ("银卡", 100)
    again = client.post(f"{API}/merchants/{market.merchant_id}/membership", headers=market.resident)
    assert again.status_code == 200 and again.json()["number"] == card_out["number"]
    assert _join(client, market, market.neighbour) != card_out["number"]

    _program(client, market, active=False)  # paused: nobody joins
    _refused(
        client.post(f"{API}/merchants/{market.merchant_id}/membership", headers=market.owner),
        404,
        "no-member-card",
    )
    _refused(_buy(client, market, 1000, "paused-0001", card_number=card_out["number"]), 409, "program-paused")


def test_purchases_earn_points_and_reach_levels(client: TestClient, database: Database) -> None:
    market = build_market(client, database)
    _program(client, market)
    number = _join(client, market)
    first = _buy(client, market, 1234, "till-0001", card_number=number)  # ¥12.34 × 2 = 24.68 → 24
    assert first.status_code == 201, first.text
    answer = first.json()
    assert answer["replayed"] is False and answer["entry"]["kind"] == "earn"
    assert _has(answer["entry"], points=24, balance_after=24, amount_cents=1234)
    assert answer["member"]["level"] == "普通会员" and answer["member"]["points_to_next_level"] == 76

    spaced = " ".join(number[i : i + 4] for i in range(0, 16, 4))  # as read out at the counter
    second = _buy(client, market, 4000, "till-0002", card_number=spaced).json()
    assert _has(second["member"], points=104, lifetime_points=104, level="银卡", discount_percent=5)
    assert (second["member"]["next_level"], second["member"]["points_to_next_level"]) == ("金卡", 396)
    by_clerk = client.post(
        f"{API}/merchants/{market.merchant_id}/points/purchases",
        json={"amount_cents": 100, "client_key": "clerk-0001", "card_number": number},
        headers=market.clerk,
    )
    assert by_clerk.status_code == 201 and by_clerk.json()["entry"]["store_id"] is None
    with database.reading() as session:
        recorded = session.scalars(select(PointsEntry.recorded_by).order_by(PointsEntry.id)).all()
    assert recorded[0].startswith("apikey:") and recorded[2].startswith("account:")

    mine = client.get(f"{API}/me/memberships", headers=market.resident).json()
    assert [(c["number"], c["level"], c["points"]) for c in mine] == [(number, "银卡", 106)]
    detail = client.get(f"{API}/me/memberships/{number}", headers=market.resident).json()
    assert "<svg" in detail["qr_svg"] and [e["points"] for e in detail["history"]] == [2, 80, 24]
    assert client.get(f"{API}/me/memberships/{number}", headers=market.neighbour).status_code == 404
    assert client.get(f"{API}/me/memberships", headers=market.neighbour).json() == []

    raised = [{**level, "min_points": 200} if level["name"] == "银卡" else level for level in LEVELS]
    _program(client, market, levels=raised)  # members' levels follow the new thresholds at once
    assert client.get(f"{API}/me/memberships", headers=market.resident).json()[0]["level"] == "普通会员"


def test_rewards_cost_points_and_never_pass_their_stock(client: TestClient, database: Database) -> None:
    market = build_market(client, database)
    _program(client, market)
    one_left = _reward(client, market, stock=1)
    dear = _reward(client, market, title="代金券 50 元", points_cost=1000)
    mine, theirs = _join(client, market), _join(client, market, market.neighbour)
    _buy(client, market, 3000, "buy-mine-01", card_number=mine)  # 60 points each
    _buy(client, market, 3000, "buy-theirs1", card_number=theirs)

    taken = _spend(client, market, one_left, "spend-0001", card_number=mine)
    assert taken.status_code == 201, taken.text
    assert _has(taken.json()["entry"], kind="redeem", points=-50, balance_after=10, reward_title="酸梅汤一杯")
    _refused(_spend(client, market, one_left, "spend-0002", card_number=theirs), 409, "out-of-stock")
    assert _points(database, theirs) == 60  # the points came back with the refusal
    problem = _refused(
        _spend(client, market, dear, "spend-0003", card_number=mine), 409, "insufficient-points"
    )
    assert problem["points_cost"] == 1000 and _points(database, mine) == 10

    withdraw = {"title": "代金券 50 元", "points_cost": 1000, "active": False}
    url = f"{API}/merchants/{market.merchant_id}/rewards"
    assert client.put(f"{url}/{dear}", json=withdraw, headers=market.owner).json()["active"] is False
    _refused(_spend(client, market, dear, "spend-0004", card_number=theirs), 409, "reward-withdrawn")
    fewer = client.put(
        f"{url}/{one_left}", json={"title": "酸梅汤一杯", "points_cost": 50, "stock": 0}, headers=market.owner
    )
    _refused(fewer, 409, "stock-below-redeemed")
    assert [r["remaining"] for r in client.get(url, headers=market.owner).json()] == [0, None]
    offered = client.get(f"{API}/merchants/{market.merchant_id}/member-program").json()["rewards"]
    assert [r["id"] for r in offered] == [one_left]  # a withdrawn reward is not offered
    _refused(_spend(client, market, 999_999, "spend-0005", card_number=mine), 404, "not-found")

    stats = client.get(
        f"{API}/merchants/{market.merchant_id}/member-program/stats", headers=market.owner
    ).json()
    assert stats == {
        "members": 2,
        "by_level": [{"level": "普通会员", "members": 2}],
        "points_issued": 120,
        "points_reversed": 0,
        "points_redeemed": 50,
        "points_outstanding": 70,
        "rewards_redeemed": 1,
    }
    listed = client.get(f"{API}/merchants/{market.merchant_id}/members", headers=market.owner)
    assert listed.json()["total"] == 2 and "李四" not in listed.text and mine not in listed.text
    assert {row["number_masked"][-4:] for row in listed.json()["items"]} == {mine[-4:], theirs[-4:]}
    assert (
        client.get(f"{API}/merchants/{market.merchant_id}/members", headers=market.clerk).status_code == 403
    )
    assert _audited(database, "market.reward.added") == 2 and _audited(database, "market.reward.changed") == 1


def test_a_retry_answers_the_same_and_counts_once(client: TestClient, database: Database) -> None:
    market = build_market(client, database)
    _program(client, market)
    reward = _reward(client, market)
    mine, theirs = _join(client, market), _join(client, market, market.neighbour)
    first = _buy(client, market, 5000, "till1-0042", card_number=mine)
    retry = _buy(client, market, 5000, "till1-0042", card_number=mine)
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["replayed"] is True and retry.json()["entry"] == first.json()["entry"]
    assert _points(database, mine) == 100
    _refused(_spend(client, market, reward, "till1-0042", card_number=mine), 409, "key-reused")
    _refused(_buy(client, market, 5000, "till1-0042", card_number=theirs), 409, "key-reused")

    earning = first.json()["entry"]["id"]
    reversed_ = _reverse(client, market, earning)
    assert reversed_.status_code == 201, reversed_.text
    assert _has(reversed_.json()["entry"], kind="reverse", points=-100, balance_after=0)
    assert reversed_.json()["member"]["lifetime_points"] == 100  # lifetime points only grow
    again = _reverse(client, market, earning)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["entry"]["id"] == reversed_.json()["entry"]["id"] and _points(database, mine) == 0
    _refused(_reverse(client, market, reversed_.json()["entry"]["id"]), 409, "not-an-earning")
    history = client.get(f"{API}/me/memberships/{mine}", headers=market.resident).json()["history"]
    assert [(e["kind"], e["reversed"]) for e in history] == [("reverse", False), ("earn", True)]

    spent = _buy(client, market, 3000, "till1-0043", card_number=mine).json()["entry"]["id"]  # 60
    assert _spend(client, market, reward, "till1-0044", card_number=mine).status_code == 201  # 10 left
    _refused(_reverse(client, market, spent), 409, "points-spent")
    assert _points(database, mine) == 10 and _audited(database, "market.points.reversed") == 1
    with database.reading() as session:
        kinds = Counter(session.scalars(select(PointsEntry.kind)))
    assert kinds == {"earn": 2, "reverse": 1, "redeem": 1}


def test_the_citizen_card_names_a_member_and_enrols_one(client: TestClient, database: Database) -> None:
    market = build_market(client, database)
    _program(client, market)
    token = _citizen_card(client, market.resident)
    _refused(_look_up(client, market, citizen_card=token), 404, "not-a-member")
    enrolled = _look_up(client, market, citizen_card=token, enrol=True)
    assert enrolled.status_code == 200, enrolled.text
    member = enrolled.json()["member"]
    assert _has(member, enrolled=True, level="普通会员") and CARD_NUMBER.match(member["number"])
    assert _audited(database, "market.member.enrolled") == 1
    assert "张三" not in enrolled.text and "person" not in enrolled.text  # the till never learns who

    bought = _buy(client, market, 6000, "card-00001", citizen_card=token)
    assert bought.status_code == 201, bought.text
    assert _has(bought.json()["member"], number=member["number"], enrolled=False, points=120)
    again = _look_up(client, market, citizen_card=token, enrol=True).json()
    assert again["member"]["enrolled"] is False and [e["points"] for e in again["history"]] == [120]
    mine = client.get(f"{API}/me/memberships", headers=market.resident).json()
    assert [c["number"] for c in mine] == [member["number"]]

    theirs = _citizen_card(client, market.neighbour)
    newcomer = _buy(client, market, 1000, "card-00002", citizen_card=theirs, enrol=True)
    assert newcomer.status_code == 201 and newcomer.json()["member"]["enrolled"] is True
    assert newcomer.json()["member"]["points"] == 20 and _audited(database, "market.member.enrolled") == 2
    by_number = client.get(
        f"{API}/merchants/{market.merchant_id}/members/{member['number']}", headers=market.clerk
    )
    assert by_number.status_code == 200 and by_number.json()["member"]["points"] == 120


def test_forged_expired_and_revoked_citizen_cards_are_refused(
    client: TestClient, database: Database, settings: Settings
) -> None:
    market = build_market(client, database)
    _program(client, market)
    token = _citizen_card(client, market.resident)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    someone_else = json.dumps({**claims, "sub": "1"}).encode()
    forged = f"{header}.{base64.urlsafe_b64encode(someone_else).rstrip(b'=').decode()}.{signature}"
    assert _card_refused(_look_up(client, market, citizen_card=forged, enrol=True)) == "bad-signature"

    with database.reading() as session:
        person = session.get(Person, person_of_account(session, account_id_of(session, "resident")))
        assert person is not None
        expired = card.issue_card(person, card.signing_key(settings, identity_settings()), -60).token
    assert _card_refused(_look_up(client, market, citizen_card=expired)) == "expired"
    assert _card_refused(_look_up(client, market, citizen_card="not.a.card")) == "malformed"

    assert client.post("/api/v1/identity/card/revoke", headers=market.resident).status_code == 204
    assert (
        _card_refused(_buy(client, market, 1000, "revoked-01", citizen_card=token, enrol=True)) == "revoked"
    )
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Membership)) == 0


def test_a_card_that_does_not_take_the_citizen_card_refuses_it(
    client: TestClient, database: Database
) -> None:
    market = build_market(client, database)
    _program(client, market, accepts_citizen_card=False)
    number = _join(client, market)
    token = _citizen_card(client, market.resident)
    _refused(_look_up(client, market, citizen_card=token, enrol=True), 409, "citizen-card-not-accepted")
    _refused(_buy(client, market, 1000, "no-card-01", citizen_card=token), 409, "citizen-card-not-accepted")
    assert _buy(client, market, 1000, "no-card-02", card_number=number).status_code == 201
    neither = _look_up(client, market)
    assert neither.status_code == 422 and "either card_number or citizen_card" in neither.text


def test_a_till_works_only_for_its_own_merchant(client: TestClient, database: Database) -> None:
    market = build_market(client, database)
    _program(client, market)
    make_user(database, "owner2", [("resident", market.town.community_a)], name="钱老板")
    other = apply_and_approve(client, bearer(client, "owner2"), market.operator, "街角咖啡")
    owner2 = bearer(client, "owner2")
    put = client.put(f"{API}/merchants/{other}/member-program", json={"title": "咖啡卡"}, headers=owner2)
    assert put.status_code == 200, put.text
    store2 = client.post(
        f"{API}/merchants/{other}/stores", json=store_body("咖啡店", 120.2, 30.25), headers=owner2
    )
    theirs = client.post(f"{API}/merchants/{other}/membership", headers=market.resident).json()["number"]
    mine = _join(client, market)

    elsewhere = {"amount_cents": 1000, "client_key": "other-0001", "card_number": theirs}
    for caller in (market.till, market.clerk, market.owner):  # merchant 1's till and staff
        answer = client.post(f"{API}/merchants/{other}/points/purchases", json=elsewhere, headers=caller)
        assert answer.status_code == 403, answer.text
    resident_till = client.post(
        f"{API}/merchants/{market.merchant_id}/points/purchases",
        json={**elsewhere, "card_number": mine},
        headers=market.resident,
    )
    assert resident_till.status_code == 403
    _refused(_buy(client, market, 1000, "other-0002", card_number=theirs), 404, "not-a-member")
    wrong_store = _buy(client, market, 1000, "other-0003", card_number=mine, store_id=store2.json()["id"])
    assert wrong_store.status_code == 422 and "store_id" in wrong_store.text
    _refused(_reverse(client, market, 999_999), 404, "not-found")


# -- at once, on both databases ------------------------------------------------------------------------------


def _clerk(database: Database) -> Principal:
    with database.reading() as session:
        return principal_for_account(session, account_id_of(session, "clerk1"))


def _attempt(database: Database, work: Any) -> str:
    try:
        with database.unit_of_work() as session:
            work(session)
        return "ok"
    except Conflict as refusal:
        return refusal.slug


def test_rewards_redeemed_at_once_never_overdraw_a_card(
    client: TestClient, database: Database, settings: Settings
) -> None:
    market = build_market(client, database)
    _program(client, market, points_per_yuan=1)
    reward = _reward(client, market, points_cost=10)
    number = _join(client, market)
    assert _buy(client, market, 5000, "fill-00001", card_number=number).json()["member"]["points"] == 50
    clerk = _clerk(database)

    def spend(n: int) -> str:
        data = schemas.RewardRedemptionIn(card_number=number, reward_id=reward, client_key=f"rush-{n:04d}")
        return _attempt(
            database,
            lambda session: members.redeem_reward(session, clerk, market.merchant_id, data, settings),
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = Counter(pool.map(spend, range(40)))
    assert outcomes == {"ok": 5, "insufficient-points": 35}
    with database.reading() as session:
        assert session.scalar(select(Membership.points).where(Membership.number == number)) == 0
        balances = session.scalars(
            select(PointsEntry.balance_after).where(PointsEntry.kind == "redeem")
        ).all()
        assert sorted(balances) == [0, 10, 20, 30, 40]
        assert session.scalar(select(Reward.redeemed).where(Reward.id == reward)) == 5


def test_a_reward_stock_holds_with_many_members_at_once(
    client: TestClient, database: Database, settings: Settings
) -> None:
    market = build_market(client, database)
    _program(client, market, points_per_yuan=1)
    reward = _reward(client, market, points_cost=10, stock=3)
    with database.unit_of_work() as session:
        persons = [
            people.create_person(session, people.PersonInput(name=f"会员{n}"), "salt") for n in range(8)
        ]
        session.flush()
        residents = [Principal("account", 20_000 + n, f"m{n}", p.id, ()) for n, p in enumerate(persons)]
        numbers = [members.join(session, resident, market.merchant_id)[0].number for resident in residents]
    # 100 points each, enough for every one of their tries: only the stock refuses.
    for n, number in enumerate(numbers):
        assert _buy(client, market, 10_000, f"fill-{n:05d}", card_number=number).status_code == 201
    clerk = _clerk(database)

    def spend(n: int) -> str:
        data = schemas.RewardRedemptionIn(
            card_number=numbers[n % len(numbers)], reward_id=reward, client_key=f"rush-{n:04d}"
        )
        return _attempt(
            database,
            lambda session: members.redeem_reward(session, clerk, market.merchant_id, data, settings),
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = Counter(pool.map(spend, range(24)))
    assert outcomes == {"ok": 3, "out-of-stock": 21}
    with database.reading() as session:
        assert session.scalar(select(Reward.redeemed).where(Reward.id == reward)) == 3
        assert session.scalar(select(func.sum(Membership.points))) == 8 * 100 - 3 * 10


def test_simultaneous_retries_of_one_purchase_count_it_once(
    client: TestClient, database: Database, settings: Settings
) -> None:
    market = build_market(client, database)
    _program(client, market, points_per_yuan=1)
    number = _join(client, market)
    clerk = _clerk(database)
    data = schemas.PurchaseIn(card_number=number, amount_cents=1000, client_key="double-tap-1")

    def buy(_n: int) -> tuple[int, bool]:
        with database.unit_of_work() as session:
            answer = members.record_purchase(session, clerk, market.merchant_id, data, settings)
        return answer.entry.id, answer.replayed

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(buy, range(16)))
    assert len({entry for entry, _replayed in answers}) == 1
    assert Counter(replayed for _entry, replayed in answers) == {True: 15, False: 1}
    assert _points(database, number) == 10


# -- pages ------------------------------------------------------------------------------------------------


def _as(client: TestClient, username: str) -> None:
    client.cookies.clear()
    client.cookies.set("cityhub_locale", "en")
    assert login(client, username).status_code == 303


def _page(client: TestClient, url: str) -> str:
    page = client.get(url, headers=HTML)
    assert page.status_code == 200, page.text
    return page.text


def _post(client: TestClient, page: str, action: str, data: dict[str, str], **headers: str) -> Response:
    token = csrf_token(_page(client, page))
    return client.post(
        action, data={**data, "csrf_token": token}, headers={**HTML, **headers}, follow_redirects=False
    )


def test_residents_join_on_the_store_page_and_show_their_card(client: TestClient, database: Database) -> None:
    market = build_market(client, database)
    _program(client, market)
    _reward(client, market)
    store = f"/market/stores/{market.stores[0]}"
    _as(client, "resident")
    assert "Join the member card" in _page(client, store) and f'hx-post="{store}/join"' in _page(
        client, store
    )
    swapped = _post(client, store, f"{store}/join", {}, **{"HX-Request": "true"})
    assert swapped.status_code == 200 and "<html" not in swapped.text
    assert 'id="member-card"' in swapped.text and "Show my member card" in swapped.text
    plain = _post(client, store, f"{store}/join", {})  # already a member: on to the card
    assert plain.status_code == 303 and plain.headers["location"].startswith("/market/me/members/")
    number = plain.headers["location"].rsplit("/", 1)[1]

    assert 'href="/market/me/members"' in _page(client, "/market/me/coupons")
    cards = _page(client, "/market/me/members")
    assert "面馆会员卡" in cards and f"/market/me/members/{number}" in cards and "普通会员" in cards
    shown = _page(client, plain.headers["location"])
    assert '<div class="qr"' in shown and "<svg" in shown and " ".join([number[:4], number[4:8]]) in shown
    assert "酸梅汤一杯" in shown and "No points yet" in shown
    assert client.get("/market/me/members/0000000000000000", headers=HTML).status_code == 404


def test_the_owner_runs_the_card_from_the_console(client: TestClient, database: Database) -> None:
    market = build_market(client, database)
    desk = f"/market/merchant/{market.merchant_id}/members"
    _as(client, "owner1")
    console = _page(client, "/market/merchant")
    assert f'href="{desk}"' in console and f'href="{desk}/till"' in console
    assert "Start a member card" in _page(client, desk)
    levels = "普通会员, 0\n银卡, 100, 5, Silver"
    form = {
        "title": "面馆会员卡",
        "points_per_yuan": "2",
        "levels": levels,
        "accepts_citizen_card": "on",
        "active": "on",
    }
    saved = _post(client, desk, f"{desk}/program", form)
    assert saved.status_code == 303, saved.text
    program = client.get(f"{API}/merchants/{market.merchant_id}/member-program").json()
    assert program["levels"][1] == {
        "name": "银卡",
        "name_en": "Silver",
        "min_points": 100,
        "discount_percent": 5,
    }
    refused = _post(client, desk, f"{desk}/program", {**form, "levels": "银卡 only"})
    assert refused.status_code == 422 and 'role="alert"' in refused.text and "银卡 only" in refused.text
    added = _post(
        client,
        desk,
        f"{desk}/rewards",
        {"title": "酸梅汤一杯", "points_cost": "50", "stock": "", "active": "on"},
    )
    assert added.status_code == 303, added.text
    free = _post(client, desk, f"{desk}/rewards", {"title": "白送", "points_cost": "0", "active": "on"})
    assert free.status_code == 422 and '<details id="new-reward" open>' in free.text and "白送" in free.text
    page = _page(client, desk)
    assert "酸梅汤一杯" in page and "Members and points" in page and "Nobody has joined yet" in page
    _join(client, market)
    assert "**** **** ****" in _page(client, desk)
    _as(client, "clerk1")  # clerks use the till, not the console of the card
    assert client.get(desk, headers=HTML).status_code == 403


def test_the_counter_finds_members_and_records_points(client: TestClient, database: Database) -> None:
    market = build_market(client, database)
    _program(client, market)
    reward = _reward(client, market)
    number = _join(client, market)
    token = _citizen_card(client, market.neighbour)
    till = f"/market/merchant/{market.merchant_id}/members/till"
    _as(client, "clerk1")
    assert "Member card or citizen card" in _page(client, till)

    found = _post(client, till, f"{till}/lookup", {"identifier": number, "store_id": str(market.stores[0])})
    assert found.status_code == 303 and f"number={number}" in found.headers["location"]
    page = _page(client, found.headers["location"])
    key = re.search(r'name="client_key" value="([0-9a-f]+)"', page)
    assert key and "Record a purchase" in page
    purchase = {
        "number": number,
        "amount": "30.00",
        "store_id": str(market.stores[0]),
        "client_key": key.group(1),
    }
    assert _post(client, till, f"{till}/purchase", purchase).status_code == 303
    assert "60 points earned" in _page(client, f"{till}?number={number}")
    assert _post(client, till, f"{till}/purchase", purchase).status_code == 303  # a double tap
    assert (
        "nothing was counted twice" in _page(client, f"{till}?number={number}")
        and _points(database, number) == 60
    )

    spend = {"number": number, "reward_id": str(reward), "client_key": "page-reward-1"}
    assert _post(client, till, f"{till}/reward", spend).status_code == 303
    assert "酸梅汤一杯 given for 50 points; 10 left" in _page(client, f"{till}?number={number}")
    with database.reading() as session:
        earning = session.scalar(select(PointsEntry.id).where(PointsEntry.kind == "earn"))
    refund = {"number": number, "entry_id": str(earning)}
    assert _post(client, till, f"{till}/reversal", refund).status_code == 303
    assert "already" in _page(client, f"{till}?number={number}")  # 10 points left of 60: refused

    joined = _post(client, till, f"{till}/lookup", {"identifier": token, "enrol": "true"})
    assert joined.status_code == 303 and "number=" in joined.headers["location"]
    assert "A new member" in _page(client, joined.headers["location"])
    unknown = _post(client, till, f"{till}/lookup", {"identifier": "1234123412341234"})
    assert unknown.headers["location"] == till and 'role="alert"' in _page(client, till)
    client.cookies.clear()
    anonymous = client.get(till, headers=HTML, follow_redirects=False)
    assert anonymous.status_code in (303, 307) and "/login" in anonymous.headers["location"]
