"""No double booking across processes: 200 residents ask at once for 50 one-person slots, through two
`cityhub serve` processes sharing one PostgreSQL database; exactly 50 bookings exist afterwards."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from cityhub.domains.services.models import Booking, Slot
from cityhub.domains.services.schemas import CatalogueIn
from cityhub.domains.services.service import catalogue
from cityhub.kernel.db import Database
from cityhub.kernel.security import issue_jwt
from tests.domains.services.desk_world import CATALOGUE, add_slots
from tests.factories import build_town, make_user
from tests.live_server import live_server, server_env

RESIDENTS = 200
SLOTS = 50
SECRET = "a-test-secret-key-shared-by-both-servers-0123456789"


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_two_processes_never_book_a_slot_twice(database: Database, tmp_path: Path) -> None:
    town = build_town(database)
    with database.unit_of_work() as session:
        given = {
            **CATALOGUE,
            "departments": [{**d, "organization_code": None} for d in CATALOGUE["departments"]],
        }
        catalogue.import_catalogue(session, "system:tests", CatalogueIn.model_validate(given))
    slots = add_slots(database, "gjj-counter", SLOTS, capacity=1)
    tokens = [
        issue_jwt(
            SECRET,
            {
                "sub": str(make_user(database, f"resident{n}", [("resident", town.community_a)])[0].id),
                "typ": "access",
            },
            timedelta(minutes=10),
        )
        for n in range(RESIDENTS)
    ]
    url = database.engine.url.render_as_string(hide_password=False)
    env = server_env(url, tmp_path, CITYHUB_SECRET_KEY=SECRET, CITYHUB_JOBS__EMBEDDED_WORKER="false")
    with ExitStack() as servers:
        bases = [servers.enter_context(live_server(env, tmp_path / f"server{n}.log")) for n in range(2)]
        answers = asyncio.run(_book_all(bases, tokens, slots))
    assert Counter(answers) == {201: SLOTS, 409: RESIDENTS - SLOTS}
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Booking)) == SLOTS
        assert set(session.scalars(select(Slot.booked))) == {1}
        assert session.scalar(select(func.count(func.distinct(Booking.slot_id)))) == SLOTS


async def _book_all(bases: list[str], tokens: list[str], slots: list[int]) -> list[int]:
    limits = httpx.Limits(max_connections=RESIDENTS)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def book(n: int) -> int:
            response = await client.post(
                f"{bases[n % 2]}/api/v1/services/me/bookings",
                json={"slot": slots[n % SLOTS]},
                headers={"Authorization": f"Bearer {tokens[n]}"},
            )
            return response.status_code

        return list(await asyncio.gather(*(book(n) for n in range(RESIDENTS))))
