"""Online forms: a form item's typed fields, a resident's application with attachments, and its way through
the department (submitted → accepted → approved | rejected, or back to the resident for more).

Answers are checked against the item's field definitions (one 422 names every bad field). Attachments must
really be PDF, PNG or JPEG (their first bytes are checked, not the name) and are stored once per content
under ``<var_dir>/uploads/services/``. A form may be pre-filled from the resident's identity data only
with their consent (purpose ``services.prefill``), which is recorded like any consent. Department reads of
an application and its files are audited; every status change is kept in the application's history and
told to the resident.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.identity import (
    Notice,
    Principal,
    get_person,
    get_unit,
    grant_consent,
    has_consent,
    notify,
)
from cityhub.domains.services import schemas
from cityhub.domains.services.models import (
    Application,
    ApplicationEvent,
    Attachment,
    Department,
    Item,
    Rating,
)
from cityhub.domains.services.service.catalogue import get_item, name_of
from cityhub.domains.services.service.desk import (
    get_department,
    may_act_for,
    new_reference,
    require_desk,
    require_kind,
    resident_person,
)
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Conflict, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.pagination import PageParams, fetch_page
from cityhub.kernel.uploads import DOCUMENTS, Upload, content_type
from cityhub.kernel.uploads import store as store_file

PREFILL_PURPOSE = "services.prefill"
MAX_TEXT = {"text": 500, "textarea": 5000}
TRUE_WORDS = frozenset({"true", "on", "yes", "1"})
OPEN_TO_THE_RESIDENT = ("submitted", "needs_more")
DECISIONS = {
    "submitted": frozenset({"accepted", "needs_more", "rejected"}),
    "accepted": frozenset({"approved", "rejected", "needs_more"}),
}
FINISHED = ("approved", "rejected")
CHANGED = (
    _l("Your application %(reference)s: %(status)s"),
    _l("%(item)s — the department says: %(note)s"),
)
STATUS_WORDS = {
    "accepted": _l("accepted for handling"),
    "needs_more": _l("more information needed"),
    "approved": _l("approved"),
    "rejected": _l("rejected"),
}


# -- the form ------------------------------------------------------------------------------------------------


def form_item(session: Session, code: str) -> tuple[Item, list[schemas.FieldIn]]:
    item = get_item(session, code)
    require_kind(item, "form")
    return item, _fields(item)


def form_fields_of(session: Session, code: str) -> list[schemas.FieldIn]:
    """The fields of a form item, published or not (an application outlives its item's publication)."""
    return _fields(get_item(session, code, include_unpublished=True))


def _fields(item: Item) -> list[schemas.FieldIn]:
    return [schemas.FieldIn.model_validate(field) for field in item.fields or []]


def prefilled(session: Session, principal: Principal, fields: list[schemas.FieldIn]) -> dict[str, str]:
    """Values from the resident's identity data for the fields that ask for them, if they agreed."""
    person_id = principal.person_id
    if person_id is None or not has_consent(session, person_id, PREFILL_PURPOSE):
        return {}
    person = get_person(session, person_id)
    address = ""
    if person.home_unit_id is not None:
        home = get_unit(session, person.home_unit_id)
        address = home.address or home.name
    known = {
        "name": person.name,
        "phone": person.phone or "",
        "email": person.email or "",
        "address": address,
    }
    return {field.key: known[field.prefill] for field in fields if field.prefill and known[field.prefill]}


def allow_prefill(session: Session, principal: Principal) -> None:
    person_id = resident_person(principal)
    if not has_consent(session, person_id, PREFILL_PURPOSE):
        grant_consent(session, person_id, PREFILL_PURPOSE, actor=principal.actor)


# -- checking answers ----------------------------------------------------------------------------------------


def _checked(
    fields: list[schemas.FieldIn],
    answers: Mapping[str, str],
    uploads: Mapping[str, Upload],
    already_attached: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], dict[str, tuple[Upload, str]]]:
    """The stored answers and the files with their verified content types; a 422 lists every bad field."""
    errors: list[dict[str, str]] = []
    values: dict[str, Any] = {}
    files: dict[str, tuple[Upload, str]] = {}
    known = {field.key for field in fields}
    for unknown in sorted((set(answers) | set(uploads)) - known):
        errors.append({"field": unknown, "detail": _("This form has no such field.")})
    for field in fields:
        try:
            if field.type == "file":
                upload = uploads.get(field.key)
                if upload is not None and upload.data:
                    files[field.key] = (upload, content_type(upload, DOCUMENTS))
                elif field.required and field.key not in already_attached:
                    raise ValueError(_("Attach a file."))
                continue
            raw = (answers.get(field.key) or "").strip()
            if not raw:
                if field.required and field.type != "boolean":
                    raise ValueError(_("This field is required."))
                values[field.key] = False if field.type == "boolean" else None
                continue
            values[field.key] = _value(field, raw)
        except ValueError as exc:
            errors.append({"field": field.key, "detail": str(exc)})
    if errors:
        raise ValidationProblem(_("Some answers need correcting."), errors=errors)
    return values, files


def answers_as_typed(fields: list[schemas.FieldIn], answers: Mapping[str, Any]) -> dict[str, str]:
    """Stored answers as the form's inputs show them (money back in yuan), to correct and send again."""
    typed: dict[str, str] = {}
    for field in fields:
        value = answers.get(field.key)
        if value is None or field.type == "file":
            continue
        if field.type == "money":
            typed[field.key] = f"{Decimal(value) / 100:.2f}"
        elif field.type == "boolean":
            typed[field.key] = "true" if value else ""
        else:
            typed[field.key] = str(value)
    return typed


def _value(field: schemas.FieldIn, raw: str) -> Any:
    if field.type in MAX_TEXT:
        if len(raw) > MAX_TEXT[field.type]:
            raise ValueError(_("At most %(count)s characters.", count=MAX_TEXT[field.type]))
        return raw
    if field.type == "boolean":
        return raw.lower() in TRUE_WORDS
    if field.type == "choice":
        if raw not in {option.value for option in field.options}:
            raise ValueError(_("Choose one of the options."))
        return raw
    if field.type == "date":
        try:
            return date.fromisoformat(raw).isoformat()
        except ValueError:
            raise ValueError(_("Give a date as YYYY-MM-DD.")) from None
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise ValueError(_("Give a number.")) from None
    if not number.is_finite() or abs(number) > 10**12:
        raise ValueError(_("Give a number."))
    if field.type == "money":
        cents = number * 100
        if cents != cents.to_integral_value():
            raise ValueError(_("Give an amount in yuan with at most two decimals."))
        return int(cents)
    return int(number) if number == number.to_integral_value() else float(number)


# -- applying ------------------------------------------------------------------------------------------------


def submit(
    session: Session,
    principal: Principal,
    uploads_dir: Path,
    code: str,
    answers: Mapping[str, str],
    uploads: Mapping[str, Upload],
) -> schemas.ApplicationOut:
    person_id = resident_person(principal)
    item, fields = form_item(session, code)
    values, files = _checked(fields, answers, uploads)
    application = Application(
        reference=new_reference("A"),
        item_id=item.id,
        department_id=item.department_id,
        account_id=principal.id,
        person_id=person_id,
        answers=values,
    )
    session.add(application)
    session.flush()
    _attach(session, uploads_dir, application, files)
    _step(session, application, "submitted", "", principal.actor, by_department=False)
    return application_out(session, application)


def resubmit(
    session: Session,
    principal: Principal,
    uploads_dir: Path,
    reference: str,
    answers: Mapping[str, str],
    uploads: Mapping[str, Upload],
) -> schemas.ApplicationOut:
    """Answer the department's request for more: new answers replace the old, new files add to them."""
    application = _own(session, principal, reference)
    if application.status != "needs_more":
        raise Conflict(_("The department has not asked for more on this application."), slug="not-needs-more")
    fields = _fields(session.get_one(Item, application.item_id))
    attached = frozenset(
        session.scalars(select(Attachment.field_key).where(Attachment.application_id == application.id))
    )
    values, files = _checked(fields, answers, uploads, attached)
    application.answers = values
    _attach(session, uploads_dir, application, files)
    _step(session, application, "submitted", "", principal.actor, by_department=False)
    return application_out(session, application)


def withdraw(session: Session, principal: Principal, reference: str) -> schemas.ApplicationOut:
    application = _own(session, principal, reference)
    if application.status not in OPEN_TO_THE_RESIDENT:
        raise Conflict(
            _("This application is being handled and can no longer be withdrawn."), slug="not-open"
        )
    _step(session, application, "withdrawn", "", principal.actor, by_department=False)
    return application_out(session, application)


def _attach(
    session: Session, uploads_dir: Path, application: Application, files: dict[str, tuple[Upload, str]]
) -> None:
    for key, (upload, kind) in files.items():
        digest = store_file(uploads_dir, upload.data)
        session.add(
            Attachment(
                application_id=application.id,
                field_key=key,
                filename=Path(upload.filename or key).name[:200] or key,
                content_type=kind,
                size=len(upload.data),
                sha256=digest,
            )
        )


def _step(
    session: Session, application: Application, status: str, note: str, actor: str, *, by_department: bool
) -> None:
    now = utcnow()
    application.status, application.changed_at = status, now
    session.add(
        ApplicationEvent(
            application_id=application.id,
            status=status,
            note=note,
            actor=actor,
            by_department=by_department,
            at=now,
        )
    )
    session.flush()


def _own(session: Session, principal: Principal, reference: str) -> Application:
    application = session.scalar(select(Application).where(Application.reference == reference))
    if application is None or principal.kind != "account" or application.account_id != principal.id:
        raise NotFound(_("Application %(reference)s does not exist.", reference=reference))
    return application


def my_applications(session: Session, principal: Principal) -> list[schemas.ApplicationOut]:
    if principal.kind != "account":
        return []
    rows = session.scalars(
        select(Application)
        .where(Application.account_id == principal.id)
        .order_by(Application.created_at.desc(), Application.id.desc())
        .limit(100)
    )
    return [application_out(session, row) for row in rows]


def my_application(session: Session, principal: Principal, reference: str) -> schemas.ApplicationOut:
    return application_out(session, _own(session, principal, reference))


# -- the department ------------------------------------------------------------------------------------------


def desk_applications(
    session: Session, principal: Principal, department_code: str, status: str | None, paging: PageParams
) -> tuple[list[schemas.ApplicationOut], int]:
    """A department's applications, oldest first (the order they should be handled in); the list is audited
    as a read of personal data."""
    department = get_department(session, department_code)
    require_desk(principal, department)
    statement = select(Application).where(Application.department_id == department.id)
    if status is not None:
        statement = statement.where(Application.status == status)
    rows, total = fetch_page(session, statement.order_by(Application.created_at, Application.id), paging)
    audit.record(
        session,
        actor=principal.actor,
        action="services.applications.read",
        object_type="services_department",
        object_id=department.code,
        purpose="handling",
        details={"references": [row.reference for row in rows]},
    )
    return [application_out(session, row) for row in rows], total


def decide(
    session: Session, principal: Principal, reference: str, given: schemas.DecisionIn
) -> schemas.ApplicationOut:
    application = session.scalar(select(Application).where(Application.reference == reference))
    if application is None:
        raise NotFound(_("Application %(reference)s does not exist.", reference=reference))
    require_desk(principal, session.get_one(Department, application.department_id))
    if given.status not in DECISIONS.get(application.status, frozenset()):
        raise Conflict(
            _(
                "An application in status %(now)s cannot move to %(next)s.",
                now=application.status,
                next=given.status,
            ),
            slug="invalid-transition",
        )
    note = given.note.strip()
    if given.status != "accepted" and not note:
        raise ValidationProblem(_("Tell the applicant why."), field="note")
    _step(session, application, given.status, note, principal.actor, by_department=True)
    audit.record(
        session,
        actor=principal.actor,
        action=f"services.application.{given.status}",
        object_type="services_application",
        object_id=application.reference,
    )
    item = session.get_one(Item, application.item_id)
    params = {
        "reference": application.reference,
        "status": str(STATUS_WORDS[given.status]),
        "item": item.name_zh,
        "note": note or "—",
    }
    link = f"/services/applications/{application.reference}"
    notify(session, application.account_id, Notice("services.application.changed", *CHANGED, params, link))
    return application_out(session, application)


def attachment_file(
    session: Session, principal: Principal, uploads_dir: Path, attachment_id: int
) -> tuple[Attachment, Path]:
    """An attachment for its applicant or the department handling it (a department read is audited)."""
    attachment = session.get(Attachment, attachment_id)
    application = session.get(Application, attachment.application_id) if attachment else None
    missing = NotFound(_("Attachment %(id)s does not exist.", id=attachment_id))
    if attachment is None or application is None:
        raise missing
    if not (principal.kind == "account" and application.account_id == principal.id):
        if not may_act_for(principal, session.get_one(Department, application.department_id)):
            raise missing  # whether someone else's file exists is not for others to learn
        audit.record(
            session,
            actor=principal.actor,
            action="services.attachment.read",
            object_type="services_application",
            object_id=application.reference,
            purpose="handling",
            details={"attachment": attachment.id},
        )
    return attachment, uploads_dir / attachment.sha256


def application_out(session: Session, application: Application) -> schemas.ApplicationOut:
    item = session.get_one(Item, application.item_id)
    department = session.get_one(Department, application.department_id)
    attachments = session.scalars(
        select(Attachment).where(Attachment.application_id == application.id).order_by(Attachment.id)
    )
    history = session.scalars(
        select(ApplicationEvent)
        .where(ApplicationEvent.application_id == application.id)
        .order_by(ApplicationEvent.id)
    )
    return schemas.ApplicationOut(
        reference=application.reference,
        item=item.code,
        item_name=name_of(item),
        department=department.code,
        status=application.status,
        answers=application.answers,
        attachments=[
            schemas.AttachmentOut(
                id=a.id, field=a.field_key, filename=a.filename, content_type=a.content_type, size=a.size
            )
            for a in attachments
        ],
        history=[
            schemas.ApplicationEventOut(at=e.at, status=e.status, note=e.note, by_department=e.by_department)
            for e in history
        ],
        created_at=application.created_at,
        changed_at=application.changed_at,
        rating=session.scalar(
            select(Rating.level).where(
                Rating.subject_kind == "application", Rating.subject_id == application.id
            )
        ),
    )
