"""Department records behind query items: a department system loads them, a resident reads their own.

Every resident read leaves an audit record (who, which item, how many records), because department data
about a person is personal data even when the person asks for it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal
from cityhub.domains.services import schemas
from cityhub.domains.services.models import Item, QueryRecord
from cityhub.domains.services.service.catalogue import get_item
from cityhub.domains.services.service.desk import (
    department_item,
    get_department,
    require_desk,
    require_kind,
    resident_subject,
    subject_digests,
)
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import ValidationProblem
from cityhub.kernel.i18n import gettext as _

MAX_SHOWN = 200


def import_records(
    session: Session, principal: Principal, department_code: str, item_code: str, given: schemas.RecordsIn
) -> schemas.RecordsImportOut:
    """Store or delete records of one query item by their key (all or nothing); audited."""
    department = get_department(session, department_code)
    require_desk(principal, department)
    item = department_item(session, department, item_code, "query")
    subjects = _subjects(item, given.records)
    existing = {
        row.record_key: row
        for row in session.scalars(
            select(QueryRecord).where(
                QueryRecord.item_id == item.id, QueryRecord.record_key.in_([r.key for r in given.records])
            )
        )
    }
    now, stored, deleted = utcnow(), 0, 0
    for record, subject in zip(given.records, subjects, strict=True):
        row = existing.get(record.key)
        if record.delete:
            if row is not None:
                session.delete(row)
                deleted += 1
            continue
        if row is None:
            row = QueryRecord(item_id=item.id, record_key=record.key)
            session.add(row)
        row.subject_hash, row.title, row.occurred_on = subject, record.title, record.occurred_on
        row.data = record.model_dump(mode="json")["data"]
        row.updated_at = now
        stored += 1
    result = schemas.RecordsImportOut(stored=stored, deleted=deleted)
    audit.record(
        session,
        actor=principal.actor,
        action="services.records.imported",
        object_type="services_item",
        object_id=item.code,
        details=result.model_dump(),
    )
    return result


def _subjects(item: Item, records: list[schemas.RecordIn]) -> list[str]:
    """Each record's subject hash, after checking every record; one 422 lists all the bad ones."""
    known = {field["key"] for field in item.fields or []}
    subjects, malformed = subject_digests([record.id_number for record in records])
    errors: list[dict[str, object]] = []
    for index, record in enumerate(records):
        unknown = sorted(set(record.data) - known)
        if unknown:
            errors.append({"index": index, "key": record.key, "unknown_fields": unknown})
        if index in malformed:
            errors.append({"index": index, "key": record.key, "detail": malformed[index]})
    if errors:
        raise ValidationProblem(
            _("%(count)s records cannot be stored; nothing was changed.", count=len(errors)), errors=errors
        )
    return subjects


def my_records(session: Session, principal: Principal, item_code: str) -> schemas.MyRecordsOut:
    """The caller's own records of a query item, newest first; the read is audited."""
    item = get_item(session, item_code)
    require_kind(item, "query")
    subject = resident_subject(session, principal)
    rows = session.scalars(
        select(QueryRecord)
        .where(QueryRecord.subject_hash == subject, QueryRecord.item_id == item.id)
        .order_by(QueryRecord.occurred_on.desc(), QueryRecord.id.desc())
        .limit(MAX_SHOWN)
    ).all()
    audit.record(
        session,
        actor=principal.actor,
        action="services.records.read",
        object_type="services_item",
        object_id=item.code,
        purpose="own-records",
        details={"records": len(rows)},
    )
    return schemas.MyRecordsOut(
        item=item.code,
        fields=[schemas.FieldIn.model_validate(field) for field in item.fields or []],
        records=[
            schemas.RecordOut(
                key=row.record_key,
                title=row.title,
                occurred_on=row.occurred_on,
                data=row.data,
                updated_at=row.updated_at,
            )
            for row in rows
        ],
    )
