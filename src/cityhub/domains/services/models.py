"""Services tables: the catalogue (departments, categories, life events, service items), its search index,
each resident's favourites and recently used items, and the transactions behind the items: department
records answering queries, appointment slots and bookings, bills and their payments, and 好差评 ratings with
the follow-ups that bad ones open."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from cityhub.kernel.db import Base, UTCDateTime, utcnow

ITEM_KINDS = ("information", "query", "form", "appointment", "bill")


class _CatalogueRecord:
    """What every catalogue record has: a code to be referenced by, a name in both languages, an order."""

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)


class _Summarised:
    summary_zh: Mapped[str] = mapped_column(Text, default="")
    summary_en: Mapped[str] = mapped_column(Text, default="")


class Department(_CatalogueRecord, _Summarised, Base):
    """A department or public-service company that offers service items."""

    __tablename__ = "services_department"

    phone: Mapped[str | None] = mapped_column(String(32))
    icon: Mapped[str] = mapped_column(String(32), default="city")
    org_unit_id: Mapped[int | None] = mapped_column(Integer)  # identity org unit it belongs to, if known
    # The identity organisation whose staff and systems act for the department (records, slots, bills).
    organization_id: Mapped[int | None] = mapped_column(Integer, index=True)


class Category(_CatalogueRecord, Base):
    __tablename__ = "services_category"

    icon: Mapped[str] = mapped_column(String(32), default="grid")


class LifeEvent(_CatalogueRecord, _Summarised, Base):
    """A moment of life (having a baby, moving house...) that groups the items it usually needs."""

    __tablename__ = "services_life_event"

    icon: Mapped[str] = mapped_column(String(32), default="heart")


class Item(_CatalogueRecord, _Summarised, Base):
    """A service item of the catalogue; ``kind`` says how it is delivered (see ITEM_KINDS)."""

    __tablename__ = "services_item"
    # Listing and ranking read only these narrow columns: with this index they never touch the wide rows.
    __table_args__ = (
        Index(
            "ix_services_item_listing", "id", "published", "position", "department_id", "category_id", "kind"
        ),
    )

    department_id: Mapped[int] = mapped_column(ForeignKey("services_department.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("services_category.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    keywords: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"zh_CN": [...], "en": [...]}
    online: Mapped[bool] = mapped_column(Boolean, default=True)
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    # Query items: the fields of a department record, [{"key", "label": {"zh_CN", "en"}, "type"}].
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ItemLifeEvent(Base):
    __tablename__ = "services_item_life_event"

    item_id: Mapped[int] = mapped_column(ForeignKey("services_item.id", ondelete="CASCADE"), primary_key=True)
    life_event_id: Mapped[int] = mapped_column(
        ForeignKey("services_life_event.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class SearchTerm(Base):
    """The search index: one row per (term, item) with the weight of the best field the term occurs in.

    Chinese text is segmented with jieba (search mode, so a long word also yields its parts), English is
    lower-cased words and their prefixes; a query is cut the same way and ranked by the terms it matches.
    """

    __tablename__ = "services_search_term"
    # A query's terms are summed per item from the index alone (term, then item and weight).
    __table_args__ = (Index("ix_services_search_term_cover", "term", "item_id", "weight"),)

    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("services_item.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    weight: Mapped[int] = mapped_column(Integer)


class Favourite(Base):
    __tablename__ = "services_favourite"

    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("services_item.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecentUse(Base):
    """The last time an account opened an item (one row per pair, refreshed on every visit)."""

    __tablename__ = "services_recent_use"
    __table_args__ = (Index("ix_services_recent_use_account_used", "account_id", "used_at"),)

    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("services_item.id", ondelete="CASCADE"), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QueryRecord(Base):
    """A department's record about one person, shown to that person by a query item.

    The person is named by the keyed hash of their national id number (the same hash identity stores),
    so a department can load records before the person ever signs up and never stores the number itself.
    """

    __tablename__ = "services_query_record"
    __table_args__ = (
        UniqueConstraint("item_id", "record_key"),
        Index("ix_services_query_record_subject", "subject_hash", "item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("services_item.id", ondelete="CASCADE"))
    record_key: Mapped[str] = mapped_column(String(100))  # the department system's own id of the record
    subject_hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    occurred_on: Mapped[date | None] = mapped_column(Date)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Slot(Base):
    """A time window of an appointment item with room for ``capacity`` people; ``booked`` counts them.

    Booking is one conditional ``UPDATE ... SET booked = booked + 1 WHERE booked < capacity``: the database
    serialises it per row, so no number of processes can fill a slot past its capacity."""

    __tablename__ = "services_slot"
    __table_args__ = (UniqueConstraint("item_id", "starts_at", "place"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("services_item.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    place: Mapped[str] = mapped_column(String(200), default="")
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)


BOOKING_STATUSES = ("booked", "cancelled", "attended", "missed")


class Booking(Base):
    __tablename__ = "services_booking"
    __table_args__ = (
        # One live booking per person and slot, whatever the application does.
        Index(
            "uq_services_booking_live",
            "slot_id",
            "person_id",
            unique=True,
            sqlite_where=text("status = 'booked'"),
            postgresql_where=text("status = 'booked'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("services_slot.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("services_item.id"), index=True)
    account_id: Mapped[int] = mapped_column(Integer, index=True)
    person_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="booked")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


BILL_STATUSES = ("unpaid", "paid", "cancelled")


class Bill(Base):
    """A bill a department or utility issued to a person (named like QueryRecord, by id-number hash)."""

    __tablename__ = "services_bill"
    __table_args__ = (UniqueConstraint("department_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("services_department.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("services_item.id"))
    number: Mapped[str] = mapped_column(String(40))  # the issuer's bill number
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200))
    amount_cents: Mapped[int] = mapped_column(Integer)
    due_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="unpaid")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# duplicate: the money arrived for a bill another payment had already paid; the operator refunds it.
PAYMENT_STATUSES = ("pending", "succeeded", "failed", "duplicate")


class Payment(Base):
    """One attempt to pay a bill through a payment provider; the provider's callback settles it."""

    __tablename__ = "services_payment"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)  # our order number, sent to the provider
    bill_id: Mapped[int] = mapped_column(ForeignKey("services_bill.id"), index=True)
    account_id: Mapped[int] = mapped_column(Integer, index=True)
    provider: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    provider_transaction: Mapped[str | None] = mapped_column(String(64))
    receipt_number: Mapped[str | None] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


APPLICATION_STATUSES = ("submitted", "accepted", "needs_more", "approved", "rejected", "withdrawn")


class Application(Base):
    """A resident's application through a form item, tracked through APPLICATION_STATUSES."""

    __tablename__ = "services_application"
    __table_args__ = (Index("ix_services_application_department_status", "department_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("services_item.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("services_department.id"))
    account_id: Mapped[int] = mapped_column(Integer, index=True)
    person_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApplicationEvent(Base):
    """One step of an application's history: who moved it to which status, with what note."""

    __tablename__ = "services_application_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("services_application.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(60))
    by_department: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Attachment(Base):
    """A file attached to an application; the bytes live under <var_dir>/uploads/services/, named by hash."""

    __tablename__ = "services_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("services_application.id"), index=True)
    field_key: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


RATED_KINDS = ("booking", "payment", "application")


class Rating(Base):
    """A 好差评 rating (1 very dissatisfied … 5 very satisfied) of one completed transaction."""

    __tablename__ = "services_rating"
    __table_args__ = (UniqueConstraint("subject_kind", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("services_item.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("services_department.id"), index=True)
    account_id: Mapped[int] = mapped_column(Integer, index=True)
    level: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FollowUp(Base):
    """What a department owes a resident who rated it badly: a contact and a note of what was done."""

    __tablename__ = "services_follow_up"

    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("services_rating.id"), unique=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("services_department.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open, closed
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(60))
