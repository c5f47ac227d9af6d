"""No oversell, no user past their limit, no double redemption — with requests truly at once: threads on
both databases, and two `cityhub serve` processes sharing one PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from cityhub.domains.identity import Principal, account_id_of
from cityhub.domains.identity.service import people
from cityhub.domains.identity.service.accounts import principal_for_account
from cityhub.domains.market import schemas
from cityhub.domains.market.models import Batch, ClaimTally, Coupon
from cityhub.domains.market.service import coupons
from cityhub.kernel.db import Database
from cityhub.kernel.errors import Conflict
from cityhub.kernel.security import issue_jwt
from tests.domains.market.world import API, build_market, make_batch
from tests.factories import make_user
from tests.live_server import live_server, server_env

STOCK, CLAIMANTS, TRIES, LIMIT = 500, 400, 5, 2  # 2,000 claims for 500 coupons; at most 800 allowed by limits
# Requests kept open at once: enough that claims contend on the batch row in both servers, few enough
# that a loaded 2-core machine answers each within the client's timeout.
IN_FLIGHT = 64
SECRET = "a-test-secret-key-shared-by-both-servers-0123456789"


def _residents(database: Database, count: int) -> list[Principal]:
    with database.unit_of_work() as session:
        persons = [
            people.create_person(session, people.PersonInput(name=f"居民{n}"), "salt") for n in range(count)
        ]
        session.flush()
        return [Principal("account", 10_000 + n, f"r{n}", person.id, ()) for n, person in enumerate(persons)]


def _claim_once(database: Database, principal: Principal, batch: int) -> str:
    try:
        with database.unit_of_work() as session:
            coupons.claim(session, principal, batch, "Asia/Shanghai")
        return "ok"
    except Conflict as refusal:
        return refusal.slug


def _assert_claims_held(database: Database, batch: int, expected: int) -> None:
    with database.reading() as session:
        assert session.scalar(select(Batch.claimed).where(Batch.id == batch)) == expected
        assert (
            session.scalar(select(func.count()).select_from(Coupon).where(Coupon.batch_id == batch))
            == expected
        )
        per_person = session.execute(
            select(Coupon.person_id, func.count()).where(Coupon.batch_id == batch).group_by(Coupon.person_id)
        ).all()
        assert max(count for _person, count in per_person) <= LIMIT
        tallies = dict(
            session.execute(
                select(ClaimTally.person_id, ClaimTally.claims).where(ClaimTally.batch_id == batch)
            ).all()
        )
        assert all(tallies[person] >= count for person, count in per_person)


def test_simultaneous_claims_never_oversell(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    batch = make_batch(client, market, stock=STOCK // 5, per_person_limit=LIMIT)  # 100 coupons
    residents = _residents(database, CLAIMANTS // 5)  # 80 people × 5 tries
    attempts = [resident for resident in residents for _ in range(TRIES)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = Counter(pool.map(lambda principal: _claim_once(database, principal, batch), attempts))
    assert outcomes["ok"] == STOCK // 5
    assert set(outcomes) <= {"ok", "sold-out", "claim-limit"}
    _assert_claims_held(database, batch, STOCK // 5)


def test_one_code_redeemed_at_once_from_many_tills_succeeds_once(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    batch = make_batch(client, market)
    code = client.post(f"{API}/batches/{batch}/claim", headers=market.resident).json()["code"]
    with database.reading() as session:
        clerk = principal_for_account(session, account_id_of(session, "clerk1"))

    def redeem(n: int) -> str:
        body = schemas.RedemptionIn(
            codes=[code], store_id=market.stores[0], amount_cents=5000, client_key=f"till-{n:04d}"
        )
        try:
            with database.unit_of_work() as session:
                coupons.redeem(session, clerk, market.merchant_id, body, "Asia/Shanghai")
            return "ok"
        except Conflict as refusal:
            return refusal.slug

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = Counter(pool.map(redeem, range(100)))
    assert outcomes["ok"] == 1 and set(outcomes) <= {"ok", "already-redeemed", "not-usable"}
    with database.reading() as session:
        assert session.scalar(select(Batch.redeemed).where(Batch.id == batch)) == 1


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_two_processes_never_oversell_nor_redeem_twice(client, database: Database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    batch = make_batch(client, market, stock=STOCK, per_person_limit=LIMIT)
    tokens = [
        issue_jwt(
            SECRET,
            {
                "sub": str(
                    make_user(database, f"claimant{n}", [("resident", market.town.community_a)])[0].id
                ),
                "typ": "access",
            },
            timedelta(minutes=10),
        )
        for n in range(CLAIMANTS)
    ]
    url = database.engine.url.render_as_string(hide_password=False)
    env = server_env(url, tmp_path, CITYHUB_SECRET_KEY=SECRET, CITYHUB_JOBS__EMBEDDED_WORKER="false")
    with ExitStack() as servers:
        bases = [servers.enter_context(live_server(env, tmp_path / f"server{n}.log")) for n in range(2)]
        claims = asyncio.run(_claim_all(bases, tokens, batch))

        assert Counter(status for status, _code in claims)[201] == STOCK
        code = next(code for status, code in claims if status == 201 and code)
        redemptions = asyncio.run(_redeem_all(bases, market.till, market.merchant_id, market.stores[0], code))
    assert Counter(redemptions) == {201: 1, 409: 99}
    _assert_claims_held(database, batch, STOCK)


def _pooled(connections: int) -> httpx.Limits:
    """Idle connections are dropped after 2 s, well before the server closes them (uvicorn: 5 s): on a loaded
    machine a POST sent on a connection the server was just closing fails with a ReadError, and a POST is not
    retried."""
    return httpx.Limits(max_connections=connections, keepalive_expiry=2)


async def _claim_all(bases: list[str], tokens: list[str], batch: int) -> list[tuple[int, str | None]]:
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    async with httpx.AsyncClient(timeout=300, limits=_pooled(IN_FLIGHT)) as client:

        async def claim(n: int) -> tuple[int, str | None]:
            who = n % len(tokens)
            async with in_flight:
                response = await client.post(
                    f"{bases[n % 2]}/api/v1/market/batches/{batch}/claim",
                    headers={"Authorization": f"Bearer {tokens[who]}", "X-Device-Id": f"phone-{who}"},
                )
            assert response.status_code in (201, 409), response.text
            return response.status_code, response.json().get("code")

        return list(await asyncio.gather(*(claim(n) for n in range(len(tokens) * TRIES))))


async def _redeem_all(
    bases: list[str], till: dict[str, str], merchant: int, store: int, code: str
) -> list[int]:
    async with httpx.AsyncClient(timeout=120, limits=_pooled(100)) as client:

        async def redeem(n: int) -> int:
            body = {"codes": [code], "store_id": store, "amount_cents": 5000, "client_key": f"till-{n:04d}"}
            response = await client.post(
                f"{bases[n % 2]}{API}/merchants/{merchant}/redemptions", json=body, headers=till
            )
            return response.status_code

        return list(await asyncio.gather(*(redeem(n) for n in range(100))))
