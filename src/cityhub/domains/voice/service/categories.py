"""The 12345 classification tree: codes in the style of GB/T 39666 (two digits per level), each leaf or
branch optionally tied to the department that handles its tickets. Configurable by the operator."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal, get_organization, get_organization_by_code, require_citywide
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import Category
from cityhub.kernel import audit

MANAGE = "voice.categories.manage"


def import_categories(session: Session, principal: Principal, given: schemas.CategoriesIn) -> dict[str, int]:
    """Create or update categories by code, parents before children, all or nothing; audited."""
    require_citywide(principal, MANAGE)
    known = {row.code: row for row in session.scalars(select(Category))}
    counts = {"created": 0, "updated": 0}
    for position, entry in enumerate(given.categories):
        row = known.get(entry.code)
        if row is None:
            row = Category(code=entry.code, position=position)
            session.add(row)
            known[entry.code] = row
            counts["created"] += 1
        else:
            counts["updated"] += 1
        parent_code = entry.code.rpartition(".")[0]
        row.parent_id = known[parent_code].id if parent_code else None  # parents come first: flushed below
        row.name_zh, row.name_en = entry.name_zh, entry.name_en
        row.organization_id = (
            get_organization_by_code(session, entry.organization_code).id if entry.organization_code else None
        )
        session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="voice.categories.imported",
        object_type="voice_category",
        object_id="tree",
        details=counts,
    )
    return counts


def categories(session: Session) -> list[schemas.CategoryOut]:
    rows = session.scalars(select(Category).order_by(Category.code))
    return [
        schemas.CategoryOut(
            code=row.code,
            name_zh=row.name_zh,
            name_en=row.name_en,
            organization=get_organization(session, row.organization_id).code if row.organization_id else None,
        )
        for row in rows
    ]
