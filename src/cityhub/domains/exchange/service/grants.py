"""Requests and grants: a department asks for a resource's fields and rows for a purpose and a time; the
owner answers by its deadline (working days), approving — perhaps narrower — or rejecting with a reason. An
unconditionally shared resource is granted on request; a resource that is not shared cannot be asked for.

A grant is never edited: it expires, or its owner revokes it. What a grant lets its holder read is decided
here and nowhere else (``governed_rows``): only its fields, only rows meeting its conditions.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import operator
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import Session

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.models import Grant, GrantUsage, Request, Resource, Row
from cityhub.domains.exchange.service import keys
from cityhub.domains.exchange.service.access import (
    MANAGE,
    READ,
    REQUEST,
    acts_for,
    department,
    owned_resource,
    resource_by_code,
    staff_of,
    tell,
)
from cityhub.domains.exchange.service.loads import CONVERTERS, BadValue
from cityhub.domains.identity import Notice, Principal, accounts_holding, get_organization
from cityhub.kernel import audit, jsondoc
from cityhub.kernel.bulk import copied_csv
from cityhub.kernel.db import Database, is_postgres, upsert_into
from cityhub.kernel.errors import Conflict, Forbidden, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.workdays import workday_deadline

ASKED = (
    _l("Data requested: %(resource)s"),
    _l("%(consumer)s asks for %(resource)s. Please answer by %(due)s."),
)
ANSWERED = (
    _l("Request answered: %(resource)s"),
    _l("Your request for %(resource)s was %(decision)s."),
)
DECISIONS = {"approve": _l("approved"), "reject": _l("rejected")}


# -- asking ------------------------------------------------------------------------------------------------


def ask(
    session: Session,
    principal: Principal,
    code: str,
    data: schemas.RequestIn,
    now: datetime,
    tz: str,
    days: int,
) -> Request:
    """A department's request; granted at once when the resource is shared unconditionally."""
    consumer = department(session, principal, REQUEST, data.consumer)
    resource = resource_by_code(session, code)
    if resource.status != "published" or resource.sharing_class == "none":
        raise Conflict(_("This resource is not shared."), slug="not-shared", legal_basis=resource.legal_basis)
    if consumer == resource.provider_org_id:
        raise Conflict(_("A department reads its own data without a grant."), slug="own-resource")
    check_restriction(resource, data.fields, data.row_filter)
    request = Request(
        resource_id=resource.id,
        consumer_org_id=consumer,
        purpose=data.purpose,
        fields=list(data.fields),
        row_filter=[condition.model_dump() for condition in data.row_filter],
        days=data.days,
        due_at=workday_deadline(now, days, tz),
        created_by=principal.actor,
        created_at=now,
    )
    session.add(request)
    session.flush()
    _audit(session, principal, "exchange.request.made", request, {"resource": code})
    if resource.sharing_class == "unconditional":
        _grant(session, request, request.fields, request.row_filter, request.days, "system:exchange", now)
        request.status, request.answered_by, request.answered_at = "approved", "system:exchange", now
    else:
        _tell_owner(session, resource, request, tz)
    return request


def check_restriction(resource: Resource, fields: list[str], conditions: list[schemas.Condition]) -> None:
    """Fields and conditions name the resource's data items, and condition values fit their types."""
    types = {item["name"]: item["type"] for item in resource.data_items}
    unknown = sorted({*fields, *(condition.field for condition in conditions)} - types.keys())
    if unknown:
        raise ValidationProblem(
            _("Not data items of this resource: %(names)s", names=", ".join(unknown)), field="fields"
        )
    for condition in conditions:
        values = condition.value if condition.op == "in" else [condition.value]
        if not isinstance(values, list) or not values:
            raise ValidationProblem(_("'in' takes a list of values."), field=condition.field)
        _condition(types[condition.field], condition.model_dump(), "sqlite")  # refuses what cannot compare


def typed_value(item_type: str, value: Any, field: str) -> Any:
    """A condition's value as the stored rows hold it (a date as its ISO text); 422 when it does not fit."""
    if isinstance(value, list | dict) or value is None:
        raise ValidationProblem(_("%(field)s: give a single value.", field=field), field=field)
    try:
        text = (
            value
            if isinstance(value, str)
            else str(value).lower()
            if isinstance(value, bool)
            else repr(value)
        )
        return CONVERTERS[item_type](text)
    except BadValue as exc:
        raise ValidationProblem(f"{field}: {exc}", field=field) from exc


def _tell_owner(session: Session, resource: Resource, request: Request, tz: str) -> None:
    consumer = get_organization(session, request.consumer_org_id).name
    due = request.due_at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d")
    params = {"consumer": consumer, "resource": resource.name, "due": due}
    notice = Notice("exchange.request", *ASKED, params, "/api/v1/exchange/requests")
    tell(session, staff_of(session, resource.provider_org_id), notice)


# -- answering ---------------------------------------------------------------------------------------------


def answer(
    session: Session, principal: Principal, request_id: int, data: schemas.AnswerIn, now: datetime
) -> Request:
    """The owner's answer to a pending request; an approval may narrow, never widen, what was asked."""
    request = session.get(Request, request_id)
    if request is None:
        raise NotFound(_("Request %(id)s does not exist.", id=request_id))
    resource = session.get_one(Resource, request.resource_id)
    owned_resource(session, principal, resource.code)
    if request.status != "pending":
        raise Conflict(_("This request has been answered."), slug="answered")
    if data.decision == "approve":
        fields = data.fields if data.fields is not None else request.fields
        if not set(fields) <= set(request.fields) or not fields:
            raise ValidationProblem(_("Approve only fields that were asked for."), field="fields")
        check_restriction(resource, fields, data.row_filter)
        extra = [condition.model_dump() for condition in data.row_filter]
        days = min(data.days or request.days, request.days)
        _grant(session, request, fields, [*request.row_filter, *extra], days, principal.actor, now)
    request.status = "approved" if data.decision == "approve" else "rejected"
    request.reason, request.answered_by, request.answered_at = data.reason, principal.actor, now
    _audit(session, principal, f"exchange.request.{request.status}", request, data.model_dump(mode="json"))
    params = {"resource": resource.name, "decision": str(DECISIONS[data.decision])}
    notice = Notice("exchange.answer", *ANSWERED, params, "/api/v1/exchange/grants")
    tell(session, accounts_holding(session, REQUEST, request.consumer_org_id), notice)
    return request


def _grant(
    session: Session,
    request: Request,
    fields: list[str],
    row_filter: list[dict[str, Any]],
    days: int,
    actor: str,
    now: datetime,
) -> Grant:
    grant = Grant(
        resource_id=request.resource_id,
        consumer_org_id=request.consumer_org_id,
        request_id=request.id,
        fields=list(fields),
        row_filter=row_filter,
        valid_from=now,
        valid_until=now + timedelta(days=days),
        created_by=actor,
        created_at=now,
    )
    session.add(grant)
    session.flush()
    return grant


def revoke(session: Session, principal: Principal, grant_id: int, reason: str, now: datetime) -> Grant:
    """The owner ends a grant now (for good: a new grant is a new request)."""
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise NotFound(_("Grant %(id)s does not exist.", id=grant_id))
    owned_resource(session, principal, session.get_one(Resource, grant.resource_id).code)
    if grant.revoked_at is not None:
        raise Conflict(_("This grant was revoked already."), slug="revoked")
    grant.revoked_at, grant.revoked_by, grant.revoke_reason = now, principal.actor, reason
    keys.revoke_all(session, principal.actor, grant)
    audit.record(
        session,
        actor=principal.actor,
        action="exchange.grant.revoked",
        object_type="exchange_grant",
        object_id=str(grant.id),
        details={"reason": reason},
    )
    return grant


# -- reading through a grant -------------------------------------------------------------------------------


def usable_grant(
    session: Session, principal: Principal, grant_id: int, now: datetime
) -> tuple[Grant, Resource]:
    """The grant when the caller reads for its consumer and it is in force; else 403 (deny by default)."""
    grant = session.get(Grant, grant_id)
    if grant is None or not acts_for(principal, READ, grant.consumer_org_id):
        raise Forbidden(_("No grant lets you read this."), slug="no-grant")
    keys.check_binding(session, principal, grant)
    if grant.revoked_at is not None:
        raise Forbidden(_("This grant was revoked."), slug="grant-revoked")
    if not grant.valid_from <= now < grant.valid_until:
        raise Forbidden(_("This grant is not in force."), slug="grant-expired")
    resource = session.get_one(Resource, grant.resource_id)
    if resource.current_version_id is None:
        raise NotFound(_("Resource %(code)s has no data yet.", code=resource.code))
    return grant, resource


def governed_rows(
    session: Session, grant: Grant, resource: Resource, after: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """A keyset page of the rows the grant lets through, with only its fields."""
    assert resource.current_version_id is not None
    rows = session.execute(
        select(Row.row_no, Row.data)
        .where(
            Row.version_id == resource.current_version_id,
            Row.row_no > after,
            *row_conditions(resource, grant, session.get_bind().dialect.name),
        )
        .order_by(Row.row_no)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    fields = grant.fields
    return [{name: data.get(name) for name in fields} for _no, data in rows], (rows[-1][0] if more else None)


# Data item types as the JSON kinds rows hold them in (dates as ISO text, which sorts as the dates do).
JSON_KINDS: dict[str, jsondoc.Kind] = {
    "string": "string",
    "integer": "number",
    "number": "number",
    "boolean": "boolean",
    "date": "string",
    "datetime": "string",
}


def row_conditions(resource: Resource, grant: Grant, dialect: str) -> list[ColumnElement[bool]]:
    """The grant's row filter as SQL over the rows' JSON documents (typed by the data items)."""
    types = {item["name"]: item["type"] for item in resource.data_items}
    return [_condition(types[c["field"]], c, dialect) for c in grant.row_filter]


def _condition(item_type: str, condition: dict[str, Any], dialect: str) -> ColumnElement[bool]:
    column = jsondoc.typed_member(Row.data, condition["field"], JSON_KINDS[item_type], dialect)
    op = condition["op"]
    if op == "in":
        return column.in_([typed_value(item_type, v, condition["field"]) for v in condition["value"]])
    if item_type == "boolean" and op not in UNORDERED_OPS:
        raise ValidationProblem(
            _("%(field)s is a yes/no item: compare it with eq, ne or in.", field=condition["field"]),
            field=condition["field"],
        )
    value = typed_value(item_type, condition["value"], condition["field"])
    return and_(column.is_not(None), COMPARISONS[op](column, value))


UNORDERED_OPS = frozenset({"eq", "ne", "in"})
COMPARISONS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


# -- shapes ------------------------------------------------------------------------------------------------


def grant_state(grant: Grant, now: datetime) -> Literal["active", "expired", "revoked"]:
    if grant.revoked_at is not None:
        return "revoked"
    return "active" if grant.valid_from <= now < grant.valid_until else "expired"


def shape_grant(session: Session, grant: Grant, now: datetime) -> schemas.GrantOut:
    return schemas.GrantOut(
        id=grant.id,
        resource=session.get_one(Resource, grant.resource_id).code,
        consumer=get_organization(session, grant.consumer_org_id).code,
        fields=grant.fields,
        row_filter=[schemas.Condition.model_validate(c) for c in grant.row_filter],
        valid_from=grant.valid_from,
        valid_until=grant.valid_until,
        revoked_at=grant.revoked_at,
        revoke_reason=grant.revoke_reason,
        state=grant_state(grant, now),
    )


def shape_request(session: Session, request: Request, now: datetime) -> schemas.RequestOut:
    grant = session.scalar(select(Grant).where(Grant.request_id == request.id))
    return schemas.RequestOut(
        id=request.id,
        resource=session.get_one(Resource, request.resource_id).code,
        consumer=get_organization(session, request.consumer_org_id).code,
        purpose=request.purpose,
        fields=request.fields,
        row_filter=[schemas.Condition.model_validate(c) for c in request.row_filter],
        days=request.days,
        status=request.status,
        due_at=request.due_at,
        reason=request.reason,
        answered_at=request.answered_at,
        grant=shape_grant(session, grant, now) if grant else None,
    )


def _audit(
    session: Session, principal: Principal, action: str, request: Request, details: dict[str, Any]
) -> None:
    audit.record(
        session,
        actor=principal.actor,
        action=action,
        object_type="exchange_request",
        object_id=str(request.id),
        details=details,
    )


def record_read(
    session: Session, principal: Principal, grant: Grant, request: dict[str, Any], rows: int, now: datetime
) -> None:
    """The evidence of one read: an audit record with the request's hash and the row count, and the day's
    usage of the grant."""
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, default=str)
    audit.record(
        session,
        actor=principal.actor,
        action="exchange.grant.read",
        object_type="exchange_grant",
        object_id=str(grant.id),
        details={"request_sha256": hashlib.sha256(canonical.encode()).hexdigest(), "rows": rows},
    )
    day = now.date()
    session.execute(
        upsert_into(session, GrantUsage)
        .values(grant_id=grant.id, day=day, reads=1, rows=rows)
        .on_conflict_do_update(
            index_elements=["grant_id", "day"],
            set_={"reads": GrantUsage.reads + 1, "rows": GrantUsage.rows + rows},
        )
    )


def usage(session: Session, principal: Principal, grant_id: int) -> list[schemas.UsageOut]:
    """Reads and rows per day through a grant, for its owner and its consumer."""
    grant = session.get(Grant, grant_id)
    resource = session.get(Resource, grant.resource_id) if grant else None
    if (
        grant is None
        or resource is None
        or not (
            acts_for(principal, MANAGE, resource.provider_org_id)
            or acts_for(principal, REQUEST, grant.consumer_org_id)
        )
    ):
        raise NotFound(_("Grant %(id)s does not exist.", id=grant_id))
    rows = session.scalars(select(GrantUsage).where(GrantUsage.grant_id == grant.id).order_by(GrantUsage.day))
    return [schemas.UsageOut(day=row.day, reads=row.reads, rows=row.rows) for row in rows]


MAX_LISTED = 200


def requests_of(session: Session, principal: Principal, side: str, status: str | None) -> list[Request]:
    """Requests to the caller's departments' resources (``owner``) or made by them (``consumer``)."""
    statement = select(Request).order_by(Request.due_at, Request.id).limit(MAX_LISTED)
    if side == "owner":
        mine = principal.organizations(MANAGE)
        statement = statement.join(Resource, Resource.id == Request.resource_id).where(
            Resource.provider_org_id.in_(mine)
        )
    else:
        statement = statement.where(Request.consumer_org_id.in_(principal.organizations(REQUEST)))
    if status is not None:
        statement = statement.where(Request.status == status)
    return list(session.scalars(statement))


def grants_of(session: Session, principal: Principal, side: str) -> list[Grant]:
    """Grants on the caller's departments' resources (``owner``) or held by them (``consumer``)."""
    statement = select(Grant).order_by(Grant.id.desc()).limit(MAX_LISTED)
    if side == "owner":
        statement = statement.join(Resource, Resource.id == Grant.resource_id).where(
            Resource.provider_org_id.in_(principal.organizations(MANAGE))
        )
    else:
        held = principal.organizations(REQUEST) | principal.organizations(READ)
        statement = statement.where(Grant.consumer_org_id.in_(held))
    return list(session.scalars(statement))


def _documents_in_order(session: Session, grant: Grant, resource: Resource) -> Iterator[dict[str, Any]]:
    """Every document the grant lets through, in row order, read in keyset batches (SQLite's file export:
    each document is parsed once, where a ``json_extract`` per field would parse it again for each)."""
    assert resource.current_version_id is not None
    after = 0
    while True:
        rows = session.execute(
            select(Row.row_no, Row.data)
            .where(
                Row.version_id == resource.current_version_id,
                Row.row_no > after,
                *row_conditions(resource, grant, "sqlite"),
            )
            .order_by(Row.row_no)
            .limit(EXPORT_BATCH)
        ).all()
        for _no, data in rows:
            yield data
        if len(rows) < EXPORT_BATCH:
            return
        after = rows[-1][0]


def _fields_as_text(grant: Grant, resource: Resource) -> Select[Any]:
    """The grant's fields of its rows as ``->>`` text, in row order (PostgreSQL's file export)."""
    assert resource.current_version_id is not None
    return (
        select(*(Row.data[name].as_string() for name in grant.fields))
        .where(Row.version_id == resource.current_version_id, *row_conditions(resource, grant, "postgresql"))
        .order_by(Row.row_no)
    )


def _csv_value(value: Any) -> Any:
    """A JSON value as PostgreSQL's ``->>`` writes it (so a file is the same from either database)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


EXPORT_BATCH = 10_000


def count_governed_rows(session: Session, grant: Grant, resource: Resource) -> int:
    assert resource.current_version_id is not None
    return int(
        session.scalar(
            select(func.count())
            .select_from(Row)
            .where(
                Row.version_id == resource.current_version_id,
                *row_conditions(resource, grant, session.get_bind().dialect.name),
            )
        )
        or 0
    )


# -- a whole file through a grant (the API's rows.csv and the console's download) ------------------------


def record_csv_read(
    session: Session, principal: Principal, grant_id: int, now: datetime
) -> tuple[Grant, Resource]:
    """A whole-file read through a grant, allowed and audited once before the file is written: the grant in
    force (else 403) and the evidence with the count of the rows it lets through."""
    grant, resource = usable_grant(session, principal, grant_id, now)
    count = count_governed_rows(session, grant, resource)
    evidence = {"grant": grant_id, "format": "csv", "version": resource.current_version_id}
    record_read(session, principal, grant, evidence, count, now)
    return grant, resource


def governed_csv(database: Database, grant_id: int) -> Iterator[bytes]:
    """The file (UTF-8 with a BOM, for spreadsheet programs; ``\\n`` line ends), written in chunks from a read
    session of its own: a streamed answer is sent after the request's session has committed and closed.

    PostgreSQL writes the CSV itself (COPY of the grant's query, no row through Python: the export's speed);
    on SQLite each document is read once and written by the csv module, quoting as PostgreSQL does."""
    with database.reading() as session:
        grant = session.get_one(Grant, grant_id)
        resource = session.get_one(Resource, grant.resource_id)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(grant.fields)
        yield ("\ufeff" + _drained(buffer)).encode()
        if is_postgres(session):
            yield from copied_csv(session, _fields_as_text(grant, resource))
            return
        fields = grant.fields
        for data in _documents_in_order(session, grant, resource):
            writer.writerow([_csv_value(data.get(name)) for name in fields])
            if buffer.tell() > CSV_CHUNK:
                yield _drained(buffer).encode()
        yield _drained(buffer).encode()


CSV_CHUNK = 256 * 1024


def _drained(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
