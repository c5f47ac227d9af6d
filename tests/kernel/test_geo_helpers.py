"""Geo helpers: GeoJSON validation, distances, point-in-polygon, centroids and the H3 proximity index."""

from __future__ import annotations

import math
from typing import Any

import h3
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cityhub.kernel.geo import (
    EARTH_RADIUS_M,
    cell_for,
    cells_within,
    haversine_m,
    point,
    point_in_polygon,
    polygon_centroid,
    validate_geometry,
)


def square(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


FRAME_WITH_HOLE = {"type": "Polygon", "coordinates": [square(0, 0, 4, 4), square(1, 1, 3, 3)]}
TWO_ISLANDS = {
    "type": "MultiPolygon",
    "coordinates": [[square(0, 0, 1, 1)], [square(10, 10, 12, 12)]],
}


def test_valid_geometries_are_normalised_to_floats() -> None:
    assert point(121, 31.2) == {"type": "Point", "coordinates": [121.0, 31.2]}
    assert validate_geometry({"type": "Point", "coordinates": (121.5, 31.2, 4.0)})["coordinates"] == [
        121.5,
        31.2,
    ]
    assert validate_geometry(TWO_ISLANDS)["coordinates"][1][0][0] == [10.0, 10.0]


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, "expected a GeoJSON object"),
        ("POINT(1 2)", "expected a GeoJSON object"),
        ({"type": "Point", "coordinates": [181, 0]}, "longitude 181 is outside"),
        ({"type": "Point", "coordinates": [0, -90.5]}, "latitude -90.5 is outside"),
        ({"type": "Point", "coordinates": [float("nan"), 0]}, "longitude"),
        ({"type": "Point", "coordinates": [True, 0]}, "numbers only"),
        ({"type": "Point", "coordinates": ["1", "2"]}, "numbers only"),
        ({"type": "Point", "coordinates": [1]}, "a position is"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "closed"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "at least 4"),
        ({"type": "Polygon", "coordinates": []}, "at least 1"),
        ({"type": "MultiPolygon", "coordinates": [[square(0, 0, 1, 1)], []]}, "at least 1"),
    ],
)
def test_bad_geometries_are_refused_with_a_reason(geometry: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_geometry(geometry)


def test_haversine_matches_known_distances() -> None:
    assert haversine_m(0, 0, 0, 1) == pytest.approx(EARTH_RADIUS_M * math.pi / 180)
    # People's Square, Shanghai -> Tiananmen, Beijing: about 1,067 km
    assert haversine_m(121.4737, 31.2304, 116.3975, 39.9087) == pytest.approx(1_067_000, rel=0.01)
    assert haversine_m(179.9, 0, -179.9, 0) == pytest.approx(22_239, rel=0.001)  # across the antimeridian
    assert haversine_m(10, 20, 10, 20) == 0


@pytest.mark.parametrize(
    ("lon", "lat", "inside"),
    [
        (0.5, 0.5, True),  # in the frame
        (2, 2, False),  # in the hole
        (3.5, 2, True),
        (5, 2, False),
        (-0.1, 2, False),
    ],
)
def test_point_in_polygon_respects_holes(lon: float, lat: float, inside: bool) -> None:
    assert point_in_polygon(lon, lat, FRAME_WITH_HOLE) is inside


def test_point_in_multipolygon_checks_every_part() -> None:
    assert point_in_polygon(0.5, 0.5, TWO_ISLANDS)
    assert point_in_polygon(11, 11, TWO_ISLANDS)
    assert not point_in_polygon(5, 5, TWO_ISLANDS)
    with pytest.raises(ValueError, match="Polygon or MultiPolygon"):
        point_in_polygon(0, 0, point(0, 0))


def test_concave_polygon() -> None:
    u_shape = {
        "type": "Polygon",
        "coordinates": [[[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3], [0, 0]]],
    }
    assert point_in_polygon(0.5, 2, u_shape)
    assert not point_in_polygon(1.5, 2, u_shape)


def test_centroids_weigh_area_and_subtract_holes() -> None:
    assert polygon_centroid({"type": "Polygon", "coordinates": [square(0, 0, 2, 2)]}) == pytest.approx((1, 1))
    assert polygon_centroid(FRAME_WITH_HOLE) == pytest.approx((2, 2))
    off_centre_hole = {"type": "Polygon", "coordinates": [square(0, 0, 4, 4), square(2, 0.5, 3.5, 3.5)]}
    x, y = polygon_centroid(off_centre_hole)
    assert x < 2
    assert y == pytest.approx(2)
    # area 1 at (0.5, 0.5) and area 4 at (11, 11)
    assert polygon_centroid(TWO_ISLANDS) == pytest.approx(((0.5 + 4 * 11) / 5, (0.5 + 4 * 11) / 5))
    flat = {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [1, 0], [0, 0]]]}
    assert polygon_centroid(flat) == pytest.approx((1, 0))


def test_cell_for_is_the_h3_cell() -> None:
    cell = cell_for(121.4737, 31.2304, 9)
    assert h3.get_resolution(cell) == 9
    assert cell == h3.latlng_to_cell(31.2304, 121.4737, 9)
    with pytest.raises(ValueError, match="latitude"):
        cell_for(121, 91, 9)


def test_cells_within_zero_radius_is_the_point_cell_and_huge_radii_are_refused() -> None:
    assert cell_for(121.4737, 31.2304, 9) in cells_within(121.4737, 31.2304, 0, 9)
    with pytest.raises(ValueError, match="too many cells"):
        cells_within(121.4737, 31.2304, 200_000, 12)
    with pytest.raises(ValueError, match="radius"):
        cells_within(121.4737, 31.2304, -1, 9)


def destination(lon: float, lat: float, bearing_deg: float, distance_m: float) -> tuple[float, float]:
    """The point reached from (lon, lat) along a great circle (spherical direct problem)."""
    delta = distance_m / EARTH_RADIUS_M
    theta, phi1, lmb1 = math.radians(bearing_deg), math.radians(lat), math.radians(lon)
    phi2 = math.asin(math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta))
    lmb2 = lmb1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1), math.cos(delta) - math.sin(phi1) * math.sin(phi2)
    )
    return (math.degrees(lmb2) + 540) % 360 - 180, math.degrees(phi2)


@settings(max_examples=300, deadline=None)
@given(
    lon=st.floats(-179.0, 179.0),
    lat=st.floats(-84.0, 84.0),
    radius=st.floats(1.0, 3_000.0),
    res=st.integers(5, 10),
    bearing=st.floats(0.0, 360.0),
    fraction=st.one_of(st.just(1.0), st.floats(0.0, 1.0)),
)
def test_cells_within_never_misses_a_point_inside_the_radius(
    lon: float, lat: float, radius: float, res: int, bearing: float, fraction: float
) -> None:
    target = destination(lon, lat, bearing, radius * fraction)
    assume(haversine_m(lon, lat, *target) <= radius)
    assert cell_for(*target, res) in cells_within(lon, lat, radius, res)


@pytest.mark.parametrize("res", [3, 7])
def test_cells_within_covers_the_rim_around_a_pentagon(res: int) -> None:
    pentagon = next(iter(h3.get_pentagons(res)))
    lat, lon = h3.cell_to_latlng(pentagon)
    radius = 3 * h3.average_hexagon_edge_length(res, "m")
    cells = set(cells_within(lon, lat, radius, res))
    for bearing in range(0, 360, 5):
        assert cell_for(*destination(lon, lat, bearing, radius * 0.999), res) in cells
