"""Wire shapes of the services API. The catalogue travels in one bilingual format, in and out: names and
summaries are ``{"zh_CN": ..., "en": ...}`` objects, other records are referenced by code."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,59}$")]
ItemKind = Literal["information", "query", "form", "appointment", "bill"]  # models.ITEM_KINDS
Icon = Literal[
    "city", "grid", "card", "qr", "home", "user", "users", "shield", "settings", "tree", "key", "badge",
    "globe", "message", "calendar", "heart", "bolt", "store", "bell", "search", "chart", "map",
]  # fmt: skip


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Text(Strict):
    """A text in both catalogue languages."""

    zh_CN: str = Field(min_length=1, max_length=2000)  # noqa: N815 - the locale's name on the wire
    en: str = Field(min_length=1, max_length=2000)


class Name(Text):
    zh_CN: str = Field(min_length=1, max_length=200)  # noqa: N815
    en: str = Field(min_length=1, max_length=200)


Keyword = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class Keywords(Strict):
    zh_CN: list[Keyword] = Field(default_factory=list, max_length=20)  # noqa: N815
    en: list[Keyword] = Field(default_factory=list, max_length=20)


class DepartmentIn(Strict):
    code: Code
    name: Name
    summary: Text | None = None
    phone: str | None = Field(None, max_length=32)
    icon: Icon = "city"
    org_unit_code: str | None = Field(None, max_length=64, description="Identity org unit it belongs to.")


class CategoryIn(Strict):
    code: Code
    name: Name
    icon: Icon = "grid"


class LifeEventIn(Strict):
    code: Code
    name: Name
    summary: Text | None = None
    icon: Icon = "heart"


class ItemIn(Strict):
    code: Code
    department: Code
    category: Code
    life_events: list[Code] = Field(default_factory=list, max_length=20)
    kind: ItemKind
    name: Name
    summary: Text | None = None
    keywords: Keywords = Field(default_factory=Keywords)
    online: bool = True
    published: bool = True


class CatalogueIn(Strict):
    """Records to create or update, matched by code; what is not named is left as it is."""

    departments: list[DepartmentIn] = Field(default_factory=list, max_length=1000)
    categories: list[CategoryIn] = Field(default_factory=list, max_length=1000)
    life_events: list[LifeEventIn] = Field(default_factory=list, max_length=1000)
    items: list[ItemIn] = Field(default_factory=list, max_length=20_000)

    @model_validator(mode="after")
    def _codes_unique(self) -> CatalogueIn:
        for kind in ("departments", "categories", "life_events", "items"):
            codes = [record.code for record in getattr(self, kind)]
            duplicates = sorted({code for code in codes if codes.count(code) > 1})
            if duplicates:
                raise ValueError(f"{kind}: codes given twice: {', '.join(duplicates[:10])}")
        return self


class ImportOut(BaseModel):
    created: dict[str, int]
    updated: dict[str, int]


class DepartmentOut(BaseModel):
    code: str
    name: Name
    summary: Text | None
    phone: str | None
    icon: str
    items: int


class CategoryOut(BaseModel):
    code: str
    name: Name
    icon: str
    items: int


class LifeEventOut(BaseModel):
    code: str
    name: Name
    summary: Text | None
    icon: str
    items: int


class ItemOut(BaseModel):
    code: str
    department: str
    category: str
    life_events: list[str]
    kind: str
    name: Name
    summary: Text | None
    keywords: Keywords
    online: bool
    published: bool


class MarkedItemOut(BaseModel):
    """A favourite or recently used item, with when it was marked."""

    item: ItemOut
    at: datetime
