"""Identity's part of the demo city 滨江市 (Binjiang): territory, organisations, residents, logins.

The territory is a tree city > districts > subdistricts > communities > buildings > households, laid out
as non-overlapping rectangles around (120.2 E, 30.25 N). Residents live in households of one to six
people built from typical family shapes (couples, children, three generations, grandparents raising
grandchildren, shared rentals), with ages that follow the national pyramid, names in the fashion of their
birth year, and valid resident id numbers (stored as identity stores them: salted hash + masked form).

Rows are bulk-inserted with ids allocated here, so each unit's ``path`` is known before it is written;
``depth``, ``path`` and ``h3_cell`` are computed as :func:`cityhub.domains.identity.service.orgs.create_unit`
computes them. Community 1 holds the demo logins, including a resident with a three-generation family.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cityhub.domains.identity.models import (
    Account,
    FamilyLink,
    HouseholdMember,
    Organization,
    OrgUnit,
    Person,
    RoleAssignment,
)
from cityhub.domains.identity.service.orgs import H3_RESOLUTION
from cityhub.domains.identity.service.people import hash_id_number, mask_id_number
from cityhub.domains.identity.settings import IdentitySettings
from cityhub.kernel import geo
from cityhub.kernel.bulk import bulk_insert
from cityhub.kernel.demo import (
    DEMO_PASSWORD,
    Box,
    DemoContext,
    DemoLogin,
    DemoSize,
    IdAllocator,
    IdNumberIssuer,
    birth_date_for_age,
    given_name,
    mobile_number,
    place_names,
    road_name,
    sample_age,
    spread,
    surname,
)
from cityhub.kernel.security import hash_password
from cityhub.kernel.settings import domain_settings


@dataclass(frozen=True)
class Profile:
    districts: int
    subdistricts: int
    communities: int
    residents: int
    resident_accounts: int
    merchants_per_community: int


PROFILES: dict[DemoSize, Profile] = {
    DemoSize.TINY: Profile(1, 1, 2, 240, 10, 1),
    DemoSize.SMALL: Profile(1, 2, 3, 2_000, 200, 2),
    DemoSize.MEDIUM: Profile(3, 6, 12, 20_000, 500, 2),
    DemoSize.LARGE: Profile(8, 24, 60, 200_000, 1_000, 2),
}

CITY_CODE = "331200"  # Zhejiang (33) has no prefecture 12: the city and its id numbers are fictional
CITY_NAME = "滨江市"
CITY_NAME_EN = "Binjiang"
CITY_CENTRE = (120.2, 30.25)
COMMUNITY_SIDE_M = 900.0  # a community covers roughly 0.8 km²
COMMUNITY_GAP_M = 15.0  # half a street between neighbouring communities
DISTRICTS = (
    ("江南区", "Jiangnan District"),
    ("滨湖区", "Binhu District"),
    ("西陵区", "Xiling District"),
    ("东港区", "Donggang District"),
    ("北塘区", "Beitang District"),
    ("南屏区", "Nanping District"),
    ("云栖区", "Yunqi District"),
    ("钱塘新区", "Qiantang New District"),
)
# (login suffix, Chinese name, English name); the first department's staff log in as "department_staff".
DEPARTMENTS = (
    ("civil", "民政局", "Civil Affairs Bureau"),
    ("police", "公安局", "Public Security Bureau"),
    ("hrss", "人力资源和社会保障局", "Human Resources and Social Security Bureau"),
    ("health", "卫生健康委员会", "Health Commission"),
    ("transport", "交通运输局", "Transport Bureau"),
    ("housing", "住房和城乡建设局", "Housing and Urban-Rural Development Bureau"),
)
MERCHANT_BRANDS = (
    ("邻里生鲜", "Linli Fresh"),
    ("快客便利店", "Kuaike Convenience"),
    ("老杭帮面馆", "Lao Hangbang Noodles"),
    ("仁心大药房", "Renxin Pharmacy"),
    ("小城咖啡", "Xiaocheng Coffee"),
    ("德华洗衣", "Dehua Laundry"),
    ("惠民早餐", "Huimin Breakfast"),
    ("阳光书屋", "Sunshine Books"),
    ("好日子水果", "Good Days Fruit"),
    ("家和五金", "Jiahe Hardware"),
)
# Household shapes and how often they occur (per cent, roughly the census mix; mean size about 2.6).
HOUSEHOLD_SHAPES = (
    ("single", 22),
    ("couple", 22),
    ("couple_child", 22),
    ("couple_two_children", 11),
    ("single_parent", 4),
    ("three_generations", 13),
    ("grandparents_grandchild", 3),
    ("with_grandparent", 1),
    ("shared_rental", 2),
)
BUILDING_TYPES = ((6, 2, 2), (11, 2, 2), (18, 2, 4))  # floors, entrances (单元), flats per floor
OCCUPANCY = 0.9
MINOR_AGE = 18
ELDER_AGE = 75
STAFF_AGES = (25, 55)


@dataclass
class _Unit:
    """The parts of an inserted org unit that later steps need."""

    id: int
    code: str
    name: str
    name_en: str
    path: str
    depth: int
    region: str  # the district code, the first six digits of its residents' id numbers
    address: str | None
    box: Box | None
    lon: float | None
    lat: float | None


@dataclass
class _Member:
    relation: str
    gender: str
    age: int
    family_name: str
    person_id: int = 0
    phone: str | None = None


@dataclass
class _Household:
    members: list[_Member]
    unit_id: int = 0

    @property
    def head(self) -> _Member:
        return self.members[0]


@dataclass
class _Rows:
    """Rows of one community, inserted together (parents before children)."""

    units: list[dict[str, Any]] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Organizations:
    operator: tuple[int, str]
    departments: list[tuple[str, int, str]]  # (login suffix, id, name)
    merchants: dict[int, list[tuple[int, str]]]  # community id -> [(id, name)]
    clinics: dict[int, tuple[int, str]]  # subdistrict id -> (id, name)
    care_providers: dict[int, tuple[int, str]]  # district id -> (id, name)


def seed(ctx: DemoContext) -> None:
    """Seed identity's share of the demo city (``Domain.demo_seeder``)."""
    _CitySeeder(ctx, PROFILES[ctx.size]).run()


class _CitySeeder:
    def __init__(self, ctx: DemoContext, profile: Profile) -> None:
        self.ctx = ctx
        self.rng = ctx.rng
        self.profile = profile
        session = ctx.session
        self.unit_ids = IdAllocator(session, OrgUnit)
        self.person_ids = IdAllocator(session, Person)
        self.member_ids = IdAllocator(session, HouseholdMember)
        self.link_ids = IdAllocator(session, FamilyLink)
        self.organization_ids = IdAllocator(session, Organization)
        self.account_ids = IdAllocator(session, Account)
        self.role_ids = IdAllocator(session, RoleAssignment)
        self.salt = domain_settings(IdentitySettings).id_number_key
        self.id_numbers = IdNumberIssuer(self.rng)
        self.accounts: list[dict[str, Any]] = []
        self.roles: list[dict[str, Any]] = []
        self.password_hash = ""
        self.resident_logins = 0

    def run(self) -> None:
        progress = self.ctx.progress
        setup = progress.add_task("identity: territory and organisations", total=3)
        # argon2 costs ~50 ms a hash: every demo account shares this one.
        self.password_hash = hash_password(DEMO_PASSWORD)
        progress.advance(setup)
        city, districts, subdistricts, communities = self._territory()
        progress.advance(setup)
        organizations = self._organizations(city, districts, subdistricts, communities)
        progress.advance(setup)

        residents = progress.add_task("identity: residents", total=self.profile.residents)
        account_quotas = spread(self.profile.resident_accounts, len(communities))
        for index, (community, quota) in enumerate(
            zip(communities, spread(self.profile.residents, len(communities)), strict=True)
        ):
            rows = _Rows()
            households = self._populate(community, quota, rows, demo_family=index == 0)
            staff: set[int] = set()
            if index == 0:
                staff = self._demo_logins(
                    city, community, subdistricts, districts, households, organizations, rows
                )
            self._resident_accounts(community, households, account_quotas[index], staff)
            for model, batch in (
                (OrgUnit, rows.units),
                (Person, rows.people),
                (HouseholdMember, rows.members),
                (FamilyLink, rows.links),
            ):
                bulk_insert(self.ctx.session, model, batch)
            progress.advance(residents, quota)
        bulk_insert(self.ctx.session, Account, self.accounts)
        bulk_insert(self.ctx.session, RoleAssignment, self.roles)

    # -- territory

    def _territory(self) -> tuple[_Unit, list[_Unit], list[_Unit], list[_Unit]]:
        profile, rng = self.profile, self.rng
        side = COMMUNITY_SIDE_M * math.ceil(math.sqrt(profile.communities))
        city_box = Box.around(*CITY_CENTRE, side, side)
        rows: list[dict[str, Any]] = []
        city = self._unit(
            rows, None, "city", CITY_CODE, CITY_NAME, CITY_NAME_EN, box=city_box, region=CITY_CODE
        )
        names = iter(place_names(rng, profile.subdistricts + profile.communities))
        subdistrict_counts = spread(profile.subdistricts, profile.districts)
        community_counts = iter(spread(profile.communities, profile.subdistricts))
        districts: list[_Unit] = []
        subdistricts: list[_Unit] = []
        communities: list[_Unit] = []
        for index, district_box in enumerate(city_box.split(profile.districts)):
            name, name_en = DISTRICTS[index]
            code = f"3312{index + 2:02d}"
            district = self._unit(rows, city, "district", code, name, name_en, box=district_box, region=code)
            districts.append(district)
            for number, subdistrict_box in enumerate(district_box.split(subdistrict_counts[index]), start=1):
                zh, en = next(names)
                subdistrict = self._unit(
                    rows,
                    district,
                    "subdistrict",
                    f"{district.code}{number:03d}",
                    f"{zh}街道",
                    f"{en} Subdistrict",
                    box=subdistrict_box,
                )
                subdistricts.append(subdistrict)
                for serial, cell in enumerate(subdistrict_box.split(next(community_counts)), start=1):
                    zh, en = next(names)
                    road = road_name(rng)
                    number = rng.randint(1, 60) * 2 - 1
                    community = self._unit(
                        rows,
                        subdistrict,
                        "community",
                        f"{subdistrict.code}{serial:03d}",
                        f"{zh}社区",
                        f"{en} Community",
                        box=cell.inset(COMMUNITY_GAP_M),
                        address=f"{CITY_NAME}{district.name}{road}{number}号",
                    )
                    communities.append(community)
        bulk_insert(self.ctx.session, OrgUnit, rows)
        return city, districts, subdistricts, communities

    def _unit(
        self,
        rows: list[dict[str, Any]],
        parent: _Unit | None,
        kind: str,
        code: str,
        name: str,
        name_en: str,
        *,
        box: Box | None = None,
        lon: float | None = None,
        lat: float | None = None,
        address: str | None = None,
        region: str | None = None,
    ) -> _Unit:
        """Add an org unit row: depth, path and h3 cell as service.orgs.create_unit computes them."""
        unit_id = self.unit_ids.take()
        boundary = geo.validate_geometry(box.polygon()) if box else None
        if boundary is not None and (lon is None or lat is None):
            lon, lat = geo.polygon_centroid(boundary)
        cell = geo.cell_for(lon, lat, H3_RESOLUTION) if lon is not None and lat is not None else None
        path = f"{parent.path if parent else '/'}{unit_id}/"
        depth = parent.depth + 1 if parent else 0
        rows.append(
            {
                "id": unit_id,
                "parent_id": parent.id if parent else None,
                "kind": kind,
                "code": code,
                "name": name,
                "name_en": name_en,
                "path": path,
                "depth": depth,
                "address": address,
                "boundary": boundary,
                "lon": lon,
                "lat": lat,
                "h3_cell": cell,
            }
        )
        region = region or (parent.region if parent else "")
        return _Unit(unit_id, code, name, name_en, path, depth, region, address, box, lon, lat)

    # -- organisations

    def _organizations(
        self, city: _Unit, districts: list[_Unit], subdistricts: list[_Unit], communities: list[_Unit]
    ) -> _Organizations:
        rows: list[dict[str, Any]] = []

        def add(kind: str, code: str, name: str, name_en: str, unit: _Unit) -> tuple[int, str]:
            organization_id = self.organization_ids.take()
            rows.append(
                {
                    "id": organization_id,
                    "kind": kind,
                    "code": code,
                    "name": name,
                    "name_en": name_en,
                    "org_unit_id": unit.id,
                }
            )
            return organization_id, name

        operator = add(
            "operator",
            "operator",
            f"{CITY_NAME}城市运营有限公司",
            f"{CITY_NAME_EN} City Operations Co.",
            city,
        )
        departments = [
            (key, *add("department", f"dept-{key}", f"{CITY_NAME}{zh}", f"{CITY_NAME_EN} {en}", city))
            for key, zh, en in DEPARTMENTS
        ]
        care_providers = {
            district.id: add(
                "care_provider",
                f"care-{district.code}",
                f"{district.name}颐养居家养老服务中心",
                f"{district.name_en.removesuffix(' District')} Home Care Centre",
                district,
            )
            for district in districts
        }
        clinics = {
            subdistrict.id: add(
                "clinic",
                f"clinic-{subdistrict.code}",
                f"{subdistrict.name.removesuffix('街道')}社区卫生服务中心",
                f"{subdistrict.name_en.removesuffix(' Subdistrict')} Community Health Service Centre",
                subdistrict,
            )
            for subdistrict in subdistricts
        }
        merchants: dict[int, list[tuple[int, str]]] = {}
        for community in communities:
            short, short_en = (
                community.name.removesuffix("社区"),
                community.name_en.removesuffix(" Community"),
            )
            brands = self.rng.sample(MERCHANT_BRANDS, self.profile.merchants_per_community)
            merchants[community.id] = [
                add(
                    "merchant",
                    f"merchant-{community.code}-{number}",
                    f"{zh}（{short}店）",
                    f"{en} ({short_en})",
                    community,
                )
                for number, (zh, en) in enumerate(brands, start=1)
            ]
        bulk_insert(self.ctx.session, Organization, rows)
        return _Organizations(operator, departments, merchants, clinics, care_providers)

    # -- residents

    def _populate(
        self, community: _Unit, residents: int, rows: _Rows, *, demo_family: bool
    ) -> list[_Household]:
        """Households of exactly ``residents`` people in buildings of the community, as rows."""
        households = list(self._households(residents, demo_family))
        floors, entrances, per_floor = self.rng.choice(BUILDING_TYPES)
        flats_per_building = floors * entrances * per_floor
        buildings = math.ceil(len(households) / (flats_per_building * OCCUPANCY))
        flats = sorted(self.rng.sample(range(buildings * flats_per_building), len(households)))
        assert community.box is not None
        spots = community.box.inset(COMMUNITY_GAP_M * 2).split(buildings)
        building_units: dict[int, _Unit] = {}
        for household, flat in zip(households, flats, strict=True):
            number, rest = divmod(flat, flats_per_building)
            if number not in building_units:
                lon, lat = spots[number].inset(COMMUNITY_GAP_M).point(self.rng)
                building_units[number] = self._unit(
                    rows.units,
                    community,
                    "building",
                    f"{community.code}-{number + 1:02d}",
                    f"{number + 1}幢",
                    f"Building {number + 1}",
                    lon=lon,
                    lat=lat,
                    address=f"{community.address}{number + 1}幢",
                )
            building = building_units[number]
            entrance, rest = divmod(rest, floors * per_floor)
            floor, room = divmod(rest, per_floor)
            flat_name = f"{entrance + 1}单元{floor + 1}{room + 1:02d}室"
            unit = self._unit(
                rows.units,
                building,
                "household",
                f"{building.code}-{entrance + 1}-{floor + 1}{room + 1:02d}",
                f"{building.name}{flat_name}",
                f"{number + 1}-{entrance + 1}-{floor + 1}{room + 1:02d}",
                lon=building.lon,
                lat=building.lat,
                address=f"{building.address}{flat_name}",
            )
            household.unit_id = unit.id
            self._people(household, community, rows)
        self._family_links(households, rows)
        return households

    def _households(self, residents: int, demo_family: bool) -> Iterator[_Household]:
        """Households until exactly ``residents`` people; the last one is cut to fit."""
        shapes, weights = zip(*HOUSEHOLD_SHAPES, strict=True)
        placed = 0
        while placed < residents:
            demo = demo_family and placed == 0
            shape = "three_generations" if demo else self.rng.choices(shapes, weights=weights)[0]
            members = self._members(shape, minor_child=demo)[: residents - placed]
            placed += len(members)
            yield _Household(members)

    def _members(self, shape: str, *, minor_child: bool = False) -> list[_Member]:
        rng = self.rng
        if shape == "single":
            return [self._member("head", self._gender(), sample_age(rng, 18))]
        if shape == "shared_rental":
            head = self._member("head", self._gender(), rng.randint(20, 35))
            return [head] + [
                self._member("tenant", self._gender(), rng.randint(20, 35)) for _ in range(rng.randint(1, 2))
            ]
        if shape == "with_grandparent":
            head = self._member("head", self._gender(), rng.randint(18, 30))
            gender = self._gender()
            elder_age = min(99, head.age + rng.randint(45, 60))
            return [
                head,
                self._member("grandparent", gender, elder_age, head.family_name if gender == "M" else None),
            ]
        if shape == "grandparents_grandchild":
            head = self._member("head", "M" if rng.random() < 0.6 else "F", rng.randint(55, 75))
            members = [head] + ([self._spouse(head)] if rng.random() < 0.7 else [])
            line = head.family_name if head.gender == "M" else None
            members += [
                self._member("grandchild", self._gender(), rng.randint(0, 15), line)
                for _ in range(rng.randint(1, 2))
            ]
            return members
        if shape == "single_parent":
            head = self._member("head", "F" if rng.random() < 0.75 else "M", rng.randint(25, 55))
            return [head, *self._children([head], 1)]
        head_age = {
            "couple": lambda: sample_age(rng, 22, 92),
            "couple_child": lambda: rng.randint(25, 60),
            "couple_two_children": lambda: rng.randint(28, 52),
            "three_generations": lambda: rng.randint(30, 42) if minor_child else rng.randint(28, 50),
        }[shape]()
        head = self._member("head", "M" if rng.random() < 0.7 else "F", head_age)
        members = [head, self._spouse(head)]
        children = {"couple": 0, "couple_child": 1, "couple_two_children": 2}.get(shape, rng.randint(1, 2))
        members += self._children(members, children, minor=minor_child)
        if shape == "three_generations":
            members += self._parents_of(head, rng.randint(1, 2))
        return members

    def _member(self, relation: str, gender: str, age: int, family_name: str | None = None) -> _Member:
        return _Member(relation, gender, age, family_name or surname(self.rng))

    def _gender(self) -> str:
        return "M" if self.rng.random() < 0.512 else "F"

    def _spouse(self, head: _Member) -> _Member:
        gap = self.rng.randint(-5, 2) if head.gender == "M" else self.rng.randint(-2, 5)
        return self._member("spouse", "F" if head.gender == "M" else "M", max(20, head.age + gap))

    def _children(self, parents: list[_Member], count: int, *, minor: bool = False) -> list[_Member]:
        """Children of the parents, mostly named after the father."""
        rng = self.rng
        mother = next((parent for parent in parents if parent.gender == "F"), parents[0])
        father = next((parent for parent in parents if parent.gender == "M"), None)
        children: list[_Member] = []
        age = rng.randint(3, 14) if minor else max(0, mother.age - rng.randint(22, 36))
        for _ in range(count):
            line = father.family_name if father and rng.random() < 0.9 else mother.family_name
            children.append(self._member("child", self._gender(), age, line))
            age = max(0, age - rng.randint(1, 8))
        return children

    def _parents_of(self, head: _Member, count: int) -> list[_Member]:
        father_age = min(99, head.age + self.rng.randint(24, 34))
        parents = [
            self._member("parent", "M", father_age, head.family_name),
            self._member("parent", "F", max(head.age + 20, father_age - self.rng.randint(0, 4))),
        ]
        return parents[:count] if self.rng.random() < 0.5 else parents[-count:]

    def _people(self, household: _Household, community: _Unit, rows: _Rows) -> None:
        rng, today = self.rng, self.ctx.today
        for member in household.members:
            person_id = self.person_ids.take()
            member.person_id = person_id
            birth = birth_date_for_age(rng, member.age, today)
            id_number = (
                None if rng.random() < 0.03 else self.id_numbers.issue(community.region, birth, member.gender)
            )
            member.phone = mobile_number(rng) if rng.random() < _phone_share(member.age) else None
            if id_number is None:
                level = 0
            elif member.age < 16:
                level = 1
            else:
                level = rng.choices((1, 2, 3), weights=(20, 50, 30))[0]
            rows.people.append(
                {
                    "id": person_id,
                    "name": member.family_name + given_name(rng, member.gender, birth.year),
                    "gender": member.gender,
                    "birth_date": birth,
                    "phone": member.phone,
                    "email": None,
                    "id_number_hash": hash_id_number(id_number, self.salt) if id_number else None,
                    "id_number_masked": mask_id_number(id_number) if id_number else None,
                    "verification_level": level,
                    "home_unit_id": household.unit_id,
                }
            )
            rows.members.append(
                {
                    "id": self.member_ids.take(),
                    "household_id": household.unit_id,
                    "person_id": person_id,
                    "relation": member.relation,
                }
            )

    def _family_links(self, households: list[_Household], rows: _Rows) -> None:
        """Guardians of every child; carers (or guardians) of some elders living with family; an emergency
        contact in the community for some elders living alone."""
        rng = self.rng
        adults = [
            member for household in households for member in household.members if 30 <= member.age <= 60
        ]
        for household in households:
            for member in household.members:
                if member.age < MINOR_AGE:
                    for guardian in _carers_of(household, member):
                        self._link(rows, guardian, member, "guardian")
                elif member.age >= ELDER_AGE:
                    family = [carer for carer in _carers_of(household, member) if carer.age < ELDER_AGE]
                    if family and rng.random() < 0.6:
                        self._link(
                            rows, rng.choice(family), member, rng.choices(("carer", "guardian"), (7, 3))[0]
                        )
                    elif len(household.members) == 1 and adults and rng.random() < 0.5:
                        self._link(rows, rng.choice(adults), member, "emergency_contact")

    def _link(self, rows: _Rows, guardian: _Member, dependant: _Member, kind: str) -> None:
        rows.links.append(
            {
                "id": self.link_ids.take(),
                "guardian_id": guardian.person_id,
                "dependant_id": dependant.person_id,
                "kind": kind,
            }
        )

    # -- accounts

    def _demo_logins(
        self,
        city: _Unit,
        community: _Unit,
        subdistricts: list[_Unit],
        districts: list[_Unit],
        households: list[_Household],
        organizations: _Organizations,
        rows: _Rows,
    ) -> set[int]:
        """One login per role, all living in the first community; the person ids used."""
        family = households[0]
        candidates = [
            member
            for household in households[1:]
            for member in household.members
            if STAFF_AGES[0] <= member.age <= STAFF_AGES[1]
        ]
        staff = iter(self.rng.sample(candidates, 6 + len(organizations.departments)))
        subdistrict = next(unit for unit in subdistricts if community.path.startswith(unit.path))
        district = next(unit for unit in districts if community.path.startswith(unit.path))
        merchant = organizations.merchants[community.id][0]
        grants: list[tuple[str, str, _Member, _Unit, tuple[int, str] | None]] = [
            ("resident", "resident", family.head, community, None),
            ("community_worker", "community_worker", next(staff), community, None),
        ]
        for key, organization_id, name in organizations.departments:
            username = "department_staff" if key == DEPARTMENTS[0][0] else f"staff_{key}"
            grants.append(("department_staff", username, next(staff), city, (organization_id, name)))
        carer = next(staff)
        grants += [
            ("merchant_owner", "merchant_owner", next(staff), community, merchant),
            ("merchant_clerk", "merchant_clerk", next(staff), community, merchant),
            ("clinic_staff", "clinic_staff", next(staff), subdistrict, organizations.clinics[subdistrict.id]),
            ("carer", "carer", carer, community, organizations.care_providers[district.id]),
            ("operator", "operator", next(staff), city, organizations.operator),
        ]
        for role, username, member, unit, organization in grants:
            self._account(member, username, role, unit, organization[0] if organization else None)
            self.ctx.logins.append(
                DemoLogin(role, username, unit.name, organization[1] if organization else None)
            )
        carer_home = next(household for household in households if carer in household.members)
        elders = [
            member
            for household in households
            if household is not carer_home
            for member in household.members
            if member.age >= ELDER_AGE
        ]
        for elder in elders[:10]:
            self._link(rows, carer, elder, "carer")
        return {member.person_id for _role, _username, member, _unit, _organization in grants}

    def _resident_accounts(
        self, community: _Unit, households: list[_Household], count: int, taken: set[int]
    ) -> None:
        """Logins resident0001, resident0002, ... for adults with a phone."""
        adults = [
            member
            for household in households
            for member in household.members
            if member.age >= MINOR_AGE and member.phone and member.person_id not in taken
        ]
        for member in sorted(
            self.rng.sample(adults, min(count, len(adults))), key=lambda chosen: chosen.person_id
        ):
            self.resident_logins += 1
            self._account(member, f"resident{self.resident_logins:04d}", "resident", community, None)

    def _account(
        self, member: _Member, username: str, role: str, unit: _Unit, organization_id: int | None
    ) -> None:
        account_id = self.account_ids.take()
        self.accounts.append(
            {
                "id": account_id,
                "person_id": member.person_id,
                "username": username,
                "password_hash": self.password_hash,
            }
        )
        self.roles.append(
            {
                "id": self.role_ids.take(),
                "account_id": account_id,
                "role": role,
                "org_unit_id": unit.id,
                "organization_id": organization_id,
            }
        )


def _carers_of(household: _Household, member: _Member) -> list[_Member]:
    """Who in the household looks after a member: the generation above a child, the one below an elder."""
    members = household.members
    up = {"child": ("head", "spouse"), "grandchild": ("head", "spouse")}
    down = {"head": ("child",), "spouse": ("child",), "parent": ("head", "spouse"), "grandparent": ("head",)}
    relations = (up if member.age < MINOR_AGE else down).get(member.relation, ())
    return [
        other
        for other in members
        if other.relation in relations and other is not member and other.age >= MINOR_AGE
    ]


def _phone_share(age: int) -> float:
    if age < 12:
        return 0.0
    if age < MINOR_AGE:
        return 0.5
    if age >= 80:
        return 0.6
    return 0.95
