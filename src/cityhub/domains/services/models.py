"""Services tables: the catalogue (departments, categories, life events, service items), its search index,
and each resident's favourites and recently used items."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
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

    department_id: Mapped[int] = mapped_column(ForeignKey("services_department.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("services_category.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    keywords: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"zh_CN": [...], "en": [...]}
    online: Mapped[bool] = mapped_column(Boolean, default=True)
    published: Mapped[bool] = mapped_column(Boolean, default=True)
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
