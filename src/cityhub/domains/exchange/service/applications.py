"""Applications to use conditionally open data (有条件开放): a signed-in person asks to use a published
resource whose open class is ``conditional``, for a purpose and a number of days; the owner's staff are told
and answer by a deadline in working days — approving, perhaps for fewer days, or rejecting with a reason —
and the applicant is told. While an approval is in force the applicant downloads the data in its public,
de-identified form (``opening.public_rows``); every download is an audit record with its row count. One
pending application per person and resource.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.models import OpenApplication, Resource
from cityhub.domains.exchange.service import opening
from cityhub.domains.exchange.service.access import (
    ADMINISTER,
    MANAGE,
    owned_resource,
    resource_by_code,
    staff_of,
    tell,
)
from cityhub.domains.exchange.service.grants import DECISIONS
from cityhub.domains.identity import Notice, Principal, can_citywide, usernames_of
from cityhub.kernel import audit
from cityhub.kernel.errors import Conflict, Forbidden, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.workdays import workday_deadline

PORTAL_CLASSES = ("open", "conditional")  # what the portal lists: open data, and data open on application
APPLIED = (
    _l("Application to use data: %(resource)s"),
    _l("%(applicant)s applies to use %(resource)s. Please answer by %(due)s."),
)
ANSWERED = (
    _l("Application answered: %(resource)s"),
    _l("Your application to use %(resource)s was %(decision)s."),
)
CONSOLE = "/console/exchange#applications"
MINE = "/data/me/applications"
MAX_LISTED = 200


def on_portal(session: Session, code: str) -> Resource:
    """A resource the portal shows: published, open or open on application; 404 for any other."""
    resource = resource_by_code(session, code)
    if resource.status != "published" or resource.open_class not in PORTAL_CLASSES:
        raise NotFound(_("Resource %(code)s does not exist.", code=code))
    return resource


# -- applying ----------------------------------------------------------------------------------------------


def apply(
    session: Session,
    principal: Principal,
    code: str,
    data: schemas.ApplicationIn,
    now: datetime,
    tz: str,
    working_days: int,
) -> OpenApplication:
    """A person's application, due for an answer in ``working_days`` working days."""
    account_id = _person(principal)
    resource = on_portal(session, code)
    if resource.open_class != "conditional":
        raise Conflict(_("This data is open to everyone: download it without applying."), slug="open-data")
    # One application waits per person and resource: applicants of a resource take turns (a row lock on
    # PostgreSQL; SQLite's writers are serialised anyway), so two at once cannot both pass the check.
    session.execute(select(Resource.id).where(Resource.id == resource.id).with_for_update())
    waiting = select(OpenApplication.id).where(
        OpenApplication.resource_id == resource.id,
        OpenApplication.account_id == account_id,
        OpenApplication.status == "pending",
    )
    if session.scalar(waiting) is not None:
        raise Conflict(_("Your application for this data is waiting for an answer."), slug="pending")
    application = OpenApplication(
        resource_id=resource.id,
        account_id=account_id,
        organisation=data.organisation.strip(),
        purpose=data.purpose,
        days=data.days,
        due_at=workday_deadline(now, working_days, tz),
        created_at=now,
    )
    session.add(application)
    session.flush()
    _audit(session, principal, "exchange.application.made", application, {"resource": code})
    applicant = usernames_of(session, [account_id]).get(account_id, principal.name)
    if application.organisation:
        applicant = f"{applicant} ({application.organisation})"
    due = application.due_at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d")
    params = {"applicant": applicant, "resource": resource.name, "due": due}
    tell(
        session,
        staff_of(session, resource.provider_org_id),
        Notice("exchange.application", *APPLIED, params, CONSOLE),
    )
    return application


def _person(principal: Principal) -> int:
    """People apply and download, with their own account (a machine's key does not)."""
    if principal.account_id is None:
        raise Forbidden(_("Sign in as a person to apply for data."), slug="person-only")
    return principal.account_id


# -- answering ---------------------------------------------------------------------------------------------


def answer(
    session: Session,
    principal: Principal,
    application_id: int,
    data: schemas.ApplicationAnswerIn,
    now: datetime,
) -> OpenApplication:
    """The owner's answer to a pending application: approved for the days asked or fewer, or rejected."""
    application = session.get(OpenApplication, application_id)
    if application is None:
        raise NotFound(_("Application %(id)s does not exist.", id=application_id))
    resource = session.get_one(Resource, application.resource_id)
    owned_resource(session, principal, resource.code)
    if application.status != "pending":
        raise Conflict(_("This application has been answered."), slug="answered")
    if data.decision == "approve":
        days = data.days or application.days
        if days > application.days:
            raise ValidationProblem(
                _("Approve for at most the %(n)s days asked for.", n=application.days), field="days"
            )
        application.status, application.valid_until = "approved", now + timedelta(days=days)
    else:
        application.status = "rejected"
    application.reason, application.answered_by, application.answered_at = data.reason, principal.actor, now
    details = {**data.model_dump(mode="json"), "valid_until": str(application.valid_until)}
    _audit(session, principal, f"exchange.application.{application.status}", application, details)
    params = {"resource": resource.name, "decision": str(DECISIONS[data.decision])}
    notice = Notice("exchange.application.answered", *ANSWERED, params, MINE)
    tell(session, [application.account_id], notice)
    return application


# -- the applicant's download ------------------------------------------------------------------------------


def usable(
    session: Session, principal: Principal, application_id: int, now: datetime
) -> tuple[OpenApplication, Resource]:
    """The caller's approved application in force, on a resource still open on application with data;
    403 with the reason otherwise (deny by default)."""
    application = session.get(OpenApplication, application_id)
    if application is None or application.account_id != principal.account_id:
        raise Forbidden(_("No application of yours lets you read this."), slug="no-application")
    if application.status != "approved" or application.valid_until is None:
        raise Forbidden(_("This application is not approved."), slug="application-not-approved")
    if now >= application.valid_until:
        raise Forbidden(_("This application's approval has expired."), slug="application-expired")
    resource = session.get_one(Resource, application.resource_id)
    if resource.status != "published" or resource.open_class != "conditional":
        raise Forbidden(_("This resource is no longer open on application."), slug="not-open")
    if resource.current_version_id is None:
        raise NotFound(_("Resource %(code)s has no data yet.", code=resource.code))
    return application, resource


def applicant_csv(
    session: Session, principal: Principal, application_id: int, now: datetime
) -> tuple[Resource, IO[bytes]]:
    """The applicant's download: the public rows as CSV (UTF-8 with a BOM) in a spooled file, written while
    the request's session reads them, and audited with its row count before it is sent."""
    application, resource = usable(session, principal, application_id, now)
    fields, rows = opening.public_rows(session, resource)  # the public, de-identified form
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - the response closes it
    text = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(fields)
    count = 0
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in fields])
        count += 1
    text.detach()
    spool.seek(0)
    details = {"resource": resource.code, "version": resource.current_version_id, "rows": count}
    _audit(session, principal, "exchange.application.read", application, details)
    return resource, spool


SPOOL_IN_MEMORY = 8 * 1024 * 1024  # larger files go to a temporary file on disk
CHUNK = 256 * 1024


def _cell(value: Any) -> Any:
    """A JSON value in a CSV cell (as the grants' exports write it)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def chunks(spool: IO[bytes]) -> Iterator[bytes]:
    """A spooled file sent in chunks, closed at the end."""
    with spool:
        while chunk := spool.read(CHUNK):
            yield chunk


# -- lists and shapes --------------------------------------------------------------------------------------


def of_side(session: Session, principal: Principal, side: str, status: str | None) -> list[OpenApplication]:
    """The caller's own applications (``mine``), newest first, or those to the resources of the departments
    they manage (``owner``; the operator: every one), oldest deadline first."""
    statement: Select[OpenApplication]
    if side == "mine":
        statement = select(OpenApplication).where(OpenApplication.account_id == _person(principal))
        statement = statement.order_by(OpenApplication.id.desc())
    else:
        statement = select(OpenApplication).order_by(OpenApplication.due_at, OpenApplication.id)
        if not can_citywide(principal, ADMINISTER):
            statement = statement.join(Resource, Resource.id == OpenApplication.resource_id).where(
                Resource.provider_org_id.in_(principal.organizations(MANAGE))
            )
    if status is not None:
        statement = statement.where(OpenApplication.status == status)
    return list(session.scalars(statement.limit(MAX_LISTED)))


def in_force(
    session: Session, principal: Principal, resource: Resource, now: datetime
) -> OpenApplication | None:
    """The caller's approval in force for ``resource`` (the latest), if any: the portal's download link."""
    if principal.account_id is None:
        return None
    return session.scalar(
        select(OpenApplication)
        .where(
            OpenApplication.resource_id == resource.id,
            OpenApplication.account_id == principal.account_id,
            OpenApplication.status == "approved",
            OpenApplication.valid_until > now,
        )
        .order_by(OpenApplication.valid_until.desc())
        .limit(1)
    )


def shape(
    session: Session, applications: list[OpenApplication], now: datetime
) -> list[schemas.ApplicationOut]:
    names = usernames_of(session, [application.account_id for application in applications])
    resources = {
        resource.id: resource
        for resource in session.scalars(
            select(Resource).where(Resource.id.in_({application.resource_id for application in applications}))
        )
    }
    shaped = []
    for application in applications:
        resource = resources[application.resource_id]
        state = application.status
        expired = application.valid_until is not None and now >= application.valid_until
        if state == "approved" and expired:
            state = "expired"
        shaped.append(
            schemas.ApplicationOut(
                id=application.id,
                resource=resource.code,
                resource_name=resource.name,
                applicant=names.get(application.account_id, ""),
                organisation=application.organisation,
                purpose=application.purpose,
                days=application.days,
                status=application.status,
                state=state,
                due_at=application.due_at,
                valid_until=application.valid_until,
                reason=application.reason,
                answered_at=application.answered_at,
                created_at=application.created_at,
                in_force=state == "approved",
            )
        )
    return shaped


def _audit(
    session: Session, principal: Principal, action: str, application: OpenApplication, details: dict[str, Any]
) -> None:
    audit.record(
        session,
        actor=principal.actor,
        action=action,
        object_type="exchange_open_application",
        object_id=str(application.id),
        details=details,
    )
