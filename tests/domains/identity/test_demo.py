"""The demo city: counts, logins for every role, valid id numbers, households, tree, determinism, the CLI."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from datetime import date

import pytest
import typer
from rich.progress import Progress
from sqlalchemy import func, select
from typer.testing import CliRunner

from cityhub.cli.demo import DemoOutcome, register, seed_city
from cityhub.domains.identity import demo as identity_demo
from cityhub.domains.identity.manifest import MANIFEST
from cityhub.domains.identity.models import (
    Account,
    FamilyLink,
    HouseholdMember,
    Organization,
    OrgUnit,
    Person,
    RoleAssignment,
)
from cityhub.domains.identity.service import accounts
from cityhub.domains.identity.service.orgs import H3_RESOLUTION, PARENT_KIND
from cityhub.domains.identity.service.people import hash_id_number, id_number_checksum_ok, mask_id_number
from cityhub.domains.identity.settings import IdentitySettings
from cityhub.kernel import geo
from cityhub.kernel.db import Database
from cityhub.kernel.demo import DEMO_PASSWORD, DemoSize
from cityhub.kernel.settings import Settings, clear_settings_cache, domain_settings

TODAY = date(2026, 1, 1)
ROLES = {role.code for role in MANIFEST.roles}


def _seed(
    database: Database,
    settings: Settings,
    size: DemoSize = DemoSize.TINY,
    seed: int = 7,
    *,
    reset: bool = False,
) -> DemoOutcome:
    return seed_city(
        database, settings, size, seed, reset=reset, progress=Progress(disable=True), today=TODAY
    )


def _count(database: Database, model: type, **where: object) -> int:
    with database.reading() as session:
        statement = select(func.count()).select_from(model).filter_by(**where)
        return int(session.scalar(statement) or 0)


def test_tiny_city_has_the_profile_counts_and_a_login_for_every_role(
    database: Database, settings: Settings
) -> None:
    outcome = _seed(database, settings)
    profile = identity_demo.PROFILES[DemoSize.TINY]
    assert not outcome.already_present
    for kind, expected in (("city", 1), ("district", 1), ("subdistrict", 1), ("community", 2)):
        assert _count(database, OrgUnit, kind=kind) == expected
    assert _count(database, Person) == profile.residents
    assert _count(database, Organization) == 1 + 6 + 1 + 1 + 2 * profile.merchants_per_community
    assert _count(database, Account) == 13 + profile.resident_accounts
    assert {login.role for login in outcome.logins} == ROLES
    identity_settings = domain_settings(IdentitySettings)
    checked_roles: set[str] = set()
    for login in outcome.logins:
        with database.reading() as session:
            account_id = session.scalar(select(Account.id).where(Account.username == login.username))
        if login.role not in checked_roles:  # argon2 is slow: one password check per role
            account_id = accounts.authenticate(database, identity_settings, login.username, DEMO_PASSWORD).id
            checked_roles.add(login.role)
        with database.reading() as session:
            grants = accounts.principal_for_account(session, account_id).grants
            unit = session.scalar(select(OrgUnit).where(OrgUnit.name == login.scope))
            organization = session.scalar(
                select(Organization.name).where(Organization.id == grants[0].organization_id)
            )
        assert [(grant.role, grant.org_unit_id) for grant in grants] == [(login.role, unit.id)]
        assert organization == login.organization
        expected_kind = {"operator": "city", "department_staff": "city", "clinic_staff": "subdistrict"}
        assert unit.kind == expected_kind.get(login.role, "community")
    assert (
        accounts.authenticate(database, identity_settings, "resident0001", DEMO_PASSWORD).username
        == "resident0001"
    )


def test_resident_login_has_a_three_generation_family_with_guardians(
    database: Database, settings: Settings
) -> None:
    _seed(database, settings)
    with database.reading() as session:
        person_id = session.scalar(select(Account.person_id).where(Account.username == "resident"))
        household_id = session.scalar(
            select(HouseholdMember.household_id).where(HouseholdMember.person_id == person_id)
        )
        members = session.execute(
            select(Person.id, Person.birth_date, HouseholdMember.relation)
            .join(HouseholdMember, HouseholdMember.person_id == Person.id)
            .where(HouseholdMember.household_id == household_id)
        ).all()
        guardians = defaultdict(set)
        for link in session.scalars(select(FamilyLink).where(FamilyLink.kind == "guardian")):
            guardians[link.dependant_id].add(link.guardian_id)
    relations = Counter(relation for _id, _birth, relation in members)
    assert relations["head"] == 1
    assert relations["spouse"] == 1
    assert relations["child"] >= 1
    assert relations["parent"] >= 1
    head = next(member_id for member_id, _birth, relation in members if relation == "head")
    assert head == person_id
    children = [(member_id, birth) for member_id, birth, relation in members if relation == "child"]
    assert any(_age(birth) < 18 for _id, birth in children)
    for child_id, birth in children:
        if _age(birth) < 18:
            assert person_id in guardians[child_id]


def test_households_people_and_family_links_are_consistent(database: Database, settings: Settings) -> None:
    _seed(database, settings)
    with database.reading() as session:
        people = {person.id: person for person in session.scalars(select(Person))}
        memberships = session.execute(
            select(HouseholdMember.household_id, HouseholdMember.person_id, HouseholdMember.relation)
        ).all()
        links = session.scalars(select(FamilyLink)).all()
        households = set(session.scalars(select(OrgUnit.id).where(OrgUnit.kind == "household")))
    by_household: dict[int, list[str]] = defaultdict(list)
    for household_id, person_id, relation in memberships:
        by_household[household_id].append(relation)
        assert people[person_id].home_unit_id == household_id
    assert set(by_household) == households
    assert sorted(person_id for _household, person_id, _relation in memberships) == sorted(people)
    assert all(relations.count("head") == 1 for relations in by_household.values())
    assert all(1 <= len(relations) <= 6 for relations in by_household.values())
    minors = {person_id for person_id, person in people.items() if _age(person.birth_date) < 18}
    guarded = {link.dependant_id for link in links if link.kind == "guardian"}
    assert minors
    assert minors <= guarded
    assert {link.kind for link in links} >= {"guardian", "carer"}
    for link in links:
        assert _age(people[link.guardian_id].birth_date) >= 18
        if link.kind == "carer":
            assert _age(people[link.dependant_id].birth_date) >= 75
    ages = [_age(person.birth_date) for person in people.values()]
    assert max(ages) >= 70
    assert min(ages) <= 5
    assert {person.gender for person in people.values()} == {"M", "F"}


def test_id_numbers_are_valid_and_stored_hashed(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued: list[str] = []

    def recording_hash(id_number: str, salt: str) -> str:
        issued.append(id_number)
        return hash_id_number(id_number, salt)

    monkeypatch.setattr(identity_demo, "hash_id_number", recording_hash)
    _seed(database, settings)
    salt = domain_settings(IdentitySettings).id_number_key
    with database.reading() as session:
        stored = {
            person.id_number_hash: person
            for person in session.scalars(select(Person).where(Person.id_number_hash.is_not(None)))
        }
        districts = set(session.scalars(select(OrgUnit.code).where(OrgUnit.kind == "district")))
    assert len(issued) == len(stored) > 0.9 * identity_demo.PROFILES[DemoSize.TINY].residents
    for number in issued:
        assert id_number_checksum_ok(number)
        person = stored[hash_id_number(number, salt)]
        assert number[:6] in districts
        assert number[6:14] == f"{person.birth_date:%Y%m%d}"
        assert int(number[16]) % 2 == (1 if person.gender == "M" else 0)
        assert person.id_number_masked == mask_id_number(number)


def test_org_tree_paths_cells_and_boundaries(database: Database, settings: Settings) -> None:
    _seed(database, settings)
    with database.reading() as session:
        units = {unit.id: unit for unit in session.scalars(select(OrgUnit))}
    for unit in units.values():
        parent = units.get(unit.parent_id) if unit.parent_id else None
        assert unit.path == f"{parent.path if parent else '/'}{unit.id}/"
        assert unit.depth == (parent.depth + 1 if parent else 0)
        assert (parent.kind if parent else None) == PARENT_KIND[unit.kind]
        assert unit.h3_cell == geo.cell_for(unit.lon, unit.lat, H3_RESOLUTION)
        if unit.boundary is not None:
            assert geo.validate_geometry(unit.boundary) == unit.boundary
            assert (unit.lon, unit.lat) == pytest.approx(geo.polygon_centroid(unit.boundary))
            assert parent is None or geo.point_in_polygon(unit.lon, unit.lat, parent.boundary)
    communities = [unit for unit in units.values() if unit.kind == "community"]
    for community in communities:
        others = [other for other in communities if other is not community]
        assert not any(geo.point_in_polygon(community.lon, community.lat, other.boundary) for other in others)
    for building in (unit for unit in units.values() if unit.kind == "building"):
        assert geo.point_in_polygon(building.lon, building.lat, units[building.parent_id].boundary)


def test_same_seed_same_city_other_seed_other_city(database: Database, settings: Settings) -> None:
    first = _seed(database, settings)
    digest = _people_digest(database)
    again = _seed(database, settings, reset=True)
    assert _people_digest(database) == digest
    assert again.logins == first.logins
    _seed(database, settings, seed=8, reset=True)
    assert _people_digest(database) != digest


def test_small_city(database: Database, settings: Settings) -> None:
    _seed(database, settings, DemoSize.SMALL, seed=42)
    for kind, expected in (("district", 1), ("subdistrict", 2), ("community", 3)):
        assert _count(database, OrgUnit, kind=kind) == expected
    assert _count(database, Person) == 2000
    assert _count(database, Account) == 13 + 200
    assert _count(database, RoleAssignment) == 13 + 200
    assert 600 <= _count(database, OrgUnit, kind="household") <= 900


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """cityhub"""

    register(app)
    return app


def test_cli_seeds_once_recognises_its_city_and_refuses_others(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    app = _app()
    first = runner.invoke(app, ["demo", "--size", "tiny", "--seed", "3"])
    assert first.exit_code == 0, first.output
    assert "Seeded the tiny demo city" in first.output
    for username in ("resident", "community_worker", "department_staff", "merchant_owner", "operator"):
        assert username in first.output
    assert DEMO_PASSWORD in first.output
    assert settings.base_url in first.output
    second = runner.invoke(app, ["demo", "--size", "tiny", "--seed", "3"])
    assert second.exit_code == 0, second.output
    assert "already in the database" in second.output
    assert "merchant_clerk" in second.output
    other = runner.invoke(app, ["demo", "--size", "tiny", "--seed", "4"])
    assert other.exit_code == 1
    assert "--reset" in other.output
    replaced = runner.invoke(app, ["demo", "--size", "tiny", "--seed", "4", "--reset"])
    assert replaced.exit_code == 0, replaced.output
    assert _count(database, Person) == identity_demo.PROFILES[DemoSize.TINY].residents
    monkeypatch.setenv("CITYHUB_ENV", "production")
    monkeypatch.setenv("CITYHUB_SECRET_KEY", "x" * 40)
    clear_settings_cache()
    refused = runner.invoke(app, ["demo", "--size", "tiny", "--reset"])
    assert refused.exit_code == 1
    assert "production" in refused.output


def _age(birth: date | None) -> int:
    assert birth is not None
    return TODAY.year - birth.year - ((TODAY.month, TODAY.day) < (birth.month, birth.day))


def _people_digest(database: Database) -> str:
    with database.reading() as session:
        rows = session.execute(
            select(
                Person.name, Person.gender, Person.birth_date, Person.phone, Person.id_number_hash
            ).order_by(Person.id)
        ).all()
    return hashlib.sha256(repr(rows).encode()).hexdigest()
