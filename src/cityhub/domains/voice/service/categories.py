"""The 12345 classification tree: codes in the style of GB/T 39666 (two digits per level), each leaf or
branch optionally tied to the department that handles its tickets, flagged as an emergency, and asking its
own questions (Open311 service attributes). Configurable by the operator."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal, get_organization, get_organization_by_code, require_citywide
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import Category
from cityhub.kernel import audit
from cityhub.kernel.errors import ValidationProblem
from cityhub.kernel.i18n import gettext as _

MANAGE = "voice.categories.manage"
_ATTRIBUTE_FIELD = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")
LARGEST_NUMBER = Decimal(10) ** 15  # stored as JSON: beyond this, floats lose digits


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
        row.description, row.emergency = entry.description, entry.emergency
        row.attributes = [attribute.model_dump() for attribute in entry.attributes]
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
            emergency=row.emergency,
            attributes=attributes_of(row),
        )
        for row in rows
    ]


def attributes_of(category: Category) -> list[schemas.AttributeIn]:
    """The category's questions in the order they are asked."""
    defined = [schemas.AttributeIn.model_validate(raw) for raw in category.attributes or []]
    return sorted(defined, key=lambda attribute: (attribute.order, attribute.code))


def split_answers(fields: Mapping[str, list[str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """A posted form's plain fields and its answers to the category's questions, which arrive as
    ``attribute[CODE]`` or, for several choices, ``attribute[CODE][]`` (the Open311 convention)."""
    plain: dict[str, str] = {}
    answers: dict[str, list[str]] = {}
    for name, values in fields.items():
        match = _ATTRIBUTE_FIELD.match(name)
        if match:
            answers.setdefault(match.group(1), []).extend(values)
        elif values:
            plain[name] = values[-1]
    return plain, answers


def checked_answers(category: Category, given: Mapping[str, str | list[str]]) -> dict[str, Any]:
    """The answers to the category's questions as stored; one 422 names every unknown, missing or bad one."""
    definitions = {attribute.code: attribute for attribute in attributes_of(category) if attribute.variable}
    errors = [
        {"field": f"attribute[{code}]", "detail": _("This category asks no such question.")}
        for code in sorted(set(given) - set(definitions))
    ]
    answers: dict[str, Any] = {}
    for code, definition in definitions.items():
        try:
            value = _answer(definition, given.get(code))
        except ValueError as exc:
            errors.append({"field": f"attribute[{code}]", "detail": str(exc)})
            continue
        if value is not None:
            answers[code] = value
    if errors:
        raise ValidationProblem(_("Some answers need correcting."), errors=errors)
    return answers


def _answer(definition: schemas.AttributeIn, raw: str | list[str] | None) -> Any:
    values = [raw] if isinstance(raw, str) else list(raw or [])
    values = [value.strip() for value in values if value.strip()]
    if not values:
        if definition.required:
            raise ValueError(_("This question must be answered."))
        return None
    if definition.datatype == "multivaluelist":
        return _keys(definition, values)
    if len(values) > 1:
        raise ValueError(_("Give one answer."))
    value = values[0]
    if definition.datatype == "singlevaluelist":
        return _keys(definition, values)[0]
    if definition.datatype == "number":
        try:
            number = Decimal(value)
        except InvalidOperation as exc:
            raise ValueError(_("Give a number.")) from exc
        if not number.is_finite() or abs(number) > LARGEST_NUMBER:
            raise ValueError(_("Give a number of at most 15 digits."))
        return int(number) if number == number.to_integral_value() else float(number)
    if definition.datatype == "datetime":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(_("Give a date and time such as 2026-10-08T09:30:00+08:00.")) from exc
        return moment.isoformat()
    limit = 4000 if definition.datatype == "text" else 400
    if len(value) > limit:
        raise ValueError(_("At most %(count)s characters.", count=limit))
    return value


def _keys(definition: schemas.AttributeIn, chosen: list[str]) -> list[str]:
    allowed = {value.key for value in definition.values}
    unknown = [key for key in chosen if key not in allowed]
    if unknown:
        raise ValueError(_("Not one of the choices: %(keys)s", keys=", ".join(unknown)))
    return list(dict.fromkeys(chosen))
