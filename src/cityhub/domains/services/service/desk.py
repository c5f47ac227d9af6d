"""Who acts for a department, and whose records a resident may see.

Department staff and department systems (API keys) act for the identity organisation a department is tied
to; the operator acts for every department. A resident is matched to department records and bills by the
keyed hash of their national id number, the same hash identity keeps.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal, can_citywide, get_person, id_number_digest
from cityhub.domains.services.models import Department, Item
from cityhub.domains.services.service.catalogue import get_item
from cityhub.kernel.errors import Forbidden, NotFound, Problem, ValidationProblem
from cityhub.kernel.i18n import gettext as _

DESK = "services.desk.manage"
CATALOGUE_MANAGE = "services.catalogue.manage"  # the operator's: it acts for every department


def get_department(session: Session, code: str) -> Department:
    department = session.scalar(select(Department).where(Department.code == code))
    if department is None:
        raise NotFound(_("Department %(code)s does not exist.", code=code))
    return department


def may_act_for(principal: Principal, department: Department) -> bool:
    """The department's own organisation acts for it; so does whoever runs the catalogue for the city (a
    city-wide DESK grant alone is not enough: department staff are granted over the whole city too)."""
    if department.organization_id is not None and department.organization_id in principal.organizations(DESK):
        return True
    return principal.has(DESK) and can_citywide(principal, CATALOGUE_MANAGE)


def require_desk(principal: Principal, department: Department) -> None:
    if not may_act_for(principal, department):
        raise Forbidden(
            _("Only the staff and systems of %(department)s may do this.", department=department.name_zh),
            slug="not-your-department",
        )


def desk_departments(session: Session, principal: Principal) -> list[Department]:
    """The departments the principal acts for (every one for the operator)."""
    rows = session.scalars(select(Department).order_by(Department.position, Department.id))
    return [department for department in rows if may_act_for(principal, department)]


def department_item(session: Session, department: Department, code: str, kind: str) -> Item:
    """An item of ``department`` of the given kind (published or not: departments prepare them early)."""
    item = get_item(session, code, include_unpublished=True)
    if item.department_id != department.id:
        raise NotFound(_("Service item %(code)s does not belong to this department.", code=code))
    require_kind(item, kind)
    return item


def require_kind(item: Item, kind: str) -> None:
    if item.kind != kind:
        raise ValidationProblem(
            _("Service item %(code)s is not of kind %(kind)s.", code=item.code, kind=kind), field="item"
        )


def resident_subject(session: Session, principal: Principal) -> str:
    """The id-number hash department data knows the caller by; refused for callers without one."""
    person = get_person(session, principal.person_id) if principal.person_id is not None else None
    if person is None or not person.id_number_hash:
        raise Problem(
            _("Your account has no verified resident id number, so department records cannot be matched."),
            status=403,
            slug="no-verified-identity",
        )
    return person.id_number_hash


def subject_digests(numbers: list[str]) -> tuple[list[str], dict[int, str]]:
    """The subject hash of each id number a department sent, and why each malformed one (by index) is not
    one; callers report every bad entry of a load at once."""
    digests: list[str] = []
    malformed: dict[int, str] = {}
    for index, number in enumerate(numbers):
        try:
            digests.append(id_number_digest(number))
        except Problem as problem:
            malformed[index] = problem.detail or ""
    return digests, malformed


def resident_person(principal: Principal) -> int:
    if principal.person_id is None or principal.kind != "account":
        raise Forbidden(_("Only a resident's own account can do this."), slug="residents-only")
    return principal.person_id


def new_reference(prefix: str) -> str:
    """A short reference a resident can read out on the phone, unguessable enough to show in URLs."""
    return prefix + secrets.token_hex(6).upper()
