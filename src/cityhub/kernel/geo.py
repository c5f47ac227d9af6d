"""Geo helpers: WGS84 lon/lat, GeoJSON validation, distances, point-in-polygon and an H3 proximity index.

The proximity index works the same on SQLite and PostgreSQL: store ``cell_for(lon, lat, RES)`` in an
indexed column next to each row's coordinates, then for "within r metres of (lon, lat)" query
``WHERE cell IN cells_within(lon, lat, r, RES)`` and keep the rows whose ``haversine_m`` is <= r. The
cell list is guaranteed to cover every point within the radius, so the exact check only removes rows.

Everything is on a sphere of the mean Earth radius (errors up to ~0.5 % against the ellipsoid), and
polygons are taken as drawn in lon/lat (no antimeridian crossing) — fine for a city.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import h3
import numpy as np
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from cityhub.kernel.settings import get_settings

EARTH_RADIUS_M = 6_371_008.8
MAX_CELLS = 20_000
SUPPORTED_TYPES = ("Point", "Polygon", "MultiPolygon")

Position = tuple[float, float]
Ring = list[Position]


def validate_geometry(geometry: Any) -> dict[str, Any]:
    """A GeoJSON Point, Polygon or MultiPolygon, checked and normalised to float [lon, lat] lists.

    Raises ValueError naming the problem: unknown type, a position out of range, an unclosed or too
    short ring.
    """
    if not isinstance(geometry, Mapping) or geometry.get("type") not in SUPPORTED_TYPES:
        raise ValueError(f"expected a GeoJSON object of type {', '.join(SUPPORTED_TYPES)}")
    kind, coordinates = geometry["type"], geometry.get("coordinates")
    if kind == "Point":
        normalised: Any = list(_position(coordinates))
    elif kind == "Polygon":
        normalised = _polygon(coordinates)
    else:
        normalised = [_polygon(polygon) for polygon in _sequence(coordinates, "MultiPolygon", 1)]
    return {"type": kind, "coordinates": normalised}


def point(lon: float, lat: float) -> dict[str, Any]:
    """A validated GeoJSON Point."""
    return validate_geometry({"type": "Point", "coordinates": [lon, lat]})


def _sequence(value: Any, what: str, minimum: int) -> Sequence[Any]:
    if not isinstance(value, list | tuple) or len(value) < minimum:
        raise ValueError(f"{what} needs a list of at least {minimum} item(s)")
    return value


def _position(value: Any) -> Position:
    if not isinstance(value, list | tuple) or len(value) not in (2, 3):
        raise ValueError("a position is [longitude, latitude] (optionally with altitude)")
    if not all(isinstance(number, int | float) and not isinstance(number, bool) for number in value):
        raise ValueError("a position holds numbers only")
    lon, lat = float(value[0]), float(value[1])
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise ValueError(f"longitude {value[0]} is outside [-180, 180]")
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise ValueError(f"latitude {value[1]} is outside [-90, 90]")
    return lon, lat


def _polygon(value: Any) -> list[list[list[float]]]:
    rings = [_ring(ring) for ring in _sequence(value, "a Polygon", 1)]
    return [[list(position) for position in ring] for ring in rings]


def _ring(value: Any) -> Ring:
    positions = [_position(item) for item in _sequence(value, "a linear ring", 4)]
    if positions[0] != positions[-1]:
        raise ValueError("a linear ring must end where it starts (closed)")
    return positions


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _polygons(geometry: Any) -> list[list[Ring]]:
    """A (Multi)Polygon as a list of polygons, each a list of rings (outer first, then holes)."""
    checked = validate_geometry(geometry)
    if checked["type"] == "Point":
        raise ValueError("expected a Polygon or MultiPolygon, got a Point")
    polygons = [checked["coordinates"]] if checked["type"] == "Polygon" else checked["coordinates"]
    return [[[(lon, lat) for lon, lat in ring] for ring in polygon] for polygon in polygons]


def point_in_polygon(lon: float, lat: float, geometry: Any) -> bool:
    """Whether the point is inside a Polygon/MultiPolygon (outside its holes); edges may go either way."""
    return Area(geometry).contains(lon, lat)


class Area:
    """A Polygon/MultiPolygon checked once and ready for many point tests (with a bounding-box shortcut)."""

    def __init__(self, geometry: Any) -> None:
        self.polygons = _polygons(geometry)
        points = [point for polygon in self.polygons for point in polygon[0]]
        self.west, self.east = min(p[0] for p in points), max(p[0] for p in points)
        self.south, self.north = min(p[1] for p in points), max(p[1] for p in points)

    def contains(self, lon: float, lat: float) -> bool:
        if not (self.west <= lon <= self.east and self.south <= lat <= self.north):
            return False
        return any(
            _in_ring(lon, lat, polygon[0]) and not any(_in_ring(lon, lat, hole) for hole in polygon[1:])
            for polygon in self.polygons
        )


def _in_ring(x: float, y: float, ring: Ring) -> bool:
    """Ray casting (even-odd rule) towards +x."""
    inside = False
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def polygon_centroid(geometry: Any) -> Position:
    """The area-weighted centroid (lon, lat) of a Polygon/MultiPolygon, holes subtracted.

    Computed in the lon/lat plane, which is accurate at city scale. A shape without area (all points on
    a line) falls back to the mean of its outer vertices.
    """
    total_area = sum_x = sum_y = 0.0
    vertices: list[Position] = []
    for polygon in _polygons(geometry):
        vertices.extend(polygon[0][:-1])
        for index, ring in enumerate(polygon):
            area, cx, cy = _ring_moments(ring)
            sign = 1.0 if index == 0 else -1.0  # holes subtract whatever their winding
            total_area += sign * abs(area)
            sum_x += sign * abs(area) * cx
            sum_y += sign * abs(area) * cy
    if abs(total_area) < 1e-18:
        return (sum(v[0] for v in vertices) / len(vertices), sum(v[1] for v in vertices) / len(vertices))
    return sum_x / total_area, sum_y / total_area


def _ring_moments(ring: Ring) -> tuple[float, float, float]:
    """Signed area and centroid of a closed ring (shoelace), relative to its first vertex for precision."""
    x0, y0 = ring[0]
    area = cx = cy = 0.0
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        ax, ay, bx, by = x1 - x0, y1 - y0, x2 - x0, y2 - y0
        cross = ax * by - bx * ay
        area += cross
        cx += (ax + bx) * cross
        cy += (ay + by) * cross
    area /= 2.0
    if area == 0.0:
        return 0.0, x0, y0
    return area, x0 + cx / (6.0 * area), y0 + cy / (6.0 * area)


def cell_for(lon: float, lat: float, res: int) -> str:
    """The H3 cell (hex string) holding the point at resolution ``res`` (0-15)."""
    lon, lat = _position([lon, lat])
    return str(h3.latlng_to_cell(lat, lon, res))


def cells_within(lon: float, lat: float, radius_m: float, res: int) -> list[str]:
    """H3 cells at ``res`` that together cover every point within ``radius_m`` of (lon, lat).

    ``k`` for ``grid_disk`` starts from the radius over the centre cell's shortest edge, then grows
    until the boundary of the disk is farther than the radius from the point (cells are distorted, so
    an estimate alone would sometimes miss the rim). Raises ValueError when the disk would exceed
    MAX_CELLS — choose a coarser resolution for such a radius.
    """
    return sorted(cell for cell, _distance in cells_by_distance(lon, lat, radius_m, res))


def cells_by_distance(lon: float, lat: float, radius_m: float, res: int) -> list[tuple[str, float]]:
    """The cells of :func:`cells_within`, each with the distance in metres from the point to the nearest
    point of the cell (0 for the cell holding it), nearest first: a search for the *nearest* few can read
    cells in this order and stop once what it found is nearer than every cell it has not read."""
    if not (math.isfinite(radius_m) and radius_m >= 0):
        raise ValueError("radius must be a finite number of metres >= 0")
    origin = cell_for(lon, lat, res)
    shortest_edge = min(h3.edge_length(edge, "m") for edge in h3.origin_to_directed_edges(origin))
    k = math.ceil(radius_m / (math.sqrt(3) * shortest_edge))
    while True:
        if 3 * k * (k + 1) + 1 > MAX_CELLS:
            raise ValueError(f"a radius of {radius_m:.0f} m needs too many cells at resolution {res}")
        disk = set(h3.grid_disk(origin, k))
        if _rim_distance_m(lon, lat, disk, origin, k) > radius_m:
            return _reaching(lon, lat, radius_m, disk, origin)
        k += 1


def _reaching(
    lon: float, lat: float, radius_m: float, disk: set[str], origin: str
) -> list[tuple[str, float]]:
    """The cells of a hexagonal disk that come within ``radius_m`` of the point, with that distance, nearest
    first: the disk's corners lie outside the circle, and each cell left out saves an index probe and the
    rows in it."""
    cells = sorted(cell for cell in disk if cell != origin)
    if not cells:
        return [(origin, 0.0)]
    starts, ends, owners = _edges(cells)
    distances = _arc_distances_rad(_unit_vectors([(lat, lon)])[0], starts, ends) * EARTH_RADIUS_M
    nearest = np.full(len(cells), np.inf)
    np.minimum.at(nearest, owners, distances)
    reached = sorted(
        (float(distance), cell) for cell, distance in zip(cells, nearest, strict=True) if distance <= radius_m
    )
    return [(origin, 0.0), *((cell, distance) for distance, cell in reached)]


def _edges(cells: Iterable[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The boundary edges of ``cells`` as start and end unit vectors, with the index of the cell of each."""
    starts, ends, owners = [], [], []
    for index, cell in enumerate(cells):
        boundary = h3.cell_to_boundary(cell)
        starts.extend(boundary)
        ends.extend(boundary[1:] + boundary[:1])
        owners.extend([index] * len(boundary))
    return _unit_vectors(starts), _unit_vectors(ends), np.asarray(owners, dtype=np.intp)


def _rim_distance_m(lon: float, lat: float, disk: set[str], origin: str, k: int) -> float:
    """The distance from the point to the nearest edge of any cell just outside the disk (all edges at
    once with numpy: this runs for every ``near`` query)."""
    start, end, _owners = _edges(set(h3.grid_disk(origin, k + 1)) - disk)
    point_vector = _unit_vectors([(lat, lon)])[0]
    return float(_arc_distances_rad(point_vector, start, end).min()) * EARTH_RADIUS_M


def _unit_vectors(latlngs: list[tuple[float, float]]) -> np.ndarray:
    radians = np.radians(np.asarray(latlngs, dtype=float))
    phi, lmb = radians[:, 0], radians[:, 1]
    return np.column_stack((np.cos(phi) * np.cos(lmb), np.cos(phi) * np.sin(lmb), np.sin(phi)))


def _arc_distances_rad(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``_arc_distance_rad`` from one point to many arcs a[i]-b[i] (rows of unit vectors)."""
    normal = np.cross(a, b)
    norm = np.linalg.norm(normal, axis=1)
    degenerate = norm == 0.0
    n = normal / np.where(degenerate, 1.0, norm)[:, None]
    offset = n @ p
    foot = p[None, :] - offset[:, None] * n
    inside = (np.einsum("ij,ij->i", np.cross(a, foot), n) >= 0) & (
        np.einsum("ij,ij->i", np.cross(foot, b), n) >= 0
    )
    to_a = _angles(p, a)
    ends = np.minimum(to_a, _angles(p, b))
    across = np.abs(np.arcsin(np.clip(offset, -1.0, 1.0)))
    return np.where(degenerate, to_a, np.where(inside, across, ends))


def _angles(p: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    crossed = np.cross(vectors, p)
    return np.arctan2(np.linalg.norm(crossed, axis=1), vectors @ p)


# -- PostGIS, an optional accelerator on PostgreSQL --------------------------------------------------------

# Tables keep plain lon/lat columns; where PostGIS is installed, an expression index over this point (same
# expression in the index and the queries, or the planner cannot use it) serves nearest-neighbour searches.
POSTGIS_POINT = "(ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography)"
# Accelerator indexes exist on some servers and not on others, so they are kept out of the models and out of
# Alembic's comparison by this prefix.
POSTGIS_INDEX_PREFIX = "postgis_"
POSTGIS_TABLES = ("spatial_ref_sys",)  # the extension's own
_postgis_by_engine: dict[str, bool] = {}


def create_postgis_point_index(connection: Connection, name: str, table: str, where: str) -> bool:
    """Install the postgis extension when the server offers it and create a GiST index of the table's
    points; False (nothing done) on SQLite or without PostGIS."""
    assert name.startswith(POSTGIS_INDEX_PREFIX)
    if connection.dialect.name != "postgresql":
        return False
    offered = connection.scalar(text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"))
    if not offered:
        return False
    with connection.begin_nested():  # a role that may not create extensions leaves the migration intact
        try:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        except DBAPIError:
            return False
    connection.execute(
        text(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gist ({POSTGIS_POINT}) WHERE {where}")
    )
    return True


def drop_postgis_point_index(connection: Connection, name: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"DROP INDEX IF EXISTS {name}"))


def has_postgis_index(connection: Connection, name: str) -> bool:
    """Whether this database has the PostGIS index ``name`` (asked once per database and index) and the
    platform uses it (``CITYHUB_USE_POSTGIS``)."""
    if connection.dialect.name != "postgresql" or not get_settings().use_postgis:
        return False
    key = f"{connection.engine.url}#{name}"
    if key not in _postgis_by_engine:
        found = connection.scalar(text("SELECT 1 FROM pg_indexes WHERE indexname = :name"), {"name": name})
        _postgis_by_engine[key] = bool(found)
    return _postgis_by_engine[key]
