"""Consented targeting: a merchant offers a batch to a segment (communities, an age band) and it reaches only
residents with an active "marketing" consent (identity), each at most once per batch, through their inbox
and the channels they chose. The merchant sees how many it reached, never who; withdrawing the consent
stops every later offer at once, since the segment is read at the moment of each push."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.identity import Notice, Principal, get_unit_by_code, notify, reachable_people
from cityhub.domains.market import schemas
from cityhub.domains.market.models import Push, PushRecipient
from cityhub.domains.market.service.batches import owned
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Conflict, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l

PURPOSE = "marketing"
OFFER = (_l("An offer from %(merchant)s"), _l("%(title)s — claim it before %(until)s."))


def push(
    session: Session, principal: Principal, merchant_id: int, batch_id: int, data: schemas.PushIn, tz: str
) -> schemas.PushOut:
    merchant, batch = owned(session, principal, merchant_id, batch_id)
    now = utcnow()
    if batch.status != "active" or not batch.claim_from <= now < batch.claim_until:
        raise Conflict(_("Only a batch being given out now can be offered."), slug="not-active")
    units = [_community(session, code) for code in data.communities] or [merchant.home_unit_id]
    today = now.date()
    people = reachable_people(
        session,
        PURPOSE,
        unit_ids=units,
        born_after=_years_before(today, data.age_max + 1) + timedelta(days=1)
        if data.age_max is not None
        else None,
        born_before=_years_before(today, data.age_min) if data.age_min is not None else None,
    )
    already = set(
        session.scalars(
            select(PushRecipient.person_id).where(
                PushRecipient.batch_id == batch.id, PushRecipient.person_id.in_([p for p, _a in people])
            )
        )
    )
    fresh = [(person, account) for person, account in people if person not in already]
    record = Push(
        merchant_id=merchant.id,
        batch_id=batch.id,
        segment=data.model_dump(),
        matched=len(people),
        reached=len(fresh),
        created_by=principal.actor,
    )
    session.add(record)
    session.flush()
    session.add_all(
        PushRecipient(batch_id=batch.id, person_id=person, push_id=record.id) for person, _a in fresh
    )
    until = batch.claim_until.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d")
    params = {"merchant": merchant.name, "title": batch.title, "until": until}
    for _person, account in fresh:
        notify(session, account, Notice("market.offer", *OFFER, params, f"/market/batches/{batch.id}"))
    audit.record(
        session,
        actor=principal.actor,
        action="market.batch.pushed",
        object_type="batch",
        object_id=str(batch.id),
        purpose=PURPOSE,
        details={"segment": record.segment, "matched": record.matched, "reached": record.reached},
    )
    return _out(record)


def pushes(session: Session, principal: Principal, merchant_id: int, batch_id: int) -> list[schemas.PushOut]:
    _merchant, batch = owned(session, principal, merchant_id, batch_id)
    rows = session.scalars(select(Push).where(Push.batch_id == batch.id).order_by(Push.id.desc()))
    return [_out(row) for row in rows]


def _out(record: Push) -> schemas.PushOut:
    return schemas.PushOut(
        id=record.id,
        batch_id=record.batch_id,
        segment=record.segment,
        matched=record.matched,
        reached=record.reached,
        created_at=record.created_at,
    )


def _community(session: Session, code: str) -> int:
    try:
        unit = get_unit_by_code(session, code)
    except NotFound as exc:
        raise ValidationProblem(
            _("No community has the code %(code)s.", code=code), field="communities"
        ) from exc
    if unit.kind != "community":
        raise ValidationProblem(_("%(code)s is not a community.", code=code), field="communities")
    return unit.id


def _years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)
