"""People, households and family links."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from cityhub.domains.identity.models import Account, FamilyLink, HouseholdMember, OrgUnit, Person
from cityhub.domains.identity.service.access import Principal, require
from cityhub.domains.identity.service.orgs import root_path, unit_ids_in_scope
from cityhub.domains.identity.settings import IdentitySettings
from cityhub.kernel import audit
from cityhub.kernel.errors import Conflict, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.pagination import PageParams, fetch_page
from cityhub.kernel.settings import domain_settings

HOUSEHOLD_RELATIONS = (
    "head",
    "spouse",
    "child",
    "parent",
    "grandparent",
    "grandchild",
    "sibling",
    "tenant",
    "other",
)
FAMILY_LINK_KINDS = ("guardian", "carer", "emergency_contact")
ID_NUMBER_PATTERN = re.compile(r"[0-9]{17}[0-9Xx]", re.ASCII)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"


@dataclass
class PersonInput:
    name: str
    gender: str = "U"
    birth_date: date | None = None
    phone: str | None = None
    email: str | None = None
    id_number: str | None = None
    verification_level: int = 0
    home_unit_id: int | None = None


def id_number_checksum_ok(id_number: str) -> bool:
    """GB 11643 check digit of an 18-character resident identity number."""
    if not ID_NUMBER_PATTERN.fullmatch(id_number):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(id_number[:17], ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11] == id_number[17].upper()


def hash_id_number(id_number: str, key: str) -> str:
    """A keyed hash (HMAC-SHA256): without the key, a dump of the table cannot be brute-forced back to ids."""
    return hmac.new(key.encode(), id_number.upper().encode(), hashlib.sha256).hexdigest()


def id_number_digest(id_number: str) -> str:
    """The stored form of a resident id number, for other domains that receive one from a department system
    and must match it to a person without keeping the number; a malformed number is a 422."""
    if not id_number_checksum_ok(id_number):
        raise ValidationProblem(
            _("%(number)s is not a valid resident id number.", number=mask_id_number(id_number))
        )
    return hash_id_number(id_number, domain_settings(IdentitySettings).id_number_key)


def mask_id_number(id_number: str) -> str:
    """Only the first and last character: with the birth date beside it, more would give the number away."""
    return f"{id_number[0]}{'*' * 16}{id_number[-1]}"


def home_path(session: Session, person: Person) -> str:
    """The org path that governs a person: their home unit, or the root for people without one."""
    if person.home_unit_id is not None:
        unit = session.get(OrgUnit, person.home_unit_id)
        if unit is not None:
            return unit.path
    return root_path(session)


def mask_name(name: str) -> str:
    """张三丰 -> 张*丰, 李四 -> 李*: shown to verifiers, who need to recognise, not to learn, a name."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def create_person(session: Session, data: PersonInput, id_salt: str) -> Person:
    if not data.name.strip():
        raise ValidationProblem(_("A name is required."), field="name")
    if data.gender not in ("M", "F", "U"):
        raise ValidationProblem(_("Gender must be M, F or U."), field="gender")
    if not 0 <= data.verification_level <= 3:
        raise ValidationProblem(_("Verification level must be 0 to 3."), field="verification_level")
    person = Person(
        name=data.name.strip(),
        gender=data.gender,
        birth_date=data.birth_date,
        phone=data.phone,
        email=data.email,
        verification_level=data.verification_level,
        home_unit_id=data.home_unit_id,
    )
    if data.id_number:
        set_id_number(session, person, data.id_number, id_salt)
    session.add(person)
    session.flush()
    return person


def set_id_number(session: Session, person: Person, id_number: str, salt: str) -> None:
    if not id_number_checksum_ok(id_number):
        raise ValidationProblem(_("The identity number is not valid."), field="id_number")
    digest = hash_id_number(id_number, salt)
    existing = session.scalar(select(Person.id).where(Person.id_number_hash == digest))
    if existing is not None and existing != person.id:
        raise Conflict(_("This identity number is already registered."), field="id_number")
    person.id_number_hash = digest
    person.id_number_masked = mask_id_number(id_number)


def get_person(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(_("Person %(id)s does not exist.", id=person_id))
    return person


def account_holders(
    session: Session, limit: int, usernames: tuple[str, ...] = ()
) -> list[tuple[int, Person]]:
    """(account id, person) of people with a login and an id number on file: the named accounts first, then
    the oldest, ``limit`` in all (for other domains' demo data, which needs people records can match)."""
    chosen = (
        select(Account.id, Person)
        .join(Account, Account.person_id == Person.id)
        .where(Person.id_number_hash.is_not(None))
    )
    named = session.execute(chosen.where(Account.username.in_(usernames)).order_by(Account.id)).all()
    others = session.execute(
        chosen.where(Account.username.not_in(usernames))
        .order_by(Account.id)
        .limit(max(limit - len(named), 0))
    ).all()
    return [(account_id, person) for account_id, person in [*named, *others]]


def people_in_scope(scopes: list[str], q: str | None = None) -> Select[Person]:
    """People whose home unit lies in scope, optionally whose name or phone contains ``q`` literally."""
    statement = select(Person).where(Person.home_unit_id.in_(unit_ids_in_scope(scopes)))
    if q:
        statement = statement.where(
            or_(Person.name.contains(q, autoescape=True), Person.phone.contains(q, autoescape=True))
        )
    return statement.order_by(Person.id)


def list_people_audited(
    session: Session, principal: Principal, q: str | None, params: PageParams
) -> tuple[list[Person], int]:
    """One page of the people the principal may see; the listing itself is recorded in the audit chain."""
    rows, total = fetch_page(session, people_in_scope(principal.scopes("identity.people.read"), q), params)
    audit.record(
        session,
        actor=principal.actor,
        action="identity.people.listed",
        object_type="person",
        object_id="*",
        purpose="administration",
        details={"q": q, "count": len(rows)},
    )
    return rows, total


def read_person_audited(session: Session, principal: Principal, person_id: int, purpose: str) -> Person:
    """A person's record for someone who may read it there, with the read and its purpose audited."""
    person = get_person(session, person_id)
    require(principal, "identity.people.read", home_path(session, person))
    audit.record(
        session,
        actor=principal.actor,
        action="identity.person.read",
        object_type="person",
        object_id=str(person.id),
        purpose=purpose,
    )
    return person


def add_to_household(session: Session, household: OrgUnit, person: Person, relation: str) -> HouseholdMember:
    if household.kind != "household":
        raise ValidationProblem(_("People can only join a household."), field="household_id")
    if relation not in HOUSEHOLD_RELATIONS:
        raise ValidationProblem(
            _("Unknown household relation %(relation)s.", relation=relation), field="relation"
        )
    member = HouseholdMember(household_id=household.id, person_id=person.id, relation=relation)
    session.add(member)
    if person.home_unit_id is None:
        person.home_unit_id = household.id
    return member


def link_family(session: Session, guardian: Person, dependant: Person, kind: str) -> FamilyLink:
    if kind not in FAMILY_LINK_KINDS:
        raise ValidationProblem(_("Unknown family link %(kind)s.", kind=kind), field="kind")
    if guardian.id == dependant.id:
        raise ValidationProblem(_("A person cannot be linked to themselves."), field="dependant_id")
    existing = session.scalar(
        select(FamilyLink.id).where(
            FamilyLink.guardian_id == guardian.id,
            FamilyLink.dependant_id == dependant.id,
            FamilyLink.kind == kind,
        )
    )
    if existing is not None:
        raise Conflict(_("These two people are already linked this way."), link_id=existing)
    link = FamilyLink(guardian_id=guardian.id, dependant_id=dependant.id, kind=kind)
    session.add(link)
    return link


def link_family_audited(
    session: Session, principal: Principal, guardian: Person, dependant: Person, kind: str
) -> FamilyLink:
    """Link two people the principal may manage, and record it in the audit chain."""
    for person in (dependant, guardian):
        require(principal, "identity.people.manage", home_path(session, person))
    link = link_family(session, guardian, dependant, kind)
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="identity.family_link.created",
        object_type="person",
        object_id=str(dependant.id),
        details={"guardian_id": guardian.id, "kind": kind},
    )
    return link


def household_of(session: Session, person_id: int) -> tuple[OrgUnit, list[tuple[Person, str]]] | None:
    """The person's household and its members with their relations."""
    household_id = session.scalar(
        select(HouseholdMember.household_id).where(HouseholdMember.person_id == person_id).limit(1)
    )
    if household_id is None:
        return None
    household = session.get(OrgUnit, household_id)
    assert household is not None
    members = session.execute(
        select(Person, HouseholdMember.relation)
        .join(HouseholdMember, HouseholdMember.person_id == Person.id)
        .where(HouseholdMember.household_id == household_id)
        .order_by(HouseholdMember.id)
    ).all()
    return household, [(person, relation) for person, relation in members]


def dependants_of(session: Session, guardian_id: int, kind: str | None = None) -> list[Person]:
    statement = select(Person).join(FamilyLink, FamilyLink.dependant_id == Person.id)
    statement = statement.where(FamilyLink.guardian_id == guardian_id)
    if kind:
        statement = statement.where(FamilyLink.kind == kind)
    return list(session.scalars(statement))


def guardians_of(session: Session, dependant_id: int, kind: str | None = None) -> list[Person]:
    statement = select(Person).join(FamilyLink, FamilyLink.guardian_id == Person.id)
    statement = statement.where(FamilyLink.dependant_id == dependant_id)
    if kind:
        statement = statement.where(FamilyLink.kind == kind)
    return list(session.scalars(statement))
