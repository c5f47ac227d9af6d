"""NGSI-LD geo-queries (ETSI GS CIM 009 clause 4.10): parse the four parameters, test target geometries.

``georel`` is one of ``near;maxDistance==N``, ``near;minDistance==N`` (metres), ``within``, ``contains``,
``intersects``, ``equals``, ``disjoint`` and ``overlaps``; ``geometry`` and ``coordinates`` give the reference
geometry (any GeoJSON type but GeometryCollection); ``geoproperty`` names the entity's GeoProperty (default
``location``). The topological relations are the OGC Simple Features ones the clause cites, computed by
GEOS through shapely on lon/lat taken as plane coordinates -- as PostGIS ``geometry`` does, and as the
kernel's geo helpers draw polygons; fine for a city, wrong across the antimeridian. ``near`` is measured on
the WGS84 sphere (haversine, :mod:`cityhub.kernel.geo`) from a Point reference:

- ``maxDistance==d``: the target lies within the buffer of radius d, i.e. *every* point of it is at most
  d metres away (for a Point target: its distance is at most d);
- ``minDistance==d``: the target is disjoint from that buffer, i.e. *every* point of it is more than d away.

So for a Point target exactly one of the two holds. Positions keep longitude and latitude; an altitude is
ignored. Percent-decoding the parameters is the caller's job.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any, TypeAlias

import shapely
import shapely.geometry

from cityhub.kernel.geo import EARTH_RADIUS_M, haversine_m

__all__ = [
    "DEFAULT_GEOPROPERTY",
    "GEOMETRY_TYPES",
    "GeoQuery",
    "GeoQueryError",
    "GeoRel",
    "from_geoq",
    "matches",
    "matches_entity",
    "parse_geoquery",
]

DEFAULT_GEOPROPERTY = "location"
GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")

Position: TypeAlias = tuple[float, float]
Coordinates: TypeAlias = Any  # Position, or tuples of Coordinates nested as the geometry type demands
Resolver: TypeAlias = Callable[[str], str]

_POSITIVE_NUMBER = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NEAR_MODIFIER = re.compile(r"(maxDistance|minDistance)==(.*)")
_ATTRIBUTE_NAME = re.compile(r"[^\W\d_]\w*")


class GeoQueryError(ValueError):
    """A geo-query the broker answers as NGSI-LD ``BadRequestData``; ``parameter`` names the culprit."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class GeoRel(StrEnum):
    NEAR = "near"
    WITHIN = "within"
    CONTAINS = "contains"
    INTERSECTS = "intersects"
    EQUALS = "equals"
    DISJOINT = "disjoint"
    OVERLAPS = "overlaps"


@dataclass(frozen=True)
class GeoQuery:
    """A checked geo-query: hashable, so a broker can cache it per subscription."""

    georel: GeoRel
    geometry: str
    coordinates: Coordinates
    geoproperty: str = DEFAULT_GEOPROPERTY
    max_distance: float | None = None
    min_distance: float | None = None

    @property
    def reference(self) -> dict[str, Any]:
        """The reference geometry as a GeoJSON object."""
        return {"type": self.geometry, "coordinates": _as_lists(self.coordinates)}

    @property
    def georel_text(self) -> str:
        """``georel`` as written in a query, e.g. ``near;maxDistance==2000``."""
        if self.max_distance is not None:
            return f"near;maxDistance=={_number_text(self.max_distance)}"
        if self.min_distance is not None:
            return f"near;minDistance=={_number_text(self.min_distance)}"
        return self.georel.value

    def to_params(self) -> dict[str, str]:
        """The four query parameters (before percent-encoding), e.g. to echo or store the query."""
        return {
            "georel": self.georel_text,
            "geometry": self.geometry,
            "coordinates": json.dumps(self.reference["coordinates"], separators=(",", ":")),
            "geoproperty": self.geoproperty,
        }

    @cached_property
    def _shape(self) -> Any:
        """The reference as a prepared GEOS geometry: built once, then each candidate is tested against it."""
        geometry = shapely.geometry.shape(self.reference)
        shapely.prepare(geometry)
        return geometry


# --- parsing -----------------------------------------------------------------------------------------------


def parse_geoquery(
    georel: str,
    geometry: str,
    coordinates: str | Sequence[Any],
    geoproperty: str | None = None,
) -> GeoQuery:
    """A :class:`GeoQuery` from the HTTP parameters (``coordinates`` as JSON text, or already decoded).

    Raises :class:`GeoQueryError` for anything clause 4.10 does not allow.
    """
    relation, max_distance, min_distance = _parse_georel(georel)
    kind = _parse_geometry_type(geometry)
    checked = _checked_coordinates(kind, _decode_coordinates(coordinates), "coordinates")
    _require_valid_shape(kind, checked)
    if relation is GeoRel.NEAR and kind != "Point":
        raise GeoQueryError("geometry", f"near needs a Point reference geometry, not {kind}")
    return GeoQuery(relation, kind, checked, _parse_geoproperty(geoproperty), max_distance, min_distance)


def from_geoq(geoq: Mapping[str, Any]) -> GeoQuery:
    """A :class:`GeoQuery` from the JSON ``geoQ`` of a subscription or of ``POST /entityOperations/query``."""
    if not isinstance(geoq, Mapping):
        raise GeoQueryError("geoQ", "expected a JSON object with georel, geometry and coordinates")
    for member in ("georel", "geometry", "coordinates"):
        if member not in geoq:
            raise GeoQueryError(member, "is missing")
    for member in ("georel", "geometry"):
        if not isinstance(geoq[member], str):
            raise GeoQueryError(member, "must be a string")
    geoproperty = geoq.get("geoproperty")
    if geoproperty is not None and not isinstance(geoproperty, str):
        raise GeoQueryError("geoproperty", "must be a string")
    return parse_geoquery(geoq["georel"], geoq["geometry"], geoq["coordinates"], geoproperty)


def _parse_georel(text: str) -> tuple[GeoRel, float | None, float | None]:
    head, _, modifier = text.partition(";")
    try:
        relation = GeoRel(head)
    except ValueError:
        allowed = ", ".join(rel.value for rel in GeoRel)
        raise GeoQueryError("georel", f"unknown relation {head!r}; expected one of {allowed}") from None
    if relation is not GeoRel.NEAR:
        if modifier or text != head:
            raise GeoQueryError("georel", f"{relation.value} takes no modifier")
        return relation, None, None
    match = _NEAR_MODIFIER.fullmatch(modifier)
    if match is None:
        raise GeoQueryError("georel", "near needs ';maxDistance==<metres>' or ';minDistance==<metres>'")
    distance = _positive_number(match.group(2))
    return (relation, distance, None) if match.group(1) == "maxDistance" else (relation, None, distance)


def _positive_number(text: str) -> float:
    """PositiveNumber of clause 4.10: a JSON number without minus sign, not zero."""
    if not _POSITIVE_NUMBER.fullmatch(text):
        raise GeoQueryError("georel", f"the distance {text!r} is not a positive number of metres")
    value = float(text)
    if value == 0 or not math.isfinite(value):
        raise GeoQueryError("georel", f"the distance {text!r} must be a finite number above 0")
    return value


def _parse_geometry_type(text: str) -> str:
    if text in GEOMETRY_TYPES:
        return text
    if text == "GeometryCollection":
        raise GeoQueryError("geometry", "GeometryCollection is not allowed as a reference geometry")
    raise GeoQueryError("geometry", f"unknown geometry {text!r}; expected one of {', '.join(GEOMETRY_TYPES)}")


def _parse_geoproperty(name: str | None) -> str:
    if name is None or name == "":
        return DEFAULT_GEOPROPERTY
    if not _ATTRIBUTE_NAME.fullmatch(name):
        raise GeoQueryError("geoproperty", f"{name!r} is not an attribute name")
    return name


def _decode_coordinates(coordinates: str | Sequence[Any]) -> Any:
    if not isinstance(coordinates, str):
        return coordinates
    try:
        return json.loads(coordinates)
    except json.JSONDecodeError as error:
        hint = "" if coordinates.lstrip().startswith("[") else " (wrap the numbers in [ ])"
        raise GeoQueryError("coordinates", f"not a JSON array: {error.msg}{hint}") from None


# --- GeoJSON coordinates -----------------------------------------------------------------------------------


def _checked_coordinates(kind: str, value: Any, parameter: str) -> Coordinates:
    """The coordinates as nested tuples of (lon, lat), checked against RFC 7946 for the geometry type."""
    if kind == "Point":
        return _position(value, parameter)
    if kind == "MultiPoint":
        return tuple(_position(item, parameter) for item in _array(value, 1, "a MultiPoint", parameter))
    if kind == "LineString":
        return _line(value, parameter)
    if kind == "MultiLineString":
        return tuple(_line(item, parameter) for item in _array(value, 1, "a MultiLineString", parameter))
    if kind == "Polygon":
        return _polygon(value, parameter)
    return tuple(_polygon(item, parameter) for item in _array(value, 1, "a MultiPolygon", parameter))


def _array(value: Any, minimum: int, what: str, parameter: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple) or len(value) < minimum:
        raise GeoQueryError(parameter, f"{what} needs an array of at least {minimum} item(s)")
    return value


def _position(value: Any, parameter: str) -> Position:
    if not isinstance(value, list | tuple) or len(value) not in (2, 3):
        raise GeoQueryError(parameter, "a position is [longitude, latitude] (optionally with altitude)")
    if not all(isinstance(number, int | float) and not isinstance(number, bool) for number in value):
        raise GeoQueryError(parameter, "a position holds numbers only")
    lon, lat = float(value[0]), float(value[1])
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise GeoQueryError(parameter, f"longitude {value[0]} is outside [-180, 180]")
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise GeoQueryError(parameter, f"latitude {value[1]} is outside [-90, 90]")
    return lon, lat


def _line(value: Any, parameter: str) -> tuple[Position, ...]:
    return tuple(_position(item, parameter) for item in _array(value, 2, "a LineString", parameter))


def _polygon(value: Any, parameter: str) -> tuple[tuple[Position, ...], ...]:
    rings = []
    for ring in _array(value, 1, "a Polygon", parameter):
        positions = tuple(_position(item, parameter) for item in _array(ring, 4, "a linear ring", parameter))
        if positions[0] != positions[-1]:
            raise GeoQueryError(parameter, "a linear ring must end where it starts")
        rings.append(positions)
    return tuple(rings)


def _require_valid_shape(kind: str, coordinates: Coordinates) -> None:
    """Self-intersecting rings and the like make every relation meaningless: refuse them up front."""
    if kind not in ("Polygon", "MultiPolygon"):
        return
    reason = shapely.is_valid_reason(shapely.geometry.shape({"type": kind, "coordinates": coordinates}))
    if reason != "Valid Geometry":
        raise GeoQueryError("coordinates", f"invalid {kind}: {reason}")


def _as_lists(coordinates: Coordinates) -> Any:
    if isinstance(coordinates, tuple):
        return [_as_lists(item) for item in coordinates]
    return coordinates


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


# --- matching ----------------------------------------------------------------------------------------------

_RELATIONS: dict[GeoRel, Callable[[Any, Any], Any]] = {
    # The prepared reference is the first argument, so each relation is read from the reference's side.
    GeoRel.WITHIN: shapely.contains,
    GeoRel.CONTAINS: shapely.within,
    GeoRel.INTERSECTS: shapely.intersects,
    GeoRel.EQUALS: shapely.equals,
    GeoRel.DISJOINT: shapely.disjoint,
    GeoRel.OVERLAPS: shapely.overlaps,
}


def matches(query: GeoQuery, geometry: Mapping[str, Any]) -> bool:
    """Whether a target GeoJSON geometry stands in the query's relation to the reference geometry.

    A target that is not a valid GeoJSON geometry of the six supported types never matches: the broker
    validates GeoProperties on write, so a bad one here is stored data to skip, not a client error.
    """
    target = _target(geometry)
    if target is None:
        return False
    kind, coordinates = target
    if query.georel is GeoRel.NEAR:
        return _near(query, kind, coordinates)
    shape = shapely.geometry.shape({"type": kind, "coordinates": coordinates})
    return bool(_RELATIONS[query.georel](query._shape, shape))


def matches_entity(
    query: GeoQuery, entity: Mapping[str, Any], attribute_resolver: Resolver | None = None
) -> bool:
    """Whether the entity's GeoProperty named by ``geoproperty`` matches (any instance, for datasetIds).

    Entities without that GeoProperty never match (clause 4.10). ``attribute_resolver`` maps the name to the
    entity's key, e.g. expands it to its IRI.
    """
    name = (attribute_resolver or _identity)(query.geoproperty)
    attribute = entity.get(name)
    instances = attribute if isinstance(attribute, list) else [attribute]
    return any(
        isinstance(instance, Mapping)
        and _is_geoproperty(instance)
        and isinstance(instance.get("value"), Mapping)
        and matches(query, instance["value"])
        for instance in instances
    )


def _identity(name: str) -> str:
    return name


def _is_geoproperty(instance: Mapping[str, Any]) -> bool:
    declared = instance.get("type")
    return isinstance(declared, str) and declared.rsplit("/", 1)[-1] == "GeoProperty"


def _target(geometry: Mapping[str, Any]) -> tuple[str, Coordinates] | None:
    kind = geometry.get("type") if isinstance(geometry, Mapping) else None
    if kind not in GEOMETRY_TYPES:
        return None
    try:
        coordinates = _checked_coordinates(kind, geometry.get("coordinates"), "target")
    except GeoQueryError:
        return None
    return kind, coordinates


# --- near: distances on the sphere -------------------------------------------------------------------------


def _near(query: GeoQuery, kind: str, coordinates: Coordinates) -> bool:
    origin: Position = query.coordinates
    if query.max_distance is not None:
        return _farthest_m(origin, kind, coordinates) <= query.max_distance
    assert query.min_distance is not None
    return _nearest_m(origin, kind, coordinates) > query.min_distance


def _farthest_m(origin: Position, kind: str, coordinates: Coordinates) -> float:
    """The largest distance from the origin to any point of the target.

    A vertex always attains it: within a city-sized circle the distance to the origin has no maximum inside
    an edge, and the interior of a polygon is nearer than its boundary.
    """
    return max(haversine_m(*origin, *vertex) for vertex in _vertices(kind, coordinates))


def _nearest_m(origin: Position, kind: str, coordinates: Coordinates) -> float:
    """The smallest distance from the origin to any point of the target (0 when a polygon covers it)."""
    if kind in ("Polygon", "MultiPolygon"):
        shape = shapely.geometry.shape({"type": kind, "coordinates": coordinates})
        if shapely.covers(shape, shapely.Point(origin)):
            return 0.0
    segments = _segments(kind, coordinates)
    if not segments:
        return min(haversine_m(*origin, *vertex) for vertex in _vertices(kind, coordinates))
    return min(_arc_distance_m(origin, start, end) for start, end in segments)


def _vertices(kind: str, coordinates: Coordinates) -> list[Position]:
    if kind == "Point":
        return [coordinates]
    if kind in ("MultiPoint", "LineString"):
        return list(coordinates)
    if kind in ("MultiLineString", "Polygon"):
        return [position for part in coordinates for position in part]
    return [position for polygon in coordinates for ring in polygon for position in ring]


def _segments(kind: str, coordinates: Coordinates) -> list[tuple[Position, Position]]:
    lines: list[Sequence[Position]]
    if kind == "LineString":
        lines = [coordinates]
    elif kind in ("MultiLineString", "Polygon"):
        lines = list(coordinates)
    elif kind == "MultiPolygon":
        lines = [ring for polygon in coordinates for ring in polygon]
    else:
        return []
    return [(line[index], line[index + 1]) for line in lines for index in range(len(line) - 1)]


Vector: TypeAlias = tuple[float, float, float]


def _unit_vector(position: Position) -> Vector:
    lon, lat = math.radians(position[0]), math.radians(position[1])
    return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


def _cross(a: Vector, b: Vector) -> Vector:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _dot(a: Vector, b: Vector) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _arc_distance_m(point: Position, start: Position, end: Position) -> float:
    """The great-circle distance from a point to the shortest arc between two positions.

    The perpendicular foot counts when it falls between the ends (cross-track distance); otherwise the
    nearer end is the answer.
    """
    p, a, b = _unit_vector(point), _unit_vector(start), _unit_vector(end)
    normal = _cross(a, b)
    length = math.sqrt(_dot(normal, normal))
    if length < 1e-15:  # a degenerate (zero-length) edge
        return min(haversine_m(*point, *start), haversine_m(*point, *end))
    n = (normal[0] / length, normal[1] / length, normal[2] / length)
    offset = _dot(p, n)
    foot = (p[0] - offset * n[0], p[1] - offset * n[1], p[2] - offset * n[2])
    if _dot(_cross(a, foot), n) >= 0 and _dot(_cross(foot, b), n) >= 0:
        return abs(math.asin(max(-1.0, min(1.0, offset)))) * EARTH_RADIUS_M
    return min(haversine_m(*point, *start), haversine_m(*point, *end))


def is_geometry(geometry: Any) -> bool:
    """Whether a value is a GeoJSON geometry a GeoProperty may hold (the six supported types, well formed)."""
    return isinstance(geometry, Mapping) and _target(geometry) is not None


def geometry_bounds(geometry: Mapping[str, Any]) -> tuple[float, float, float, float] | None:
    """``(min_lon, min_lat, max_lon, max_lat)`` of a geometry, or None when it is not a valid one."""
    target = _target(geometry)
    if target is None:
        return None
    vertices = _vertices(*target)
    lons = [vertex[0] for vertex in vertices]
    lats = [vertex[1] for vertex in vertices]
    return min(lons), min(lats), max(lons), max(lats)
