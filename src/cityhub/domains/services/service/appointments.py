"""Appointments: departments open slots on working days; residents book, cancel and reschedule.

No double booking, with any number of app processes: a booking takes its seat with one conditional
``UPDATE services_slot SET booked = booked + 1 WHERE id = ? AND booked < capacity``, which the database
serialises per row (PostgreSQL re-checks the condition after a concurrent writer commits; SQLite runs one
write transaction at a time), and a partial unique index keeps one live booking per person and slot.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, and_, select, update
from sqlalchemy.orm import Session

from cityhub.domains.identity import Notice, Principal, notify
from cityhub.domains.services import schemas
from cityhub.domains.services.models import Booking, Department, Item, Rating, Slot
from cityhub.domains.services.service.catalogue import get_item, name_of
from cityhub.domains.services.service.desk import (
    department_item,
    get_department,
    new_reference,
    require_desk,
    require_kind,
    resident_person,
)
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Conflict, NotFound
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.workdays import is_workday

MAX_SLOTS_SHOWN = 500
LIVE = "booked"
REMIND_AHEAD = timedelta(hours=24)
REMINDER = (
    _l("Reminder: %(item)s at %(time)s"),
    _l("You have an appointment for %(item)s at %(time)s, %(place)s. Reference %(reference)s."),
)


def open_schedule(
    session: Session,
    principal: Principal,
    department_code: str,
    item_code: str,
    given: schemas.ScheduleIn,
    tz: str,
) -> schemas.ScheduleOut:
    """Create the slots of ``given`` on working days; slots that already exist are left as they are."""
    department = get_department(session, department_code)
    require_desk(principal, department)
    item = department_item(session, department, item_code, "appointment")
    zone = ZoneInfo(tz)
    wanted: list[datetime] = []
    day = given.first_day
    while day <= given.last_day:
        if is_workday(day):
            wanted += [_at(day, clock, zone) for clock in given.times]
        day += timedelta(days=1)
    existing = (
        set(
            session.scalars(
                select(Slot.starts_at).where(
                    Slot.item_id == item.id, Slot.place == given.place, Slot.starts_at.in_(wanted)
                )
            )
        )
        if wanted
        else set()
    )
    length = timedelta(minutes=given.minutes)
    fresh = [start for start in dict.fromkeys(wanted) if start not in existing]
    session.add_all(
        Slot(
            item_id=item.id,
            starts_at=start,
            ends_at=start + length,
            place=given.place,
            capacity=given.capacity,
        )
        for start in fresh
    )
    result = schemas.ScheduleOut(created=len(fresh), existing=len(wanted) - len(fresh))
    audit.record(
        session,
        actor=principal.actor,
        action="services.schedule.opened",
        object_type="services_item",
        object_id=item.code,
        details={**result.model_dump(), "first_day": str(given.first_day), "last_day": str(given.last_day)},
    )
    return result


def _at(day: date, clock: str, zone: ZoneInfo) -> datetime:
    hours, minutes = (int(part) for part in clock.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=zone).astimezone(ZoneInfo("UTC"))


def open_slots(
    session: Session, item_code: str, since: datetime | None = None, days: int = 14
) -> list[schemas.SlotOut]:
    """Future slots of an appointment item within ``days`` of ``since`` (default now), full ones included."""
    item = get_item(session, item_code)
    require_kind(item, "appointment")
    start = max(since or utcnow(), utcnow())
    rows = session.scalars(
        select(Slot)
        .where(Slot.item_id == item.id, Slot.starts_at > start, Slot.starts_at < start + timedelta(days=days))
        .order_by(Slot.starts_at, Slot.id)
        .limit(MAX_SLOTS_SHOWN)
    ).all()
    return [_slot_out(row, item) for row in rows]


def _slot_out(slot: Slot, item: Item) -> schemas.SlotOut:
    return schemas.SlotOut(
        id=slot.id,
        item=item.code,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        place=slot.place,
        capacity=slot.capacity,
        free=max(slot.capacity - slot.booked, 0),
    )


def book(session: Session, principal: Principal, slot_id: int) -> schemas.BookingOut:
    """Take a seat in a slot for the caller; 409 when it is full, past, or the caller already holds one."""
    person_id = resident_person(principal)
    slot = _slot(session, slot_id)
    if _upcoming_booking(session, person_id, slot.item_id) is not None:
        raise Conflict(
            _("You already have an upcoming booking for this service; reschedule or cancel it instead."),
            slug="already-booked",
        )
    _take_seat(session, slot)
    booking = Booking(
        reference=new_reference("B"),
        slot_id=slot.id,
        item_id=slot.item_id,
        account_id=principal.id,
        person_id=person_id,
    )
    session.add(booking)
    session.flush()
    return booking_out(session, booking)


def _slot(session: Session, slot_id: int) -> Slot:
    slot = session.get(Slot, slot_id)
    if slot is None:
        raise NotFound(_("Slot %(id)s does not exist.", id=slot_id))
    return slot


def _upcoming_booking(session: Session, person_id: int, item_id: int) -> Booking | None:
    return session.scalar(
        select(Booking)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Booking.person_id == person_id,
            Booking.item_id == item_id,
            Booking.status == LIVE,
            Slot.starts_at > utcnow(),
        )
        .limit(1)
    )


def _take_seat(session: Session, slot: Slot) -> None:
    taken: CursorResult[object] = session.execute(  # type: ignore[assignment]
        update(Slot)
        .where(Slot.id == slot.id, Slot.booked < Slot.capacity, Slot.starts_at > utcnow())
        .values(booked=Slot.booked + 1)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        session.expire(slot)
        if slot.starts_at <= utcnow():
            raise Conflict(_("This slot has already begun."), slug="slot-past")
        raise Conflict(_("This slot is fully booked; choose another one."), slug="slot-full")
    session.expire(slot, ["booked"])


def _free_seat(session: Session, slot_id: int) -> None:
    session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.booked > 0)
        .values(booked=Slot.booked - 1)
        .execution_options(synchronize_session=False)
    )


def _own_live_booking(session: Session, principal: Principal, reference: str) -> tuple[Booking, Slot]:
    found = session.execute(
        select(Booking, Slot)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(Booking.reference == reference, Booking.account_id == principal.id)
    ).first()
    if found is None or principal.kind != "account":
        raise NotFound(_("Booking %(reference)s does not exist.", reference=reference))
    booking, slot = found
    if booking.status != LIVE or slot.starts_at <= utcnow():
        raise Conflict(_("This booking can no longer be changed."), slug="booking-closed")
    return booking, slot


def cancel(session: Session, principal: Principal, reference: str) -> schemas.BookingOut:
    booking, slot = _own_live_booking(session, principal, reference)
    changed = _set_status(session, booking, "cancelled")
    if not changed:  # a concurrent request changed it first
        raise Conflict(_("This booking can no longer be changed."), slug="booking-closed")
    _free_seat(session, slot.id)
    return booking_out(session, booking)


def reschedule(session: Session, principal: Principal, reference: str, slot_id: int) -> schemas.BookingOut:
    """Move a live booking to another slot of the same item: the new seat is taken before the old is freed."""
    booking, old = _own_live_booking(session, principal, reference)
    new = _slot(session, slot_id)
    if new.item_id != booking.item_id:
        raise Conflict(_("A booking can only move to a slot of the same service."), slug="other-service")
    if new.id == old.id:
        return booking_out(session, booking)
    _take_seat(session, new)
    moved: CursorResult[object] = session.execute(  # type: ignore[assignment]
        update(Booking)
        .where(Booking.id == booking.id, Booking.status == LIVE, Booking.slot_id == old.id)
        .values(slot_id=new.id, changed_at=utcnow(), reminded_at=None)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        raise Conflict(_("This booking can no longer be changed."), slug="booking-closed")
    _free_seat(session, old.id)
    session.expire(booking)
    return booking_out(session, booking)


def _set_status(session: Session, booking: Booking, status: str) -> bool:
    changed: CursorResult[object] = session.execute(  # type: ignore[assignment]
        update(Booking)
        .where(Booking.id == booking.id, Booking.status == LIVE)
        .values(status=status, changed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.expire(booking)
    return changed.rowcount == 1


def mark_visit(session: Session, principal: Principal, reference: str, attended: bool) -> schemas.BookingOut:
    """The department records whether the person came (an attended booking can then be rated)."""
    booking = session.scalar(select(Booking).where(Booking.reference == reference))
    if booking is None:
        raise NotFound(_("Booking %(reference)s does not exist.", reference=reference))
    item = session.get_one(Item, booking.item_id)
    department = session.get_one(Department, item.department_id)
    require_desk(principal, department)
    if not _set_status(session, booking, "attended" if attended else "missed"):
        raise Conflict(_("This booking is not open any more."), slug="booking-closed")
    audit.record(
        session,
        actor=principal.actor,
        action="services.booking.attended" if attended else "services.booking.missed",
        object_type="services_booking",
        object_id=booking.reference,
    )
    return booking_out(session, booking)


def my_bookings(session: Session, principal: Principal) -> list[schemas.BookingOut]:
    rows = session.scalars(
        select(Booking)
        .where(Booking.account_id == principal.id)
        .order_by(Booking.created_at.desc())
        .limit(100)
    ).all()
    return [booking_out(session, row) for row in rows] if principal.kind == "account" else []


def desk_bookings(
    session: Session, principal: Principal, department_code: str, item_code: str, day: date, tz: str
) -> list[schemas.BookingOut]:
    """A department's bookings of one item on one local day, in slot order."""
    department = get_department(session, department_code)
    require_desk(principal, department)
    item = department_item(session, department, item_code, "appointment")
    start = datetime.combine(day, time.min, tzinfo=ZoneInfo(tz))
    rows = session.scalars(
        select(Booking)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            and_(
                Booking.item_id == item.id,
                Slot.starts_at >= start,
                Slot.starts_at < start + timedelta(days=1),
            )
        )
        .order_by(Slot.starts_at, Booking.id)
    ).all()
    return [booking_out(session, row) for row in rows]


def booking_out(session: Session, booking: Booking) -> schemas.BookingOut:
    slot = session.get_one(Slot, booking.slot_id)
    item = session.get_one(Item, booking.item_id)
    return schemas.BookingOut(
        reference=booking.reference,
        item=item.code,
        item_name=name_of(item),
        slot=_slot_out(slot, item),
        status=booking.status,
        created_at=booking.created_at,
        rating=session.scalar(
            select(Rating.level).where(Rating.subject_kind == "booking", Rating.subject_id == booking.id)
        ),
    )


def send_reminders(session: Session, tz: str) -> int:
    """Notify everyone whose booking starts within a day and who has not been reminded; how many.

    Each booking is claimed with a conditional update first, so two workers never remind twice."""
    now = utcnow()
    due = session.execute(
        select(Booking, Slot, Item)
        .join(Slot, Slot.id == Booking.slot_id)
        .join(Item, Item.id == Booking.item_id)
        .where(
            Booking.status == LIVE,
            Booking.reminded_at.is_(None),
            Slot.starts_at > now,
            Slot.starts_at <= now + REMIND_AHEAD,
        )
    ).all()
    sent = 0
    for booking, slot, item in due:
        claimed: CursorResult[object] = session.execute(  # type: ignore[assignment]
            update(Booking)
            .where(Booking.id == booking.id, Booking.reminded_at.is_(None))
            .values(reminded_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            continue
        local = slot.starts_at.astimezone(ZoneInfo(tz))
        params = {
            "item": item.name_zh,
            "time": f"{local:%Y-%m-%d %H:%M}",
            "place": slot.place or "—",
            "reference": booking.reference,
        }
        notify(
            session,
            booking.account_id,
            Notice("services.appointment.reminder", *REMINDER, params, "/services/mine"),
        )
        sent += 1
    return sent
