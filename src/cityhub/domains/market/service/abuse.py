"""The suspicious-claims report for the operator: devices that claimed for several people (one phone
working many accounts or many real-name identities), and people who claimed far more than the median
claimer, over the last days. Limits already stop one person from passing a batch's limits whatever the
number of accounts (they are counted per person); this report finds what limits cannot see. It shows
personal data (masked names), so reading it is audited."""

from __future__ import annotations

import statistics
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal, get_person, mask_name, require_citywide
from cityhub.domains.market import schemas
from cityhub.domains.market.models import CouponEvent
from cityhub.domains.market.service.access import REVIEW
from cityhub.domains.market.settings import MarketSettings
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow

MIN_SUSPICIOUS_CLAIMS = 10


def suspicious_claims(
    session: Session, principal: Principal, days: int, settings: MarketSettings
) -> schemas.SuspiciousOut:
    require_citywide(principal, REVIEW)
    since = utcnow() - timedelta(days=days)
    claims = (CouponEvent.kind == "claim", CouponEvent.occurred_at >= since)
    devices = session.execute(
        select(CouponEvent.device, func.count(func.distinct(CouponEvent.person_id)), func.count())
        .where(*claims, CouponEvent.device.is_not(None))
        .group_by(CouponEvent.device)
        .having(func.count(func.distinct(CouponEvent.person_id)) >= settings.suspicious_device_people)
        .order_by(func.count(func.distinct(CouponEvent.person_id)).desc())
        .limit(100)
    ).all()
    per_person = dict(
        session.execute(
            select(CouponEvent.person_id, func.count()).where(*claims).group_by(CouponEvent.person_id)
        ).all()
    )
    median = statistics.median(per_person.values()) if per_person else 0
    bar = max(MIN_SUSPICIOUS_CLAIMS, settings.suspicious_claims_factor * median)
    heavy = sorted(((n, p) for p, n in per_person.items() if p is not None and n >= bar), reverse=True)[:100]
    report = schemas.SuspiciousOut(
        days=days,
        median_claims_per_person=float(median),
        devices=[schemas.SuspiciousDevice(device=d, people=p, claims=n) for d, p, n in devices],
        people=[
            schemas.SuspiciousPerson(person_id=p, name=mask_name(get_person(session, p).name), claims=n)
            for n, p in heavy
        ],
    )
    audit.record(
        session,
        actor=principal.actor,
        action="market.suspicious_claims.read",
        object_type="report",
        object_id="suspicious-claims",
        purpose="abuse review",
        details={"days": days, "devices": len(report.devices), "people": len(report.people)},
    )
    return report
