"""The suspicious-claims report: a device claiming for several people, a person claiming far above the
median; operator only; reading it is audited."""

from __future__ import annotations

from sqlalchemy import select

from cityhub.kernel.models import AuditRecord
from tests.domains.market.world import API, build_market, make_batch
from tests.factories import bearer, make_user


def test_a_shared_phone_and_a_heavy_claimer_are_reported(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    batches = [make_batch(client, market, per_person_limit=5) for _ in range(3)]
    farm = []
    for n in range(3):  # three accounts claiming from one phone
        make_user(database, f"farm{n}", [("resident", market.town.community_a)], name=f"赵{n}号")
        farm.append(bearer(client, f"farm{n}"))
    for token in farm:
        answer = client.post(
            f"{API}/batches/{batches[0]}/claim", headers={**token, "X-Device-Id": "phone-shared"}
        )
        assert answer.status_code == 201, answer.text
    for _ in range(4):  # one resident claims 12 times over three batches, from their own phone
        for batch in batches:
            client.post(
                f"{API}/batches/{batch}/claim", headers={**market.resident, "X-Device-Id": "phone-mine"}
            )
    client.post(f"{API}/batches/{batches[0]}/claim", headers={**market.neighbour, "X-Device-Id": "phone-n"})

    report = client.get(f"{API}/suspicious-claims", headers=market.operator)
    assert report.status_code == 200, report.text
    body = report.json()
    assert [(d["device"], d["people"], d["claims"]) for d in body["devices"]] == [("phone-shared", 3, 3)]
    assert body["median_claims_per_person"] == 1.0
    assert [(p["name"], p["claims"]) for p in body["people"]] == [("张*", 12)]
    with database.reading() as session:
        assert session.scalar(
            select(AuditRecord.action).where(AuditRecord.action == "market.suspicious_claims.read")
        )
    for who in (market.owner, market.clerk, market.resident, market.till):
        assert client.get(f"{API}/suspicious-claims", headers=who).status_code == 403
    assert (
        client.get(f"{API}/suspicious-claims", params={"days": 0}, headers=market.operator).status_code == 422
    )
