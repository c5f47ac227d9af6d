"""The shared demo-data helpers: synthetic people, map layout, bulk insert, and the seeding record."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from statistics import mean
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Column, Date, Integer, MetaData, String, Table, insert, select

from cityhub.domains import manifests
from cityhub.domains.identity.models import OrgUnit
from cityhub.kernel import geo
from cityhub.kernel.bulk import bulk_insert
from cityhub.kernel.db import Database, UTCDateTime, utcnow
from cityhub.kernel.demo import (
    AGE_BANDS,
    SURNAMES,
    Box,
    DemoLogin,
    DemoSize,
    IdAllocator,
    IdNumberIssuer,
    birth_date_for_age,
    delete_rows,
    derive_rng,
    domain_tables,
    given_name,
    has_rows,
    id_check_digit,
    last_seeding,
    mobile_number,
    place_names,
    record_seeding,
    reference_date,
    resident_id_number,
    road_name,
    sample_age,
    spread,
    surname,
)


def test_check_digit_matches_published_examples() -> None:
    for number in ("11010519491231002X", "440524188001010014", "110101199003074477"):
        assert id_check_digit(number[:17]) == number[17]
    assert resident_id_number("110105", date(1949, 12, 31), 2) == "11010519491231002X"
    with pytest.raises(ValueError, match="6 digits"):
        resident_id_number("1101", date(1949, 12, 31), 2)


def test_issued_id_numbers_are_unique_and_encode_birth_and_gender() -> None:
    issuer = IdNumberIssuer(random.Random(1))
    birth = date(1990, 5, 17)
    numbers = [issuer.issue("331202", birth, "M") for _ in range(500)]
    numbers += [issuer.issue("331202", birth, "F") for _ in range(100)]
    assert len(set(numbers)) == 600
    for number in numbers:
        assert re.fullmatch(r"33120219900517\d{3}[\dX]", number)
        assert id_check_digit(number[:17]) == number[17]
    assert {int(number[16]) % 2 for number in numbers[:500]} == {1}
    assert {int(number[16]) % 2 for number in numbers[500:]} == {0}
    with pytest.raises(ValueError, match="taken"):
        issuer.issue("331202", birth, "M")


def test_derived_rngs_are_stable_and_independent() -> None:
    draws = [derive_rng(42, "identity").random() for _ in range(2)]
    assert draws[0] == draws[1]
    assert derive_rng(42, "market").random() != draws[0]
    assert derive_rng(43, "identity").random() != draws[0]
    assert reference_date(date(2030, 7, 9)) == date(2030, 1, 1)


def test_ages_follow_the_pyramid_and_birthdays_match() -> None:
    rng = random.Random(3)
    ages = [sample_age(rng) for _ in range(20_000)]
    assert min(ages) == 0
    assert 90 <= max(ages) <= 5 * len(AGE_BANDS) - 1
    assert 36 <= mean(ages) <= 42  # China's mean age is about 39
    assert 0.15 <= sum(age >= 60 for age in ages) / len(ages) <= 0.22  # 18.7 % were 60+ in 2020
    assert all(18 <= sample_age(rng, 18, 30) <= 30 for _ in range(1000))
    with pytest.raises(ValueError, match="no ages"):
        sample_age(rng, 120, 130)
    today = date(2026, 1, 1)
    for age in (0, 1, 17, 18, 64, 99):
        birth = birth_date_for_age(rng, age, today)
        assert today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day)) == age
    assert birth_date_for_age(rng, 4, date(2028, 2, 29)).year in (2023, 2024)


def test_names_are_common_surnames_and_fashionable_given_names() -> None:
    rng = random.Random(5)
    surnames = Counter(surname(rng) for _ in range(10_000))
    assert {name for name, _count in surnames.most_common(3)} == {"王", "李", "张"}
    assert set(surnames) <= set(SURNAMES)
    for year in (1940, 1970, 1990, 2015):
        for gender in ("M", "F", "U"):
            assert all(1 <= len(given_name(rng, gender, year)) <= 2 for _ in range(200))
    # Two different generations hardly share names.
    elders = {given_name(rng, "F", 1945) for _ in range(300)}
    children = {given_name(rng, "F", 2018) for _ in range(300)}
    assert len(elders & children) < 10


def test_phone_numbers_and_place_names() -> None:
    rng = random.Random(9)
    assert all(re.fullmatch(r"1[3-9]\d{9}", mobile_number(rng)) for _ in range(1000))
    names = place_names(rng, 200)
    assert len({zh for zh, _en in names}) == 200
    assert all(len(zh) == 2 and en.isalpha() and en[0].isupper() for zh, en in names)
    assert re.fullmatch(r"\w\w(路|街|大道|巷)", road_name(rng))
    with pytest.raises(ValueError, match="distinct"):
        place_names(rng, 10_000)


def test_spread() -> None:
    assert spread(10, 3) == [4, 3, 3]
    assert spread(2, 4) == [1, 1, 0, 0]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 24])
def test_boxes_tile_without_overlap(count: int) -> None:
    city = Box.around(120.2, 30.25, 4000, 3000)
    parts = city.split(count)
    assert len(parts) == count
    area = sum((part.east - part.west) * (part.north - part.south) for part in parts)
    assert area == pytest.approx((city.east - city.west) * (city.north - city.south))
    for index, part in enumerate(parts):
        polygon = geo.validate_geometry(part.inset(10).polygon())
        lon, lat = geo.polygon_centroid(polygon)
        assert geo.point_in_polygon(lon, lat, geo.validate_geometry(city.polygon()))
        assert not any(geo.point_in_polygon(lon, lat, other.polygon()) for other in parts[index + 1 :])
        assert geo.point_in_polygon(*part.point(random.Random(index)), part.polygon())
    assert geo.haversine_m(city.west, 30.25, city.east, 30.25) == pytest.approx(4000, rel=0.01)


@pytest.fixture
def scratch_table(database: Database) -> Any:
    metadata = MetaData()
    table = Table(
        "kernel_demo_scratch",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(50)),
        Column("shape", JSON),
        Column("born", Date),
        Column("seen_at", UTCDateTime),
        Column("active", Boolean, default=True),
        Column("created_at", UTCDateTime, default=utcnow),
    )
    metadata.create_all(database.engine)
    yield table
    metadata.drop_all(database.engine)


def test_bulk_insert_applies_types_and_defaults_and_moves_the_sequence(
    database: Database, scratch_table: Table
) -> None:
    seen = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)
    with database.unit_of_work() as session:
        ids = IdAllocator(session, scratch_table)
        rows = [
            {
                "id": ids.take(),
                "name": f"名{n}",
                "shape": {"n": n, "tags": ["a"]},
                "born": date(2000, 1, 1) + timedelta(days=n),
                "seen_at": seen,
            }
            for n in range(300)
        ]
        bulk_insert(session, scratch_table, rows)
        bulk_insert(session, scratch_table, [])
        session.execute(insert(scratch_table).values(name="after"))  # the id sequence moved past 300
    with database.reading() as session:
        stored = session.execute(select(scratch_table).order_by(scratch_table.c.id)).all()
    assert len(stored) == 301
    first = stored[0]
    assert (first.id, first.name, first.shape, first.born, first.seen_at, first.active) == (
        1,
        "名0",
        {"n": 0, "tags": ["a"]},
        date(2000, 1, 1),
        seen,
        True,
    )
    assert first.created_at.tzinfo is not None
    assert (stored[-1].id, stored[-1].name) == (301, "after")
    with database.unit_of_work() as session:
        assert IdAllocator(session, scratch_table).take() == 302


def test_domain_tables_are_found_emptied_and_the_seeding_remembered(database: Database) -> None:
    assert all(table.name.startswith("identity_") for table in domain_tables(["identity"]))
    # Every installed domain at once, as `cityhub demo --reset` does: others' tables refer to identity's.
    tables = domain_tables([domain.name for domain in manifests()])
    names = [table.name for table in tables]
    assert names.index("identity_org_unit") < names.index("identity_person") < names.index("identity_account")
    assert names.index("identity_org_unit") < names.index("context_tenant") < names.index("context_entity")
    with database.unit_of_work() as session:
        assert not has_rows(session, tables)
        assert last_seeding(session) is None
        session.add(OrgUnit(kind="city", code="C", name="城", path="/1/", depth=0))
    with database.unit_of_work() as session:
        assert has_rows(session, tables)
        delete_rows(session, tables)
        login = DemoLogin("operator", "operator", "城", "运营")
        record_seeding(session, 7, DemoSize.TINY, ["identity"], [login])
    with database.reading() as session:
        assert not has_rows(session, tables)
        seeding = last_seeding(session)
    assert seeding is not None
    assert (seeding.seed, seeding.size, seeding.logins) == (7, DemoSize.TINY, (login,))
