"""Purpose-based consent: granted and withdrawn with timestamps; other domains ask through the public face."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cityhub.domains.identity.models import Account, Consent, OrgUnit, Person
from cityhub.kernel import audit, events
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import ValidationProblem
from cityhub.kernel.i18n import gettext as _

PURPOSE_PATTERN = re.compile(r"^[a-z][a-z0-9_.]{1,63}$")


class ConsentChanged(events.Event):
    event_type = "identity.consent_changed"

    person_id: int
    purpose: str
    granted: bool


def _check_purpose(purpose: str) -> None:
    if not PURPOSE_PATTERN.match(purpose):
        raise ValidationProblem(
            _("A purpose is a lowercase code like marketing or health.records."), field="purpose"
        )


def active_consent(session: Session, person_id: int, purpose: str) -> Consent | None:
    return session.scalar(
        select(Consent)
        .where(Consent.person_id == person_id, Consent.purpose == purpose, Consent.withdrawn_at.is_(None))
        .order_by(Consent.id.desc())
        .limit(1)
    )


def has_consent(session: Session, person_id: int, purpose: str) -> bool:
    return active_consent(session, person_id, purpose) is not None


def consenting_people(session: Session, purpose: str, person_ids: list[int] | None = None) -> set[int]:
    """Of the given people (or everyone), those with an active consent for the purpose."""
    statement = select(Consent.person_id).where(Consent.purpose == purpose, Consent.withdrawn_at.is_(None))
    if person_ids is not None:
        statement = statement.where(Consent.person_id.in_(person_ids))
    return set(session.scalars(statement))


def grant_consent(
    session: Session,
    person_id: int,
    purpose: str,
    *,
    actor: str,
    scope: str | None = None,
    channel: str = "app",
) -> Consent:
    _check_purpose(purpose)
    existing = active_consent(session, person_id, purpose)
    if existing is not None:
        return existing
    consent = Consent(person_id=person_id, purpose=purpose, scope=scope, channel=channel)
    session.add(consent)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="identity.consent.granted",
        object_type="person",
        object_id=str(person_id),
        purpose=purpose,
    )
    events.publish(session, ConsentChanged(person_id=person_id, purpose=purpose, granted=True))
    return consent


def withdraw_consent(session: Session, person_id: int, purpose: str, *, actor: str) -> bool:
    """Withdraw; True when there was an active consent."""
    _check_purpose(purpose)
    consent = active_consent(session, person_id, purpose)
    if consent is None:
        return False
    consent.withdrawn_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action="identity.consent.withdrawn",
        object_type="person",
        object_id=str(person_id),
        purpose=purpose,
    )
    events.publish(session, ConsentChanged(person_id=person_id, purpose=purpose, granted=False))
    return True


def consent_history(session: Session, person_id: int) -> list[Consent]:
    return list(
        session.scalars(
            select(Consent)
            .where(Consent.person_id == person_id)
            .order_by(Consent.granted_at.desc(), Consent.id.desc())
        )
    )


def reachable_people(
    session: Session,
    purpose: str,
    *,
    unit_ids: list[int] | None = None,
    born_after: date | None = None,
    born_before: date | None = None,
) -> list[tuple[int, int]]:
    """(person id, account id) of everyone with an active consent for ``purpose`` and an active account,
    living in one of the units' subtrees (None: anywhere) and born in the range: whom a consented message may
    reach. The caller learns how many, never who, unless it is the platform sending the message."""
    _check_purpose(purpose)
    statement = (
        select(Person.id, Account.id)
        .join(Account, Account.person_id == Person.id)
        .where(
            Account.is_active.is_(True),
            Person.id.in_(
                select(Consent.person_id).where(Consent.purpose == purpose, Consent.withdrawn_at.is_(None))
            ),
        )
        .order_by(Person.id, Account.id)
    )
    if unit_ids is not None:
        paths = _paths(session, unit_ids)
        if not paths:
            return []
        inside = select(OrgUnit.id).where(or_(*(OrgUnit.path.startswith(path) for path in paths)))
        statement = statement.where(Person.home_unit_id.in_(inside))
    if born_after is not None:
        statement = statement.where(Person.birth_date >= born_after)
    if born_before is not None:
        statement = statement.where(Person.birth_date <= born_before)
    first_account: dict[int, int] = {}
    for person_id, account_id in session.execute(statement):
        first_account.setdefault(person_id, account_id)
    return sorted(first_account.items())


def _paths(session: Session, unit_ids: list[int]) -> list[str]:
    return list(session.scalars(select(OrgUnit.path).where(OrgUnit.id.in_(unit_ids))))
