"""Exchange tables: the catalogue of department data resources, the versions of their data (each load is a
version with its validation report) and the rows of each version, consumers' requests, the grants that let
them read (never edited: revoked or expired), and per-grant usage by day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cityhub.kernel.db import Base, UTCDateTime, utcnow
from cityhub.kernel.models import BigId

SHARING_CLASSES = ("unconditional", "conditional", "none")  # 无条件共享 / 有条件共享 / 不予共享
OPEN_CLASSES = ("open", "conditional", "closed")  # 无条件开放 / 有条件开放 / 不予开放
RESOURCE_STATES = ("draft", "published", "retired")
SOURCES = ("upload", "api", "ngsi-ld")
REQUEST_STATES = ("pending", "approved", "rejected", "withdrawn")
ITEM_TYPES = ("string", "integer", "number", "boolean", "date", "datetime")
# Rows are JSON documents (any resource, any columns); JSONB on PostgreSQL so filters read them natively.
Document = JSON().with_variant(JSONB(), "postgresql")


class Resource(Base):
    """A data resource in the catalogue, with the 2017 catalogue core fields: classification (类/项/目/细目),
    name, code, provider department, summary, format, data items, sharing and open classes, update cycle,
    publish date and related resources. ``current_version_id`` points at the version consumers read."""

    __tablename__ = "exchange_resource"
    __table_args__ = (
        CheckConstraint(f"sharing_class IN {SHARING_CLASSES!r}", name="sharing_class"),
        CheckConstraint(f"open_class IN {OPEN_CLASSES!r}", name="open_class"),
        CheckConstraint(f"status IN {RESOURCE_STATES!r}", name="status"),
        CheckConstraint(f"source IN {SOURCES!r}", name="source"),
        CheckConstraint("sharing_class <> 'none' OR legal_basis IS NOT NULL", name="refusal_basis"),
        # The open-data listing (and CKAN's package_search) reads published open resources, newest first.
        Index("ix_exchange_resource_listing", "status", "open_class", "modified_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    provider_org_id: Mapped[int] = mapped_column(Integer, index=True)  # an identity organisation (department)
    classification: Mapped[list[str]] = mapped_column(JSON, default=list)  # up to four levels, top first
    summary: Mapped[str] = mapped_column(Text, default="")
    format: Mapped[str] = mapped_column(String(32))
    # [{"name": "district", "title": "区县", "type": "string", "required": true}], in column order
    data_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    sharing_class: Mapped[str] = mapped_column(String(16))
    sharing_condition: Mapped[str | None] = mapped_column(Text)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    open_class: Mapped[str] = mapped_column(String(16), default="closed")
    update_cycle: Mapped[str] = mapped_column(String(16))
    publish_date: Mapped[date | None] = mapped_column(Date)
    related: Mapped[list[str]] = mapped_column(JSON, default=list)  # codes of related resources
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    licence: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), default="upload")
    # Where a polled resource's data comes from: {"url", "format", "records"} for an API, {"tenant",
    # "entity_type", "attributes"} for the context hub; empty for uploaded files
    source_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last poll, successful or not
    # What opening the data removes or coarsens for the public (portal, downloads, CKAN, the open query API):
    # {"suppress": [item], "generalise": {item: {"method": ..., ...}}, "min_group": k}
    open_rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    current_version_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResourceTerm(Base):
    """The search terms of a resource's name, English name, summary, code and keywords
    (``kernel.textsearch``: jieba words of Chinese, English words and their prefixes): a search looks its
    words up here by index instead of scanning every entry's text."""

    __tablename__ = "exchange_resource_term"

    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("exchange_resource.id"), primary_key=True, index=True)


class Version(Base):
    """One load of a resource's data: where it came from, how many rows, and the validation report. A load
    that fails validation is kept (with its report) but never becomes current."""

    __tablename__ = "exchange_version"
    __table_args__ = (UniqueConstraint("resource_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("exchange_resource.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    file_name: Mapped[str | None] = mapped_column(String(200))
    sha256: Mapped[str | None] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    valid: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"errors": [...], "error_count": n, ...}
    note: Mapped[str] = mapped_column(Text, default="")
    loaded_by: Mapped[str] = mapped_column(String(200))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Row(Base):
    """One row of a version, as a JSON document keyed by the data items' names; read by keyset pages."""

    __tablename__ = "exchange_row"

    # No foreign key to exchange_version: PostgreSQL would check it row by row, tripling the time of a load;
    # rows are written only by the load that creates their version, and versions are never deleted.
    version_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[dict[str, Any]] = mapped_column(Document)


class Request(Base):
    """A department's request to read a conditional resource: the purpose, the fields, a row filter and for
    how long; the owner approves (perhaps narrower) or rejects with a reason before ``due_at``."""

    __tablename__ = "exchange_request"
    __table_args__ = (
        CheckConstraint(f"status IN {REQUEST_STATES!r}", name="status"),
        Index("ix_exchange_request_owner_queue", "resource_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("exchange_resource.id"))
    consumer_org_id: Mapped[int] = mapped_column(Integer, index=True)
    purpose: Mapped[str] = mapped_column(Text)
    fields: Mapped[list[str]] = mapped_column(JSON)
    # [{"field": "district", "op": "eq", "value": "西湖区"}], all of them must hold
    row_filter: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the owner reminded, before due_at
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # past due_at: head and operator told
    reason: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(200))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Grant(Base):
    """What a consumer department may read of a resource: fields, a row filter and a validity. Never edited:
    it expires, or it is revoked (``revoked_at``); a wider or longer grant is a new one."""

    __tablename__ = "exchange_grant"
    __table_args__ = (Index("ix_exchange_grant_consumer", "consumer_org_id", "resource_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("exchange_resource.id"), index=True)
    consumer_org_id: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("exchange_request.id"))
    fields: Mapped[list[str]] = mapped_column(JSON)
    row_filter: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GrantKey(Base):
    """An API key issued for one grant (identity keeps the key and its hash; this binds it): a consumer system
    holding it reads that grant only. It expires with the grant and is revoked with it."""

    __tablename__ = "exchange_grant_key"

    api_key_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # an identity API key
    grant_id: Mapped[int] = mapped_column(ForeignKey("exchange_grant.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GrantUsage(Base):
    """Reads and rows read through a grant per day (the evidence of each read is in the audit chain)."""

    __tablename__ = "exchange_grant_usage"

    grant_id: Mapped[int] = mapped_column(ForeignKey("exchange_grant.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    reads: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int] = mapped_column(BigId, default=0)


OBJECTION_STATES = ("open", "accepted", "rejected")


class Objection(Base):
    """A consumer department's (or, on open data, a resident's) report that rows of a resource are wrong,
    with evidence and the values it believes right. The owner accepts — a corrected version follows and every
    consumer is told — or rejects with a reason, by ``due_at`` (working days); past it, the objection is
    escalated once to the owner's head and the operator."""

    __tablename__ = "exchange_objection"
    __table_args__ = (
        CheckConstraint(f"status IN {OBJECTION_STATES!r}", name="status"),
        Index("ix_exchange_objection_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("exchange_resource.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("exchange_version.id"))  # the version objected to
    filer_org_id: Mapped[int | None] = mapped_column(Integer)  # a department, or None for a resident
    filer_account_id: Mapped[int | None] = mapped_column(Integer)
    rows: Mapped[list[int]] = mapped_column(JSON)  # row numbers in that version
    claim: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text, default="")
    # {"<row number>": {"field": value}}: what the filer believes right
    proposed: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(200))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    corrected_version_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


APPLICATION_STATES = ("pending", "approved", "rejected")


class OpenApplication(Base):
    """A person's (or their organisation's) application to use a conditionally open resource (有条件开放):
    like a department's request, the owner approves it — for a time — or rejects it with a reason by
    ``due_at``; while approved, the applicant downloads the de-identified data."""

    __tablename__ = "exchange_open_application"
    __table_args__ = (
        CheckConstraint(f"status IN {APPLICATION_STATES!r}", name="status"),
        Index("ix_exchange_open_application_queue", "resource_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("exchange_resource.id"))
    account_id: Mapped[int] = mapped_column(Integer, index=True)
    organisation: Mapped[str] = mapped_column(String(200), default="")  # as the applicant states it
    purpose: Mapped[str] = mapped_column(Text)
    days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(200))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


WISH_STATES = ("open", "planned", "fulfilled", "declined")


class DataWish(Base):
    """A citizen's request for data the city does not open yet; others vote for it, and the department it
    is addressed to (or the operator) answers: planned, fulfilled by a resource, or declined with a reason."""

    __tablename__ = "exchange_data_wish"
    __table_args__ = (
        CheckConstraint(f"status IN {WISH_STATES!r}", name="status"),
        Index("ix_exchange_data_wish_board", "status", "votes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    provider_org_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the department asked, if known
    account_id: Mapped[int] = mapped_column(Integer)
    votes: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")
    answer: Mapped[str | None] = mapped_column(Text)
    resource_id: Mapped[int | None] = mapped_column(ForeignKey("exchange_resource.id"))  # when fulfilled
    answered_by: Mapped[str | None] = mapped_column(String(200))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DataWishVote(Base):
    """One person's vote for a data wish (one each: the primary key)."""

    __tablename__ = "exchange_data_wish_vote"

    wish_id: Mapped[int] = mapped_column(ForeignKey("exchange_data_wish.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


DOWNLOAD_CHANNELS = ("preview", "csv", "json", "api", "ckan")


class OpenDownload(Base):
    """Public reads of an open resource per day and channel (portal preview, CSV/JSON download, the open
    query API, CKAN's datastore_search): what the decision-support dashboard counts."""

    __tablename__ = "exchange_open_download"

    resource_id: Mapped[int] = mapped_column(ForeignKey("exchange_resource.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    reads: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int] = mapped_column(BigId, default=0)
