"""NGSI-LD geo-queries (clause 4.10): parameters checked with reasons, each relation, near on the sphere."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhub.domains.context.query.geoquery import (
    GeoQuery,
    GeoQueryError,
    GeoRel,
    from_geoq,
    matches,
    matches_entity,
    parse_geoquery,
)
from cityhub.kernel.geo import EARTH_RADIUS_M, haversine_m

METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180


def square(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


def polygon(*rings: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(rings)}


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def line(*positions: tuple[float, float]) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [list(position) for position in positions]}


# --- parsing -----------------------------------------------------------------------------------------------

EXAMPLE_2 = "[[[100.0,0.0],[101.0,0.0],[101.0,1.0],[100.0,1.0],[100.0,0.0]]]"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (  # clause 4.10 EXAMPLE 1
            ("near;maxDistance==2000", "Point", "[8,40]", "observationSpace"),
            GeoQuery(GeoRel.NEAR, "Point", (8.0, 40.0), "observationSpace", max_distance=2000.0),
        ),
        (  # clause 4.10 EXAMPLE 2
            ("within", "Polygon", EXAMPLE_2, "location"),
            GeoQuery(
                GeoRel.WITHIN,
                "Polygon",
                (((100.0, 0.0), (101.0, 0.0), (101.0, 1.0), (100.0, 1.0), (100.0, 0.0)),),
            ),
        ),
        (
            ("near;minDistance==0.5", "Point", [8, 40, 120], None),
            GeoQuery(GeoRel.NEAR, "Point", (8.0, 40.0), min_distance=0.5),
        ),
        (
            ("near;maxDistance==1e3", "Point", "[8,40]", ""),
            GeoQuery(GeoRel.NEAR, "Point", (8.0, 40.0), max_distance=1000.0),
        ),
        (
            ("intersects", "LineString", "[[0,0],[1,1]]", None),
            GeoQuery(GeoRel.INTERSECTS, "LineString", ((0.0, 0.0), (1.0, 1.0))),
        ),
        (
            ("contains", "MultiPoint", "[[0,0],[1,1]]", None),
            GeoQuery(GeoRel.CONTAINS, "MultiPoint", ((0.0, 0.0), (1.0, 1.0))),
        ),
        (
            ("equals", "MultiLineString", "[[[0,0],[1,1]],[[2,2],[3,3]]]", None),
            GeoQuery(GeoRel.EQUALS, "MultiLineString", (((0.0, 0.0), (1.0, 1.0)), ((2.0, 2.0), (3.0, 3.0)))),
        ),
        (
            ("disjoint", "MultiPolygon", json.dumps([[square(0, 0, 1, 1)]]), None),
            GeoQuery(
                GeoRel.DISJOINT,
                "MultiPolygon",
                ((((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)),),),
            ),
        ),
    ],
)
def test_valid_geoqueries_parse(arguments: tuple[str, str, Any, str | None], expected: GeoQuery) -> None:
    assert parse_geoquery(*arguments) == expected


@pytest.mark.parametrize(
    ("arguments", "parameter", "message"),
    [
        (("near", "Point", "[8,40]"), "georel", "near needs ';maxDistance==<metres>'"),
        (("near;maxDistance=2000", "Point", "[8,40]"), "georel", "near needs"),
        (("near;maxDistance:2000", "Point", "[8,40]"), "georel", "near needs"),
        (("near;distance==2000", "Point", "[8,40]"), "georel", "near needs"),
        (("near;maxDistance==0", "Point", "[8,40]"), "georel", "must be a finite number above 0"),
        (("near;maxDistance==-5", "Point", "[8,40]"), "georel", "'-5' is not a positive number"),
        (("near;maxDistance==2km", "Point", "[8,40]"), "georel", "not a positive number"),
        (("near;maxDistance==1e999", "Point", "[8,40]"), "georel", "finite"),
        (("near;maxDistance==10;minDistance==5", "Point", "[8,40]"), "georel", "not a positive number"),
        (("Near;maxDistance==10", "Point", "[8,40]"), "georel", "unknown relation 'Near'"),
        (("inside", "Point", "[1,2]"), "georel", "unknown relation 'inside'"),
        (("within;maxDistance==10", "Point", "[1,2]"), "georel", "within takes no modifier"),
        (("within;", "Point", "[1,2]"), "georel", "within takes no modifier"),
        (("within", "point", "[1,2]"), "geometry", "unknown geometry 'point'"),
        (("within", "Circle", "[1,2]"), "geometry", "unknown geometry"),
        (("within", "GeometryCollection", "[]"), "geometry", "GeometryCollection is not allowed"),
        (("near;maxDistance==10", "Polygon", EXAMPLE_2), "geometry", "near needs a Point reference geometry"),
        (("within", "Point", "8,40"), "coordinates", "not a JSON array.*wrap the numbers"),
        (("within", "Point", "[8,40"), "coordinates", "not a JSON array"),
        (("within", "Point", "[200,40]"), "coordinates", "longitude 200 is outside"),
        (("within", "Point", "[8,-91]"), "coordinates", "latitude -91 is outside"),
        (("within", "Point", "[8]"), "coordinates", "a position is"),
        (("within", "Point", '["8","40"]'), "coordinates", "numbers only"),
        (("within", "Point", "[true,40]"), "coordinates", "numbers only"),
        (("within", "LineString", "[[0,0]]"), "coordinates", "a LineString needs an array of at least 2"),
        (("within", "MultiPoint", "[]"), "coordinates", "a MultiPoint needs"),
        (("within", "Polygon", "[[[0,0],[1,0],[1,1],[0,0.5]]]"), "coordinates", "must end where it starts"),
        (
            ("within", "Polygon", "[[[0,0],[1,0],[0,0]]]"),
            "coordinates",
            "a linear ring needs an array of at least 4",
        ),
        (
            ("within", "Polygon", "[[[0,0],[1,1],[1,0],[0,1],[0,0]]]"),
            "coordinates",
            "invalid Polygon: Self-intersection",
        ),
        (("within", "Polygon", "[[0,0],[1,0],[1,1],[0,0]]"), "coordinates", "a linear ring needs an array"),
        (("within", "Point", "[8,40]", "loc ation"), "geoproperty", "is not an attribute name"),
        (
            ("within", "Point", "[8,40]", "https://example.org/location"),
            "geoproperty",
            "not an attribute name",
        ),
    ],
)
def test_invalid_geoqueries_name_the_parameter_and_the_reason(
    arguments: tuple[Any, ...], parameter: str, message: str
) -> None:
    with pytest.raises(GeoQueryError, match=message) as caught:
        parse_geoquery(*arguments)
    assert caught.value.parameter == parameter
    assert str(caught.value).startswith(f"{parameter}: ")
    assert isinstance(caught.value, ValueError)


def test_the_json_geoq_of_subscriptions_takes_arrays_or_json_text() -> None:
    as_array = from_geoq({"georel": "near;maxDistance==500", "geometry": "Point", "coordinates": [8, 40]})
    as_text = from_geoq({"georel": "near;maxDistance==500", "geometry": "Point", "coordinates": "[8,40]"})
    assert as_array == as_text == parse_geoquery("near;maxDistance==500", "Point", "[8,40]")
    assert (
        from_geoq(
            {"georel": "within", "geometry": "Point", "coordinates": [1, 2], "geoproperty": "area"}
        ).geoproperty
        == "area"
    )


@pytest.mark.parametrize(
    ("geoq", "parameter"),
    [
        ({"geometry": "Point", "coordinates": [8, 40]}, "georel"),
        ({"georel": "within", "coordinates": [8, 40]}, "geometry"),
        ({"georel": "within", "geometry": "Point"}, "coordinates"),
        ({"georel": ["within"], "geometry": "Point", "coordinates": [8, 40]}, "georel"),
        ({"georel": "within", "geometry": "Point", "coordinates": [8, 40], "geoproperty": 5}, "geoproperty"),
        ({"georel": "within", "geometry": "Point", "coordinates": {"lon": 8}}, "coordinates"),
        ([1, 2], "geoQ"),
    ],
)
def test_a_malformed_geoq_is_refused(geoq: Any, parameter: str) -> None:
    with pytest.raises(GeoQueryError) as caught:
        from_geoq(geoq)
    assert caught.value.parameter == parameter


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates"),
    [
        ("near;maxDistance==2000", "Point", "[8,40]"),
        ("near;minDistance==12.5", "Point", "[8,40]"),
        ("overlaps", "Polygon", json.dumps([square(0, 0, 4, 4), square(1, 1, 2, 2)])),
    ],
)
def test_parameters_round_trip(georel: str, geometry: str, coordinates: str) -> None:
    query = parse_geoquery(georel, geometry, coordinates, "area")
    params = query.to_params()
    assert params["georel"] == georel
    assert parse_geoquery(**params) == query
    assert from_geoq({**params, "coordinates": query.reference["coordinates"]}) == query
    assert {query: "cached"}[parse_geoquery(**params)] == "cached"  # hashable: one cache entry per query


# --- the topological relations, target against reference ---------------------------------------------------

SQUARE = square(0, 0, 4, 4)


def relation(georel: str, reference: dict[str, Any]) -> GeoQuery:
    return parse_geoquery(georel, reference["type"], json.dumps(reference["coordinates"]))


RELATIONS: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # within: the target lies inside the reference (the boundary alone does not count)
    ("within", polygon(SQUARE), point(1, 1), True),
    ("within", polygon(SQUARE), point(5, 5), False),
    ("within", polygon(SQUARE), point(0, 2), False),
    ("within", polygon(SQUARE, square(1, 1, 3, 3)), point(2, 2), False),  # in the hole
    ("within", polygon(SQUARE), line((1, 1), (3, 3)), True),
    ("within", polygon(SQUARE), line((1, 1), (5, 5)), False),
    ("within", polygon(SQUARE), polygon(square(1, 1, 2, 2)), True),
    ("within", polygon(SQUARE), polygon(SQUARE), True),
    ("within", polygon(SQUARE), {"type": "MultiPoint", "coordinates": [[1, 1], [2, 3]]}, True),
    ("within", polygon(SQUARE), {"type": "MultiPoint", "coordinates": [[1, 1], [9, 9]]}, False),
    (
        "within",
        {"type": "MultiPolygon", "coordinates": [[square(10, 10, 11, 11)], [SQUARE]]},
        point(1, 1),
        True,
    ),
    # contains: the target holds the reference
    ("contains", polygon(square(1, 1, 2, 2)), polygon(SQUARE), True),
    ("contains", polygon(SQUARE), polygon(SQUARE), True),
    ("contains", polygon(SQUARE), polygon(square(1, 1, 2, 2)), False),
    ("contains", point(2, 2), polygon(SQUARE), True),
    ("contains", point(2, 2), line((0, 0), (4, 4)), True),
    ("contains", point(2, 2), {"type": "MultiLineString", "coordinates": [[[5, 5], [6, 6]]]}, False),
    # intersects and disjoint: any common point, touching included
    ("intersects", polygon(SQUARE), line((-1, 2), (5, 2)), True),
    ("intersects", polygon(SQUARE), line((4, 4), (5, 5)), True),
    ("intersects", polygon(SQUARE), point(9, 9), False),
    ("intersects", line((0, 4), (4, 0)), line((0, 0), (4, 4)), True),
    ("disjoint", polygon(SQUARE), point(9, 9), True),
    ("disjoint", polygon(SQUARE), line((4, 4), (5, 5)), False),
    ("disjoint", polygon(SQUARE), polygon(square(2, 2, 6, 6)), False),
    # equals: the same point set, whatever the vertex order
    ("equals", polygon(SQUARE), polygon([[4, 4], [0, 4], [0, 0], [4, 0], [4, 4]]), True),
    ("equals", polygon(SQUARE), polygon(list(reversed(SQUARE))), True),
    ("equals", polygon(SQUARE), polygon(square(0, 0, 4, 5)), False),
    ("equals", point(8, 40), point(8, 40), True),
    ("equals", point(8, 40), {"type": "Point", "coordinates": [8, 40, 350]}, True),  # altitude ignored
    ("equals", line((0, 0), (2, 2)), line((0, 0), (1, 1), (2, 2)), True),
    # overlaps: same dimension, each has points outside the other
    ("overlaps", polygon(SQUARE), polygon(square(2, 2, 6, 6)), True),
    ("overlaps", polygon(SQUARE), polygon(square(1, 1, 2, 2)), False),
    ("overlaps", polygon(SQUARE), polygon(square(5, 5, 6, 6)), False),
    ("overlaps", polygon(SQUARE), line((-1, 2), (5, 2)), False),
    ("overlaps", line((0, 0), (2, 0)), line((1, 0), (3, 0)), True),
    (
        "overlaps",
        {"type": "MultiPoint", "coordinates": [[0, 0], [1, 1]]},
        {"type": "MultiPoint", "coordinates": [[1, 1], [2, 2]]},
        True,
    ),
]


@pytest.mark.parametrize(
    ("georel", "reference", "target", "expected"),
    RELATIONS,
    ids=[
        f"{georel}-{reference['type']}-{target['type']}-{index}"
        for index, (georel, reference, target, _) in enumerate(RELATIONS)
    ],
)
def test_relations(georel: str, reference: dict[str, Any], target: dict[str, Any], expected: bool) -> None:
    query = relation(georel, reference)
    assert matches(query, target) is expected
    assert matches(query, target) is expected  # the prepared reference is reused


@pytest.mark.parametrize(
    "target",
    [
        {"type": "GeometryCollection", "geometries": [point(1, 1)]},
        {"type": "Point", "coordinates": [200, 0]},
        {"type": "Point"},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]},
        {"coordinates": [1, 1]},
        "POINT(1 1)",
    ],
)
def test_a_target_that_is_not_a_supported_geometry_never_matches(target: Any) -> None:
    assert not matches(relation("intersects", polygon(SQUARE)), target)
    assert not matches(relation("disjoint", polygon(SQUARE)), target)
    assert not matches(parse_geoquery("near;minDistance==1", "Point", "[8,40]"), target)


# --- near: metres on the sphere ----------------------------------------------------------------------------

ORIGIN = (8.0, 40.0)


def north(metres: float) -> float:
    return ORIGIN[1] + metres / METRES_PER_DEGREE


def east(metres: float) -> float:
    return ORIGIN[0] + metres / (METRES_PER_DEGREE * math.cos(math.radians(ORIGIN[1])))


def near(modifier: str, metres: float) -> GeoQuery:
    return parse_geoquery(f"near;{modifier}=={metres}", "Point", json.dumps(list(ORIGIN)))


@pytest.mark.parametrize(
    ("target", "max_2000", "min_2000"),
    [
        (point(ORIGIN[0], north(1000)), True, False),
        (point(ORIGIN[0], north(1999)), True, False),
        (point(ORIGIN[0], north(2001)), False, True),
        (point(*ORIGIN), True, False),
        # every point of the target must be inside the 2 km buffer for maxDistance ...
        (polygon(square(ORIGIN[0], ORIGIN[1], east(1000), north(1000))), True, False),
        (polygon(square(ORIGIN[0], ORIGIN[1], east(1900), north(1900))), False, False),
        # ... and outside it for minDistance, so a polygon around the origin is at distance 0
        (polygon(square(east(-5000), north(-5000), east(5000), north(5000))), False, False),
        (polygon(square(east(2500), north(-100), east(3000), north(100))), False, True),
        (polygon(square(east(1500), north(-100), east(3000), north(100))), False, False),
        # the nearest point of an edge may lie between its vertices (cross-track distance)
        (line((east(1500), north(-5000)), (east(1500), north(5000))), False, False),
        (line((east(2500), north(-5000)), (east(2500), north(5000))), False, True),
        (
            {"type": "MultiPoint", "coordinates": [[ORIGIN[0], north(500)], [ORIGIN[0], north(1500)]]},
            True,
            False,
        ),
        (
            {"type": "MultiPoint", "coordinates": [[ORIGIN[0], north(500)], [ORIGIN[0], north(2500)]]},
            False,
            False,
        ),
        (
            {"type": "MultiLineString", "coordinates": [[[east(2100), north(0)], [east(2500), north(0)]]]},
            False,
            True,
        ),
        (
            {
                "type": "MultiPolygon",
                "coordinates": [[square(east(3000), north(3000), east(4000), north(4000))]],
            },
            False,
            True,
        ),
    ],
)
def test_near_uses_the_buffer_semantics_of_clause_4_10(
    target: dict[str, Any], max_2000: bool, min_2000: bool
) -> None:
    assert matches(near("maxDistance", 2000), target) is max_2000
    assert matches(near("minDistance", 2000), target) is min_2000


def test_near_distances_are_haversine_metres() -> None:
    madrid, sol = (-3.7038, 40.4168), (-3.7035, 40.4169)
    across_town = (-3.6883, 40.4530)  # about 4.2 km away
    distance = haversine_m(*madrid, *across_town)
    assert 4000 < distance < 4500
    query = parse_geoquery(f"near;maxDistance=={math.ceil(distance)}", "Point", json.dumps(list(madrid)))
    assert matches(query, point(*across_town))
    assert matches(query, point(*sol))
    assert not matches(
        parse_geoquery(f"near;maxDistance=={math.floor(distance)}", "Point", json.dumps(list(madrid))),
        point(*across_town),
    )


@given(
    bearing=st.floats(0, 2 * math.pi),
    metres=st.floats(0, 10_000),
    radius=st.floats(1, 5_000),
)
def test_a_point_is_either_near_or_far_never_both(bearing: float, metres: float, radius: float) -> None:
    target = point(east(metres * math.sin(bearing)), north(metres * math.cos(bearing)))
    within = matches(near("maxDistance", radius), target)
    beyond = matches(near("minDistance", radius), target)
    assert within is not beyond
    assert within is (haversine_m(*ORIGIN, *target["coordinates"]) <= radius)


# --- entities: the GeoProperty named by geoproperty --------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "georel", "geometry", "coordinates", "geoproperty", "expected"),
    [
        ("ParkingSpot", "near;maxDistance==100", "Point", "[-3.8035,43.4629]", None, True),
        ("ParkingSpot", "near;minDistance==100", "Point", "[-3.8035,43.4629]", None, False),
        ("ParkingSpot", "within", "Polygon", json.dumps([square(-3.9, 43.4, -3.7, 43.5)]), None, True),
        ("WeatherObserved", "near;maxDistance==5000", "Point", "[-4.7245,41.6523]", None, True),  # Valladolid
        ("EVChargingStation", "near;maxDistance==5000", "Point", "[-4.7245,41.6523]", None, True),
        ("AirQualityObserved", "near;maxDistance==5000", "Point", "[-4.7245,41.6523]", None, False),  # Madrid
        ("Building", "contains", "Point", "[100.5,0.5]", None, True),
        ("Building", "within", "Polygon", json.dumps([square(99, -1, 102, 2)]), None, True),
        ("Building", "equals", "Polygon", EXAMPLE_2, None, True),
        ("Building", "overlaps", "Polygon", json.dumps([square(100.5, 0.5, 102, 2)]), None, True),
        (
            "Building",
            "intersects",
            "Point",
            "[100.5,0.5]",
            "containedInPlace",
            False,
        ),  # a Property, not a GeoProperty
        ("DeviceMeasurement", "intersects", "Point", "[60.170833,24.9375]", None, False),  # a Property too
        (
            "Device",
            "disjoint",
            "Point",
            "[0,0]",
            None,
            False,
        ),  # no location: never matches, disjoint included
    ],
)
def test_smart_data_models_entities(
    models: dict[str, dict[str, Any]],
    model: str,
    georel: str,
    geometry: str,
    coordinates: str,
    geoproperty: str | None,
    expected: bool,
) -> None:
    query = parse_geoquery(georel, geometry, coordinates, geoproperty)
    assert matches_entity(query, models[model]) is expected


def test_any_instance_of_a_multi_instance_geoproperty_may_match() -> None:
    entity = {
        "id": "urn:ngsi-ld:Bus:1",
        "type": "Bus",
        "https://example.org/route": [
            {"type": "GeoProperty", "value": point(50, 50), "datasetId": "urn:planned"},
            {
                "type": "https://uri.etsi.org/ngsi-ld/GeoProperty",
                "value": point(1, 1),
                "datasetId": "urn:actual",
            },
            {"type": "Property", "value": point(2, 2)},
        ],
    }
    query = parse_geoquery("within", "Polygon", json.dumps([SQUARE]), "route")
    assert matches_entity(query, entity, lambda name: f"https://example.org/{name}")
    assert not matches_entity(query, entity)  # the short name is not the stored key
    only_planned = {**entity, "https://example.org/route": entity["https://example.org/route"][:1]}
    assert not matches_entity(query, only_planned, lambda name: f"https://example.org/{name}")
