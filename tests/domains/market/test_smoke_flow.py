"""The whole path once: apply, approve, open stores, create a batch, find it nearby, claim, redeem."""

from __future__ import annotations

from tests.domains.market.world import API, HOME, build_market, make_batch


def test_a_coupon_from_nearby_search_to_the_counter(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    batch = make_batch(client, market)
    found = client.get(f"{API}/stores/nearby", params={"lon": HOME[0], "lat": HOME[1]})
    assert found.status_code == 200, found.text
    assert [s["id"] for s in found.json()["items"]] == market.stores
    claimed = client.post(f"{API}/batches/{batch}/claim", headers=market.resident)
    assert claimed.status_code == 201, claimed.text
    code = claimed.json()["code"]
    body = {"codes": [code], "store_id": market.stores[0], "amount_cents": 4000, "client_key": "till1-0001"}
    redeemed = client.post(
        f"{API}/merchants/{market.merchant_id}/redemptions", json=body, headers=market.till
    )
    assert redeemed.status_code == 201, redeemed.text
    assert redeemed.json()["total_value_cents"] == 500
