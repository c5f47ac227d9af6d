"""The 12345 ticket workflow: intake → dispatch → sign → handle (extensions) → reply → callback → close or
reopen; merge of duplicates; deadlines in working days of the Chinese calendar.

Every transition is one conditional update from the expected status (two staff clicking at once cannot both
move a ticket), leaves a timeline event and an audit record, and tells the reporter what changed. Closing a
ticket counts it into the assessment's rollup in the same transaction (service/rollup.py).
Who sees a ticket: its reporter, the department it is dispatched to, and the operator; the reporter's name
and phone are shown to the latter two only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, Select, func, select, update
from sqlalchemy.orm import Session

from cityhub.domains.identity import (
    Notice,
    Principal,
    accounts_holding,
    can_citywide,
    get_organization,
    get_organization_by_code,
    get_person,
    get_unit,
    notify,
    unit_locator,
)
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import (
    OPEN_STATUSES,
    Article,
    Category,
    Extension,
    Follower,
    Photo,
    Ticket,
    TicketEvent,
)
from cityhub.domains.voice.service import alarm, rollup
from cityhub.domains.voice.service.alarm import DISPATCH, HANDLE
from cityhub.domains.voice.service.categories import checked_answers
from cityhub.domains.voice.settings import VoiceSettings
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Conflict, Forbidden, NotFound, ValidationProblem
from cityhub.kernel.geo import cell_for
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.pagination import PageParams, fetch_page
from cityhub.kernel.uploads import IMAGES, Upload, content_type
from cityhub.kernel.uploads import store as store_file
from cityhub.kernel.workdays import add_workdays, workday_deadline, workdays_between

TRANSFER = "voice.tickets.transfer"
SATISFIED = 3  # a callback of 3 or more closes the ticket; 1-2 reopen it
NEARBY_RES = 10  # H3 cells of ~66 m edge: a 200 m circle is a few dozen of them
MAX_PHOTOS = 5
CHANGED = (
    _l("Your ticket %(number)s: %(status)s"),
    _l("%(note)s"),
)
STATUS_WORDS = {
    "dispatched": _l("passed to the department"),
    "handling": _l("being handled"),
    "replied": _l("answered"),
    "closed": _l("closed"),
    "merged": _l("merged with a report of the same problem"),
}


@dataclass(frozen=True)
class Photos:
    """Pictures sent with a report and the folder their bytes are kept in."""

    uploads: Sequence[Upload]
    folder: Path

    def checked(self) -> list[tuple[Upload, str]]:
        """Each picture with its real type; one 422 names every file that is not a picture or too big."""
        if len(self.uploads) > MAX_PHOTOS:
            raise ValidationProblem(_("At most %(count)s photos.", count=MAX_PHOTOS), field="photos")
        checked, errors = [], []
        for upload in self.uploads:
            try:
                checked.append((upload, content_type(upload, IMAGES)))
            except ValueError as exc:
                errors.append({"field": "photos", "detail": f"{upload.filename}: {exc}"})
        if errors:
            raise ValidationProblem(_("Some photos cannot be accepted."), errors=errors)
        return checked

    def attach(self, session: Session, ticket: Ticket, checked: list[tuple[Upload, str]]) -> None:
        for upload, kind in checked:
            digest = store_file(self.folder, upload.data)
            session.add(Photo(ticket_id=ticket.id, content_type=kind, size=len(upload.data), sha256=digest))


@dataclass(frozen=True)
class Clock:
    """The settings and time zone deadlines are computed in."""

    settings: VoiceSettings
    tz: str


def _deadline(start: datetime | date, days: int, tz: str) -> datetime:
    """The end of the ``days``-th working day after ``start``, in UTC like every stored moment."""
    return workday_deadline(start, days, tz).astimezone(UTC)


# -- who may see and do what ---------------------------------------------------------------------------------


def is_operator(principal: Principal) -> bool:
    return can_citywide(principal, DISPATCH)


def handles(principal: Principal, ticket: Ticket) -> bool:
    return is_operator(principal) or (
        ticket.organization_id is not None and ticket.organization_id in principal.organizations(HANDLE)
    )


def is_reporter(principal: Principal, ticket: Ticket) -> bool:
    return principal.kind == "account" and ticket.account_id == principal.id


def follows(session: Session, principal: Principal, ticket: Ticket) -> bool:
    return principal.kind == "account" and (
        session.scalar(
            select(Follower.id).where(Follower.ticket_id == ticket.id, Follower.account_id == principal.id)
        )
        is not None
    )


def get_ticket(session: Session, principal: Principal, number: str) -> Ticket:
    """A ticket the principal may see (its reporter, followers and handlers); others' tickets are a 404,
    whether they exist or not."""
    ticket = session.scalar(select(Ticket).where(Ticket.number == number))
    if ticket is None or not (
        handles(principal, ticket) or is_reporter(principal, ticket) or follows(session, principal, ticket)
    ):
        raise NotFound(_("Ticket %(number)s does not exist.", number=number))
    return ticket


def get_ticket_public(session: Session, number: str) -> Ticket:
    """A ticket anyone may find by number to follow it: open (or answered) and not merged."""
    ticket = session.scalar(select(Ticket).where(Ticket.number == number))
    if ticket is None or ticket.status not in (*OPEN_STATUSES, "replied"):
        raise NotFound(_("Ticket %(number)s does not exist.", number=number))
    return ticket


def _handled_by(session: Session, principal: Principal, number: str) -> Ticket:
    ticket = get_ticket(session, principal, number)
    if not handles(principal, ticket):
        raise Forbidden(_("Only the department handling this ticket may do this."), slug="not-your-ticket")
    return ticket


def _operated(session: Session, principal: Principal, number: str) -> Ticket:
    if not is_operator(principal):
        raise Forbidden(_("Only the hotline operator may do this."), slug="operator-only")
    return get_ticket(session, principal, number)


# -- intake --------------------------------------------------------------------------------------------------


def intake(
    session: Session,
    principal: Principal,
    given: schemas.TicketIn,
    clock: Clock,
    channel: str = "app",
    photos: Photos | None = None,
) -> schemas.TicketOut:
    """Receive a ticket (see ``file_ticket``) and answer it with its timeline."""
    ticket = file_ticket(session, principal, given, clock, channel, photos)
    return ticket_out(session, principal, ticket, clock)


@dataclass
class Filing:
    """What filing tickets looks up and records, kept across the tickets of one transaction: a batch reads
    the categories and community outlines once and appends its audit records under one chain lock."""

    session: Session
    categories: dict[str, Category] = field(default_factory=dict)
    locate: Callable[[float, float], int | None] | None = None
    audit_entries: list[audit.Entry] = field(default_factory=list)

    def category(self, code: str) -> Category:
        if code not in self.categories:
            found = self.session.scalar(select(Category).where(Category.code == code))
            if found is None:
                raise ValidationProblem(_("Category %(code)s does not exist.", code=code), field="category")
            self.categories[code] = found
        return self.categories[code]

    def community(self, lon: float | None, lat: float | None) -> int | None:
        if lon is None or lat is None:
            return None
        if self.locate is None:
            self.locate = unit_locator(self.session)
        return self.locate(lon, lat)

    def write_audit(self) -> None:
        audit.record_many(self.session, self.audit_entries)
        self.audit_entries.clear()


def file_ticket(
    session: Session,
    principal: Principal,
    given: schemas.TicketIn,
    clock: Clock,
    channel: str = "app",
    photos: Photos | None = None,
) -> Ticket:
    """Receive a ticket and dispatch it at once by category and location when the category names a
    department; otherwise it waits for the operator (status received). An emergency category sounds the
    alarm for the staff on duty; a consultation the knowledge base answered is closed at once."""
    filing = Filing(session)
    draft = _draft(filing, principal, given, clock, channel, photos)
    session.add(draft.ticket)
    session.flush()
    _complete(filing, principal, draft, clock)
    filing.write_audit()
    return draft.ticket


@dataclass
class _Draft:
    """A ticket checked and built but not yet stored, with what completing it needs."""

    ticket: Ticket
    category: Category
    article: Article | None
    photos: Photos | None
    pictures: list[tuple[Upload, str]]


def _draft(
    filing: Filing,
    principal: Principal,
    given: schemas.TicketIn,
    clock: Clock,
    channel: str,
    photos: Photos | None = None,
) -> _Draft:
    """Check everything about a new ticket (422/403 before anything is written) and build it."""
    session = filing.session
    category = filing.category(given.category)
    answers = checked_answers(category, given.attributes)
    article = _answering_article(session, given)
    pictures = photos.checked() if photos else []
    now = utcnow()
    reporter_name, reporter_phone = _reporter(session, principal, given)
    located = given.lon is not None and given.lat is not None
    ticket = Ticket(
        number="pending-" + secrets.token_hex(6),
        type=given.type,
        category_id=category.id,
        channel=channel,
        account_id=principal.id if principal.kind == "account" and channel == "app" else None,
        reporter_name=reporter_name,
        reporter_phone=reporter_phone,
        description=given.description.strip(),
        address=given.address.strip(),
        lon=given.lon,
        lat=given.lat,
        cell=cell_for(given.lon, given.lat, NEARBY_RES) if located else None,  # type: ignore[arg-type]
        attributes=answers,
        media_url=getattr(given, "media_url", ""),
        token=secrets.token_urlsafe(18) if channel == "open311" else None,
        external_ref=getattr(given, "external_ref", None),
        emergency=category.emergency,
        org_unit_id=filing.community(given.lon, given.lat),
        organization_id=category.organization_id,
        status="dispatched" if category.organization_id is not None else "received",
        deadline_at=_deadline(now, clock.settings.days_for(given.type), clock.tz),
        sign_due_at=_deadline(now, clock.settings.sign_days, clock.tz),
        created_at=now,
        updated_at=now,
    )
    return _Draft(ticket, category, article, photos, pictures)


def _complete(filing: Filing, principal: Principal, draft: _Draft, clock: Clock) -> None:
    """Number a stored ticket, start its timeline, attach its photos, answer it from the knowledge base or
    sound the alarm, and queue its audit record."""
    session, ticket = filing.session, draft.ticket
    ticket.number = f"{ticket.created_at.astimezone(ZoneInfo(clock.tz)):%Y%m%d}{ticket.id:07d}"
    _event(session, ticket, principal.actor, "received", None, "received", "")
    if ticket.status == "dispatched":
        _event(session, ticket, "system:routing", "dispatched", "received", "dispatched", "")
    if draft.photos:
        draft.photos.attach(session, ticket, draft.pictures)
    if draft.article is not None:
        _answer_from(session, principal, ticket, draft.article, ticket.created_at)
        rollup.count_closed(session, ticket, clock.tz)
    elif ticket.emergency:
        alarm.sound(session, ticket, draft.category.name_zh)
    details = {"channel": ticket.channel, "type": ticket.type, "category": draft.category.code}
    filing.audit_entries.append(
        audit.Entry(principal.actor, "voice.ticket.received", "voice_ticket", ticket.number, details=details)
    )


def add_photos(
    session: Session, principal: Principal, number: str, photos: Photos, clock: Clock
) -> schemas.TicketOut:
    """The reporter adds pictures while the ticket is open, at most MAX_PHOTOS in all."""
    ticket = get_ticket(session, principal, number)
    if not is_reporter(principal, ticket):
        raise Forbidden(_("Only the reporter adds photos."), slug="not-yours")
    if ticket.status not in (*OPEN_STATUSES, "replied"):
        raise Conflict(_("The ticket is closed."), slug="not-open")
    if len(_photo_ids(session, ticket)) + len(photos.uploads) > MAX_PHOTOS:
        raise ValidationProblem(_("At most %(count)s photos.", count=MAX_PHOTOS), field="photos")
    photos.attach(session, ticket, photos.checked())
    _audit(session, principal, ticket, "photos_added", {"count": len(photos.uploads)})
    return ticket_out(session, principal, ticket, clock)


def photo_file(
    session: Session, principal: Principal, number: str, photo_id: int, folder: Path
) -> tuple[Photo, Path]:
    """A photo of a ticket for its reporter and handlers (pictures may show people: not for followers)."""
    ticket = get_ticket(session, principal, number)
    photo = session.get(Photo, photo_id)
    if (
        photo is None
        or photo.ticket_id != ticket.id
        or not (handles(principal, ticket) or is_reporter(principal, ticket))
    ):
        raise NotFound(_("No such photo."))
    return photo, folder / photo.sha256


def transfer(
    session: Session, principal: Principal, batch: schemas.TransferBatchIn, clock: Clock
) -> list[schemas.TransferredOut]:
    """File the tickets another platform hands over, all or nothing: one 422 names every bad ticket by its
    position. A reference filed before is answered with its ticket and filed again never."""
    if not can_citywide(principal, TRANSFER):
        raise Forbidden(_("Only the hotline or a platform it trusts hands over tickets."), slug="transfer")
    references = [given.external_ref for given in batch.tickets]
    known = dict(
        session.execute(
            select(Ticket.external_ref, Ticket.number).where(Ticket.external_ref.in_(references))
        ).all()
    )
    answers: list[schemas.TransferredOut | None] = []
    drafts: list[_Draft] = []
    errors = []
    filing = Filing(session)
    for position, given in enumerate(batch.tickets):
        if given.external_ref in known:
            number = known[given.external_ref]
            answers.append(
                schemas.TransferredOut(external_ref=given.external_ref, number=number, created=False)
            )
            continue
        try:
            drafts.append(_draft(filing, principal, given, clock, channel="transfer"))
        except ValidationProblem as problem:
            errors.append({"field": f"tickets[{position}]", "detail": _explained(problem)})
            continue
        answers.append(None)  # numbered once stored
    if errors:
        raise ValidationProblem(_("Some tickets cannot be filed; none was."), errors=errors)
    session.add_all(draft.ticket for draft in drafts)
    session.flush()  # one multi-row INSERT for the whole batch
    filed = iter(drafts)
    for position, answer in enumerate(answers):
        if answer is None:
            draft = next(filed)
            _complete(filing, principal, draft, clock)
            ref = str(draft.ticket.external_ref)
            answers[position] = schemas.TransferredOut(
                external_ref=ref, number=draft.ticket.number, created=True
            )
    filing.write_audit()
    return [answer for answer in answers if answer is not None]


def _explained(problem: ValidationProblem) -> str:
    inner = problem.extensions.get("errors") or [{"field": problem.extensions.get("field", "")}]
    fields = ", ".join(str(error.get("field", "")) for error in inner if error.get("field"))
    return f"{problem.detail} ({fields})" if fields else str(problem.detail)


def _answering_article(session: Session, given: schemas.TicketIn) -> Article | None:
    if given.answered_by_article is None:
        return None
    if given.type != "consultation":
        raise ValidationProblem(
            _("Only a consultation can be answered from the knowledge base."), field="answered_by_article"
        )
    article = session.get(Article, given.answered_by_article)
    if article is None or not article.published:
        raise ValidationProblem(_("No such knowledge-base article."), field="answered_by_article")
    return article


def _answer_from(
    session: Session, principal: Principal, ticket: Ticket, article: Article, now: datetime
) -> None:
    """Close a consultation at intake with the knowledge base's answer (12345's 直接办结)."""
    previous = ticket.status
    ticket.status, ticket.reply = "closed", f"{article.title}\n\n{article.body}"
    ticket.signed_at = ticket.replied_at = ticket.closed_at = now
    _event(
        session, ticket, principal.actor, "answered_from_knowledge_base", previous, "closed", article.title
    )


def _reporter(session: Session, principal: Principal, given: schemas.TicketIn) -> tuple[str, str]:
    if isinstance(given, (schemas.Open311TicketIn, schemas.TransferTicketIn)):
        return given.reporter_name.strip(), given.reporter_phone.strip()
    if isinstance(given, schemas.PhoneTicketIn):
        if not is_operator(principal):
            raise Forbidden(_("Only the hotline operator types in calls."), slug="operator-only")
        return given.reporter_name.strip(), given.reporter_phone.strip()
    if principal.kind != "account" or principal.person_id is None:
        raise Forbidden(_("Only a resident's own account can report."), slug="residents-only")
    person = get_person(session, principal.person_id)
    return person.name, person.phone or ""


# -- the workflow --------------------------------------------------------------------------------------------


def dispatch(
    session: Session, principal: Principal, number: str, given: schemas.DispatchIn, clock: Clock
) -> schemas.TicketOut:
    """The operator sends a ticket (received, or back from a department) to a department by hand."""
    ticket = _operated(session, principal, number)
    organization = get_organization_by_code(session, given.department)
    previous = ticket.status
    _move(
        session,
        ticket,
        ("received", "dispatched"),
        "dispatched",
        organization_id=organization.id,
        sign_due_at=_deadline(utcnow(), clock.settings.sign_days, clock.tz),
    )
    _event(
        session,
        ticket,
        principal.actor,
        "dispatched",
        previous,
        "dispatched",
        given.note.strip(),
        public=False,
    )
    _audit(session, principal, ticket, "dispatched", {"department": organization.code})
    return ticket_out(session, principal, ticket, clock)


def sign(session: Session, principal: Principal, number: str, clock: Clock) -> schemas.TicketOut:
    ticket = _handled_by(session, principal, number)
    _move(session, ticket, ("dispatched",), "handling", signed_at=utcnow())
    _event(session, ticket, principal.actor, "signed", "dispatched", "handling", "")
    _audit(session, principal, ticket, "signed")
    _tell_reporter(session, ticket, "handling", "")
    return ticket_out(session, principal, ticket, clock)


def reply(
    session: Session, principal: Principal, number: str, given: schemas.ReplyIn, clock: Clock
) -> schemas.TicketOut:
    """The department's answer; the callback is due the next working day."""
    ticket = _handled_by(session, principal, number)
    now = utcnow()
    callback_due = _deadline(now, 1, clock.tz)
    _move(
        session,
        ticket,
        ("handling",),
        "replied",
        replied_at=now,
        reply=given.text.strip(),
        callback_due_at=callback_due,
    )
    _event(session, ticket, principal.actor, "replied", "handling", "replied", given.text.strip())
    _audit(session, principal, ticket, "replied")
    _tell_reporter(session, ticket, "replied", given.text.strip())
    return ticket_out(session, principal, ticket, clock)


def callback(
    session: Session, principal: Principal, number: str, given: schemas.CallbackIn, clock: Clock
) -> schemas.TicketOut:
    """The reporter's verdict (or the operator's record of the callback call): 3-5 close the ticket, 1-2
    reopen it for the department with a fresh deadline."""
    ticket = get_ticket(session, principal, number)
    if not (is_reporter(principal, ticket) or is_operator(principal)):
        raise Forbidden(
            _("Only the reporter or the hotline operator records the callback."), slug="not-yours"
        )
    now = utcnow()
    if given.level >= SATISFIED:
        _move(session, ticket, ("replied",), "closed", satisfaction=given.level, closed_at=now)
        rollup.count_closed(session, ticket, clock.tz)
        to_status = "closed"
    else:
        deadline = _deadline(now, clock.settings.reopen_days, clock.tz)
        _move(
            session,
            ticket,
            ("replied",),
            "handling",
            satisfaction=given.level,
            reopened=Ticket.reopened + 1,
            deadline_at=deadline,
            warned_at=None,
            escalated_at=None,
        )
        to_status = "handling"
    _event(session, ticket, principal.actor, "callback", "replied", to_status, given.comment.strip())
    _audit(session, principal, ticket, "callback", {"level": given.level})
    return ticket_out(session, principal, ticket, clock)


def request_extension(
    session: Session, principal: Principal, number: str, given: schemas.ExtensionIn, clock: Clock
) -> schemas.TicketOut:
    ticket = _handled_by(session, principal, number)
    if ticket.status not in ("dispatched", "handling"):
        raise Conflict(_("Only a ticket being handled can be extended."), slug="not-open")
    if given.days > clock.settings.max_extension_days:
        raise ValidationProblem(
            _("At most %(days)s working days at a time.", days=clock.settings.max_extension_days),
            field="days",
        )
    pending = session.scalar(
        select(Extension.id).where(Extension.ticket_id == ticket.id, Extension.status == "pending")
    )
    if pending is not None:
        raise Conflict(
            _("An extension request is already waiting for the operator."), slug="extension-pending"
        )
    session.add(
        Extension(
            ticket_id=ticket.id, days=given.days, reason=given.reason.strip(), requested_by=principal.actor
        )
    )
    _event(
        session,
        ticket,
        principal.actor,
        "extension_requested",
        ticket.status,
        ticket.status,
        f"+{given.days}: {given.reason.strip()}",
        public=False,
    )
    _audit(session, principal, ticket, "extension_requested", {"days": given.days})
    return ticket_out(session, principal, ticket, clock)


def decide_extension(
    session: Session, principal: Principal, number: str, given: schemas.ExtensionDecisionIn, clock: Clock
) -> schemas.TicketOut:
    ticket = _operated(session, principal, number)
    extension = session.scalar(
        select(Extension).where(Extension.ticket_id == ticket.id, Extension.status == "pending")
    )
    if extension is None:
        raise Conflict(_("No extension request is waiting."), slug="no-extension")
    extension.status = "approved" if given.approve else "refused"
    extension.decided_by, extension.decided_at = principal.actor, utcnow()
    if given.approve:
        # The deadline decides whether a closed ticket was answered in time: its counts leave the rollup
        # and come back with the new one. The row is locked first, so that a callback closing it meanwhile
        # waits and counts it with the new deadline.
        locked = select(Ticket.status).where(Ticket.id == ticket.id).with_for_update()
        closed = session.scalar(locked) == rollup.SETTLED
        if closed:
            rollup.count_closed(session, ticket, clock.tz, -1)
        due_day = (ticket.deadline_at - timedelta(microseconds=1)).astimezone(ZoneInfo(clock.tz)).date()
        new_day = add_workdays(due_day, extension.days, clock.tz)
        ticket.deadline_at = _deadline(new_day, 0, clock.tz)
        ticket.warned_at = ticket.escalated_at = None
        if closed:
            rollup.count_closed(session, ticket, clock.tz)
    _event(
        session,
        ticket,
        principal.actor,
        "extension_" + extension.status,
        ticket.status,
        ticket.status,
        given.note.strip(),
        public=False,
    )
    _audit(session, principal, ticket, "extension_" + extension.status, {"days": extension.days})
    return ticket_out(session, principal, ticket, clock)


def merge(
    session: Session, principal: Principal, number: str, given: schemas.MergeIn, clock: Clock
) -> schemas.TicketOut:
    """A duplicate joins the ticket it repeats; its reporter is told to follow that one."""
    ticket = _operated(session, principal, number)
    target = get_ticket(session, principal, given.into)
    if target.id == ticket.id or target.merged_into_id is not None or target.status == "merged":
        raise Conflict(_("A ticket can only be merged into another open ticket."), slug="bad-merge")
    previous = ticket.status
    _move(session, ticket, OPEN_STATUSES, "merged", merged_into_id=target.id, closed_at=utcnow())
    _event(session, ticket, principal.actor, "merged", previous, "merged", target.number)
    _audit(session, principal, ticket, "merged", {"into": target.number})
    _tell_reporter(session, ticket, "merged", target.number)
    return ticket_out(session, principal, ticket, clock)


def _move(session: Session, ticket: Ticket, allowed: Sequence[str], to_status: str, **values: object) -> None:
    """One conditional update from an allowed status; a concurrent change answers 409."""
    moved: CursorResult[object] = session.execute(  # type: ignore[assignment]
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.status.in_(allowed))
        .values(status=to_status, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        raise Conflict(
            _(
                "Ticket %(number)s is %(status)s; that step does not apply now.",
                number=ticket.number,
                status=ticket.status,
            ),
            slug="invalid-transition",
        )
    session.refresh(ticket)


def _event(
    session: Session,
    ticket: Ticket,
    actor: str,
    action: str,
    from_status: str | None,
    to_status: str,
    note: str,
    *,
    public: bool = True,
) -> None:
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            actor=actor,
            action=action,
            from_status=from_status,
            to_status=to_status,
            note=note,
            public=public,
            at=utcnow(),
        )
    )


def _audit(
    session: Session,
    principal: Principal,
    ticket: Ticket,
    action: str,
    details: dict[str, object] | None = None,
) -> None:
    audit.record(
        session,
        actor=principal.actor,
        action=f"voice.ticket.{action}",
        object_type="voice_ticket",
        object_id=ticket.number,
        details=details or {},
    )


def _tell_reporter(session: Session, ticket: Ticket, status: str, note: str) -> None:
    """The reporter and everyone who follows the ticket hear of each step."""
    params = {
        "number": ticket.number,
        "status": str(STATUS_WORDS[status]),
        "note": note or str(STATUS_WORDS[status]),
    }
    followers = session.scalars(select(Follower.account_id).where(Follower.ticket_id == ticket.id))
    listeners = {ticket.account_id, *followers} - {None}
    for account_id in sorted(listeners):
        notify(
            session,
            account_id,
            Notice("voice.ticket.changed", *CHANGED, params, f"/voice/tickets/{ticket.number}"),
        )


# -- lists and shapes ----------------------------------------------------------------------------------------


def queue(
    session: Session, principal: Principal, status: str | None, paging: PageParams, clock: Clock
) -> tuple[list[schemas.TicketOut], int]:
    """Tickets the caller handles (the operator: all), nearest deadline first; a reporter's own otherwise."""
    statement: Select[tuple[Ticket]] = select(Ticket)
    if not is_operator(principal):
        organizations = principal.organizations(HANDLE)
        if organizations:
            statement = statement.where(Ticket.organization_id.in_(organizations))
        elif principal.kind == "account":
            statement = statement.where(Ticket.account_id == principal.id)
        else:
            return [], 0
    if status is not None:
        statement = statement.where(Ticket.status == status)
    rows, total = fetch_page(session, statement.order_by(Ticket.deadline_at, Ticket.id), paging)
    return [ticket_out(session, principal, row, clock, with_timeline=False) for row in rows], total


def due_state(ticket: Ticket, clock: Clock, now: datetime | None = None) -> str:
    if ticket.status not in OPEN_STATUSES:
        return "done"
    now = now or utcnow()
    if now >= ticket.deadline_at:
        return "overdue"
    due_day = (ticket.deadline_at - timedelta(microseconds=1)).astimezone(ZoneInfo(clock.tz)).date()
    left = workdays_between(now, due_day, clock.tz)
    return "warning" if left < clock.settings.warn_days else "on_time"


def ticket_out(
    session: Session, principal: Principal, ticket: Ticket, clock: Clock, with_timeline: bool = True
) -> schemas.TicketOut:
    category = session.get_one(Category, ticket.category_id)
    staff = handles(principal, ticket)
    merged_into = session.get(Ticket, ticket.merged_into_id) if ticket.merged_into_id else None
    department = None
    if ticket.organization_id is not None:
        department = get_organization(session, ticket.organization_id).code
    timeline = None
    if with_timeline:
        events = session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
        )
        timeline = [
            schemas.EventOut(
                at=e.at,
                action=e.action,
                from_status=e.from_status,
                to_status=e.to_status,
                note=e.note,
                actor=e.actor if staff else None,
            )
            for e in events
            if staff or e.public
        ]
    return schemas.TicketOut(
        number=ticket.number,
        type=ticket.type,
        category=category.code,
        category_name=category.name_zh,
        channel=ticket.channel,
        description=ticket.description,
        address=ticket.address,
        lon=ticket.lon,
        lat=ticket.lat,
        community=get_unit(session, ticket.org_unit_id).code if ticket.org_unit_id else None,
        department=department,
        status=ticket.status,
        due=due_state(ticket, clock),
        deadline_at=ticket.deadline_at,
        sign_due_at=ticket.sign_due_at,
        reply=ticket.reply,
        satisfaction=ticket.satisfaction,
        reopened=ticket.reopened,
        merged_into=merged_into.number if merged_into else None,
        emergency=ticket.emergency,
        acknowledged_at=ticket.acknowledged_at,
        attributes=ticket.attributes or {},
        photos=_photo_ids(session, ticket) if with_timeline else [],
        followers=_follower_count(session, ticket) if with_timeline else 0,
        created_at=ticket.created_at,
        reporter=f"{ticket.reporter_name} {ticket.reporter_phone}".strip() if staff else None,
        timeline=timeline,
    )


def _photo_ids(session: Session, ticket: Ticket) -> list[int]:
    return list(session.scalars(select(Photo.id).where(Photo.ticket_id == ticket.id).order_by(Photo.id)))


def _follower_count(session: Session, ticket: Ticket) -> int:
    return session.scalar(select(func.count()).where(Follower.ticket_id == ticket.id)) or 0


# -- deadline watch ------------------------------------------------------------------------------------------

WARNING = (
    _l("Ticket %(number)s is due soon"),
    _l("Ticket %(number)s (%(category)s) must be answered by %(deadline)s."),
)
OVERDUE = (
    _l("Ticket %(number)s is overdue"),
    _l("Ticket %(number)s (%(category)s) passed its deadline of %(deadline)s without an answer."),
)
LOOK_AHEAD = timedelta(days=14)  # warnings come at most a few working days ahead; holidays stretch that


def watch_deadlines(session: Session, clock: Clock) -> tuple[int, int]:
    """Warn departments of tickets about to pass their deadline and escalate overdue ones to the department
    and the operator, each ticket once (claimed by a conditional update); (warned, escalated)."""
    now = utcnow()
    candidates = session.scalars(
        select(Ticket).where(
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.escalated_at.is_(None),
            Ticket.deadline_at < now + LOOK_AHEAD,
        )
    ).all()
    warned = escalated = 0
    for ticket in candidates:
        state = due_state(ticket, clock, now)
        if state == "overdue" and claim_once(session, ticket, "escalated_at", now):
            _alert(session, ticket, clock, OVERDUE, operators_too=True)
            escalated += 1
        elif (
            state == "warning" and ticket.warned_at is None and claim_once(session, ticket, "warned_at", now)
        ):
            _alert(session, ticket, clock, WARNING, operators_too=False)
            warned += 1
    return warned, escalated


def claim_once(session: Session, ticket: Ticket, column: str, now: datetime) -> bool:
    claimed: CursorResult[object] = session.execute(  # type: ignore[assignment]
        update(Ticket)
        .where(Ticket.id == ticket.id, getattr(Ticket, column).is_(None))
        .values({column: now})
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


def _alert(
    session: Session, ticket: Ticket, clock: Clock, texts: tuple[object, object], operators_too: bool
) -> None:
    category = session.get_one(Category, ticket.category_id)
    deadline = ticket.deadline_at.astimezone(ZoneInfo(clock.tz)) - timedelta(minutes=1)
    params = {"number": ticket.number, "category": category.name_zh, "deadline": f"{deadline:%Y-%m-%d %H:%M}"}
    if operators_too:
        recipients = alarm.escalation_recipients(session, ticket.organization_id)
    else:
        recipients = (
            set(accounts_holding(session, HANDLE, ticket.organization_id))
            if ticket.organization_id
            else set()
        )
        recipients = recipients or set(accounts_holding(session, DISPATCH))
    topic = "voice.ticket.overdue" if operators_too else "voice.ticket.due_soon"
    alarm.tell(session, recipients, Notice(topic, *texts, params, f"/voice/tickets/{ticket.number}"))  # type: ignore[arg-type]
