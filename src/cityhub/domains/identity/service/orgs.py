"""The org-unit tree: create, move-free edits, listing within scope, and CSV/GeoJSON import."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from cityhub.domains.identity.models import ORG_UNIT_KINDS, ORGANIZATION_KINDS, Organization, OrgUnit
from cityhub.domains.identity.service.access import Grant, Principal, require
from cityhub.kernel import audit, geo
from cityhub.kernel.errors import Conflict, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _

H3_RESOLUTION = 9
Authorizer = Callable[[str], None]
# Which kind sits under which: city > district > subdistrict > community > building > household.
PARENT_KIND = {
    kind: ORG_UNIT_KINDS[index - 1] if index else None for index, kind in enumerate(ORG_UNIT_KINDS)
}


@dataclass
class OrgUnitInput:
    kind: str
    code: str
    name: str
    parent_code: str | None = None
    name_en: str | None = None
    address: str | None = None
    boundary: dict[str, Any] | None = None
    lon: float | None = None
    lat: float | None = None


def get_unit(session: Session, unit_id: int) -> OrgUnit:
    unit = session.get(OrgUnit, unit_id)
    if unit is None:
        raise NotFound(_("Org unit %(id)s does not exist.", id=unit_id))
    return unit


def get_unit_by_code(session: Session, code: str) -> OrgUnit:
    unit = session.scalar(select(OrgUnit).where(OrgUnit.code == code))
    if unit is None:
        raise NotFound(_("Org unit %(code)s does not exist.", code=code))
    return unit


def get_organization(session: Session, organization_id: int) -> Organization:
    organization = session.get(Organization, organization_id)
    if organization is None:
        raise NotFound(_("Organisation %(id)s does not exist.", id=organization_id))
    return organization


def organizations_by_id(session: Session, organization_ids: Iterable[int]) -> dict[int, Organization]:
    """Several organisations in one query, by id (unknown ids are left out)."""
    wanted = set(organization_ids)
    if not wanted:
        return {}
    return {org.id: org for org in session.scalars(select(Organization).where(Organization.id.in_(wanted)))}


def get_organization_by_code(session: Session, code: str) -> Organization:
    organization = session.scalar(select(Organization).where(Organization.code == code))
    if organization is None:
        raise NotFound(_("Organisation %(code)s does not exist.", code=code))
    return organization


def organization_unit_path(session: Session, organization_id: int) -> str:
    """The path of an organisation's home unit (to check that a grant or key may name it)."""
    path = session.scalar(
        select(OrgUnit.path)
        .join(Organization, Organization.org_unit_id == OrgUnit.id)
        .where(Organization.id == organization_id)
    )
    if path is None:
        raise NotFound(_("Organisation %(id)s does not exist.", id=organization_id), field="organization_id")
    return path


def root_path(session: Session) -> str:
    """Where people and things without a home unit belong: the root of the tree."""
    root = root_unit(session)
    return root.path if root else "/"


def root_unit(session: Session) -> OrgUnit | None:
    return session.scalar(select(OrgUnit).where(OrgUnit.parent_id.is_(None)).order_by(OrgUnit.id).limit(1))


def system_principal(session: Session, name: str, permissions: Iterable[str]) -> Principal:
    """The platform itself acting city-wide (the CLI, demo seeders) with just ``permissions``; audited as
    ``system:<name>``. Refused before the org-unit tree exists, since nothing city-wide can be done yet."""
    root = root_unit(session)
    if root is None:
        raise NotFound(_("Create the org-unit tree first (cityhub orgs import)."))
    grant = Grant("operator", root.id, root.path, None, frozenset(permissions))
    return Principal("system", 0, name, None, (grant,))


def create_unit(session: Session, data: OrgUnitInput, authorize: Authorizer | None = None) -> OrgUnit:
    """Validate kind, parent and geometry, then insert with its materialised path.

    ``authorize`` is called with the parent's path ("/" for a root); it raises when the caller may not add
    a unit there.
    """
    if data.kind not in ORG_UNIT_KINDS:
        raise ValidationProblem(_("Unknown org unit kind %(kind)s.", kind=data.kind), field="kind")
    _check_lengths(data)
    parent = get_unit_by_code(session, data.parent_code) if data.parent_code else None
    if authorize is not None:
        authorize(parent.path if parent else "/")
    expected_parent = PARENT_KIND[data.kind]
    if (parent.kind if parent else None) != expected_parent:
        raise ValidationProblem(
            _("A %(kind)s must sit under a %(parent)s.", kind=data.kind, parent=expected_parent or "-"),
            field="parent_code",
        )
    if session.scalar(select(OrgUnit.id).where(OrgUnit.code == data.code)) is not None:
        raise Conflict(_("Org unit code %(code)s is already used.", code=data.code), field="code")
    lon, lat = _location(data)
    unit = OrgUnit(
        kind=data.kind,
        code=data.code,
        name=data.name,
        name_en=data.name_en,
        parent_id=parent.id if parent else None,
        depth=parent.depth + 1 if parent else 0,
        path="",
        address=data.address,
        boundary=data.boundary,
        lon=lon,
        lat=lat,
        h3_cell=geo.cell_for(lon, lat, H3_RESOLUTION) if lon is not None and lat is not None else None,
    )
    session.add(unit)
    session.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    return unit


def add_unit(session: Session, principal: Principal, data: OrgUnitInput) -> OrgUnit:
    """Create a unit where the principal may manage units, and record it in the audit chain."""
    unit = create_unit(session, data, lambda path: require(principal, "identity.orgs.manage", path))
    audit.record(
        session,
        actor=principal.actor,
        action="identity.org_unit.created",
        object_type="org_unit",
        object_id=str(unit.id),
        details={"code": unit.code},
    )
    return unit


def _check_lengths(data: OrgUnitInput) -> None:
    limits = {"code": 64, "name": 200, "name_en": 200, "address": 400, "parent_code": 64}
    for field, limit in limits.items():
        value = getattr(data, field)
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= limit):
            raise ValidationProblem(
                _("%(field)s must be text of 1 to %(limit)s characters.", field=field, limit=limit),
                field=field,
            )


def _location(data: OrgUnitInput) -> tuple[float | None, float | None]:
    if data.boundary is not None:
        try:
            data.boundary = geo.validate_geometry(data.boundary)
        except ValueError as exc:
            raise ValidationProblem(
                _("Invalid boundary: %(reason)s", reason=str(exc)), field="boundary"
            ) from exc
        if data.lon is None or data.lat is None:
            return geo.polygon_centroid(data.boundary)
    if (data.lon is None) != (data.lat is None):
        raise ValidationProblem(_("Give both lon and lat, or neither."), field="lon")
    if data.lon is not None and data.lat is not None:
        try:
            geo.point(data.lon, data.lat)
        except ValueError as exc:
            raise ValidationProblem(str(exc), field="lon") from exc
    return data.lon, data.lat


def units_in_scope(scopes: list[str]) -> Select[OrgUnit]:
    """Units inside any of the subtrees (paths) a principal may see."""
    statement = select(OrgUnit)
    if not scopes:
        return statement.where(OrgUnit.id.is_(None))
    condition = OrgUnit.path.startswith(scopes[0], autoescape=True)
    for scope in scopes[1:]:
        condition = condition | OrgUnit.path.startswith(scope, autoescape=True)
    return statement.where(condition)


def search_units(scopes: list[str], q: str | None = None) -> Select[OrgUnit]:
    """Units in scope whose name, English name or code contains ``q`` (% and _ match only themselves)."""
    statement = units_in_scope(scopes)
    if q:
        statement = statement.where(
            or_(
                OrgUnit.name.contains(q, autoescape=True),
                OrgUnit.code.contains(q, autoescape=True),
                OrgUnit.name_en.contains(q, autoescape=True),
            )
        )
    return statement


def unit_ids_in_scope(scopes: list[str]) -> Select[Any]:
    """A subquery of the ids of units in scope, for filtering rows that point at a unit."""
    return units_in_scope(scopes).with_only_columns(OrgUnit.id)


def unit_containing(session: Session, lon: float, lat: float, kind: str = "community") -> OrgUnit | None:
    """The unit of a kind whose boundary contains the point (used for dispatch by location)."""
    unit_id = unit_locator(session, kind)(lon, lat)
    return session.get(OrgUnit, unit_id) if unit_id is not None else None


def unit_locator(session: Session, kind: str = "community") -> Callable[[float, float], int | None]:
    """A function from a point to the id of the unit of ``kind`` containing it, with the boundaries read
    once: for placing many points (a batch of reports) without reading them again for each."""
    outlines = [
        (unit_id, boundary)
        for unit_id, boundary in session.execute(
            select(OrgUnit.id, OrgUnit.boundary).where(OrgUnit.kind == kind, OrgUnit.boundary.is_not(None))
        )
        if boundary
    ]

    def locate(lon: float, lat: float) -> int | None:
        return next(
            (unit_id for unit_id, boundary in outlines if geo.point_in_polygon(lon, lat, boundary)), None
        )

    return locate


def read_import_file(name: str, content: bytes) -> list[OrgUnitInput]:
    """Rows of a CSV (kind,code,name,parent_code[,name_en,address,lon,lat,boundary]) or a GeoJSON
    FeatureCollection whose features carry those fields as properties and the boundary as geometry."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationProblem(_("The file must be UTF-8 text.")) from exc
    if name.lower().endswith((".geojson", ".json")):
        return list(_from_geojson(text))
    return list(_from_csv(text))


def _from_csv(text: str) -> Iterator[OrgUnitInput]:
    for line_number, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            yield OrgUnitInput(
                kind=row["kind"].strip(),
                code=row["code"].strip(),
                name=row["name"].strip(),
                parent_code=(row.get("parent_code") or "").strip() or None,
                name_en=(row.get("name_en") or "").strip() or None,
                address=(row.get("address") or "").strip() or None,
                lon=float(row["lon"]) if row.get("lon") else None,
                lat=float(row["lat"]) if row.get("lat") else None,
                boundary=json.loads(row["boundary"]) if row.get("boundary") else None,
            )
        except (KeyError, ValueError, AttributeError) as exc:
            raise ValidationProblem(
                _("Line %(line)s of the file is not valid: %(reason)s", line=line_number, reason=str(exc)),
                line=line_number,
            ) from exc


def _from_geojson(text: str) -> Iterator[OrgUnitInput]:
    try:
        collection = json.loads(text)
        features = collection["features"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationProblem(_("The file is not a GeoJSON FeatureCollection.")) from exc
    if not isinstance(features, list):
        raise ValidationProblem(_("The file is not a GeoJSON FeatureCollection."))
    for index, feature in enumerate(features):
        properties = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(properties, dict):
            raise ValidationProblem(
                _("Feature %(index)s is not a GeoJSON feature with properties.", index=index), feature=index
            )
        try:
            yield OrgUnitInput(
                kind=str(properties["kind"]),
                code=str(properties["code"]),
                name=str(properties["name"]),
                parent_code=_optional_text(properties.get("parent_code")),
                name_en=_optional_text(properties.get("name_en")),
                address=_optional_text(properties.get("address")),
                boundary=feature.get("geometry"),
            )
        except KeyError as exc:
            raise ValidationProblem(
                _("Feature %(index)s lacks the property %(name)s.", index=index, name=str(exc)), feature=index
            ) from exc


MAX_IMPORT_BYTES = 20 * 1024 * 1024


def import_file(
    session: Session,
    principal: Principal,
    filename: str,
    content: bytes,
    on_created: Callable[[], None] | None = None,
) -> int:
    """Import a CSV/GeoJSON upload where the principal may manage units; audited; all or nothing."""
    if len(content) > MAX_IMPORT_BYTES:
        raise ValidationProblem(_("The file is larger than 20 MB."), status=413, slug="too-large")
    rows = read_import_file(filename, content)
    created = import_units(
        session, rows, lambda path: require(principal, "identity.orgs.manage", path), on_created
    )
    audit.record(
        session,
        actor=principal.actor,
        action="identity.org_unit.imported",
        object_type="org_unit",
        object_id="*",
        details={"created": created, "file": filename},
    )
    return created


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def import_units(
    session: Session,
    rows: Iterable[OrgUnitInput],
    authorize: Authorizer | None = None,
    on_created: Callable[[], None] | None = None,
) -> int:
    """Insert rows parents-first (the file may list children before parents); all or nothing."""
    pending = list(rows)
    known = set(session.scalars(select(OrgUnit.code)))
    created = 0
    while pending:
        ready = [row for row in pending if row.parent_code is None or row.parent_code in known]
        if not ready:
            missing = sorted({row.parent_code or "" for row in pending})
            raise ValidationProblem(
                _("Parent codes not found: %(codes)s", codes=", ".join(missing[:10])),
                parent_codes=missing[:50],
            )
        for row in ready:
            create_unit(session, row, authorize)
            known.add(row.code)
            created += 1
            if on_created is not None:
                on_created()
        placed = {id(row) for row in ready}
        pending = [row for row in pending if id(row) not in placed]
    return created


def create_organization(
    session: Session,
    principal: Principal,
    kind: str,
    code: str,
    name: str,
    unit: OrgUnit,
    name_en: str | None = None,
) -> Organization:
    """A department, merchant, clinic, care provider or the operator, at home in an org unit; audited."""
    require(principal, "identity.orgs.manage", unit.path)
    if kind not in ORGANIZATION_KINDS:
        raise ValidationProblem(_("Unknown organisation kind %(kind)s.", kind=kind), field="kind")
    if session.scalar(select(Organization.id).where(Organization.code == code)) is not None:
        raise Conflict(_("Organisation code %(code)s is already used.", code=code), field="code")
    organization = Organization(kind=kind, code=code, name=name, name_en=name_en, org_unit_id=unit.id)
    session.add(organization)
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="identity.organization.created",
        object_type="organization",
        object_id=str(organization.id),
        details={"code": code},
    )
    return organization
