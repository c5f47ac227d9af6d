"""Consented targeting: an offer reaches only residents of the segment who agreed to offers, once per batch;
the merchant sees counts, never people; withdrawing the consent stops later offers."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, update

from cityhub.domains.identity import account_id_of, grant_consent, withdraw_consent
from cityhub.domains.identity.models import Account, Person
from cityhub.kernel.models import AuditRecord
from tests.domains.market.world import API, Market, build_market, make_batch
from tests.factories import bearer, make_user


def _person(database, username: str) -> int:  # type: ignore[no-untyped-def]
    with database.reading() as session:
        return int(
            session.scalar(select(Account.person_id).where(Account.id == account_id_of(session, username)))
        )


def _agree(database, username: str, born: date | None = None) -> None:  # type: ignore[no-untyped-def]
    person_id = _person(database, username)
    with database.unit_of_work() as session:
        grant_consent(session, person_id, "marketing", actor="tests")
        if born is not None:
            session.execute(update(Person).where(Person.id == person_id).values(birth_date=born))


def _offers(client, who: dict[str, str]) -> list[str]:  # type: ignore[no-untyped-def]
    inbox = client.get("/api/v1/identity/me/notifications", headers=who).json()["items"]
    return [item["link"] for item in inbox if item["topic"] == "market.offer"]


def _push(client, market: Market, batch: int, **segment: object):  # type: ignore[no-untyped-def]
    return client.post(
        f"{API}/merchants/{market.merchant_id}/batches/{batch}/pushes", json=segment, headers=market.owner
    )


def test_an_offer_reaches_only_consenting_residents_of_the_segment_once(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    make_user(
        database,
        "quiet",
        [("resident", market.town.community_a)],
        household=market.town.household_a,
        name="王五",
    )
    _agree(database, "resident", born=date(1990, 5, 1))
    _agree(database, "neighbour", born=date(2010, 5, 1))
    batch = make_batch(client, market)

    first = _push(client, market, batch)  # the merchant's own community
    assert first.status_code == 201, first.text
    assert (first.json()["matched"], first.json()["reached"]) == (1, 1)
    assert set(first.json()) == {"id", "batch_id", "segment", "matched", "reached", "created_at"}
    assert _offers(client, market.resident) == [f"/market/batches/{batch}"]
    assert _offers(client, bearer(client, "quiet")) == [] and _offers(client, market.neighbour) == []

    again = _push(client, market, batch).json()
    assert (again["matched"], again["reached"]) == (1, 0)
    assert len(_offers(client, market.resident)) == 1

    both = _push(client, market, batch, communities=["Ma", "Mb"]).json()
    assert (both["matched"], both["reached"]) == (2, 1)
    adults = _push(client, market, make_batch(client, market), communities=["Ma", "Mb"], age_min=18).json()
    assert (adults["matched"], adults["reached"]) == (1, 1)
    teens = _push(client, market, make_batch(client, market), communities=["Mb"], age_max=17).json()
    assert (teens["matched"], teens["reached"]) == (1, 1)

    with database.unit_of_work() as session:
        withdraw_consent(session, _person(database, "resident"), "marketing", actor="tests")
    after = _push(client, market, make_batch(client, market)).json()
    assert (after["matched"], after["reached"]) == (0, 0)
    history = client.get(
        f"{API}/merchants/{market.merchant_id}/batches/{batch}/pushes", headers=market.owner
    ).json()
    assert [(p["matched"], p["reached"]) for p in history] == [(2, 1), (1, 0), (1, 1)]
    with database.reading() as session:
        audited = session.scalars(
            select(AuditRecord.action).where(AuditRecord.action == "market.batch.pushed")
        ).all()
    assert len(audited) == 6

    store_page = client.get(f"/market/batches/{batch}", follow_redirects=False)
    assert (
        store_page.status_code in (302, 303)
        and store_page.headers["location"] == f"/market/stores/{market.stores[0]}"
    )


def test_offers_are_checked(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    batch = make_batch(client, market)
    assert _push(client, market, batch, communities=["nowhere"]).status_code == 422
    assert _push(client, market, batch, communities=["Da"]).json()["field"] == "communities"
    assert _push(client, market, batch, age_min=40, age_max=20).status_code == 422
    url = f"{API}/merchants/{market.merchant_id}/batches/{batch}/pushes"
    assert client.post(url, json={}, headers=market.clerk).status_code == 403
    assert client.post(url, json={}, headers=market.till).status_code == 403
    draft = make_batch(client, market, status="draft")
    assert _push(client, market, draft).status_code == 409


def test_no_merchant_endpoint_tells_who_a_resident_is(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    _agree(database, "resident")
    batch = make_batch(client, market, transferable=True)
    code = client.post(f"{API}/batches/{batch}/claim", headers=market.resident).json()["code"]
    client.post(f"{API}/batches/{batch}/claim", headers=market.neighbour)
    client.get(f"{API}/batches/{batch}", headers=market.resident)
    body = {"codes": [code], "store_id": market.stores[0], "amount_cents": 5000, "client_key": "privacy-001"}
    assert (
        client.post(
            f"{API}/merchants/{market.merchant_id}/redemptions", json=body, headers=market.till
        ).status_code
        == 201
    )
    _push(client, market, batch)
    # The residents' names and usernames, and the keys a holder would come under.
    telling = ["张三", "李四", '"resident"', '"neighbour"', '"person_id"', '"holder"', '"account_id"']
    base = f"{API}/merchants/{market.merchant_id}"
    paths = [
        base,
        f"{base}/stores",
        f"{base}/batches",
        f"{base}/staff",
        f"{base}/pos-keys",
        f"{base}/coupons/{code}",
        f"{base}/reports",
        f"{base}/reports?group=batch",
        f"{base}/reports?group=store&format=csv",
        f"{base}/batches/{batch}/pushes",
        f"{API}/stores/{market.stores[0]}",
        f"{API}/batches/{batch}",
    ]
    for who in (market.owner, market.clerk, market.till):
        for path in paths:
            answer = client.get(path, headers=who)
            if answer.status_code == 200:
                assert not [word for word in telling if word in answer.text], (path, answer.text[:200])
