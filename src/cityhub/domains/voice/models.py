"""Voice tables: the 12345 category tree, tickets, their timeline and extension requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityhub.kernel.db import Base, UTCDateTime, utcnow

TICKET_TYPES = ("consultation", "help", "suggestion", "complaint", "report")
CHANNELS = ("app", "phone", "open311")
# received: no department yet (dispatched by hand); dispatched: waiting for the department to sign;
# handling: signed (or reopened); replied: waiting for the callback; closed; merged into another ticket.
TICKET_STATUSES = ("received", "dispatched", "handling", "replied", "closed", "merged")
OPEN_STATUSES = ("received", "dispatched", "handling")


class Category(Base):
    """A node of the classification tree (codes in the style of GB/T 39666, e.g. 03.02.01), with the
    department (identity organisation) that handles its tickets."""

    __tablename__ = "voice_category"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("voice_category.id"))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    organization_id: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    """A citizen's case: what, where, who handles it, by when, and how it ended."""

    __tablename__ = "voice_ticket"
    __table_args__ = (
        Index("ix_voice_ticket_queue", "organization_id", "status", "deadline_at"),
        Index("ix_voice_ticket_due", "status", "deadline_at"),
        Index("ix_voice_ticket_reporter", "account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    category_id: Mapped[int] = mapped_column(ForeignKey("voice_category.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    account_id: Mapped[int | None] = mapped_column(Integer)  # the reporter's account, when they have one
    reporter_name: Mapped[str] = mapped_column(String(100), default="")
    reporter_phone: Mapped[str] = mapped_column(String(32), default="")
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(400), default="")
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    org_unit_id: Mapped[int | None] = mapped_column(Integer)  # the community the location lies in
    organization_id: Mapped[int | None] = mapped_column(Integer)  # the handling department
    status: Mapped[str] = mapped_column(String(12))
    sign_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reply: Mapped[str] = mapped_column(Text, default="")
    callback_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("voice_ticket.id"))
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketEvent(Base):
    """One step of a ticket's timeline: who did what, when, from which status to which."""

    __tablename__ = "voice_ticket_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("voice_ticket.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    note: Mapped[str] = mapped_column(Text, default="")
    public: Mapped[bool] = mapped_column(default=True)  # shown to the reporter


class Extension(Base):
    """A department's request for more working days, decided by the operator."""

    __tablename__ = "voice_extension"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("voice_ticket.id"), index=True)
    days: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending, approved, refused
    requested_by: Mapped[str] = mapped_column(String(60))
    decided_by: Mapped[str | None] = mapped_column(String(60))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
