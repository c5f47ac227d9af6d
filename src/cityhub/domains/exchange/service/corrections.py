"""The correction loop: a consumer department (or a resident, on open data) objects to rows of a resource
with evidence and the values it believes right; the owner accepts — a corrected version is made from the
current one with those rows changed, becomes current, and every consumer holding a grant is told (an event
and a notice) — or rejects with a reason, by a deadline in working days. Objections past their deadline
are escalated once, to the owner's head and the operator. The resource shows its correction history and a
quality score."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.events import ResourceCorrected
from cityhub.domains.exchange.models import Grant, Objection, Resource, Row, Version
from cityhub.domains.exchange.service.access import ADMINISTER, MANAGE, REQUEST, acts_for, department
from cityhub.domains.exchange.service.catalogue import visible
from cityhub.domains.exchange.service.loads import ROW_COLUMNS, ROWS, RowChecker
from cityhub.domains.exchange.service.opening import opening_of
from cityhub.domains.identity import Notice, Principal, accounts_holding, get_organization, notify
from cityhub.kernel import audit, events
from cityhub.kernel.bulk import insert_prepared
from cityhub.kernel.errors import Conflict, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.workdays import workday_deadline

COPY_BATCH = 5_000
QUALITY_WINDOW = timedelta(days=365)
FILED = (
    _l("Correction requested: %(resource)s"),
    _l("Rows %(rows)s of %(resource)s are reported wrong. Please answer by %(due)s."),
)
CORRECTED = (
    _l("Data corrected: %(resource)s"),
    _l("%(resource)s was corrected (version %(version)s, rows %(rows)s). Reload what you keep of it."),
)
ANSWERED = (
    _l("Your correction of %(resource)s was %(decision)s"),
    _l("%(reason)s"),
)
OVERDUE = (
    _l("Correction overdue: %(resource)s"),
    _l("A correction of %(resource)s was due %(due)s and is still unanswered."),
)
DECISIONS = {"accept": _l("accepted"), "reject": _l("rejected")}


def file(
    session: Session,
    principal: Principal,
    code: str,
    data: schemas.ObjectionIn,
    now: datetime,
    tz: str,
    working_days: int,
) -> Objection:
    """A department reports for itself (it must see the resource); anyone signed in may report open data."""
    resource = visible(session, principal, code)
    filer_org = department(session, principal, REQUEST, data.filer) if data.filer else None
    if filer_org is None and (resource.open_class != "open" or principal.account_id is None):
        raise ValidationProblem(_("Name the department that reports the error."), field="filer")
    if resource.current_version_id is None:
        raise Conflict(_("This resource has no data to correct."), slug="no-data")
    version = session.get_one(Version, resource.current_version_id)
    _check_rows(data.rows, version.row_count)
    _check_values(resource, data.proposed, data.rows)
    if filer_org is None:
        _check_public_items(resource, data.proposed)
    objection = Objection(
        resource_id=resource.id,
        version_id=version.id,
        filer_org_id=filer_org,
        filer_account_id=principal.account_id,
        rows=sorted(set(data.rows)),
        claim=data.claim,
        evidence=data.evidence,
        proposed=data.proposed,
        due_at=workday_deadline(now, working_days, tz),
        created_by=principal.actor,
        created_at=now,
    )
    session.add(objection)
    session.flush()
    _audit(session, principal.actor, "exchange.objection.filed", objection, {"rows": objection.rows})
    params = {
        "resource": resource.name,
        "rows": _rows_text(objection.rows),
        "due": _day(objection.due_at, tz),
    }
    _tell(session, accounts_holding(session, MANAGE, resource.provider_org_id), "filed", FILED, params)
    return objection


def _check_rows(rows: list[int], count: int) -> None:
    beyond = [row for row in rows if row > count]
    if beyond:
        raise ValidationProblem(
            _("The data has %(n)s rows; no row %(rows)s.", n=count, rows=_rows_text(beyond)), field="rows"
        )


def _check_values(resource: Resource, values: dict[str, dict[str, Any]], rows: list[int]) -> None:
    """Proposed or accepted values name reported rows and data items, and fit the items' types."""
    checker = RowChecker(resource.data_items)
    types = {item["name"]: item["type"] for item in resource.data_items}
    for key, row in values.items():
        if not key.isdigit() or int(key) not in rows:
            raise ValidationProblem(
                _("Values are for reported rows only (row %(row)s).", row=key), field="proposed"
            )
        unknown = sorted(set(row) - types.keys())
        if unknown:
            raise ValidationProblem(
                _("Not data items of this resource: %(names)s", names=", ".join(unknown)), field="proposed"
            )
        checker.convert_value(int(key), row)


def _check_public_items(resource: Resource, values: dict[str, dict[str, Any]]) -> None:
    """A resident knows the open data only: values only for items it shows as they are (proposing one for a
    suppressed or generalised item would be a guess, or a probe of the hidden value)."""
    public = opening_of(resource)
    plain = set(public.types) - set(public.generalised)
    hidden = sorted({name for row in values.values() for name in row} - plain)
    if hidden:
        raise ValidationProblem(
            _("The open data does not show these items as they are: %(names)s", names=", ".join(hidden)),
            field="proposed",
        )


# -- the owner's answer ------------------------------------------------------------------------------------


def answer(
    session: Session, principal: Principal, objection_id: int, data: schemas.ObjectionAnswerIn, now: datetime
) -> Objection:
    objection = session.get(Objection, objection_id)
    resource = session.get(Resource, objection.resource_id) if objection else None
    if objection is None or resource is None or not acts_for(principal, MANAGE, resource.provider_org_id):
        raise NotFound(_("Objection %(id)s does not exist.", id=objection_id))
    if objection.status != "open":
        raise Conflict(_("This objection has been answered."), slug="answered")
    if data.decision == "accept":
        corrections = data.corrections if data.corrections is not None else objection.proposed
        if not corrections:
            raise ValidationProblem(_("Give the corrected values."), field="corrections")
        _check_values(resource, corrections, objection.rows)
        version = _corrected_version(session, principal, resource, objection, corrections, now)
        objection.corrected_version_id = version.id
        _tell_consumers(session, resource, objection, version)
    objection.status = "accepted" if data.decision == "accept" else "rejected"
    objection.answer, objection.answered_by, objection.answered_at = data.reason, principal.actor, now
    _audit(
        session, principal.actor, f"exchange.objection.{objection.status}", objection, {"reason": data.reason}
    )
    params = {"resource": resource.name, "decision": str(DECISIONS[data.decision]), "reason": data.reason}
    if objection.filer_account_id is not None:
        _tell(session, [objection.filer_account_id], "answered", ANSWERED, params)
    return objection


def _corrected_version(
    session: Session,
    principal: Principal,
    resource: Resource,
    objection: Objection,
    corrections: dict[str, dict[str, Any]],
    now: datetime,
) -> Version:
    """A new version: the current one's rows with the corrected values, current from now on."""
    assert resource.current_version_id is not None
    current = session.get_one(Version, resource.current_version_id)
    number = int(
        session.scalar(select(func.max(Version.number)).where(Version.resource_id == resource.id)) or 0
    )
    checker = RowChecker(resource.data_items)
    version = Version(
        resource_id=resource.id,
        number=number + 1,
        source="correction",
        valid=True,
        row_count=current.row_count,
        report={"rows": current.row_count, "error_count": 0, "errors": [], "objection": objection.id},
        note=_("Correction of objection %(id)s", id=objection.id),
        loaded_by=principal.actor,
        loaded_at=now,
    )
    session.add(version)
    session.flush()
    after = 0
    while True:
        rows = session.execute(
            select(Row.row_no, Row.data)
            .where(Row.version_id == current.id, Row.row_no > after)
            .order_by(Row.row_no)
            .limit(COPY_BATCH)
        ).all()
        batch = []
        for row_no, data in rows:
            fixed = corrections.get(str(row_no))
            if fixed:
                data = {**data, **checker.convert_value(row_no, fixed)}
            batch.append((version.id, row_no, orjson.dumps(data).decode()))
        insert_prepared(session, ROWS, ROW_COLUMNS, batch)
        if len(rows) < COPY_BATCH:
            break
        after = rows[-1][0]
    resource.current_version_id = version.id
    resource.modified_at = now
    return version


def _tell_consumers(session: Session, resource: Resource, objection: Objection, version: Version) -> None:
    """Every department holding a grant of the resource (and the event for their systems)."""
    consumers = set(session.scalars(select(Grant.consumer_org_id).where(Grant.resource_id == resource.id)))
    accounts = sorted({a for org in consumers for a in accounts_holding(session, REQUEST, org)})
    params = {"resource": resource.name, "version": version.number, "rows": _rows_text(objection.rows)}
    _tell(session, accounts, "corrected", CORRECTED, params)
    events.publish(
        session,
        ResourceCorrected(
            resource=resource.code, objection_id=objection.id, version=version.number, rows=objection.rows
        ),
    )


# -- deadlines ---------------------------------------------------------------------------------------------


def escalate_overdue(session: Session, now: datetime, tz: str) -> int:
    """Objections past their deadline and still open, each escalated once (a conditional update) to the
    owner's staff and the operator; how many."""
    due = session.scalars(
        select(Objection).where(
            Objection.status == "open", Objection.due_at <= now, Objection.escalated_at.is_(None)
        )
    ).all()
    for objection in due:
        taken = session.execute(
            update(Objection)
            .where(Objection.id == objection.id, Objection.escalated_at.is_(None))
            .values(escalated_at=now)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            continue  # another worker escalated it
        resource = session.get_one(Resource, objection.resource_id)
        accounts = {
            *accounts_holding(session, MANAGE, resource.provider_org_id),
            *accounts_holding(session, ADMINISTER),
        }
        params = {"resource": resource.name, "due": _day(objection.due_at, tz)}
        _tell(session, sorted(accounts), "overdue", OVERDUE, params)
        _audit(
            session,
            "system:exchange",
            "exchange.objection.escalated",
            objection,
            {"due_at": str(objection.due_at)},
        )
    return len(due)


# -- lists -------------------------------------------------------------------------------------------------

LISTED = 200


def objections_of(
    session: Session, principal: Principal, side: str, status: str | None = None
) -> list[Objection]:
    """Objections to the caller's departments' resources (``owner``), the nearest deadline first, or filed by
    its departments (``filer``), the newest first."""
    statement = select(Objection).limit(LISTED)
    if side == "owner":
        statement = (
            statement.join(Resource, Resource.id == Objection.resource_id)
            .where(Resource.provider_org_id.in_(principal.organizations(MANAGE)))
            .order_by(Objection.due_at, Objection.id)
        )
    else:
        filers = principal.organizations(REQUEST)
        statement = statement.where(Objection.filer_org_id.in_(filers)).order_by(Objection.id.desc())
    if status is not None:
        statement = statement.where(Objection.status == status)
    return list(session.scalars(statement))


# -- history and quality -----------------------------------------------------------------------------------


def quality(session: Session, principal: Principal | None, code: str, now: datetime) -> schemas.QualityOut:
    """The resource's correction history and its score: 100, less 5 for each correction accepted in the last
    year and 10 for each objection answered late or still open past its deadline."""
    resource = visible(session, principal, code)
    objections = session.scalars(
        select(Objection).where(Objection.resource_id == resource.id).order_by(Objection.id.desc())
    ).all()
    recent = [o for o in objections if o.created_at >= now - QUALITY_WINDOW]
    accepted = sum(o.status == "accepted" for o in recent)
    late = sum((o.answered_at or now) > o.due_at for o in recent)
    return schemas.QualityOut(
        resource=resource.code,
        score=max(0, 100 - 5 * accepted - 10 * late),
        objections=len(objections),
        accepted=sum(o.status == "accepted" for o in objections),
        rejected=sum(o.status == "rejected" for o in objections),
        open=sum(o.status == "open" for o in objections),
        late=late,
        history=[_shown(session, principal, resource, o) for o in objections[:100]],
    )


def _shown(
    session: Session, principal: Principal | None, resource: Resource, objection: Objection
) -> schemas.ObjectionOut:
    """An objection in the public history: the values it proposes are rows' data, so only the owner and the
    filer see them (the history itself is for everyone who sees the resource)."""
    out = shape(session, objection)
    owner = principal is not None and acts_for(principal, MANAGE, resource.provider_org_id)
    filer = principal is not None and (
        (principal.account_id is not None and principal.account_id == objection.filer_account_id)
        or (objection.filer_org_id is not None and objection.filer_org_id in principal.organizations(REQUEST))
    )
    return out if owner or filer else out.model_copy(update={"proposed": {}})


def shape(session: Session, objection: Objection) -> schemas.ObjectionOut:
    version = session.get_one(Version, objection.version_id)
    corrected = (
        session.get(Version, objection.corrected_version_id) if objection.corrected_version_id else None
    )
    filer = get_organization(session, objection.filer_org_id).code if objection.filer_org_id else None
    return schemas.ObjectionOut(
        id=objection.id,
        resource=session.get_one(Resource, objection.resource_id).code,
        version=version.number,
        filer=filer,
        rows=objection.rows,
        claim=objection.claim,
        evidence=objection.evidence,
        proposed=objection.proposed,
        status=objection.status,
        due_at=objection.due_at,
        escalated_at=objection.escalated_at,
        answer=objection.answer,
        answered_at=objection.answered_at,
        corrected_version=corrected.number if corrected else None,
    )


def _tell(
    session: Session, accounts: list[int], topic: str, texts: tuple[Any, Any], params: dict[str, Any]
) -> None:
    for account_id in accounts:
        notify(
            session, account_id, Notice(f"exchange.objection.{topic}", *texts, params, "/console/exchange")
        )


def _audit(session: Session, actor: str, action: str, objection: Objection, details: dict[str, Any]) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        object_type="exchange_objection",
        object_id=str(objection.id),
        details=details,
    )


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(str(row) for row in rows[:10])
    return shown + ("…" if len(rows) > 10 else "")


def _day(moment: datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d")
