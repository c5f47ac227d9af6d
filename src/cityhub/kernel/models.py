"""Tables owned by the kernel (prefixed ``kernel_``): the audit chain, the event outbox and the job queue.

JSON columns use the generic ``JSON`` type (``json`` on PostgreSQL, not ``jsonb``) on purpose: the text is
stored as written, so a re-read audit record canonicalises to exactly the bytes that were hashed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityhub.kernel.db import Base, UTCDateTime

# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" is the auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")

JOB_STATUSES = ("queued", "running", "done", "failed")


class AuditRecord(Base):
    """One link of the append-only audit chain; ``hash`` covers every field and ``prev_hash``.

    Ids are assigned by :func:`cityhub.kernel.audit.record` (head + 1), never by a sequence, so the chain
    has no gaps and two appenders that somehow read the same head collide on the primary key instead of
    forking the chain.
    """

    __tablename__ = "kernel_audit_record"
    __table_args__ = (
        Index("ix_kernel_audit_record_object", "object_type", "object_id"),
        Index("ix_kernel_audit_record_actor", "actor"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(100))
    object_id: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row anchoring the chain's end, so that deleting the newest records is detected too."""

    __tablename__ = "kernel_audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class OutboxEvent(Base):
    """An event written in the transaction of the change it describes; delivered by jobs afterwards."""

    __tablename__ = "kernel_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(200), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Job(Base):
    """A queued, running, done or failed job; the queue that every worker process shares."""

    __tablename__ = "kernel_job"
    __table_args__ = (
        CheckConstraint(f"status IN {JOB_STATUSES!r}", name="status"),
        Index("ix_kernel_job_due", "status", "run_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(400), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
