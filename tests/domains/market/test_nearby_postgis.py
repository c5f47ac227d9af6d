"""The PostGIS path of the nearby search gives the same pages as the portable H3 path: same stores, same
order, same distances to the centimetre — for random points, radii, pages and filters."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import insert

from cityhub.domains.market.models import STORE_CELL_RES, Merchant, Store
from cityhub.domains.market.service import stores
from cityhub.domains.market.service.stores import POSTGIS_STORE_INDEX
from cityhub.kernel.db import Database
from cityhub.kernel.geo import cell_for
from tests.factories import require_postgis_index

CENTRE = (120.20, 30.25)
CATEGORIES = ("food", "grocery", "pharmacy")
EVENINGS = {day: [["18:00", "23:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
MORNINGS = {day: [["06:00", "11:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _seed(database: Database, count: int, rng: random.Random) -> None:
    with database.unit_of_work() as session:
        merchant = Merchant(
            code="m1",
            name="连锁便利",
            category="grocery",
            licence_number="L",
            contact_phone="1",
            status="approved",
            applicant_account_id=1,
            home_unit_id=1,
        )
        session.add(merchant)
        session.flush()
        rows = []
        for number in range(count):
            lon, lat = CENTRE[0] + rng.uniform(-0.05, 0.05), CENTRE[1] + rng.uniform(-0.045, 0.045)
            rows.append(
                {
                    "merchant_id": merchant.id,
                    "name": f"便利店{number}" if number % 3 else f"药房{number}",
                    "category": CATEGORIES[number % 3],
                    "address": "路",
                    "lon": lon,
                    "lat": lat,
                    "cell": cell_for(lon, lat, STORE_CELL_RES),
                    "opening_hours": EVENINGS if number % 2 else MORNINGS,
                    "photos": [],
                    "listed": number % 17 != 0,  # some unlisted stores must never show
                }
            )
        session.execute(insert(Store), rows)


def test_postgis_and_portable_paths_agree(database: Database) -> None:
    require_postgis_index(database, POSTGIS_STORE_INDEX)
    rng = random.Random(7)
    _seed(database, 1500, rng)
    compared = 0
    for _ in range(40):
        query = stores.NearbyQuery(
            lon=CENTRE[0] + rng.uniform(-0.05, 0.05),
            lat=CENTRE[1] + rng.uniform(-0.045, 0.045),
            radius_m=rng.choice((300.0, 1000.0, 3000.0)),
            category=rng.choice((None, None, "pharmacy")),
            keyword=rng.choice((None, None, "药房")),
            open_now=rng.random() < 0.25,
            limit=rng.choice((5, 20)),
            offset=rng.choice((0, 0, 20)),
        )
        with database.reading() as session:
            fast = stores.nearby(session, query, "Asia/Shanghai", use_postgis=True)
            portable = stores.nearby(session, query, "Asia/Shanghai", use_postgis=False)
        assert [s.id for s in fast.items] == [s.id for s in portable.items], query
        assert [s.distance_m for s in fast.items] == pytest.approx(
            [s.distance_m for s in portable.items], abs=0.2
        )
        assert fast.has_more == portable.has_more
        compared += len(fast.items)
    assert compared > 200  # the points were not all in empty places
